"""The lexer: token kinds, values and 1-based line:col positions, and every LexError."""

import pytest

import soma
from soma import lexer as L
from soma.lexer import lex


def toks(src):
    """(kind, value, line, col) of every token, EOF included."""
    return [(t.kind, t.value, t.line, t.col) for t in lex(src)]


def lex_error(src):
    with pytest.raises(soma.LexError) as info:
        lex(src)
    err = info.value
    assert isinstance(err, soma.SomaError)
    assert isinstance(err.line, int) and isinstance(err.col, int)
    return err


# ---------------------------------------------------------------- token kinds

def test_every_token_kind_with_positions():
    src = "12 (hi) a.b { >x !y } >{ } -3 c."
    assert toks(src) == [
        (L.INT, 12, 1, 1),
        (L.STR, "hi", 1, 4),
        (L.PATH, "a.b", 1, 9),
        (L.LBRACE, "{", 1, 13),
        (L.EXEC, ">", 1, 15),
        (L.PATH, "x", 1, 16),
        (L.STORE, "!", 1, 18),
        (L.PATH, "y", 1, 19),
        (L.RBRACE, "}", 1, 21),
        (L.EXEC, ">", 1, 23),
        (L.LBRACE, "{", 1, 24),
        (L.RBRACE, "}", 1, 26),
        (L.INT, -3, 1, 28),
        (L.PATH, "c.", 1, 31),
        (L.EOF, "", 1, 33),
    ]


def test_empty_source_is_just_eof():
    assert toks("") == [(L.EOF, "", 1, 1)]
    assert toks("  \n\t") == [(L.EOF, "", 2, 2)]


def test_int_values_are_python_ints():
    tokens = lex("0 -0 +5 -17 007")
    assert [t.value for t in tokens[:-1]] == [0, 0, 5, -17, 7]
    assert all(type(t.value) is int for t in tokens[:-1])


def test_big_int_literal_is_exact():
    digits = "9" * 5000
    (tok, eof) = lex(digits)
    assert tok.kind == L.INT and tok.value == 10 ** 5000 - 1
    (tok, eof) = lex("-" + digits)
    assert tok.value == -(10 ** 5000 - 1)


def test_plus_five_and_minus_zero():
    assert toks("+5") == [(L.INT, 5, 1, 1), (L.EOF, "", 1, 3)]
    assert toks("-0") == [(L.INT, 0, 1, 1), (L.EOF, "", 1, 3)]


@pytest.mark.parametrize("src", ["+", "-", "-x", "+-5", "--5", "a-5", "a1", "x(a)", "١٢"])
def test_sign_or_digit_lookalikes_are_paths(src):
    assert toks(src) == [(L.PATH, src, 1, 1), (L.EOF, "", 1, len(src) + 1)]


def test_integer_ends_at_brace():
    assert toks("{1}") == [(L.LBRACE, "{", 1, 1), (L.INT, 1, 1, 2),
                           (L.RBRACE, "}", 1, 3), (L.EOF, "", 1, 4)]
    assert toks("1{") == [(L.INT, 1, 1, 1), (L.LBRACE, "{", 1, 2), (L.EOF, "", 1, 3)]


def test_braces_split_paths():
    assert toks("a{b}c") == [(L.PATH, "a", 1, 1), (L.LBRACE, "{", 1, 2), (L.PATH, "b", 1, 3),
                             (L.RBRACE, "}", 1, 4), (L.PATH, "c", 1, 5), (L.EOF, "", 1, 6)]


def test_string_directly_followed_by_path():
    assert toks("(a)b") == [(L.STR, "a", 1, 1), (L.PATH, "b", 1, 4), (L.EOF, "", 1, 5)]


def test_empty_and_blank_strings():
    assert toks("()") == [(L.STR, "", 1, 1), (L.EOF, "", 1, 3)]
    assert toks("( )") == [(L.STR, " ", 1, 1), (L.EOF, "", 1, 4)]


def test_tabs_count_as_one_column():
    assert toks("\t\tx") == [(L.PATH, "x", 1, 3), (L.EOF, "", 1, 4)]


# ---------------------------------------------------------------- lines

