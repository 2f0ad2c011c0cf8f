"""The parser: AST shapes (structural equality), path rules, brace balance, deep nesting."""

import pytest

import soma
from soma.ast import BlockLit, Exec, IntLit, Path, Program, Store, StrLit
from soma.parser import parse


def body(src):
    return parse(src).body


def parse_error(src):
    with pytest.raises(soma.ParseError) as info:
        parse(src)
    err = info.value
    assert isinstance(err, soma.SomaError)
    assert isinstance(err.line, int) and isinstance(err.col, int)
    return err


# ---------------------------------------------------------------- shapes

def test_program_node():
    prog = parse("1")
    assert isinstance(prog, Program)
    assert prog == Program([IntLit(1)])
    assert prog != Program([IntLit(2)])
    assert parse("") == Program([])


def test_literal_shapes():
    assert body("42 -7 (hi) ()") == [IntLit(42), IntLit(-7), StrLit("hi"), StrLit("")]


def test_int_and_str_are_distinct_nodes():
    assert body("1") != [StrLit("1")]
    assert IntLit(1) != StrLit(1)


def test_path_shapes():
    assert body("a a.b.c a. a.b.") == [
        Path(["a"]), Path(["a", "b", "c"]), Path(["a"], True), Path(["a", "b"], True)]
    assert body("a.") != [Path(["a"])]   # is_ref is part of the shape


def test_symbol_paths():
    assert body("+ =! list.#loop > !") == [
        Path(["+"]), Path(["=!"]), Path(["list", "#loop"]), Path([">"]), Path(["!"])]


def test_exec_and_store_shapes():
    assert body(">a.b !c !d.e. >_ !_.x") == [
        Exec(Path(["a", "b"])), Store(Path(["c"])), Store(Path(["d", "e"], True)),
        Exec(Path(["_"])), Store(Path(["_", "x"]))]


def test_block_shapes():
    assert body("{ 1 { (s) >x } } >{ !y }") == [
        BlockLit([IntLit(1), BlockLit([StrLit("s"), Exec(Path(["x"]))])]),
        Exec(BlockLit([Store(Path(["y"]))]))]
    assert body("{}") == [BlockLit([])]
    assert body(">{}") == [Exec(BlockLit([]))]


def test_exec_of_modifier_paths():
    assert body(">! >> !> !!") == [Exec(Path(["!"])), Exec(Path([">"])),
                                   Store(Path([">"])), Store(Path(["!"]))]


def test_node_positions():
    prog = parse("1 (s)\n  >a.b { !c\n x. } >{ }")
    n1, s, ex, blk, ex2 = prog.body
    assert (n1.line, n1.col) == (1, 1)
    assert (s.line, s.col) == (1, 3)
    assert (ex.line, ex.col) == (2, 3)           # the `>`
    assert (ex.target.line, ex.target.col) == (2, 4)
    assert (blk.line, blk.col) == (2, 8)         # the `{`
    st, ref = blk.body
    assert (st.line, st.col) == (2, 10)          # the `!`
    assert (st.target.line, st.target.col) == (2, 11)
    assert (ref.line, ref.col) == (3, 2)
    assert (ex2.line, ex2.col) == (3, 7)         # `>{`: the `>`
    assert (ex2.target.line, ex2.target.col) == (3, 8)


def test_equality_ignores_positions():
    assert parse("1   a") == parse("1\n\na")
    assert IntLit(1, 3, 4) == IntLit(1, 9, 9)


# ---------------------------------------------------------------- paths

def test_register_paths():
    nodes = body("_ _. _.x _.x.y _.x.")
    assert nodes == [Path(["_"]), Path(["_"], True), Path(["_", "x"]),
                     Path(["_", "x", "y"]), Path(["_", "x"], True)]
    assert all(n.in_register for n in nodes)
    assert not body("a.b")[0].in_register


def test_text_round_trip():
    for text in ["a", "a.b.", "_", "_.", "_.x.y", "list.#loop"]:
        assert body(text)[0].text() == text


@pytest.mark.parametrize("src,col,shown", [
    ("_x", 1, "_x"), ("_x.", 1, "_x."), ("__", 1, "__"),
    ("!_x", 2, "_x"), (">_x", 2, "_x"), ("1 _abc", 3, "_abc"),
])
def test_underscore_prefixed_name_rejected(src, col, shown):
    err = parse_error(src)
    assert (err.line, err.col) == (1, col)
    assert "Invalid Register path '%s'" % shown in err.message


