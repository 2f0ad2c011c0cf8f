"""The native-state backend: AL, Store, Registers and cells live in the Rust runtime.

`NativeBackend` is the backend object a `VM` front end delegates to (see backends.py);
`NativeVM` is the VM built with it. `soma.VM(...)` returns a `NativeVM` when the backend is
selected (see `selected()`, registered with backends.py and read by `VM.__new__`):

    SOMA_JIT=0 / off    the pure-Python interpreter (interpreter.py)
    SOMA_JIT=1          this backend; an ImportError if `soma._native` is not built
    unset               this backend if `soma._native` imports, else pure Python
    SOMA_JIT_THRESHOLD  N: JIT tier-up after N interpreted runs of a block (0: before the
                        first); off: native state, never compile; unset: the JIT's default

Crossings are per program run, not per operation: `execute_code` compiles the source in
Python (lexer, parser, compiler are shared with the pure-Python tier), serializes the Code
with `soma.code.encode_module`, and hands the whole module to `Machine.run`, which returns
only when the program finishes or fails. During a run the runtime calls back into Python
only for Python-written builtins (`use`, extension builtins such as `use.python.call`),
for print / readLine (through `write_line` / `read_line`, so output hooks and a redirected
`sys.stdout` work), and to `repr` a foreign object.

Python code (extension builtins, tests) sees `vm.al` as a real list kept in step with the
native AL at every crossing (see `NativeVM.al`), and ordinary SOMA values: int, str, the `soma` singletons, `NativeBlock` (a
`soma.Block`, one object per native block), `NativeCellRef` (a `soma.CellRef` pinning its
cell), `soma.Builtin`, and any other Python object as itself (a Foreign value natively).
There is no second copy of SOMA semantics here: every operation runs in the runtime.
"""

import collections
import importlib
import os
import threading
import weakref
import operator
import re

from .builtins import b_use
from .cells import components_of
from .code import all_codes, encode_module
from .backends import register_native
from .compiler import compile_source
from .errors import LexError, LimitError, ParseError, run_error
from .errors import RuntimeError as SomaRuntimeError
from . import messages
from .interpreter import DEFAULT_MAX_DEPTH
from .values import FALSE, NIL, TRUE, VOID, Block, Builtin, CellRef
from .vm import VM

try:
    # By its full name: `from . import _native` while the package is still initialising
    # (soma/__init__ imports this module) would blame a "circular import" when it is missing.
    _native = importlib.import_module(__package__ + "._native")
except ImportError as exc:  # not built: only the pure-Python tier is available
    _native = None
    _IMPORT_ERROR = exc
else:
    _IMPORT_ERROR = None

BUILD_HINT = ("the native backend (SOMA_JIT=1) needs the extension soma._native: "
              "build it with `pip install -e .` or `./scripts/setup.sh`")

_OFF = ("0", "off", "python", "false", "no")


def available():
    return _native is not None


def selected():
    """Whether `soma.VM()` should be native, from SOMA_JIT (see the module docstring)."""
    raw = os.environ.get("SOMA_JIT", "").strip().lower()
    if raw in _OFF:
        return False
    if raw == "":
        return _native is not None
    if _native is None:
        raise ImportError("%s (import failed: %s)" % (BUILD_HINT, _IMPORT_ERROR))
    return True


def _jit_setting(setting=None):
    """(install the JIT?, threshold or None for the JIT's default) from `setting` (a count,
    "off", or None to read SOMA_JIT_THRESHOLD)."""
    if setting is None:
        setting = os.environ.get("SOMA_JIT_THRESHOLD", "")
    raw = str(setting).strip().lower()
    if raw == "":
        return True, None
    if raw == "off":
        return False, None
    try:
        n = int(raw)
    except ValueError:
        n = -1
    if n < 0:
        raise ValueError("SOMA_JIT_THRESHOLD must be a count >= 0 or 'off', got %r"
                         % (setting,))
    return True, n


