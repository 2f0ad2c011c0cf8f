"""SOMA: a stack language of cells, with a pure-Python tier and a native JIT tier.

    import soma
    vm = soma.VM()
    vm.execute_code("2 3 >+")
    vm.al            # [5]
"""

from .errors import LexError, LimitError, ParseError, RuntimeError, SomaError
from .values import FALSE, NIL, TRUE, VOID, Block, Builtin, CellRef
from .vm import VM
from . import native  # noqa: F401  (registers the native backend: backends.py)

__version__ = "0.1.0"

__all__ = [
    "VM", "SomaError", "LexError", "ParseError", "RuntimeError", "LimitError",
    "TRUE", "FALSE", "NIL", "VOID", "Block", "Builtin", "CellRef",
]