def test_underscore_names_below_the_root_are_fine():
    assert body("_x.y") == [Path(["_x", "y"])]
    assert not body("_x.y")[0].in_register   # a Store path
    assert body("!_x.y.") == [Store(Path(["_x", "y"], True))]
    assert body("a._x _._ _._x") == [Path(["a", "_x"]), Path(["_", "_"]), Path(["_", "_x"])]


@pytest.mark.parametrize("src,col,shown", [
    ("a..b", 1, "a..b"), (".a", 1, ".a"), ("a..", 1, "a.."), (".", 1, "."),
    ("..", 1, ".."), ("!.", 2, "."), (">.", 2, "."), ("x _..y", 3, "_..y"),
    ("!a..", 2, "a.."),
])
def test_empty_components(src, col, shown):
    err = parse_error(src)
    assert err.message == "Empty path component in '%s'" % shown
    assert (err.line, err.col) == (1, col)


def test_exec_of_reference_path_rejected():
    err = parse_error(">a.")
    assert err.message == "Cannot execute a reference path 'a.'"
    assert (err.line, err.col) == (1, 2)
    err = parse_error("1\n  >_.")
    assert (err.line, err.col) == (2, 4)


def test_store_without_a_path():
    # `!)`: the `)` opens a comment, so the modifier is left without a target.
    err = parse_error("!)")
    assert err.message == "Expected a path after '!'"
    assert (err.line, err.col) == (1, 3)


@pytest.mark.parametrize("src", ["!) comment\nx", ">) comment\nx", "1 !)\n  x", ">)\r\nprint"])
def test_modifier_does_not_reach_across_a_comment_to_the_next_line(src):
    # A modifier applies to the token right after it; `!)` / `>)` have none (the
    # `)` opens a comment), so they must not silently bind to a path on a later line.
    with pytest.raises(soma.SomaError) as info:
        parse(src)
    assert info.value.line in (1, 2)


def test_exec_without_a_target():
    err = parse_error(">)")
    assert err.message == "Expected a path or a block after '>'"
    assert (err.line, err.col) == (1, 3)


# ---------------------------------------------------------------- braces

@pytest.mark.parametrize("src,line,col", [
    ("}", 1, 1), ("1 }", 1, 3), ("} {", 1, 1), ("{ } }", 1, 5),
    ("{\n}\n  }", 3, 3), ("!}", 1, 2),
])
def test_unexpected_close_brace(src, line, col):
    err = parse_error(src)
    assert err.message == "Unexpected '}' without matching '{'"
    assert (err.line, err.col) == (line, col)


@pytest.mark.parametrize("src,line,col", [
    ("{", 1, 2), ("{ 1", 1, 4), ("{ { }", 1, 6), (">{ 1 ", 1, 6), ("{\n  {\n }", 3, 3),
])
def test_unclosed_block_reported_at_end_of_input(src, line, col):
    err = parse_error(src)
    assert err.message == "Unclosed block (missing '}')"
    assert (err.line, err.col) == (line, col)


def test_parse_error_via_vm():
    vm = soma.VM(stdlib=False)
    with pytest.raises(soma.ParseError) as info:
        vm.execute_code("1 2 !x\n}", "p.soma")
    assert str(info.value) == "2:1: Unexpected '}' without matching '{'"
    assert info.value.describe() == "p.soma:2:1: ParseError: Unexpected '}' without matching '{'"
    assert vm.al == []     # a parse error runs nothing


# ---------------------------------------------------------------- depth

def _depth(node):
    depth = 0
    while True:
        inner = [n for n in node.body if isinstance(n, BlockLit)] or \
                [n.target for n in node.body if isinstance(n, Exec)
                 and isinstance(n.target, BlockLit)]
        if not inner:
            return depth
        assert len(inner) == 1
        node = inner[0]
        depth += 1


def test_ten_thousand_deep_block_nesting_parses():
    n = 10_000
    prog = parse("{ " * n + "1 " + "} " * n)
    assert _depth(prog) == n
    node = prog
    for _ in range(n):
        node = node.body[0]
    assert node.body == [IntLit(1)]


def test_ten_thousand_deep_exec_nesting_parses():
    n = 10_000
    prog = parse(">{ " * n + "} " * n)
    assert _depth(prog) == n
    assert isinstance(prog.body[0], Exec)


def test_deep_unbalanced_reports_position():
    n = 10_000
    err = parse_error("{" * n)
    assert (err.line, err.col) == (1, n + 1)
    err = parse_error("{" * n + "}" * (n + 1))
    assert (err.line, err.col) == (1, 2 * n + 1)
