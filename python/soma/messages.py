"""The runtime error messages of the core language, worded as the reference SOMA words them.

One function per kind of error; the Rust runtime's `error::msg` module builds the same
texts (docs/semantics.md, "Runtime error messages", pins both). Type names in messages
are the reference's Python class names (`int`, `str`, `TrueSingleton`, `Block`, ...): see
`values.class_name`.
"""

from .errors import RuntimeError as SomaRuntimeError
from .values import NIL, VOID, class_name

# What each core builtin says when the AL holds too few values (the reference words each
# one separately).
_UNDERFLOW = {
    "<": "AL underflow: < requires 2 values",
    "+": "AL underflow: + requires 2 values",
    "-": "AL underflow: - requires 2 values",
    "*": "AL underflow: * requires 2 values",
    "/": "AL underflow: / requires 2 values",
    "%": "AL underflow: % requires 2 values",
    "concat": "AL underflow: concat requires 2 values",
    "print": "AL underflow: print requires 1 value",
    "toString": "AL underflow: to_string requires 1 value",
    "toInt": "AL underflow: to_int requires 1 value",
    "isVoid": "AL underflow: IsVoid requires 1 value",
    "isNil": "AL underflow: IsNil requires 1 value",
    "debug.type": "AL underflow: debug.type requires 1 value",
    "debug.id": "AL underflow: debug.id requires 1 value",
    "choose": "AL underflow: >choose requires 3 values",
    "chain": "AL underflow: >chain requires 1 value (block)",
    "debug.chain": "AL underflow: >chain requires 1 value (block)",
    "debug.choose": "Choose requires [condition, true_block, false_block] on AL",
    "debug.graph.dump": "debug.graph.dump requires a value on AL",
    "debug.graph.draw": "debug.graph.draw requires a value on AL",
    "use": "AL underflow: use requires 1 value (extension name)",
}


def underflow_text(name, needed):
    """The underflow message of builtin `name` (a Store name); any other word gets the
    common form `AL underflow: NAME requires N value(s)`."""
    text = _UNDERFLOW.get(name)
    if text is None:
        text = "AL underflow: %s requires %d %s" % (name, needed,
                                                    "value" if needed == 1 else "values")
    return text


def underflow(name, needed):
    return SomaRuntimeError(underflow_text(name, needed))


def undefined_store(path):
    """`path` as written (`a.b`)."""
    return SomaRuntimeError(
        "Undefined Store path: '%s'\n"
        "  Path was never set. Did you mean to:\n"
        "    - Initialize it first: () !%s\n"
        "    - Set a nested value: <value> !%s.<child>\n"
        "    - Check a different path?\n"
        "  Hint: Auto-vivified intermediate paths can be read after writing to children.\n"
        "        Example: 42 !a.b.c creates 'a' and 'a.b' with Void, which can be read."
        % (path, path, path))


def undefined_register(path):
    """`path` as written (`_.x`, or `_` for the root, which the message spells `_.`)."""
    if path == "_":
        path = "_."
    return SomaRuntimeError(
        "Undefined Register path: '%s'\n"
        "  Register paths must be written before reading.\n"
        "  Did you forget: <value> !%s?" % (path, path))


def store_underflow():
    return SomaRuntimeError("AL underflow: store requires value on AL")


def not_executable(value):
    if value is VOID or value is NIL:
        return SomaRuntimeError("AL underflow: exec requires executable Block on AL, got %s"
                                % class_name(value))
    return SomaRuntimeError("Cannot execute %s: only Blocks are executable" % class_name(value))


def arith_types(name, a, b):
    return SomaRuntimeError("Type error in %s: expected int, got %s and %s"
                            % (name, class_name(a), class_name(b)))


def compare_types(a, b):
    ta, tb = class_name(a), class_name(b)
    if ta != tb:
        return SomaRuntimeError("Type mismatch in <: cannot compare %s and %s" % (ta, tb))
    return SomaRuntimeError("Cannot compare type %s with <" % ta)


def concat_types(a, b):
    return SomaRuntimeError("Type error in concat: expected string, got %s and %s"
                            % (class_name(a), class_name(b)))


def to_string_type(v):
    return SomaRuntimeError("Type error in to_string: expected int, got %s" % class_name(v))


def to_int_type(v):
    return SomaRuntimeError("Type error in to_int: expected string, got %s" % class_name(v))


def use_type(v):
    return SomaRuntimeError("use: expected string extension name, got %s" % class_name(v))


def block_outside():
    return SomaRuntimeError(">block called at top-level (no current block)")


def read_line_eof():
    return SomaRuntimeError("read_line: EOF encountered")


def extension_not_found(name, missing=None):
    """`missing`: the module Python could not find (by default the extension's own)."""
    return SomaRuntimeError("Extension '%s' not found: No module named '%s'"
                            % (name, missing or "soma.extensions." + name))