def test_positions_across_lines():
    src = "a\n  b c\n\n   d"
    assert toks(src) == [(L.PATH, "a", 1, 1), (L.PATH, "b", 2, 3), (L.PATH, "c", 2, 5),
                         (L.PATH, "d", 4, 4), (L.EOF, "", 4, 5)]


def test_positions_after_multiline_string():
    src = "(one\ntwo\nthree) x\n y"
    assert toks(src) == [(L.STR, "one\ntwo\nthree", 1, 1), (L.PATH, "x", 3, 8),
                         (L.PATH, "y", 4, 2), (L.EOF, "", 4, 3)]


def test_positions_after_comments():
    src = "a ) comment ( with ) parens\n  b ) another\n) whole line\nc"
    assert toks(src) == [(L.PATH, "a", 1, 1), (L.PATH, "b", 2, 3), (L.PATH, "c", 4, 1),
                         (L.EOF, "", 4, 2)]


def test_comment_at_end_of_input():
    assert toks("a ) trailing") == [(L.PATH, "a", 1, 1), (L.EOF, "", 1, 13)]


def test_crlf_line_endings():
    src = "a\r\n  b ) c\r\n(x\r\ny) z\r\n"
    assert toks(src) == [(L.PATH, "a", 1, 1), (L.PATH, "b", 2, 3), (L.STR, "x\r\ny", 3, 1),
                         (L.PATH, "z", 4, 4), (L.EOF, "", 5, 1)]


def test_crlf_comment_then_token():
    assert toks("x ) c\r\n  y") == [(L.PATH, "x", 1, 1), (L.PATH, "y", 2, 3), (L.EOF, "", 2, 4)]


def test_lone_cr_counts_the_same_after_a_comment_and_after_a_token():
    # A lone CR must either always start a new line or never do so: the
    # line of `b` may not depend on whether a comment precedes the CR.
    after_token = [t for t in lex("a\rb") if t.value == "b"][0]
    after_comment = [t for t in lex(") c\rb") if t.value == "b"]
    if after_comment:   # the CR ended the comment, so it acts as a line break
        assert after_token.line == after_comment[0].line == 2


def test_error_position_on_later_line_after_string_and_comment():
    err = lex_error("(a\nb) ) c\n  x 12ab")
    assert (err.line, err.col) == (3, 5)


# ---------------------------------------------------------------- comments

@pytest.mark.parametrize("src,expected", [
    ("a)b", [(L.PATH, "a)b", 1, 1), (L.EOF, "", 1, 4)]),
    ("a) b", [(L.PATH, "a)", 1, 1), (L.PATH, "b", 1, 4), (L.EOF, "", 1, 5)]),
    (") a b c", [(L.EOF, "", 1, 8)]),
    (")) (", [(L.EOF, "", 1, 5)]),
    ("x )(unclosed", [(L.PATH, "x", 1, 1), (L.EOF, "", 1, 13)]),
])
def test_close_paren_comments(src, expected):
    assert toks(src) == expected


def test_comment_does_not_swallow_next_line():
    assert [t.value for t in lex(") } {\n1")] == [1, ""]


# ---------------------------------------------------------------- modifiers

@pytest.mark.parametrize("src,expected", [
    (">", [(L.PATH, ">", 1, 1), (L.EOF, "", 1, 2)]),
    ("!", [(L.PATH, "!", 1, 1), (L.EOF, "", 1, 2)]),
    ("> x", [(L.PATH, ">", 1, 1), (L.PATH, "x", 1, 3), (L.EOF, "", 1, 4)]),
    ("! x", [(L.PATH, "!", 1, 1), (L.PATH, "x", 1, 3), (L.EOF, "", 1, 4)]),
    (">\tx", [(L.PATH, ">", 1, 1), (L.PATH, "x", 1, 3), (L.EOF, "", 1, 4)]),
    (">\n", [(L.PATH, ">", 1, 1), (L.EOF, "", 2, 1)]),
    ("{>}", [(L.LBRACE, "{", 1, 1), (L.PATH, ">", 1, 2), (L.RBRACE, "}", 1, 3),
             (L.EOF, "", 1, 4)]),
    ("{!}", [(L.LBRACE, "{", 1, 1), (L.PATH, "!", 1, 2), (L.RBRACE, "}", 1, 3),
             (L.EOF, "", 1, 4)]),
    ("> {", [(L.PATH, ">", 1, 1), (L.LBRACE, "{", 1, 3), (L.EOF, "", 1, 4)]),
])
def test_modifier_alone_is_a_path(src, expected):
    assert toks(src) == expected