# -- values ------------------------------------------------------------------

class NativeBlock(Block):
    """A native Block: one Python object per block literal of the native VM."""

    __slots__ = ("_bits", "_form")

    def __init__(self, bits, form):
        self.code = None
        self._bits = bits
        self._form = form   # how `print` shows it, rendered by the runtime

    def __repr__(self):
        return "<Block native>"

    def print_form(self):
        return self._form


class NativeCellRef(CellRef):
    """A reference to a native cell. Keeps the cell alive (a runtime pin) while it lives."""

    __slots__ = ("_h", "_bits", "_m")

    def __init__(self, machine, handle, bits):
        self.cell = None
        self._m = machine
        self._h = handle
        self._bits = bits

    def __eq__(self, other):
        return (isinstance(other, NativeCellRef) and other._bits == self._bits
                and other._m is self._m)

    def __hash__(self):
        return hash(self._bits)

    def __repr__(self):
        return "CellRef(<native cell %#x>)" % (self._bits & 0xFFFFFFFFFFFF)

    def __del__(self):
        try:
            self._m.unpin(self._h)
        except BaseException:
            # Another thread dropped the last reference (the Machine is single-threaded and
            # refuses other threads; e.g. a cycle collected on a thread that interrupts a
            # VM), or the interpreter is shutting down: the owner releases it later.
            try:
                _ORPHAN_PINS.append((weakref.ref(self._m), self._h))
            except BaseException:
                pass


# Pins of NativeCellRefs that died on a thread other than their Machine's: (machine weakref,
# handle), released by that machine's VM at its next run (deque appends are thread-safe).
_ORPHAN_PINS = collections.deque()


def _release_orphan_pins(machine):
    for _ in range(len(_ORPHAN_PINS)):
        ref, handle = _ORPHAN_PINS.popleft()
        owner = ref()
        if owner is machine:
            machine.unpin(handle)
        elif owner is not None:
            _ORPHAN_PINS.append((ref, handle))


# Machines whose VM died on a thread other than the one that made them: (owner thread ident,
# machine). A Machine is single-threaded (an `unsendable` pyclass): freed on another thread,
# PyO3 would report an error and leak it. So the backend's finalizer keeps it here instead,
# and its own thread frees it at its next VM work (making a VM, or running one).
_ORPHAN_MACHINES = collections.deque()


def _release_orphan_machines():
    me = threading.get_ident()
    for _ in range(len(_ORPHAN_MACHINES)):
        owner, machine = _ORPHAN_MACHINES.popleft()
        if owner != me:
            _ORPHAN_MACHINES.append((owner, machine))
        # Else the last reference is `machine`, dropped here, on the Machine's own thread.


# soma.values.type_name falls back to the class name for types it does not know by
# identity: these must read as the SOMA type names (messages, debug.type, test AL rendering).
NativeBlock.__name__ = NativeBlock.__qualname__ = "Block"
NativeCellRef.__name__ = NativeCellRef.__qualname__ = "CellRef"


class _Factory:
    """Builds the Python objects for native Blocks, builtins and CellRefs.

    Holds the Machine weakly, so Machine -> factory -> Machine is no uncollectable cycle.
    """

    def __init__(self):
        self.machine = None

    def block(self, bits, form):
        return NativeBlock(bits, form)

    def cellref(self, handle, bits):
        return NativeCellRef(self.machine(), handle, bits)

    def builtin(self, name, bits):
        builtin = Builtin(name, None)

        def run_native(vm):
            vm.execute_value(builtin)
        builtin.fn = run_native
        return builtin


def _same(items, snapshot):
    """True when the list still holds exactly the objects of the snapshot."""
    return len(items) == len(snapshot) and all(map(operator.is_, items, snapshot))


# -- the VM ------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")

_ERROR_CLASSES = {1: LexError, 2: ParseError, 3: SomaRuntimeError, 4: LimitError}

