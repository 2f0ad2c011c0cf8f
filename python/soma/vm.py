"""The public VM: state, program execution, stdlib and extension loading."""

import importlib
import os
import re
import sys

from . import backends
from . import limits
from . import messages
from .builtins import CORE_BUILTINS, CORE_CONSTANTS
from .compiler import compile_source
from .errors import LimitError
from .errors import RuntimeError as SomaRuntimeError
from .sources import read_source
from .interpreter import DEFAULT_MAX_DEPTH, Interpreter
from .values import Builtin

STDLIB_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stdlib.soma")

# Python frames one SOMA block execution may need at most (the loop, plus a
# builtin such as `chain` and its call into the loop). The recursion limit is
# raised so that SOMA's own depth limit, not Python's, is what a program meets.
_FRAMES_PER_LEVEL = 3


def stdlib_choice(stdlib, load_stdlib):
    """The `stdlib` argument, with the reference's `load_stdlib=False` folded in."""
    return False if not load_stdlib else stdlib


class VM:
    """A SOMA virtual machine.

    stdlib     None: the bundled stdlib.soma; False: no stdlib; a path: that file.
    max_depth  how many block executions may nest before a RuntimeError.
    output     called with each line a program prints (default: sys.stdout).
    input      called to read a line, returning None at end of input (default: sys.stdin).
    max_steps  block executions each run may make (None: unlimited).
    time_limit seconds each run may take (None: unlimited).
    max_memory bytes the VM's values may take (None: SOMA_MAX_MEMORY, else the default of
               limits.py: a quarter of physical memory, at most 512 MiB).
    load_stdlib  False is the reference VM's spelling of stdlib=False.
    The four limits are also attributes; a run past one raises soma.LimitError (max_depth: the
    RuntimeError "recursion too deep"). See docs/semantics.md, "Limits".

    The VM is the front end: the public API, run limits, I/O hooks and extensions. The state
    and the execution are its backend's (`self._backend`): the pure-Python interpreter
    (interpreter.py) here, the Rust runtime in `native.NativeVM`, which `soma.VM()` builds
    instead when SOMA_JIT selects it (backends.py).
    """

    def __new__(cls, *args, **kwargs):
        if cls is VM:
            cls = backends.selected_vm_class() or VM
        return super().__new__(cls)

    def __init__(self, stdlib=None, max_depth=DEFAULT_MAX_DEPTH, output=None, input=None,
                 load_stdlib=True, max_steps=None, time_limit=None, max_memory=None):
        stdlib = stdlib_choice(stdlib, load_stdlib)
        self._output = output
        self._input = input
        self.loaded_extensions = set()
        self.max_steps = limits.check_max_steps(max_steps)
        self.time_limit = limits.check_time_limit(time_limit)
        self._runs = 0          # runs in progress (nested through builtins such as `load`)
        # A Python recursion limit high enough that SOMA's depth limit is the one a program
        # meets (Python-written builtins run on the Python stack with either backend).
        needed = max_depth * _FRAMES_PER_LEVEL + 1000
        if sys.getrecursionlimit() < needed:
            sys.setrecursionlimit(needed)
        self._backend = self._make_backend(max_depth, limits.configured_max_memory(max_memory))
        if stdlib is None:
            stdlib = STDLIB_PATH
        self._stdlib_loaded = bool(stdlib)
        if stdlib:
            self.execute_file(stdlib)

    def _load_stdlib(self):
        """Load the bundled stdlib into a VM made without one; a no-op once a stdlib is
        loaded (the reference VM's method of this name, which its users call)."""
        if not self._stdlib_loaded:
            self._stdlib_loaded = True
            self.execute_file(STDLIB_PATH)

    def _make_backend(self, max_depth, max_memory):
        """The pure-Python backend, with the core builtins and constants in its Store."""
        backend = Interpreter(self, max_depth, max_memory)
        for path, fn in CORE_BUILTINS.items():
            backend.define(path, Builtin(path, fn))
        for name, value in CORE_CONSTANTS.items():
            backend.define(name, value)
        # Builtins such as `chain` call this once per iteration: no front-end frame.
        self.call_block = backend.call_block
        return backend

    # -- the backend's state --------------------------------------------------
    # `al` (the AL, bottom first, a Python list) and `current_block` (the Block running
    # innermost, None at top level) are plain attributes with the pure-Python backend, which
    # works on them in place (see interpreter.Interpreter); NativeVM makes them properties.

    @property
    def store(self):
        """The Store, with the path API (`vm.store.read_value(["a", "b"])`)."""
        return self._backend.store

    @property
    def depth(self):
        """How many block executions are nested right now."""
        return self._backend.depth

    @property
    def max_depth(self):
        return self._backend.max_depth

    @max_depth.setter
    def max_depth(self, depth):
        self._backend.max_depth = depth

    @property
    def max_memory(self):
        """The memory limit in bytes (set it to bytes or a size such as "64M")."""
        return self._backend.max_memory

    @max_memory.setter
    def max_memory(self, nbytes):
        self._backend.max_memory = limits.configured_max_memory(nbytes)

    @property
    def backend(self):
        """"python", "native" or "native+jit"."""
        return self._backend.name

    def steps_taken(self):
        """Steps (block executions) taken by the current or last run."""
        return self._backend.steps_taken()

    def interrupt(self):
        """Stop the run in progress at its next poll point (or the next run, if none is).
        Safe to call from another thread."""
        self._backend.interrupt()

    def jit_stats(self):
        """The JIT's statistics (a dict, see native.py), or None when no JIT is running."""
        return self._backend.jit_stats()

    # -- running code -------------------------------------------------------

    def compile(self, source_text, source_name=""):
        return compile_source(source_text, source_name)

    def execute_code(self, source_text, source_name="", max_steps=None, time_limit=None):
        """Compile and run SOMA source on this VM. Raises a SomaError subclass on error.

        max_steps, time_limit: this run's limits (None: the VM's attributes of those names).
        A run started inside another one (a builtin running code) shares the outer budget.
        """
        self._begin_run(max_steps, time_limit)
        try:
            self._backend.run_source(source_text, source_name)
        except LimitError as err:
            if self._runs == 1 and err.message.startswith("Memory"):
                limits.give_back_memory()
            raise
        finally:
            self._runs -= 1

    def run_program(self, code):
        """Run a compiled top-level Code (with the VM's run limits when not nested)."""
        self._begin_run(None, None)
        try:
            self._backend.run_program(code)
        finally:
            self._runs -= 1

    def execute_value(self, value):
        """Execute a Block or builtin as `>` does (with the VM's run limits when not nested)."""
        self._begin_run(None, None)
        try:
            self._backend.execute_value(value)
        finally:
            self._runs -= 1

    def call_block(self, block):
        """Run a Block with a fresh Register, as `>block` does. (The pure-Python backend
        binds its own method over this one.)"""
        self.execute_value(block)

    def _begin_run(self, max_steps, time_limit):
        """Count a run in; the outermost one starts the step budget and time limit."""
        if self._runs == 0:
            steps = limits.check_max_steps(self.max_steps if max_steps is None else max_steps)
            seconds = limits.check_time_limit(self.time_limit if time_limit is None
                                              else time_limit)
            self._backend.begin_budget(steps, seconds)
        self._runs += 1

    def execute_file(self, path):
        self.execute_code(read_source(path), path)

    # -- I/O (the builtins print and read through these) --------------------

    def write_line(self, text):
        if self._output is not None:
            self._output(text)
        else:
            out = sys.stdout
            out.write(text)
            out.write("\n")

    def read_line(self):
        if self._input is not None:
            return self._input()
        line = sys.stdin.readline()
        if not line:
            return None
        return line[:-1] if line.endswith("\n") else line

    # -- Store access for Python code ---------------------------------------

    def _define(self, path, value):
        self._backend.define(path, value)

    def lookup(self, path):
        """The value at a Store path (dotted text), as a SOMA read would see it."""
        return self._backend.lookup(path)

    @property
    def register(self):
        """Path reads and writes on the top-level Register (`vm.register.read_value(["_",
        "x"])`), as the reference's extension API offers them."""
        return RegisterView(self)

    def register_extension_builtin(self, name, fn):
        """Install a Python-written builtin `fn(vm)` at a path under `use.`."""
        if not name.startswith("use.") or "" in name.split("."):
            raise ValueError("extension builtins live under 'use.*', got %r" % (name,))
        self._define(name, Builtin(name, fn))

    def load_extension(self, name):
        """Load extension `soma.extensions.<name>` once: its register(vm), then its setup code."""
        if name in self.loaded_extensions:
            return
        if not name or not all(part.isidentifier() for part in name.split(".")):
            # Not imported at all; named as Python's import would name the missing module
            # (the first dotted component: `../x` lacks `soma.extensions.`).
            raise messages.extension_not_found(name, "soma.extensions." + name.split(".")[0])
        module_name = "soma.extensions." + name
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                raise messages.extension_not_found(name, exc.name) from None
            raise
        register = getattr(module, "register", None)
        if register is None:
            raise SomaRuntimeError("Extension '%s' has no register(vm) hook" % name)
        register(self)
        # `get_soma_setup` is the reference's name for the hook, `soma_setup` ours.
        setup = getattr(module, "get_soma_setup", None) or getattr(module, "soma_setup", None)
        if setup is not None:
            text = setup()
            if text:
                self.execute_code(text, "<extension %s>" % name)
        self.loaded_extensions.add(name)


