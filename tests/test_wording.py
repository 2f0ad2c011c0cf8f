"""Error messages and `print` renderings are worded as the reference SOMA words them, on
every tier (docs/semantics.md, "Runtime error messages").

Each case runs on the pure-Python tier, the native state without compilation and the
native state with every block compiled before its first run (the factories of
soma.difftest), whatever SOMA_JIT says; the renderings also with background tier-up and
the optimizing tier.
"""

import pytest

import soma
from soma import difftest
from wording import undefined_register, undefined_store

FACTORIES = difftest.available_factories()
TIERS = ["python", "native", "jit"]


def tier_factory(tier):
    if tier not in FACTORIES:
        pytest.skip("the native extension is not built (scripts/setup.sh builds it)")
    return FACTORIES[tier]


def error_of(tier, src):
    vm = tier_factory(tier)([].append)
    vm._input = lambda: None   # readLine meets the end of input
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code(src)
    return info.value


def in_block(src):
    """`src` as the body of a block run three times (compiled code runs it from the first
    time on the `jit` tier, from the second on `jit-background`)."""
    return "{ 0 !_.n\n%s\n} !f  >f >f >f" % src


UNDERFLOW = [
    ("<", "AL underflow: < requires 2 values"),
    ("+", "AL underflow: + requires 2 values"),
    ("-", "AL underflow: - requires 2 values"),
    ("*", "AL underflow: * requires 2 values"),
    ("/", "AL underflow: / requires 2 values"),
    ("%", "AL underflow: % requires 2 values"),
    ("concat", "AL underflow: concat requires 2 values"),
    ("print", "AL underflow: print requires 1 value"),
    ("toString", "AL underflow: to_string requires 1 value"),
    ("toInt", "AL underflow: to_int requires 1 value"),
    ("isVoid", "AL underflow: IsVoid requires 1 value"),
    ("isNil", "AL underflow: IsNil requires 1 value"),
    ("debug.type", "AL underflow: debug.type requires 1 value"),
    ("debug.id", "AL underflow: debug.id requires 1 value"),
    ("choose", "AL underflow: >choose requires 3 values"),
    ("chain", "AL underflow: >chain requires 1 value (block)"),
    ("debug.chain", "AL underflow: >chain requires 1 value (block)"),
    ("debug.choose", "Choose requires [condition, true_block, false_block] on AL"),
    ("debug.graph.dump", "debug.graph.dump requires a value on AL"),
    ("debug.graph.draw", "debug.graph.draw requires a value on AL"),
    ("use", "AL underflow: use requires 1 value (extension name)"),
]


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("word,message", UNDERFLOW, ids=[w for w, _ in UNDERFLOW])
def test_each_builtin_words_its_underflow(tier, word, message):
    err = error_of(tier, ">" + word)
    assert (err.message, err.line, err.col) == (message, 1, 1)
    err = error_of(tier, in_block("  >" + word))
    assert (err.message, err.line, err.col) == (message, 2, 3)


TYPE_ERRORS = [
    ("(a) 1 >+", "Type error in +: expected int, got str and int"),
    ("1 (a) >-", "Type error in -: expected int, got int and str"),
    ("True 2 >*", "Type error in *: expected int, got TrueSingleton and int"),
    ("Void Nil >/", "Type error in /: expected int, got VoidSingleton and NilSingleton"),
    ("{ } print >%", "Type error in %: expected int, got Block and BuiltinBlock"),
    ("_.n. 1 >+", "Type error in +: expected int, got CellRef and int"),
    ("99999999999999999999999 False >+",
     "Type error in +: expected int, got int and FalseSingleton"),
    ("1 (a) ><", "Type mismatch in <: cannot compare int and str"),
    ("Nil 1 ><", "Type mismatch in <: cannot compare NilSingleton and int"),
    ("True False ><", "Type mismatch in <: cannot compare TrueSingleton and FalseSingleton"),
    ("True True ><", "Cannot compare type TrueSingleton with <"),
    ("Void Void ><", "Cannot compare type VoidSingleton with <"),
    ("{ } { } ><", "Cannot compare type Block with <"),
    ("print print ><", "Cannot compare type BuiltinBlock with <"),
    ("_.n. _.n. ><", "Cannot compare type CellRef with <"),
    ("(a) 1 >concat", "Type error in concat: expected string, got str and int"),
    ("(a) >toString", "Type error in to_string: expected int, got str"),
    ("Nil >toString", "Type error in to_string: expected int, got NilSingleton"),
    ("1 >toInt", "Type error in to_int: expected string, got int"),
    ("Void >toInt", "Type error in to_int: expected string, got VoidSingleton"),
    ("5 >use", "use: expected string extension name, got int"),
    ("5 !v >v", "Cannot execute int: only Blocks are executable"),
    ("(s) !v >v", "Cannot execute str: only Blocks are executable"),
    ("True !v >v", "Cannot execute TrueSingleton: only Blocks are executable"),
    ("_.n. !v >v", "Cannot execute CellRef: only Blocks are executable"),
    ("Nil !v >v", "AL underflow: exec requires executable Block on AL, got NilSingleton"),
    ("Void !_.v >_.v", "AL underflow: exec requires executable Block on AL, got VoidSingleton"),
    ("!x", "AL underflow: store requires value on AL"),
    ("!_.x.", "AL underflow: store requires value on AL"),
    ("1 0 >/", "Division by zero"),
    ("1 0 >%", "Modulo by zero"),
    (">readLine", "read_line: EOF encountered"),
    ("(no_such_ext) >use",
     "Extension 'no_such_ext' not found: No module named 'soma.extensions.no_such_ext'"),
    ("{ 2 } >debug.error", "ASSERT FAILED: Block(body=[RunNode(IntNode)])"),
    ("concat >debug.error", "ASSERT FAILED: <builtin concat>"),
    ("_.n. >debug.error", "ASSERT FAILED: CellRef(...)"),
    ("nope.x", undefined_store("nope.x")),
    ("_.nope", undefined_register("_.nope")),
]


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("src,message", TYPE_ERRORS, ids=[s for s, _ in TYPE_ERRORS])
def test_messages_match_the_reference_in_a_block(tier, src, message):
    err = error_of(tier, in_block("  " + src))
    assert err.message == message
    assert err.line == 2


