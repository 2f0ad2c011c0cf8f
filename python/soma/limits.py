"""Resource limits shared by every tier: defaults, parsing, and the error messages.

A run (one outermost `execute_code`, `run_program` or `execute_value`) has a step budget
(`max_steps`: block executions, see docs/semantics.md "Limits") and a time limit
(`time_limit`, seconds); a VM has a memory limit (`max_memory`, bytes) and a depth limit
(`max_depth`). Exceeding one, or `vm.interrupt()`, raises `soma.LimitError` (a
`soma.RuntimeError`) with the position of the statement that was running.

The default memory limit is derived from the machine exactly as the native runtime derives
it (crates/runtime/src/limits.rs): a quarter of physical memory, at most 512 MiB.
`SOMA_MAX_MEMORY` (bytes, or with a K, M or G suffix) overrides it.
"""

import ctypes
import ctypes.util
import os

from .errors import LimitError

# Block executions between two polls (the native runtime's POLL_INTERVAL).
POLL_INTERVAL = 1 << 12

DEFAULT_MEMORY_CAP = 512 << 20

_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def default_max_memory():
    """A quarter of physical memory, at most DEFAULT_MEMORY_CAP (the cap when unknown)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return DEFAULT_MEMORY_CAP
    if total <= 0:
        return DEFAULT_MEMORY_CAP
    return min(total // 4, DEFAULT_MEMORY_CAP)


def parse_size(text):
    """Bytes from `text`: digits with an optional K, M or G suffix (binary multiples)."""
    raw = str(text).strip().upper().rstrip("B")
    suffix = raw[-1:] if raw[-1:] in ("K", "M", "G") else ""
    digits = raw[:len(raw) - len(suffix)]
    if not digits.isdigit() or int(digits) <= 0:
        raise ValueError("a memory size must be a positive number of bytes "
                         "(optionally with K, M or G), got %r" % (text,))
    return int(digits) * _SUFFIXES[suffix]


def configured_max_memory(value=None):
    """The memory limit to use: `value` if given, else SOMA_MAX_MEMORY, else the default."""
    if value is None:
        env = os.environ.get("SOMA_MAX_MEMORY", "").strip()
        return parse_size(env) if env else default_max_memory()
    if isinstance(value, str):
        return parse_size(value)
    value = int(value)
    if value <= 0:
        raise ValueError("max_memory must be a positive number of bytes, got %r" % (value,))
    return value


def check_max_steps(value):
    if value is not None and (int(value) != value or value < 0):
        raise ValueError("max_steps must be a count >= 0 or None, got %r" % (value,))
    return None if value is None else int(value)


def check_time_limit(value):
    if value is not None and not (value >= 0):
        raise ValueError("time_limit must be >= 0 seconds or None, got %r" % (value,))
    return None if value is None else float(value)


def give_back_memory():
    """Return the C allocator's free memory to the operating system (glibc keeps freed
    blocks of a few MiB in its heap), as the native runtime does after a memory error."""
    global _malloc_trim
    if _malloc_trim is None:
        _malloc_trim = False
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _malloc_trim = libc.malloc_trim
        except (OSError, AttributeError):
            pass
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim = None


# -- the messages (the native runtime's error.rs has the same texts) ---------------

def memory_limit_error(limit):
    return LimitError("Memory limit exceeded (limit %d bytes)" % limit)


def step_limit_error(limit):
    return LimitError("Step limit exceeded (limit %d block executions)" % limit)


def time_limit_error():
    return LimitError("Time limit exceeded")


def interrupted_error():
    return LimitError("Interrupted")


# Heap bytes the native runtime counts for a string's header (StrObj: header and length).
STR_HEADER_BYTES = 16


def str_bytes(*parts):
    """The native size of the concatenation of `parts` (a header plus UTF-8 bytes)."""
    n = 0
    for p in parts:
        n += len(p) if p.isascii() else len(p.encode("utf-8", "surrogatepass"))
    return STR_HEADER_BYTES + n