class RegisterView:
    """`vm.register`: the top-level Register, by path, for Python code.

    Each access runs the one-statement SOMA program `_.a.b` or `!_.a.b` on the VM, so
    every backend gives exactly the semantics of SOMA code (CellRef walks, errors).
    """

    __slots__ = ("_vm",)

    def __init__(self, vm):
        self._vm = vm

    def read_value(self, components):
        self._vm.execute_code(_register_path(components), "<vm.register>")
        return self._vm.al.pop()

    def write_value(self, components, value):
        self._vm.al.append(value)
        self._vm.execute_code("!" + _register_path(components), "<vm.register>")


_NAME = re.compile(r"[^\s(){}.!>][^\s(){}.]*\Z")


def _register_path(components):
    comps = list(components)
    if not comps or comps[0] != "_" or not all(
            type(c) is str and _NAME.match(c) and not c.startswith("_") for c in comps[1:]):
        raise ValueError("a Register path is ['_', name, ...], got %r" % (components,))
    return ".".join(comps)


def run_soma_program(source):
    """Run SOMA source on a fresh VM (with the stdlib); return its AL, bottom to top."""
    vm = VM()
    vm.execute_code(source)
    return vm.al


# The reference VM's module exposes these names; extensions written for it import them
# from `soma.vm`. Each singleton has its own type (`isinstance(v, VoidSingleton)`).
from .errors import RuntimeError  # noqa: E402,A001
from .values import (  # noqa: E402
    FALSE as False_, NIL as Nil, TRUE as True_, VOID as Void,
    Block, Builtin as BuiltinBlock, CellRef, FalseSingleton, NilSingleton, TrueSingleton,
    VoidSingleton)