@pytest.mark.parametrize("tier", TIERS)
def test_messages_at_top_level(tier):
    assert error_of(tier, "1\n >block").message == ">block called at top-level (no current block)"
    assert error_of(tier, "1 (a) >+").message == "Type error in +: expected int, got int and str"
    assert error_of(tier, "zz").message == undefined_store("zz")
    # The Register root read before it was written: the reference spells it `_.`.
    assert error_of(tier, "{ _ } !g >g").message == undefined_register("_.")


def test_undefined_path_messages_spelled_out():
    err = error_of("python", "a.b")
    assert err.message == (
        "Undefined Store path: 'a.b'\n"
        "  Path was never set. Did you mean to:\n"
        "    - Initialize it first: () !a.b\n"
        "    - Set a nested value: <value> !a.b.<child>\n"
        "    - Check a different path?\n"
        "  Hint: Auto-vivified intermediate paths can be read after writing to children.\n"
        "        Example: 42 !a.b.c creates 'a' and 'a.b' with Void, which can be read.")
    assert str(err).startswith("1:1: Undefined Store path: 'a.b'\n")


PRINTS = [
    ("{ } >print", "Block(body=[])"),
    ("{ 1 (s) { } x x. !x !x. >x >{ } _.y _.y. !_.y >_.y } >print",
     "Block(body=[RunNode(IntNode), RunNode(StringNode), RunNode(BlockNode), "
     "RunNode(ValuePath), RunNode(ReferencePath), RunNode(StoreNode), RunNode(StoreNode), "
     "RunNode(ExecNode), RunNode(ExecNode), RunNode(ValuePath), RunNode(ReferencePath), "
     "RunNode(StoreNode), RunNode(ExecNode)])"),
    ("{ 123456789012345678901234567890 } >print", "Block(body=[RunNode(IntNode)])"),
    ("print >print", "<builtin print>"),
    ("debug.al.dump >print", "<builtin debug.al.dump>"),
    ("_.n. >print", "CellRef(...)"),
    ("1 !c  c. >print", "CellRef(...)"),
]


@pytest.mark.parametrize("tier", TIERS + ["jit-background"])
@pytest.mark.parametrize("src,line", PRINTS, ids=[s for s, _ in PRINTS])
def test_print_renders_as_the_reference(tier, src, line):
    out = []
    vm = tier_factory(tier)(out.append)
    vm.execute_code(in_block(src))
    assert out == [line] * 3
    # The same value printed from Python's side of a native VM (a Block crosses as an
    # object that carries the runtime's rendering).
    vm.execute_code(src.replace(">print", ""))
    from soma.values import render
    assert render(vm.al[-1]) == line


SPECIALIZED = [
    ("!_.x _.x 1 >+", "(a)", "Type error in +: expected int, got str and int"),
    ("!_.x 3 _.x >-", "Nil", "Type error in -: expected int, got int and NilSingleton"),
    ("!_.x _.x 10 ><", "(a)", "Type mismatch in <: cannot compare str and int"),
    ("!_.x _.x _.x ><", "True", "Cannot compare type TrueSingleton with <"),
    ("!_.x _.x (!) >concat", "5", "Type error in concat: expected string, got int and str"),
    ("!_.x _.x >toString", "(5)", "Type error in to_string: expected int, got str"),
    ("!_.x _.x >toInt", "5", "Type error in to_int: expected string, got int"),
    ("!_.x >_.x", "7", "Cannot execute int: only Blocks are executable"),
]


@pytest.mark.parametrize("tier", TIERS + ["jit-background"])
@pytest.mark.parametrize("body,bad,message", SPECIALIZED, ids=[b for b, _, _ in SPECIALIZED])
def test_messages_after_compiled_code_specialized_on_good_operands(tier, body, bad, message):
    # Eight runs with operands of the expected type (compiled, and on jit-background
    # recompiled by the optimizing tier), then one that fails its guards.
    good = {"(a)": "4", "Nil": "4", "True": "(b)", "5": "(s)", "(5)": "5", "7": "{ }"}[bad]
    vm = tier_factory(tier)([].append)
    vm.execute_code("{ %s } !f" % body)
    for _ in range(8):
        vm.execute_code("%s >f" % good)
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("%s >f" % bad)
    assert info.value.message == message
    assert (info.value.line, info.value.col) == (1, 3 + body.rindex(">"))