@pytest.mark.parametrize("src,expected", [
    (">{", [(L.EXEC, ">", 1, 1), (L.LBRACE, "{", 1, 2), (L.EOF, "", 1, 3)]),
    (">!", [(L.EXEC, ">", 1, 1), (L.PATH, "!", 1, 2), (L.EOF, "", 1, 3)]),
    ("!>", [(L.STORE, "!", 1, 1), (L.PATH, ">", 1, 2), (L.EOF, "", 1, 3)]),
    (">>", [(L.EXEC, ">", 1, 1), (L.PATH, ">", 1, 2), (L.EOF, "", 1, 3)]),
    ("!!", [(L.STORE, "!", 1, 1), (L.PATH, "!", 1, 2), (L.EOF, "", 1, 3)]),
    (">! x", [(L.EXEC, ">", 1, 1), (L.PATH, "!", 1, 2), (L.PATH, "x", 1, 4),
              (L.EOF, "", 1, 5)]),
    (">!}", [(L.EXEC, ">", 1, 1), (L.PATH, "!", 1, 2), (L.RBRACE, "}", 1, 3),
             (L.EOF, "", 1, 4)]),
    (">-", [(L.EXEC, ">", 1, 1), (L.PATH, "-", 1, 2), (L.EOF, "", 1, 3)]),
    ("!-x", [(L.STORE, "!", 1, 1), (L.PATH, "-x", 1, 2), (L.EOF, "", 1, 4)]),
    (">+", [(L.EXEC, ">", 1, 1), (L.PATH, "+", 1, 2), (L.EOF, "", 1, 3)]),
    (">a.b", [(L.EXEC, ">", 1, 1), (L.PATH, "a.b", 1, 2), (L.EOF, "", 1, 5)]),
    ("!a.b.", [(L.STORE, "!", 1, 1), (L.PATH, "a.b.", 1, 2), (L.EOF, "", 1, 6)]),
    ("  >_", [(L.EXEC, ">", 1, 3), (L.PATH, "_", 1, 4), (L.EOF, "", 1, 5)]),
])
def test_modifier_forms(src, expected):
    assert toks(src) == expected


@pytest.mark.parametrize("src,col,fragment", [
    (">(x)", 1, "string"),
    ("!(x)", 1, "string"),
    ("!{ }", 1, "block"),
    ("!5", 1, "number"),
    (">5", 1, "number"),
    (">-5", 1, "number"),
    ("!+5", 1, "number"),
    ("  >0", 3, "number"),
    (">>x", 1, "modifier"),
    ("!!x", 1, "modifier"),
    (">!x", 1, "modifier"),
    ("!>x", 1, "modifier"),
    (">!{", 2, "block"),
])
def test_modifier_target_errors(src, col, fragment):
    err = lex_error(src)
    assert (err.line, err.col) == (1, col)
    assert fragment in err.message
    assert str(err).startswith("1:%d: " % col)


def test_modifier_error_messages_exact():
    assert lex_error(">(a)").message == "Modifier '>' cannot target a string literal"
    assert lex_error("!{").message == "Modifier '!' cannot target a block"
    assert lex_error("!7").message == "Modifier '!' cannot target a number"
    assert lex_error(">>a").message == "Modifier '>' cannot target another modifier"


# ---------------------------------------------------------------- numbers

@pytest.mark.parametrize("src,bad", [
    ("12ab", "12ab"), ("12-3", "12-3"), ("0x10", "0x10"), ("1_000", "1_000"),
    ("5)", "5)"), ("-3a", "-3a"), ("+5.0", "+5.0"), ("5(a)", "5(a)"),
])
def test_invalid_numbers(src, bad):
    err = lex_error(src)
    assert (err.line, err.col) == (1, 1)
    assert err.message == "Invalid number '%s'" % bad


