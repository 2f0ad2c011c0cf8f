"""The bytecode interpreter of the pure-Python tier.

Design notes
- Before a Code first runs, its instructions are *quickened* into tuples
  `(qop, arg, pos)`: the operand is resolved to what the handler needs (the
  constant itself, a path pre-split into `(init, last)`), and common shapes get
  their own handler (a one-component Store path, `_.x`, the bare `_`). The
  serialized bytecode is untouched; quickening is private to this loop.
- The Register of a running Code is a local of `_run`: a holder dict whose only
  key, `_`, is created on the first write. A block execution passes a fresh `{}`.
- Errors raised anywhere below get the position of the innermost instruction
  that was running (`SomaError.at` keeps the first position attached).
- Each block execution bumps `code.count`: the profile tier-up reads.
- Each block execution is a *step* (limits.py): it counts down `_countdown`, and at zero
  `_poll` checks the step budget, the time limit, the interrupt flag and the AL's size
  (as the native runtime's poll does, at the same block entries).
"""

import time

from . import cells
from . import limits
from . import messages
from . import opcodes as op
from .compiler import compile_source
from .errors import RuntimeError as SomaRuntimeError
from .errors import recursion_error, run_error
from .values import Block, Builtin, CellRef, Cell, VOID

# Quickened opcodes, in rough order of frequency. The EXEC family comes first
# so one comparison routes all of it to the shared execute tail.
Q_EXEC_NAME = 0       # >name           arg: name
Q_EXEC_REG1 = 1       # >_.name         arg: name
Q_EXEC_BLOCK = 2      # >{...}          arg: Block
Q_EXEC_PATH = 3       # >a.b            arg: (init, last)
Q_EXEC_REG = 4        # >_.a.b          arg: (init, last), init starting with "_"
Q_EXEC_ROOT = 5       # >_
Q_EXEC_LAST = Q_EXEC_ROOT
Q_CONST = 6           # literal         arg: value
Q_LOAD_REG1 = 7       # _.name          arg: name
Q_SET_REG1 = 8        # !_.name         arg: name
Q_LOAD_NAME = 9       # name            arg: name
Q_SET_NAME = 10       # !name           arg: name
Q_LOAD_PATH = 11      # a.b / _.a.b     arg: (holder_is_register, init, last, text)
Q_SET_PATH = 12       # !a.b / !_.a.b   arg: (holder_is_register, init, last, text)
Q_LOAD_ROOT = 13      # _
Q_SET_ROOT = 14       # !_
Q_REF = 15            # a.b. / _.a.     arg: (holder_is_register, init, last)
Q_SETREF = 16         # !a.b. / !_.a.   arg: (holder_is_register, init, last, text)
Q_REF_ROOT = 17       # _.
Q_SETREF_ROOT = 18    # !_.

DEFAULT_MAX_DEPTH = 10_000


def path_text(root, comps):
    if root == op.REGISTER_ROOT:
        return ".".join(("_",) + tuple(comps))
    return ".".join(comps)


def quicken(code):
    """Build the interpreter's form of `code` (see the module docstring)."""
    quick = []
    for (opcode, operand), pos in zip(code.instrs, code.positions):
        if op.OPCODES[opcode].operand == "const":
            value = code.consts[operand]
            quick.append((Q_EXEC_BLOCK if opcode == op.EXEC_CONST else Q_CONST, value, pos))
            continue
        root, comps = code.paths[operand]
        in_reg = root == op.REGISTER_ROOT
        text = path_text(root, comps)
        if in_reg:
            full = ("_",) + tuple(comps)
        else:
            full = tuple(comps)
        init, last = full[:-1], full[-1]
        general = (in_reg, init, last, text)
        kind = op.NAMES[opcode].split("_")[0]   # LOAD, REF, SET, SETREF, EXEC
        if in_reg and not comps:
            qop = {"LOAD": Q_LOAD_ROOT, "SET": Q_SET_ROOT, "EXEC": Q_EXEC_ROOT,
                   "REF": Q_REF_ROOT, "SETREF": Q_SETREF_ROOT}[kind]
            quick.append((qop, None, pos))
        elif kind == "REF":
            quick.append((Q_REF, general, pos))
        elif kind == "SETREF":
            quick.append((Q_SETREF, general, pos))
        elif in_reg and len(comps) == 1:
            qop = {"LOAD": Q_LOAD_REG1, "SET": Q_SET_REG1, "EXEC": Q_EXEC_REG1}[kind]
            quick.append((qop, comps[0], pos))
        elif not in_reg and len(comps) == 1:
            qop = {"LOAD": Q_LOAD_NAME, "SET": Q_SET_NAME, "EXEC": Q_EXEC_NAME}[kind]
            quick.append((qop, comps[0], pos))
        else:
            qop = {"LOAD": Q_LOAD_PATH, "SET": Q_SET_PATH,
                   "EXEC": Q_EXEC_REG if in_reg else Q_EXEC_PATH}[kind]
            quick.append((qop, general if kind != "EXEC" else (init, last, text), pos))
    code.quick = tuple(quick)
    return code.quick


