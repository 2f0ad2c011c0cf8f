"""The builtins that live in the Store from the start (SOMA-LANGUAGE.md).

Every builtin is `fn(vm)` working on `vm.al`. Underflow is checked before
anything is popped (the AL is untouched by an underflow error); operands are
popped before their types are checked, as in the reference. Messages are
pinned in docs/semantics.md.
"""

import sys

from . import limits
from .bigint import str_to_int
from . import messages
from .errors import RuntimeError as SomaRuntimeError
from .values import (FALSE, NIL, SINGLETON_TYPES, TRUE, VOID, Block, Builtin, CellRef, Singleton,
                     render, render_al_item, type_name)


underflow = messages.underflow


def _is_int(v):
    # Fast exact check first; a foreign int subclass still counts, as in the reference.
    return type(v) is int or (isinstance(v, int) and not isinstance(v, Singleton))


def _pop1(vm, name):
    if not vm.al:
        raise underflow(name, 1)
    return vm.al.pop()


def _pop2(vm, name):
    al = vm.al
    if len(al) < 2:
        raise underflow(name, 2)
    b = al.pop()
    return al.pop(), b


# -- control ---------------------------------------------------------------

def b_block(vm):
    if vm.current_block is None:
        raise messages.block_outside()
    vm.al.append(vm.current_block)


def b_choose(vm):
    al = vm.al
    if len(al) < 3:
        raise underflow("choose", 3)
    if_false = al.pop()
    if_true = al.pop()
    cond = al.pop()
    al.append(if_false if (cond is FALSE or cond is NIL or cond is VOID) else if_true)


def b_chain(vm):
    al = vm.al
    value = _pop1(vm, "chain")
    while True:
        t = type(value)
        if t is Block:
            vm.call_block(value)
        elif t is Builtin:
            value.fn(vm)
        else:
            al.append(value)
            return
        if al and type(al[-1]) in (Block, Builtin):
            value = al.pop()
        else:
            return


# -- arithmetic and comparison ---------------------------------------------

_arith_type_error = messages.arith_types


def b_add(vm):
    a, b = _pop2(vm, "+")
    if type(a) is int and type(b) is int or _is_int(a) and _is_int(b):
        vm.al.append(int(a) + int(b))
    else:
        raise _arith_type_error("+", a, b)


def b_sub(vm):
    a, b = _pop2(vm, "-")
    if type(a) is int and type(b) is int or _is_int(a) and _is_int(b):
        vm.al.append(int(a) - int(b))
    else:
        raise _arith_type_error("-", a, b)


def b_mul(vm):
    a, b = _pop2(vm, "*")
    if type(a) is int and type(b) is int or _is_int(a) and _is_int(b):
        a, b = int(a), int(b)
        # The product's size is known before it is computed (the native tier's bound).
        bits = a.bit_length() + b.bit_length()
        if bits > 96 and bits // 8 + 48 > vm.max_memory:
            raise limits.memory_limit_error(vm.max_memory)
        vm.al.append(a * b)
    else:
        raise _arith_type_error("*", a, b)