def test_invalid_number_position_mid_line():
    err = lex_error("1 2\n  3 45x")
    assert (err.line, err.col) == (2, 5)
    assert err.message == "Invalid number '45x'"


# ---------------------------------------------------------------- strings and escapes

@pytest.mark.parametrize("src,value", [
    (r"(\28\)", "("),
    (r"(\29\)", ")"),
    (r"(a\28\b\29\c)", "a(b)c"),
    (r"(\41\\42\)", "AB"),
    (r"(\0\)", "\x00"),
    (r"(\10FFFF\)", "\U0010ffff"),
    (r"(\1F600\)", "\U0001F600"),
    (r"(\0000000041\)", "A"),
    (r"(\e9\)", "\xe9"),
    (r"(\D7FF\)", "\ud7ff"),
    (r"(\E000\)", "\ue000"),
    ("(tab\there)", "tab\there"),
    ("(héllo wörld ✓)", "héllo wörld ✓"),
])
def test_string_escapes(src, value):
    (tok, eof) = lex(src)
    assert tok.kind == L.STR and tok.value == value
    assert (eof.line, eof.col) == (1, len(src) + 1)


def test_string_with_paren_escape_round_trip_through_vm():
    vm = soma.VM(stdlib=False)
    vm.execute_code(r"(f\28\x\29\)")
    assert vm.al == ["f(x)"]


@pytest.mark.parametrize("src,col,message", [
    (r"(\\)", 2, "Empty escape in string"),
    (r"(ab\zz\)", 4, "Escape must be hexadecimal digits, got '\\zz\\'"),
    (r"(\4 1\)", 2, "Escape must be hexadecimal digits, got '\\4 1\\'"),
    (r"(\-41\)", 2, "Escape must be hexadecimal digits, got '\\-41\\'"),
    (r"(\110000\)", 2, "Escape '\\110000\\' is not a Unicode code point"),
    (r"(\FFFFFFFFFFFF\)", 2, "Escape '\\FFFFFFFFFFFF\\' is not a Unicode code point"),
    (r"(\D800\)", 2, "Escape '\\D800\\' is not a Unicode code point"),
    (r"(\dfff\)", 2, "Escape '\\dfff\\' is not a Unicode code point"),
    (r"(\DBFF\)", 2, "Escape '\\DBFF\\' is not a Unicode code point"),
    (r"(a\)", 3, "Unterminated escape in string"),
    (r"(\41", 2, "Unterminated escape in string"),
])
def test_bad_escapes(src, col, message):
    err = lex_error(src)
    assert (err.line, err.col) == (1, col)
    assert err.message == message


def test_escape_error_on_a_later_line_of_a_string():
    err = lex_error("x (a\nbc\\zz\\)")
    assert (err.line, err.col) == (2, 3)


def test_huge_escape_is_an_error_not_a_crash():
    err = lex_error("(\\" + "F" * 5000 + "\\)")
    assert "not a Unicode code point" in err.message
    assert len(err.message) < 200


@pytest.mark.parametrize("src,line,col", [
    ("(abc", 1, 1),
    ("x (ab\n  cd", 1, 3),
    ("a\n  (", 2, 3),
    ("(\\29\\", 1, 1),
])
def test_unterminated_strings(src, line, col):
    err = lex_error(src)
    assert err.message == "Unterminated string"
    assert (err.line, err.col) == (line, col)


def test_lex_error_through_vm_has_position_and_source():
    vm = soma.VM(stdlib=False)
    with pytest.raises(soma.LexError) as info:
        vm.execute_code("1\n 2 3x", "prog.soma")
    err = info.value
    assert (err.line, err.col) == (2, 4)
    assert str(err) == "2:4: Invalid number '3x'"
    assert err.source == "prog.soma"
    assert err.describe() == "prog.soma:2:4: LexError: Invalid number '3x'"
    assert vm.al == []   # nothing ran: lexing precedes execution


def test_token_equality_and_repr():
    a = L.Token(L.PATH, "x", 1, 2)
    assert a == L.Token(L.PATH, "x", 1, 2)
    assert a != L.Token(L.PATH, "x", 1, 3)
    assert "PATH" in repr(a) and "1:2" in repr(a)