# Serialized modules by (source text, source name): a source is compiled once per process,
# not once per VM or per run, as a Python module is compiled once, not at every call (the
# stdlib for every VM, a test file's helpers, a program a benchmark or a server runs again).
# Compiling is a function of the text and the name, and the module is plain bytes, so a
# cached module is exactly what compiling again would give. Sources that fail to compile
# are not kept (the error is raised again, from a fresh compile). Bounded by entries and
# by bytes; the oldest entry goes first.
_MODULE_CACHE = {}
_MODULE_CACHE_LIMIT = 64
_MODULE_CACHE_MAX_BYTES = 16 << 20
_module_cache_bytes = 0


def _cache_module(key, data):
    """Keep `data`, the module compiled from `key`, making room first."""
    global _module_cache_bytes
    size = len(data) + len(key[0])
    if size > _MODULE_CACHE_MAX_BYTES // 4:
        return
    while _MODULE_CACHE and (len(_MODULE_CACHE) >= _MODULE_CACHE_LIMIT
                             or _module_cache_bytes + size > _MODULE_CACHE_MAX_BYTES):
        old_key = next(iter(_MODULE_CACHE))
        _module_cache_bytes -= len(_MODULE_CACHE.pop(old_key)) + len(old_key[0])
    _MODULE_CACHE[key] = data
    _module_cache_bytes += size