def undefined(in_register, text):
    return (messages.undefined_register if in_register else messages.undefined_store)(text)


def store_underflow(_text):
    return messages.store_underflow()


not_executable = messages.not_executable


class Interpreter:
    """The pure-Python backend: the Store, the Registers and the loop over them.

    `host` is the `VM` front end (vm.py) that delegates to this object; Python-written
    builtins get it (`fn(host)`), so they see the public API whichever backend runs them.
    The AL and the running Block are the host's plain attributes `al` and `current_block`,
    which this backend works on in place: builtins read them on nearly every call, and a
    property in between measured 25% slower on the chain_loop benchmark.
    """

    name = "python"

    def __init__(self, host, max_depth=DEFAULT_MAX_DEPTH, max_memory=None):
        self.host = host
        host.al = []
        host.current_block = None
        self.store = cells.StoreRoot(VOID)  # the Store's root cell; children: top-level names
        self.top_register = {}         # the Register of top-level code, kept across runs
        self.depth = 0
        self.max_depth = max_depth
        self.max_memory = limits.default_max_memory() if max_memory is None else max_memory
        # The run's budget (see `_poll`): steps counted by earlier armings, what the
        # countdown was armed with, the step limit and deadline of the run, the interrupt.
        self._countdown = self._armed = limits.POLL_INTERVAL
        self._counted = 0
        self._run_max_steps = None
        self._deadline = None
        self._interrupt = False

    # -- entry points -------------------------------------------------------

    def define(self, path, value):
        """Bind a Store path (dotted text) to `value`, creating cells."""
        comps = path.split(".")
        cells.write_value(cells.vivify(self.store.children, comps[:-1], comps[-1]), value)

    def lookup(self, path):
        """The value at a Store path (dotted text), as a SOMA read would see it."""
        comps = path.split(".")
        cell = cells.find(self.store.children, comps[:-1], comps[-1])
        if cell is None:
            raise messages.undefined_store(path)
        return cell.value

    def jit_stats(self):
        return None

    def run_source(self, source_text, source_name):
        """Compile and run SOMA source at top level."""
        self.run_program(compile_source(source_text, source_name))

    def run_program(self, code):
        """Run a top-level Code in the persistent top-level Register.

        Re-entrant: a builtin may run a program (`load`) in the middle of a
        block; depth and the current block carry on from the caller.
        """
        code.count += 1
        self._run(code, self.top_register)

    def execute_value(self, value):
        """Execute a Block or builtin as `>` does; anything else is an error."""
        t = type(value)
        if t is Builtin:
            value.fn(self.host)
        elif t is Block:
            self.call_block(value)
        else:
            raise not_executable(value)

    def call_block(self, block):
        """Run `block` with a fresh Register, as `>block` does."""
        self._countdown -= 1
        if not self._countdown:
            self._poll()
        code = block.code
        code.count += 1
        if self.depth >= self.max_depth:
            raise self._too_deep()
        self.depth += 1
        host = self.host
        saved = host.current_block
        host.current_block = block
        try:
            self._run(code, {})
        finally:
            host.current_block = saved
            self.depth -= 1

    # -- resource limits (limits.py) -------------------------------------------

    def begin_budget(self, max_steps, time_limit):
        """Start a run's step budget and time limit (None: unlimited)."""
        self._run_max_steps = max_steps
        self._deadline = None if time_limit is None else time.monotonic() + time_limit
        self._counted = 0
        self._arm(limits.POLL_INTERVAL)

    def steps_taken(self):
        """Steps (block executions) taken by the current or last run."""
        return self._counted + self._armed - self._countdown

    def _arm(self, interval):
        limit = self._run_max_steps
        if limit is not None:
            interval = max(1, min(interval, limit - self._counted + 1))
        self._countdown = self._armed = interval

    def _poll(self):
        """The countdown reached zero at a block entry: count the steps, check the limits."""
        self._counted += self._armed
        limit = self._run_max_steps
        if limit is not None and self._counted > limit:
            self._arm(1)
            raise limits.step_limit_error(limit)
        if self._interrupt:
            self._interrupt = False
            self._arm(1)
            raise limits.interrupted_error()
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self._arm(1)
            raise limits.time_limit_error()
        self._arm(limits.POLL_INTERVAL)
        if len(self.host.al) * 8 > self.max_memory:
            raise limits.memory_limit_error(self.max_memory)

    def interrupt(self):
        """Stop the run in progress at its next poll point (or the next run, if none is).
        Safe to call from another thread."""
        self._interrupt = True

    def _too_deep(self):
        return recursion_error(self.max_depth)

    # -- the loop -----------------------------------------------------------

    def _run(self, code, reg):
        quick = code.quick or quicken(code)
        host = self.host
        al = host.al
        push = al.append
        pop = al.pop
        store = self.store.children
        pos = None
        try:
            for qop, arg, pos in quick:
                if qop <= Q_EXEC_LAST:
                    if qop == Q_EXEC_NAME:
                        cell = store.get(arg)
                        if cell is None:
                            raise undefined(False, arg)
                        v = cell.value
                    elif qop == Q_EXEC_REG1:
                        # cells.register_root + find, written out here and in Q_LOAD_REG1:
                        # `_.x` is the hottest Register shape; the calls would take it from
                        # 77 to 131 ns (timeit, 2026-11-21).
                        root = reg.get("_")
                        if root is not None and type(root.value) is CellRef:
                            root = root.value.cell
                        cell = root.children.get(arg) if root is not None else None
                        if cell is None:
                            raise undefined(True, "_." + arg)
                        v = cell.value
                    elif qop == Q_EXEC_BLOCK:
                        v = arg
                    elif qop == Q_EXEC_ROOT:
                        cell = cells.register_root(reg)
                        if cell is None:
                            raise undefined(True, "_")
                        v = cell.value
                    else:
                        init, last, text = arg
                        cell = cells.find(reg if qop == Q_EXEC_REG else store, init, last)
                        if cell is None:
                            raise undefined(qop == Q_EXEC_REG, text)
                        v = cell.value
                    t = type(v)
                    if t is Builtin:
                        v.fn(host)
                    elif t is Block:
                        # call_block, inlined: this is the hottest path.
                        self._countdown -= 1
                        if not self._countdown:
                            self._poll()
                        sub = v.code
                        sub.count += 1
                        if self.depth >= self.max_depth:
                            raise self._too_deep()
                        self.depth += 1
                        saved = host.current_block
                        host.current_block = v
                        try:
                            self._run(sub, {})
                        finally:
                            host.current_block = saved
                            self.depth -= 1
                    else:
                        raise not_executable(v)
                elif qop == Q_CONST:
                    push(arg)
                elif qop == Q_LOAD_REG1:
                    root = reg.get("_")
                    if root is not None and type(root.value) is CellRef:
                        root = root.value.cell
                    cell = root.children.get(arg) if root is not None else None
                    if cell is None:
                        raise undefined(True, "_." + arg)
                    push(cell.value)
                elif qop == Q_SET_REG1:
                    if not al:
                        raise store_underflow("_." + arg)
                    root = reg.get("_")
                    if root is None:
                        root = reg["_"] = Cell(VOID)
                    elif type(root.value) is CellRef:
                        root = root.value.cell
                    children = root.children
                    cell = children.get(arg)
                    v = pop()
                    if cell is None:
                        children[arg] = Cell(v)
                    elif type(cell.value) is CellRef and type(v) is not CellRef:
                        cell.value.cell.value = v
                    else:
                        cell.value = v
                elif qop == Q_LOAD_NAME:
                    cell = store.get(arg)
                    if cell is None:
                        raise undefined(False, arg)
                    push(cell.value)
                elif qop == Q_SET_NAME:
                    if not al:
                        raise store_underflow(arg)
                    cell = store.get(arg)
                    v = pop()
                    if cell is None:
                        store[arg] = Cell(v)
                    elif type(cell.value) is CellRef and type(v) is not CellRef:
                        cell.value.cell.value = v
                    else:
                        cell.value = v
                elif qop == Q_LOAD_PATH:
                    in_reg, init, last, text = arg
                    cell = cells.find(reg if in_reg else store, init, last)
                    if cell is None:
                        raise undefined(in_reg, text)
                    push(cell.value)
                elif qop == Q_SET_PATH:
                    in_reg, init, last, text = arg
                    if not al:
                        raise store_underflow(text)
                    cells.write_value(cells.vivify(reg if in_reg else store, init, last), pop())
                elif qop == Q_LOAD_ROOT:
                    cell = cells.register_root(reg)
                    if cell is None:
                        raise undefined(True, "_")
                    push(cell.value)
                elif qop == Q_SET_ROOT:
                    if not al:
                        raise store_underflow("_")
                    cells.write_value(cells.vivify_register_root(reg), pop())
                elif qop == Q_REF:
                    in_reg, init, last, _ = arg
                    push(CellRef(cells.vivify(reg if in_reg else store, init, last)))
                elif qop == Q_SETREF:
                    in_reg, init, last, text = arg
                    if not al:
                        raise store_underflow(text + ".")
                    v = pop()
                    holder = reg if in_reg else store
                    if v is VOID:
                        cells.delete(holder, init, last)
                    else:
                        cells.replace(cells.vivify(holder, init, last), v)
                elif qop == Q_REF_ROOT:
                    push(CellRef(cells.vivify_register_root(reg)))
                elif qop == Q_SETREF_ROOT:
                    if not al:
                        raise store_underflow("_.")
                    v = pop()
                    if v is VOID:
                        reg.pop("_", None)
                    else:
                        cells.replace(cells.vivify_register_root(reg), v)
                else:  # pragma: no cover - quicken() emits nothing else
                    raise AssertionError("bad quickened op %r" % (qop,))
        except BaseException as exc:
            # Positioned (SomaError), converted (RecursionError) or located (a Python
            # exception from a Python-written builtin keeps its class), as the native
            # backend does with what the runtime reports.
            err = run_error(exc, pos, code.source, self.max_depth)
            if err is exc:
                raise
            raise err from None
