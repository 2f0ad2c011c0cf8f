"""The SOMA error hierarchy.

Every error a SOMA program can cause is a `SomaError`. The three concrete
classes are named as the `.soma` test format expects (`EXPECT_ERROR: LexError`).
Each carries the 1-based line and column of the offending token or statement,
and optionally the name of the source file.
"""

import builtins


class SomaError(Exception):
    """Base class of every SOMA error."""

    def __init__(self, message, line=None, col=None, source=None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col
        self.source = source

    def at(self, line, col):
        """Attach a position unless one is already known; return self."""
        if self.line is None:
            self.line = line
            self.col = col
        return self

    def __str__(self):
        if self.line is None:
            return self.message
        return "%d:%d: %s" % (self.line, self.col, self.message)

    def describe(self):
        """The CLI form: `FILE:LINE:COL: Class: message`."""
        where = self.source or "<input>"
        if self.line is not None:
            where = "%s:%d:%d" % (where, self.line, self.col)
        return "%s: %s: %s" % (where, type(self).__name__, self.message)


class LexError(SomaError):
    """Malformed token: bad number, unterminated string, bad escape, misplaced modifier."""


class ParseError(SomaError):
    """Well-formed tokens in an invalid arrangement: unbalanced braces, bad paths."""


class RuntimeError(SomaError, builtins.RuntimeError):  # noqa: A001 - test-format name
    """An error raised while a program runs.

    Also a Python `RuntimeError`, so code written for the reference VM that catches
    `RuntimeError` around a run (its extensions' callers and tests do) catches it."""


def locate(exc, pos, source):
    """Record where a Python exception from a Python-written builtin was raised.

    Such an exception keeps its class (extension code and its callers rely on it:
    `TypeError`, `ValueError`, ...); the SOMA position goes on as attributes
    `soma_line`, `soma_col`, `soma_source`, innermost statement first, and the CLI
    prints it like a SomaError's (see `describe`). Returns `exc`.
    """
    if getattr(exc, "soma_line", None) is None and pos is not None:
        try:
            exc.soma_line, exc.soma_col = pos
            exc.soma_source = source or None
        except (AttributeError, TypeError):  # an exception type without a __dict__
            pass
    return exc


def describe(exc):
    """`FILE:LINE:COL: Class: message` for a SomaError or a located Python exception."""
    if isinstance(exc, SomaError):
        return exc.describe()
    where = getattr(exc, "soma_source", None) or "<input>"
    line = getattr(exc, "soma_line", None)
    if line is not None:
        where = "%s:%d:%d" % (where, line, exc.soma_col)
    return "%s: %s: %s" % (where, type(exc).__name__, exc)


class LimitError(RuntimeError):
    """A resource limit (memory, steps, time) or `vm.interrupt()` stopped the program."""


def recursion_error(max_depth):
    """The error of a block execution nested deeper than `max_depth` (either backend)."""
    return RuntimeError("recursion too deep (limit %d nested block executions)" % max_depth)


def run_error(exc, pos, source, max_depth):
    """What a run raises for `exc`, which stopped the statement at `pos` ((line, col), or None)
    of `source`: the one conversion both backends apply (the pure-Python interpreter to what
    its loop catches, the native backend to what the runtime reports).

    A SomaError gets the position and source unless an inner statement gave them; Python's
    RecursionError is SOMA's recursion error; any other Exception from a Python-written
    builtin keeps its class and gets the position as attributes (`locate`); anything else
    (KeyboardInterrupt, ...) passes unchanged. Returns the exception to raise (`exc` itself
    unless it was a RecursionError).
    """
    if isinstance(exc, RecursionError):
        exc = recursion_error(max_depth)
    if isinstance(exc, SomaError):
        if pos is not None:
            exc.at(*pos)
        if exc.source is None:
            exc.source = source or None
    elif isinstance(exc, Exception):
        locate(exc, pos, source)
    return exc


# The builtin, for code in this package that must name Python's own class.
PyRuntimeError = builtins.RuntimeError
