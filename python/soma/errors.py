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


class RuntimeError(SomaError):  # noqa: A001 - the name is part of the test format
    """An error raised while a program runs."""


class LimitError(RuntimeError):
    """A resource limit (memory, steps, time) or `vm.interrupt()` stopped the program."""


# The builtin, for code in this package that must name Python's own class.
PyRuntimeError = builtins.RuntimeError