class NativeBackend:
    """The native backend of a `VM` front end (see backends.py): a `_native.Machine` holding
    the AL, the Store, the Registers and the JIT. `host` is the front end; Python-written
    builtins get it (`fn(host)`, through `_host`)."""

    def __init__(self, host, max_depth, max_memory, jit_threshold=None, jit_background=None,
                 jit_opt_threshold=None, jit_unroll=None, jit_leaf=None):
        if _native is None:
            raise ImportError(BUILD_HINT)
        if _ORPHAN_MACHINES:
            _release_orphan_machines()
        self._owner = threading.get_ident()
        # The front end holds this backend; holding the front end only weakly keeps the two
        # out of a reference cycle, so a VM (and its native heap, megabytes of cells) is
        # freed when its last reference goes, not at the cyclic collector's next pass: a
        # process making VM after VM (`soma test`, a benchmark's repeats) reused none of the
        # memory before and took every page of each new heap as a fresh page fault.
        self._host_ref = weakref.ref(host)
        jit, threshold = _jit_setting(jit_threshold)
        factory = _Factory()
        self._m = _native.Machine(jit, threshold, max_depth, (TRUE, FALSE, NIL, VOID),
                                  factory.block, factory.cellref, factory.builtin,
                                  NativeBlock, NativeCellRef, Builtin,
                                  None if jit_background is None else str(jit_background),
                                  None if jit_opt_threshold is None else str(jit_opt_threshold),
                                  None if jit_unroll is None else str(jit_unroll),
                                  None if jit_leaf is None else bool(jit_leaf))
        factory.machine = weakref.ref(self._m)
        self._m.max_memory = max_memory
        self._interrupter = self._m.interrupter()
        self._pyal = None
        self._snap = ()
        self._programs = weakref.WeakKeyDictionary()   # Code -> [module id, children, counts]
        # `use` loads Python extensions: a host builtin around the pure-Python word.
        self._m.store_write("use", Builtin("use", b_use))

    # -- state ----------------------------------------------------------------

    # The AL. While native code runs, the native AL is the truth. Python code (a test, a
    # Python-written builtin) gets `vm.al` as a real list, materialised on first access and
    # then kept in step at every crossing: refreshed from the native AL when control comes
    # to Python (end of a run, entry of a host builtin), written back when control goes to
    # native code (start of a run, return of a host builtin) if Python changed it. Programs
    # that never touch `vm.al` from Python pay nothing.

    @property
    def al(self):
        items = self._pyal
        if items is None:
            items = self._pyal = self._m.al_list()
            self._snap = items[:]
        return items

    @al.setter
    def al(self, values):
        # Written through at once (comparing against a snapshot cannot see `vm.al = []`
        # replace a native AL the Python side never materialised).
        self._pyal = values
        self._m.al_clear()
        self._m.al_extend(values)
        self._snap = values[:]

    def _to_python(self):
        items = self._pyal
        if items is not None:
            fresh = self._m.al_list()
            items[:] = fresh
            self._snap = fresh

    def __del__(self):
        # The last reference went on another thread (a `threading.Timer` calling
        # `vm.interrupt` may hold it): leave the Machine to its own thread.
        m, owner = self.__dict__.get("_m"), self.__dict__.get("_owner")
        if m is not None and threading.get_ident() != owner:
            _ORPHAN_MACHINES.append((owner, m))

    def _to_native(self):
        if _ORPHAN_PINS:
            _release_orphan_pins(self._m)
        if _ORPHAN_MACHINES:
            _release_orphan_machines()
        items = self._pyal
        if items is not None and not _same(items, self._snap):
            m = self._m
            m.al_clear()
            m.al_extend(items)
            self._snap = items[:]

    @property
    def host(self):
        """The `VM` front end this backend serves."""
        return self._host_ref()

    # The machine calls these on the object a run is handed (`Machine.run(self, ...)`).
    def write_line(self, text):
        self._host_ref().write_line(text)

    def read_line(self):
        return self._host_ref().read_line()

    def _host(self, fn):
        """Run a Python-written builtin `fn(vm)` for the runtime (host builtin callback)."""
        self._to_python()
        try:
            fn(self.host)
        finally:
            self._to_native()

    @property
    def store(self):
        """Path reads and writes on the native Store (`vm.store.read_value(["a", "b"])`)."""
        return NativeStore(self._m)

    @property
    def current_block(self):
        return self._m.current_block()

    @property
    def depth(self):
        return self._m.depth()

    @property
    def max_depth(self):
        return self._m.max_depth

    @max_depth.setter
    def max_depth(self, depth):
        self._m.max_depth = depth

    @property
    def max_memory(self):
        return self._m.max_memory

    @max_memory.setter
    def max_memory(self, nbytes):
        self._m.max_memory = nbytes

    @property
    def name(self):
        return "native+jit" if self._m.jit_enabled() else "native"

    def begin_budget(self, max_steps, time_limit):
        self._m.begin_budget(max_steps, time_limit)

    def steps_taken(self):
        return self._m.steps_taken()

    def interrupt(self):
        self._interrupter.interrupt()

    def jit_stats(self):
        return self._m.jit_stats()

    def define(self, path, value):
        self._m.store_write(path, value)

    def lookup(self, path):
        try:
            return self._m.lookup(path)
        except KeyError:
            raise messages.undefined_store(path) from None

    # -- running code ---------------------------------------------------------

    def run_source(self, source_text, source_name):
        key = (source_text, source_name)
        data = _MODULE_CACHE.get(key)
        if data is None:
            if _SURROGATE.search(source_text):
                # Native strings are UTF-8: a lone surrogate (text decoded with
                # surrogateescape) becomes U+FFFD, one character for one, so positions hold.
                source_text = _SURROGATE.sub("\ufffd", source_text)
            code = compile_source(source_text, source_name)
            data = encode_module(code)
            _cache_module(key, data)
        self._to_native()
        try:
            info = self._m.run(self, data)
        finally:
            self._to_python()
        if info is not None:
            self._raise(info, source_name)

    def run_program(self, code):
        """Run a compiled top-level Code (one crossing for the whole module).

        A Code is serialized and loaded once per VM; running it again reuses the loaded
        module, so its Blocks keep their identity and counts carry on, as in the pure-Python
        tier. Afterwards the Codes' `count` fields show the native execution counts.
        """
        code.count += 1
        entry = self._programs.get(code)
        if entry is None:
            try:
                mid = self._m.load(encode_module(code))
            except ValueError as exc:
                raise SomaRuntimeError(str(exc)) from None
            children = all_codes(code)[1:]
            entry = self._programs[code] = [mid, children, [0] * len(children)]
        mid, children, seen = entry
        self._to_native()
        try:
            info = self._m.run_loaded(self, mid)
        finally:
            self._to_python()
            counts = self._m.exec_counts(mid)[1:]
            for i, (c, n) in enumerate(zip(children, counts)):
                c.count += n - seen[i]
                seen[i] = n
        if info is not None:
            self._raise(info, code.source)

    def execute_value(self, value):
        """Execute a Block or builtin as `>` does; anything else is an error."""
        self._to_native()
        try:
            info = self._m.exec_value(self, value)
        finally:
            self._to_python()
        if info is not None:
            self._raise(info, None)

    def _raise(self, info, source):
        """Raise what the runtime reported: its own error (class, message, position) or the
        exception a Python-written builtin raised, converted as the pure-Python backend
        converts it (`errors.run_error`)."""
        cls, message, line, col, exc, where = info
        if where is not None:
            # The module whose instruction failed (a stdlib word's body, a loaded file).
            source = where
        if exc is None:
            exc = _ERROR_CLASSES.get(cls, SomaRuntimeError)(message)
            if cls == 4 and message.startswith("Memory"):
                # Give the garbage of the failed run back now (a check that could not
                # collect may have raised it), and the freed memory to the operating system.
                self._m.give_back_memory()
        err = run_error(exc, (line, col) if line else None, source, self._m.max_depth)
        if err is exc:
            raise err
        raise err from None