def b_div(vm):
    a, b = _pop2(vm, "/")
    if not (_is_int(a) and _is_int(b)):
        raise _arith_type_error("/", a, b)
    if b == 0:
        raise SomaRuntimeError("Division by zero")
    vm.al.append(int(a) // int(b))


def b_mod(vm):
    a, b = _pop2(vm, "%")
    if not (_is_int(a) and _is_int(b)):
        raise _arith_type_error("%", a, b)
    if b == 0:
        raise SomaRuntimeError("Modulo by zero")
    vm.al.append(int(a) % int(b))


def b_lt(vm):
    a, b = _pop2(vm, "<")
    ta, tb = type(a), type(b)
    if ta is tb and (ta is int or ta is str):
        vm.al.append(TRUE if a < b else FALSE)
    else:
        raise messages.compare_types(a, b)


# -- strings and types -----------------------------------------------------

def b_concat(vm):
    a, b = _pop2(vm, "concat")
    if type(a) is not str or type(b) is not str:
        raise messages.concat_types(a, b)
    # The result's size is known before it is made; the exact (UTF-8) size is computed
    # only when the longest encoding could reach the limit.
    limit = vm.max_memory
    if (len(a) + len(b)) * 4 + limits.STR_HEADER_BYTES > limit and limits.str_bytes(a, b) > limit:
        raise limits.memory_limit_error(limit)
    vm.al.append(a + b)


def b_to_string(vm):
    al = vm.al
    v = _pop1(vm, "toString")
    if not _is_int(v):
        raise messages.to_string_type(v)
    if v.bit_length() // 3 + 2 + limits.STR_HEADER_BYTES > vm.max_memory:
        raise limits.memory_limit_error(vm.max_memory)
    al.append(render(int(v)))


def b_to_int(vm):
    al = vm.al
    v = _pop1(vm, "toInt")
    if type(v) is not str:
        raise messages.to_int_type(v)
    try:
        al.append(str_to_int(v))
    except ValueError:
        al.append(NIL)


def b_is_void(vm):
    vm.al.append(TRUE if _pop1(vm, "isVoid") is VOID else FALSE)


def b_is_nil(vm):
    vm.al.append(TRUE if _pop1(vm, "isNil") is NIL else FALSE)


# -- I/O -------------------------------------------------------------------

def b_print(vm):
    vm.write_line(render(_pop1(vm, "print")))


def b_read_line(vm):
    line = vm.read_line()
    if line is None:
        raise messages.read_line_eof()
    vm.al.append(line)


# -- extensions ------------------------------------------------------------

def b_use(vm):
    name = _pop1(vm, "use")
    if type(name) is not str:
        raise messages.use_type(name)
    vm.load_extension(name)


# -- debug -----------------------------------------------------------------

def b_debug_type(vm):
    al = vm.al
    v = _pop1(vm, "debug.type")
    if type(v) is dict:
        al.append("Dict")
    elif type(v) is list:
        al.append("List")
    else:
        al.append(type_name(v))


def b_debug_id(vm):
    al = vm.al
    v = _pop1(vm, "debug.id")
    al.append(id(v.cell) if type(v) is CellRef else id(v))


def b_debug_error(vm):
    al = vm.al
    if not al:
        raise SomaRuntimeError("ASSERT FAILED: (no message provided)")
    raise SomaRuntimeError("ASSERT FAILED: %s" % render(al.pop()))


def b_debug_al_dump(vm):
    items = []
    for v in vm.al:
        if type(v) is CellRef:
            items.append("CellRef(%d)" % id(v.cell))
        else:
            items.append(render_al_item(v))
    vm.write_line("DEBUG AL [%d items]: [%s]" % (len(vm.al), ", ".join(items)))


def b_debug_chain(vm):
    """`chain` that narrates each step; stops after 1000 steps as a loop guard."""
    al = vm.al
    value = _pop1(vm, "debug.chain")
    say = vm.write_line
    step = 0
    while type(value) in (Block, Builtin):
        step += 1
        say("")
        say("[DEBUG CHAIN] Iteration %d" % step)
        say("  AL before: %d items" % len(al))
        say("  \u2192 Executing Block")
        if step >= 1000:
            say("")
            say("[DEBUG CHAIN] \u26a0\ufe0f  WARNING: Reached 1000 iterations!")
            say("  Possible infinite loop detected - stopping chain")
            say("  Last AL size: %d items" % len(al))
            return
        vm.execute_value(value)
        say("  AL after: %d items" % len(al))
        if al and type(al[-1]) in (Block, Builtin):
            value = al.pop()
        else:
            say("  \u2192 Chain terminating: no more blocks on AL")
            return
    if value is NIL:
        say("")
        say("[DEBUG CHAIN] \u2192 Nil encountered, stopping")
    else:
        al.append(value)


def b_debug_choose(vm):
    """`choose` that narrates the branch it takes."""
    al = vm.al
    if len(al) < 3:
        raise underflow("debug.choose", 3)
    say = vm.write_line
    before = len(al)
    if_false = al.pop()
    if_true = al.pop()
    cond = al.pop()
    say("")
    say("[DEBUG CHOOSE]")
    say("  Condition: %s" % _python_kind(cond))
    say("  AL before: %d items" % before)
    # This narrated variant also treats 0 and the empty string as false.
    if cond is TRUE:
        say("  \u2192 Taking TRUE branch")
        al.append(if_true)
    elif cond is FALSE or cond is VOID or cond is NIL:
        say("  \u2192 Taking FALSE branch")
        al.append(if_false)
    elif _is_int(cond):
        if cond != 0:
            say("  \u2192 Taking TRUE branch (non-zero int: %s)" % render(int(cond)))
            al.append(if_true)
        else:
            say("  \u2192 Taking FALSE branch (zero)")
            al.append(if_false)
    elif type(cond) is str:
        if cond:
            say("  \u2192 Taking TRUE branch (non-empty string)")
            al.append(if_true)
        else:
            say("  \u2192 Taking FALSE branch (empty string)")
            al.append(if_false)
    else:
        say("  \u2192 Taking TRUE branch (truthy value)")
        al.append(if_true)
    say("  AL after: %d items" % len(al))


def _python_kind(value):
    """The class names the narrated debug words print for a value."""
    if type(value) is Builtin:
        return "BuiltinBlock"
    return type(value).__name__


def _graph_leaf(value):
    """A non-reference value as the graph words show it."""
    if type(value) is Block:
        return "<Block>"
    if type(value) is Builtin:
        return "<Builtin:%s>" % value.name
    t = type(value)
    if t is int or t is str or t in SINGLETON_TYPES:
        return render_al_item(value)
    return "<%s>" % type(value).__name__


def b_debug_graph_dump(vm):
    """Print the cell structure reachable from a CellRef, numbering cells, marking cycles.

    Iterative (an explicit stack of pending text and values), so a long list
    does not meet Python's recursion limit. Cells are numbered in visit order.
    """
    seen = {}
    parts = []
    stack = [(None, _pop1(vm, "debug.graph.dump"), 0)]   # (text to emit, or None and a value to show at indent)
    while stack:
        text, value, indent = stack.pop()
        if text is not None:
            parts.append(text)
            continue
        if type(value) is not CellRef:
            parts.append(_graph_leaf(value))
            continue
        key = id(value.cell)
        if key in seen:
            parts.append("#%d (cycle)" % seen[key])
            continue
        number = seen[key] = len(seen)
        cell = value.cell
        if not cell.children:
            parts.append("#%d { value: " % number)
            stack.append((" }", None, 0))
            stack.append((None, cell.value, indent))
            continue
        pad = "  " * indent
        parts.append("#%d {" % number)
        pending = []
        for name, child in sorted(cell.children.items()):
            pending.append(("\n%s  %s: " % (pad, name), None, 0))
            pending.append((None, child.value, indent + 1))
        pending.append(("\n%s}" % pad, None, 0))
        stack.extend(reversed(pending))
    vm.write_line("".join(parts))


_LAST, _MIDDLE = "\u2514\u2500\u2500 ", "\u251c\u2500\u2500 "
_SPACE, _BAR = "    ", "\u2502   "


def b_debug_graph_draw(vm):
    """Print the cell structure reachable from a CellRef as a tree with box-drawing lines.

    Iterative for the same reason as debug.graph.dump. A child's cycle check
    happens when it is reached, after its earlier siblings' subtrees are drawn.
    """
    seen = {}
    out = []
    stack = [("node", _pop1(vm, "debug.graph.draw"), "", "")]
    while stack:
        act = stack.pop()
        if act[0] == "node":
            _, value, prefix, connector = act
            if type(value) is not CellRef:
                out.append(prefix + connector + _graph_leaf(value))
                continue
            key = id(value.cell)
            if key in seen:
                out.append("%s%s#%d (cycle)" % (prefix, connector, seen[key]))
                continue
            number = seen[key] = len(seen)
            out.append("%s%s#%d" % (prefix, connector, number))
            inner = prefix + ("" if not connector else (_SPACE if connector == _LAST else _BAR))
            children = sorted(value.cell.children.items())
            last = len(children) - 1
            stack.extend(("child", name, child.value, inner, i == last)
                         for i, (name, child) in reversed(list(enumerate(children))))
        else:
            _, name, v, inner, is_last = act
            branch = _LAST if is_last else _MIDDLE
            if type(v) is CellRef and id(v.cell) in seen:
                out.append("%s%s%s: #%d (cycle)" % (inner, branch, name, seen[id(v.cell)]))
            elif type(v) is CellRef:
                out.append("%s%s%s:" % (inner, branch, name))
                stack.append(("node", v, inner + (_SPACE if is_last else _BAR), _LAST))
            else:
                out.append("%s%s%s: %s" % (inner, branch, name, _graph_leaf(v)))
    for line in out:
        vm.write_line(line)


# The Store's initial contents: path -> builtin function (or constant value).
CORE_BUILTINS = {
    "block": b_block,
    "choose": b_choose,
    "chain": b_chain,
    "<": b_lt,
    "+": b_add,
    "-": b_sub,
    "*": b_mul,
    "/": b_div,
    "%": b_mod,
    "print": b_print,
    "readLine": b_read_line,
    "concat": b_concat,
    "toString": b_to_string,
    "toInt": b_to_int,
    "isVoid": b_is_void,
    "isNil": b_is_nil,
    "use": b_use,
    "debug.al.dump": b_debug_al_dump,
    "debug.chain": b_debug_chain,
    "debug.choose": b_debug_choose,
    "debug.error": b_debug_error,
    "debug.type": b_debug_type,
    "debug.id": b_debug_id,
    "debug.graph.dump": b_debug_graph_dump,
    "debug.graph.draw": b_debug_graph_draw,
}

CORE_CONSTANTS = {"True": TRUE, "False": FALSE, "Nil": NIL, "Void": VOID}


def default_output(text):
    sys.stdout.write(text)
    sys.stdout.write("\n")
