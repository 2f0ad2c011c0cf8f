"""SOMA values as the pure-Python tier represents them.

Int is Python `int`, Str is `str`. The four singletons are instances of one
small class so that `repr` prints their SOMA names. Blocks, builtins and cell
references are slotted classes; anything else on the AL is a foreign Python
object that reached SOMA through the Python extension.
"""


class Singleton:
    """True, False, Nil and Void: values compared by identity."""

    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name

    def __reduce__(self):
        return (_singleton, (self.name,))


class TrueSingleton(Singleton):
    """The type of True (each singleton has its own type, as extensions expect)."""
    __slots__ = ()


class FalseSingleton(Singleton):
    """The type of False."""
    __slots__ = ()


class NilSingleton(Singleton):
    """The type of Nil."""
    __slots__ = ()


class VoidSingleton(Singleton):
    """The type of Void."""
    __slots__ = ()


TRUE = TrueSingleton("True")
FALSE = FalseSingleton("False")
NIL = NilSingleton("Nil")
VOID = VoidSingleton("Void")

# Exactly one instance of each of these types exists; `type(v) in SINGLETON_TYPES`
# is how hot code asks "is this one of the four singletons".
SINGLETON_TYPES = frozenset((TrueSingleton, FalseSingleton, NilSingleton, VoidSingleton))

_SINGLETONS = {s.name: s for s in (TRUE, FALSE, NIL, VOID)}


def _singleton(name):
    return _SINGLETONS[name]


def to_bool(flag):
    return TRUE if flag else FALSE


class Cell:
    """A node of the cell graph: a value and named children, independent of each other.

    `children` keeps insertion order (a dict), which is what the graph dumps show.
    """

    __slots__ = ("value", "children")

    def __init__(self, value=VOID):
        self.value = value
        self.children = {}

    def __repr__(self):
        return "Cell(%r, %d children)" % (self.value, len(self.children))


class CellRef:
    """The identity of a Cell. Two references are equal when they name the same Cell."""

    __slots__ = ("cell",)

    def __init__(self, cell):
        self.cell = cell

    def __eq__(self, other):
        return isinstance(other, CellRef) and other.cell is self.cell

    def __hash__(self):
        return id(self.cell)

    def __repr__(self):
        return "CellRef(%r)" % (self.cell.value,)


class Block:
    """A block value: the Code of one block literal.

    Every evaluation of the same literal yields the same Block, so identity is
    per literal. The execution counter and the JIT's entry live on the Code.
    """

    __slots__ = ("code",)

    def __init__(self, code):
        self.code = code

    def __repr__(self):
        return "<Block %s>" % (self.code.name,)

    def print_form(self):
        """How `print` shows this block (see `block_form`)."""
        return block_form(self.code)


class Builtin:
    """A block implemented in Python: `fn(vm)` works on the VM's AL."""

    __slots__ = ("name", "fn")

    def __init__(self, name, fn):
        self.name = name
        self.fn = fn

    def __repr__(self):
        return "<Builtin:%s>" % (self.name,)


# How `print` shows a CellRef: the reference prints `CellRef(` and the Python object id of
# the cell, which differs on every run; ours is the same text on every run and tier.
CELLREF_FORM = "CellRef(...)"


def type_name(value):
    """The SOMA type name used in messages and by `debug.type`."""
    t = type(value)
    if t is int:
        return "Int"
    if t is str:
        return "Str"
    if value is TRUE or value is FALSE:
        return "Bool"
    if value is NIL:
        return "Nil"
    if value is VOID:
        return "Void"
    if t is Block:
        return "Block"
    if t is Builtin:
        return "BuiltinBlock"
    if t is CellRef:
        return "CellRef"
    return t.__name__


def class_name(value):
    """The type name error messages use: the reference's Python class names (`int`, `str`,
    `TrueSingleton`, `FalseSingleton`, `NilSingleton`, `VoidSingleton`, `Block`,
    `BuiltinBlock`, `CellRef`), a foreign object's Python type name."""
    t = type(value)
    if t is Builtin:
        return "BuiltinBlock"
    if isinstance(value, Block):
        return "Block"
    if isinstance(value, CellRef):
        return "CellRef"
    return t.__name__


# The statement kinds `print` names for a block's body, by opcode (see `block_form`).
_NODE_KINDS = None


def block_form(code):
    """How `print` shows a Block: its body's statements by kind, as the reference prints
    its block objects (`Block(body=[RunNode(IntNode), RunNode(ExecNode)])`). Every statement
    compiles to exactly one instruction, so the kinds follow from the opcodes."""
    global _NODE_KINDS
    from . import opcodes as op
    if _NODE_KINDS is None:
        kinds = {}
        for ops, kind in ((op.LOAD, "ValuePath"), (op.REF, "ReferencePath"),
                          (op.SET, "StoreNode"), (op.SETREF, "StoreNode"),
                          (op.EXEC, "ExecNode")):
            for o in ops.values():
                kinds[o] = kind
        kinds[op.EXEC_CONST] = "ExecNode"
        _NODE_KINDS = kinds
    parts = []
    for opcode, operand in code.instrs:
        if opcode == op.CONST:
            c = code.consts[operand]
            kind = "BlockNode" if type(c) is Block else "StringNode" if type(c) is str else "IntNode"
        else:
            kind = _NODE_KINDS[opcode]
        parts.append("RunNode(%s)" % kind)
    return "Block(body=[%s])" % ", ".join(parts)


def render(value):
    """How `print` writes a value (docs/semantics.md, "Rendering values")."""
    t = type(value)
    if t is str:
        return value
    if t is int:
        from .bigint import int_to_str
        return int_to_str(value)
    if t in SINGLETON_TYPES:
        return value.name
    if t is Builtin:
        return "<builtin %s>" % value.name
    # isinstance: the native tiers' Blocks and CellRefs are subclasses.
    if isinstance(value, Block):
        return value.print_form()
    if isinstance(value, CellRef):
        return CELLREF_FORM
    return repr(value)


def render_al_item(value):
    """How the `.soma` test format renders one AL entry."""
    t = type(value)
    if t is int:
        from .bigint import int_to_str
        return int_to_str(value)
    if t is str:
        return "(%s)" % value
    if t in SINGLETON_TYPES:
        return value.name
    return type_name(value)


def render_al(al):
    return "[" + ", ".join(render_al_item(v) for v in al) + "]"
