"""Decimal conversion of arbitrarily large ints.

CPython refuses str<->int conversions beyond `sys.get_int_max_str_digits()`
(4300 digits by default) as a denial-of-service guard. SOMA ints are arbitrary
precision, so the VM lifts the limit for its own conversions only, and only on
the rare slow path; host code keeps the process-wide setting.
"""

import sys

_get_limit = getattr(sys, "get_int_max_str_digits", None)
_set_limit = getattr(sys, "set_int_max_str_digits", None)


def _unlimited(convert, arg):
    if _set_limit is None:
        return convert(arg)
    old = _get_limit()
    _set_limit(0)
    try:
        return convert(arg)
    finally:
        _set_limit(old)


def int_to_str(n):
    try:
        return str(n)
    except ValueError:
        return _unlimited(str, n)


def str_to_int(text):
    """Python's `int(text)`, without the digit limit. Raises ValueError if not an int."""
    try:
        return int(text)
    except ValueError:
        if _set_limit is None or _get_limit() == 0:
            raise
        return _unlimited(int, text)
