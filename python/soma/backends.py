"""Which backend `soma.VM()` runs on.

A `VM` (vm.py) is the front end: the public API, the run limits, the I/O hooks and the
extensions. It delegates the state (AL, Store, Registers) and the execution to a backend
object, which offers `al`, `store`, `current_block`, `depth`, `max_depth`, `max_memory`,
`name`, `define`, `lookup`, `run_source`, `run_program`, `execute_value`, `call_block`,
`begin_budget`, `steps_taken`, `interrupt` and `jit_stats`:

    interpreter.Interpreter   the pure-Python backend (SOMA_JIT=0)
    native.NativeBackend      the Rust runtime, through the extension soma._native

`soma.VM()` builds a `native.NativeVM` (a VM whose backend is native) instead of a plain
`VM` when SOMA_JIT selects the native backend (`native.selected()`). vm.py sits below
native.py in the import graph (native.NativeVM subclasses VM), so native.py registers that
choice here when it is imported; the package's `__init__` imports it, so it is registered
before any VM is made.
"""

_native = None   # (selected, vm_class) registered by native.py


def register_native(selected, vm_class):
    """Record the native tier: `selected()` says whether SOMA_JIT picks it (or raises
    ImportError when it must but cannot), `vm_class` is the VM class to build then."""
    global _native
    _native = (selected, vm_class)


def selected_vm_class():
    """The VM class `soma.VM()` builds instead of itself, or None for the pure-Python VM."""
    if _native is None:
        return None
    selected, vm_class = _native
    return vm_class if selected() else None
