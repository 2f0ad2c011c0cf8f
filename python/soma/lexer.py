"""The SOMA lexer: source text to tokens, each with its 1-based line and column.

Rules (SOMA v1.1): tokens are separated by whitespace (space, tab, CR, LF);
`{` and `}` always stand alone; `)` outside a string comments out the rest of
the line; `(` opens a string that ends at the next `)`, with `\\HEX\\` escapes;
`>` and `!` at the start of a token modify the token that follows, but alone
they are ordinary paths; everything else is an integer or a path.
"""

import re

from .bigint import str_to_int
from .errors import LexError

INT = "INT"
STR = "STR"
PATH = "PATH"
EXEC = "EXEC"      # the `>` modifier
STORE = "STORE"    # the `!` modifier
LBRACE = "LBRACE"
RBRACE = "RBRACE"
EOF = "EOF"


class Token:
    __slots__ = ("kind", "value", "line", "col")

    def __init__(self, kind, value, line, col):
        self.kind = kind
        self.value = value
        self.line = line
        self.col = col

    def __repr__(self):
        return "Token(%s, %r, %d:%d)" % (self.kind, self.value, self.line, self.col)

    def __eq__(self, other):
        return (isinstance(other, Token) and self.kind == other.kind
                and self.value == other.value and self.line == other.line
                and self.col == other.col)


_WHITESPACE = " \t\r\n"
_WORD = re.compile(r"[^ \t\r\n{}]+")
_DIGITS = re.compile(r"[0-9]+")
_HEX = frozenset("0123456789abcdefABCDEF")


def _is_digit(ch):
    return "0" <= ch <= "9"


class _Lexer:
    """One pass over the source. Columns count code points from 1.

    LF, CR and CRLF each end a line, inside strings and comments too.
    """

    def __init__(self, source):
        self.src = source
        self.n = len(source)
        self.i = 0
        self.line = 1
        self.line_start = 0
        self.tokens = []

    def col(self, i):
        return i - self.line_start + 1

    def newline_at(self, i):
        """Record that a new line starts at index i."""
        self.line += 1
        self.line_start = i

    def error(self, message, line, col):
        return LexError(message, line, col)

    def run(self):
        src, n = self.src, self.n
        emit = self.tokens.append
        while self.i < n:
            i = self.i
            ch = src[i]
            if ch in _WHITESPACE:
                if ch == "\n" or (ch == "\r" and not src.startswith("\n", i + 1)):
                    self.newline_at(i + 1)
                self.i = i + 1
                continue
            line, col = self.line, self.col(i)
            if ch == ")":
                self.skip_comment()
            elif ch == "(":
                emit(Token(STR, self.string(), line, col))
            elif ch == "{":
                emit(Token(LBRACE, "{", line, col))
                self.i = i + 1
            elif ch == "}":
                emit(Token(RBRACE, "}", line, col))
                self.i = i + 1
            elif ch == ">" or ch == "!":
                self.modifier(ch, line, col)
            elif _is_digit(ch) or (ch in "+-" and i + 1 < n and _is_digit(src[i + 1])):
                emit(Token(INT, self.integer(line, col), line, col))
            else:
                end = _WORD.match(src, i).end()
                emit(Token(PATH, src[i:end], line, col))
                self.i = end
        emit(Token(EOF, "", self.line, self.col(self.i)))
        return self.tokens

    def skip_comment(self):
        src, n = self.src, self.n
        j = self.i + 1
        while j < n and src[j] != "\n" and src[j] != "\r":
            j += 1
        if j < n:
            j += 2 if src.startswith("\r\n", j) else 1
            self.newline_at(j)
        self.i = j

    def modifier(self, ch, line, col):
        src, n, i = self.src, self.n, self.i
        nxt = src[i + 1] if i + 1 < n else None
        if nxt is None or nxt in _WHITESPACE or nxt == "}":
            # Alone, `>` and `!` are plain paths (the stdlib defines `>` as greater-than).
            self.tokens.append(Token(PATH, ch, line, col))
            self.i = i + 1
            return
        if nxt == "(":
            raise self.error("Modifier '%s' cannot target a string literal" % ch, line, col)
        if ch == "!" and nxt == "{":
            raise self.error("Modifier '!' cannot target a block", line, col)
        after = src[i + 2] if i + 2 < n else None
        if _is_digit(nxt) or (nxt in "+-" and after is not None and _is_digit(after)):
            raise self.error("Modifier '%s' cannot target a number" % ch, line, col)
        if nxt in "!>" and after is not None and after not in _WHITESPACE and after not in "{}":
            # `>!` and `!>` are fine (the target is the one-character path);
            # `>!x` would stack two modifiers.
            raise self.error("Modifier '%s' cannot target another modifier" % ch, line, col)
        self.tokens.append(Token(EXEC if ch == ">" else STORE, ch, line, col))
        self.i = i + 1

    def integer(self, line, col):
        src, n, i = self.src, self.n, self.i
        start = i
        if src[i] in "+-":
            i += 1
        i = _DIGITS.match(src, i).end()
        if i < n and src[i] not in _WHITESPACE and src[i] not in "{}":
            end = _WORD.match(src, i).end() if _WORD.match(src, i) else i + 1
            raise self.error("Invalid number '%s'" % src[start:end], line, col)
        self.i = i
        return str_to_int(src[start:i])

    def string(self):
        """Lex `( ... )` starting at self.i; return the decoded text."""
        src, n = self.src, self.n
        start_line, start_col = self.line, self.col(self.i)
        parts = []
        i = self.i + 1
        run_start = i
        while i < n:
            ch = src[i]
            if ch == ")":
                parts.append(src[run_start:i])
                self.i = i + 1
                return "".join(parts)
            if ch == "\n" or (ch == "\r" and not src.startswith("\n", i + 1)):
                self.newline_at(i + 1)
                i += 1
            elif ch == "\\":
                parts.append(src[run_start:i])
                esc_line, esc_col = self.line, self.col(i)
                close = src.find("\\", i + 1)
                if close < 0:
                    raise self.error("Unterminated escape in string", esc_line, esc_col)
                digits = src[i + 1:close]
                parts.append(self._code_point(digits, esc_line, esc_col))
                # An escape may not span lines; if it does it is not hex anyway.
                i = close + 1
                run_start = i
            else:
                i += 1
        raise self.error("Unterminated string", start_line, start_col)

    def _code_point(self, digits, line, col):
        if not digits:
            raise self.error("Empty escape in string", line, col)
        if not all(c in _HEX for c in digits):
            raise self.error("Escape must be hexadecimal digits, got '\\%s\\'"
                             % digits[:20], line, col)
        value = int(digits, 16)
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise self.error("Escape '\\%s\\' is not a Unicode code point" % digits[:20],
                             line, col)
        return chr(value)


def lex(source):
    """Return the tokens of `source`, ending with an EOF token. Raises LexError."""
    return _Lexer(source).run()