class NativeVM(VM):
    """`soma.VM` with its state in the Rust runtime (see the module docstring).

    jit_threshold   a count, "off", or None to read SOMA_JIT_THRESHOLD (the default).
    jit_background  "1", "0" or "lockstep" (docs/jit.md), or None to read SOMA_JIT_BACKGROUND.
    jit_opt_threshold  executions before the optimizing tier recompiles a compiled block (a
                    count, "off"), or None to read SOMA_JIT_OPT_THRESHOLD.
    jit_unroll      polls of a recursion's compiled code before it is compiled again with the
                    recursion unrolled (a count, "off"), or None to read SOMA_JIT_UNROLL.
    jit_leaf        leaf copies of direct recursion (True, False), or None to read
                    SOMA_JIT_LEAF (docs/jit.md, "Leaf copies").
    """

    def __init__(self, stdlib=None, max_depth=DEFAULT_MAX_DEPTH, output=None, input=None,
                 load_stdlib=True, max_steps=None, time_limit=None, max_memory=None,
                 jit_threshold=None, jit_background=None, jit_opt_threshold=None,
                 jit_unroll=None, jit_leaf=None):
        self._jit = (jit_threshold, jit_background, jit_opt_threshold, jit_unroll, jit_leaf)
        super().__init__(stdlib, max_depth, output, input, load_stdlib, max_steps, time_limit,
                         max_memory)

    def _make_backend(self, max_depth, max_memory):
        return NativeBackend(self, max_depth, max_memory, *self._jit)

    @property
    def al(self):
        """The AL, bottom first, as a Python list (kept in step with the native AL)."""
        return self._backend.al

    @al.setter
    def al(self, values):
        self._backend.al = values

    @property
    def current_block(self):
        """The Block running innermost (None at top level)."""
        return self._backend.current_block

    @property
    def _m(self):
        """The `_native.Machine` (tests and benches reach it for collections and pins)."""
        return self._backend._m


register_native(selected, NativeVM)


class NativeStore:
    """`vm.store` of a NativeVM: the reference's path API over the runtime's Store."""

    __slots__ = ("_m",)

    def __init__(self, machine):
        self._m = machine

    def read_value(self, components):
        path = ".".join(components_of(components))
        try:
            return self._m.lookup(path)
        except KeyError:
            raise messages.undefined_store(path) from None

    def write_value(self, components, value):
        self._m.store_write(".".join(components_of(components)), value)
