"""The SOMA parser: tokens to a syntax tree.

The parser is iterative (an explicit stack of open blocks), so nesting depth is
bounded by memory, not by Python's recursion limit.
"""

from . import lexer as L
from .ast import BlockLit, Exec, IntLit, Path, Program, Store, StrLit
from .errors import ParseError


def parse_path(token):
    """Split a PATH token into a Path node, checking the component rules."""
    text = token.value
    is_ref = text.endswith(".")
    body = text[:-1] if is_ref else text
    components = body.split(".")
    if "" in components:
        raise ParseError("Empty path component in '%s'" % text, token.line, token.col)
    if len(components) == 1 and components[0].startswith("_") and components[0] != "_":
        raise ParseError(
            "Invalid Register path '%s': write '_.%s' for a Register cell"
            % (text, components[0][1:]), token.line, token.col)
    return Path(components, is_ref, token.line, token.col)


def _adjacent(modifier, target):
    """A modifier applies to the token right after it. The lexer emits one only when a
    character follows; when that character opens a comment (`>) ...`), the next token
    is elsewhere and the modifier has no target."""
    return target.line == modifier.line and target.col == modifier.col + 1


def parse_tokens(tokens):
    """Parse a token list (ending with EOF) into a Program."""
    top = []
    body = top
    # Each open block: (its statement list, its `{` token, the `>` token if it is `>{`).
    open_blocks = []
    i = 0
    while True:
        tok = tokens[i]
        kind = tok.kind
        i += 1
        if kind == L.INT:
            body.append(IntLit(tok.value, tok.line, tok.col))
        elif kind == L.STR:
            body.append(StrLit(tok.value, tok.line, tok.col))
        elif kind == L.PATH:
            body.append(parse_path(tok))
        elif kind == L.LBRACE:
            open_blocks.append((body, tok, None))
            body = []
        elif kind == L.RBRACE:
            if not open_blocks:
                raise ParseError("Unexpected '}' without matching '{'", tok.line, tok.col)
            outer, lbrace, exec_tok = open_blocks.pop()
            block = BlockLit(body, lbrace.line, lbrace.col)
            body = outer
            if exec_tok is None:
                body.append(block)
            else:
                body.append(Exec(block, exec_tok.line, exec_tok.col))
        elif kind == L.EXEC:
            target = tokens[i]
            if not _adjacent(tok, target):
                raise ParseError("Expected a path or a block after '>'",
                                 target.line, target.col)
            if target.kind == L.LBRACE:
                open_blocks.append((body, target, tok))
                body = []
                i += 1
            elif target.kind == L.PATH:
                path = parse_path(target)
                if path.is_ref:
                    raise ParseError("Cannot execute a reference path '%s'" % target.value,
                                     target.line, target.col)
                body.append(Exec(path, tok.line, tok.col))
                i += 1
            else:
                raise ParseError("Expected a path or a block after '>'",
                                 target.line, target.col)
        elif kind == L.STORE:
            target = tokens[i]
            if target.kind != L.PATH or not _adjacent(tok, target):
                raise ParseError("Expected a path after '!'", target.line, target.col)
            body.append(Store(parse_path(target), tok.line, tok.col))
            i += 1
        else:  # EOF
            if open_blocks:
                raise ParseError("Unclosed block (missing '}')", tok.line, tok.col)
            return Program(top)


def parse(source):
    """Lex and parse SOMA source. Raises LexError or ParseError."""
    return parse_tokens(L.lex(source))
