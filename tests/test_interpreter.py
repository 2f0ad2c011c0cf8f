"""Interpreter semantics: statements, cells, CellRefs, Registers, control, errors, limits."""

import pytest

import soma
from soma import NIL, VOID, TRUE, FALSE, Block, CellRef
from wording import undefined_register, undefined_store  # noqa: E402


# `r >deref` pushes the value of the cell a CellRef names: `!_.` makes the
# Register root alias that cell, and reading `_` follows the alias.
DEREF = "{ !_. _ } !deref\n"


def err_of(vm, src, cls=soma.RuntimeError):
    with pytest.raises(cls) as info:
        vm.execute_code(src)
    err = info.value
    assert type(err) is cls
    return err


def check_error(vm, src, message, line, col, cls=soma.RuntimeError):
    err = err_of(vm, src, cls)
    assert err.message == message
    assert (err.line, err.col) == (line, col)
    assert str(err) == "%d:%d: %s" % (line, col, message)
    return err


# ---------------------------------------------------------------- statement forms

def test_literals_push(vm):
    vm.execute_code("1 -2 (s) () { }")
    assert vm.al[:4] == [1, -2, "s", ""]
    assert isinstance(vm.al[4], Block)
    assert [type(v) for v in vm.al[:2]] == [int, int]


def test_block_literal_is_not_run(vm):
    vm.execute_code("{ 1 !ran }")
    with pytest.raises(soma.RuntimeError):
        vm.execute_code("ran")
    assert len(vm.al) == 1


def test_store_and_load(vm):
    vm.execute_code("5 !a  (t) !b.c  a b.c")
    assert vm.al == [5, "t"]


def test_overwrite(vm):
    vm.execute_code("1 !a 2 !a a")
    assert vm.al == [2]


def test_store_builtin_constants(vm):
    vm.execute_code("True False Nil Void")
    assert vm.al == [TRUE, FALSE, NIL, VOID]


def test_exec_path_and_exec_block(vm):
    vm.execute_code("{ 1 2 >+ } !add3  >add3  >{ 10 } { 4 } !a.b >a.b")
    assert vm.al == [3, 10, 4]


def test_exec_register_paths(vm):
    vm.execute_code("{ { 8 } !_.f >_.f  { 9 } !_.g.h >_.g.h  { 10 } !_ >_ } !t >t")
    assert vm.al == [8, 9, 10]


def test_exec_builtin_through_any_path(vm):
    vm.execute_code("+ !plus  + !_.p  3 4 >plus  5 6 >_.p  { 1 1 >_.q } + !_.q")
    assert vm.al[:2] == [7, 11]


# ---------------------------------------------------------------- strict reads, vivification

def test_undefined_store_read(vm):
    check_error(vm, "1\n  nope", undefined_store("nope"), 2, 3)
    assert vm.al == [1]


def test_undefined_nested_store_read(vm):
    check_error(vm, "1 !a  a.b.c", undefined_store("a.b.c"), 1, 7)


def test_undefined_register_reads(vm):
    check_error(vm, "_.x", undefined_register("_.x"), 1, 1)
    check_error(vm, "_", undefined_register("_."), 1, 1)
    check_error(vm, "1 !_.a  _.a.b", undefined_register("_.a.b"), 1, 9)
    check_error(vm, ">_.nope", undefined_register("_.nope"), 1, 1)


def test_undefined_exec_paths(vm):
    check_error(vm, ">nope", undefined_store("nope"), 1, 1)
    check_error(vm, ">a.b.nope", undefined_store("a.b.nope"), 1, 1)
    check_error(vm, "{ >_ } !f >f", undefined_register("_."), 1, 3)
    check_error(vm, "{ >_.a.b } !f >f", undefined_register("_.a.b"), 1, 3)


def test_auto_vivified_parents_read_void(vm):
    vm.execute_code("1 !a.b.c  a a.b a.b.c")
    assert vm.al == [VOID, VOID, 1]


def test_auto_vivified_register_parents_read_void(vm):
    vm.execute_code("{ 1 !_.a.b  _ _.a _.a.b } !f >f")
    assert vm.al == [VOID, VOID, 1]


def test_ref_read_creates_cells(vm):
    vm.execute_code("p.q.  p p.q")
    assert isinstance(vm.al[0], CellRef)
    assert vm.al[1:] == [VOID, VOID]


def test_void_is_storable_value(vm):
    vm.execute_code("Void !v  v")
    assert vm.al == [VOID]


def test_value_and_children_are_independent(vm):
    vm.execute_code("1 !a  2 !a.b  3 !a  a a.b")
    assert vm.al == [3, 2]


# ---------------------------------------------------------------- CellRefs

def test_ref_identity(vm):
    vm.execute_code("a. a. b.")
    r1, r2, r3 = vm.al
    assert r1 == r2 and r1 != r3
    assert hash(r1) == hash(r2)


@pytest.mark.parametrize("target,holder", [
    ("a", "r"), ("a.b", "r"), ("a", "r.s"), ("_.a", "_.r"), ("_.a.b", "_.r.s"),
    ("a", "_.r"), ("_.a", "r"),
])
def test_cellref_write_through(vm, target, holder):
    vm.execute_code(DEREF + "{ 1 !%s  %s. !%s  5 !%s  %s %s %s. } !f >f"
                    % (target, target, holder, holder, target, holder, target))
    assert vm.al[0] == 5
    # the holder still holds a CellRef to the target cell
    assert isinstance(vm.al[1], CellRef) and vm.al[1] == vm.al[2]
    vm.execute_code(">deref")
    assert vm.al[-1] == 5


@pytest.mark.parametrize("holder", ["r", "r.s", "_.r", "_.r.s"])
def test_storing_a_cellref_over_a_cellref_rebinds(vm, holder):
    vm.execute_code("{ 1 !a 2 !b  a. !%s  b. !%s  9 !%s  a b } !f >f" % (holder, holder, holder))
    assert vm.al == [1, 9]


@pytest.mark.parametrize("holder", ["r", "r.s", "_.r", "_.r.s"])
def test_setref_replaces_without_write_through(vm, holder):
    vm.execute_code("{ 1 !a  a. !%s  7 !%s.  a %s } !f >f" % (holder, holder, holder))
    assert vm.al == [1, 7]


@pytest.mark.parametrize("holder", ["r", "_.r"])
def test_void_write_goes_through(vm, holder):
    vm.execute_code("{ 1 !a  a. !%s  Void !%s  a } !f >f" % (holder, holder))
    assert vm.al == [VOID]


def test_write_through_is_one_hop(vm):
    # r -> s -> a: writing to r changes s's target cell value (a CellRef), once.
    vm.execute_code("1 !a  a. !s  s. !r  5 !r  a s")
    assert vm.al[0] == 1
    assert vm.al[1] == 5


def test_walk_follows_cellref_in_intermediate_cells(vm):
    vm.execute_code("1 !t.x  t. !r  r.x  5 !r.y  t.y  r.z.  t.z")
    assert vm.al[0] == 1 and vm.al[1] == 5
    assert isinstance(vm.al[2], CellRef) and vm.al[3] is VOID


def test_walk_follows_one_hop_per_cell(vm):
    vm.execute_code("3 !d.v  d. !c.link  c. !b  b.link.v")
    assert vm.al == [3]


def test_walk_follows_cellref_in_register(vm):
    vm.execute_code("{ 1 !t.x  t. !_.r  _.r.x  4 !_.r.w  t.w } !f >f")
    assert vm.al == [1, 4]


def test_exec_through_cellref_walk(vm):
    vm.execute_code("{ 42 } !lib.fn  lib. !alias  >alias.fn")
    assert vm.al == [42]


def test_cellref_keeps_register_cell_alive(vm):
    vm.execute_code(DEREF + "{ 11 !_.keep  _.keep. } !f >f !r  r >deref  12 !r  r  r >deref")
    assert vm.al[0] == 11
    assert isinstance(vm.al[1], CellRef)
    assert vm.al[2] == 12


def test_cellref_to_root_of_register_keeps_children(vm):
    vm.execute_code("{ 1 !_.a 2 !_.b  _. } !f >f !ctx  ctx.a ctx.b")
    assert vm.al == [1, 2]


# ---------------------------------------------------------------- replace and delete

@pytest.mark.parametrize("p", ["a", "a.b", "_.a", "_.a.b"])
def test_setref_replace_drops_children(vm, p):
    vm.execute_code("{ 1 !%s  2 !%s.c  3 !%s.  %s } !f >f" % (p, p, p, p))
    assert vm.al == [3]
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("{ 1 !%s  2 !%s.c  3 !%s.  %s.c } !f >f" % (p, p, p, p))
    assert "'%s.c'" % p in info.value.message


@pytest.mark.parametrize("p", ["a", "a.b", "_.a", "_.a.b"])
def test_setref_void_deletes_subtree(vm, p):
    vm.execute_code(DEREF + "{ 1 !%s  2 !%s.c  Void !%s.  %s. } !f >f >deref" % (p, p, p, p))
    # recreated by the ref read: a brand new cell
    assert vm.al == [VOID]
    err = err_of(vm, "{ 1 !%s  2 !%s.c  Void !%s.  %s.  %s.c } !f >f" % (p, p, p, p, p))
    assert "Undefined" in err.message
    err = err_of(vm, "{ 1 !%s  Void !%s.  %s } !f >f" % (p, p, p))
    in_reg = p.startswith("_")
    assert err.message == (undefined_register(p) if in_reg else undefined_store(p))


def test_delete_of_missing_path_creates_nothing(vm):
    vm.execute_code("Void !ghost.a.b.  Void !ghost.")
    err = err_of(vm, "ghost")
    assert err.message == undefined_store("ghost")


def test_delete_does_not_follow_cellrefs(vm):
    vm.execute_code("1 !t.x  t. !r  Void !r.x.  t.x r.x")
    assert vm.al == [1, 1]


def test_delete_of_a_cellref_holder_keeps_target(vm):
    vm.execute_code("1 !t  t. !r  Void !r.  t")
    assert vm.al == [1]
    check_error(vm, "r", undefined_store("r"), 1, 1)


def test_delete_does_not_follow_aliased_register_root(vm):
    # As in the reference: deletes walk raw cells, also under an aliased `_`.
    vm.execute_code("{ 5 !_.x  _. >{ !_.  Void !_.x. }  _.x } !f >f")
    assert vm.al == [5]


def test_delete_register_root(vm):
    vm.execute_code(DEREF + "{ 1 !_.a  Void !_.  _. } !f >f >deref")
    assert vm.al == [VOID]
    check_error(vm, "{ 1 !_.a  Void !_.  _.a } !f >f", undefined_register("_.a"), 1, 21)


def test_replace_register_root(vm):
    vm.execute_code("{ 1 !_.a  7 !_.  _ } !f >f")
    assert vm.al == [7]
    check_error(vm, "{ 1 !_.a  7 !_.  _.a } !f >f", undefined_register("_.a"), 1, 18)


# ---------------------------------------------------------------- Registers

def test_register_isolation_between_blocks(vm):
    check_error(vm, "{ 1 !_.x  >{ _.x } } !f >f", undefined_register("_.x"), 1, 14)


def test_register_isolation_caller_unchanged(vm):
    vm.execute_code("{ 1 !_.x  { 2 !_.x } !g >g  _.x } !f >f")
    assert vm.al == [1]


def test_fresh_register_per_execution(vm):
    vm.execute_code("{ 5 !_.x } !set  { _.x } !get  >set")
    # the position is the failing statement inside `get`, from the first program
    check_error(vm, ">get", undefined_register("_.x"), 1, 20)


def test_recursive_invocations_have_own_registers(vm):
    # countdown recursion keeps its own _.n in each activation
    vm.execute_code("""
        { !_.n
          _.n 1 >-  0 _.n ><  { >down }  { !_.drop } >choose  !_.next  >_.next
          _.n
        } !down
        3 >down
    """)
    assert vm.al == [0, 1, 2, 3]


def test_top_level_register_persists_across_execute_code(vm):
    vm.execute_code("7 !_.x")
    vm.execute_code("_.x  8 !_.y.z")
    vm.execute_code("_.y.z")
    assert vm.al == [7, 8]


def test_top_level_register_is_not_a_block_register(vm):
    vm.execute_code("7 !_.x")
    check_error(vm, "{ _.x } !f >f", undefined_register("_.x"), 1, 3)


def test_top_level_register_is_per_vm(vm_factory):
    a, b = vm_factory(False), vm_factory(False)
    a.execute_code("1 !_.x  1 !s")
    with pytest.raises(soma.RuntimeError):
        b.execute_code("_.x")
    with pytest.raises(soma.RuntimeError):
        b.execute_code("s")


def test_register_path_isolated_from_store(vm):
    vm.execute_code("1 !x  { 2 !_.x  x _.x } !f >f")
    assert vm.al == [1, 2]


def test_root_aliasing_context_passing(vm):
    vm.execute_code("{ 1 !_.a  _. >{ !_.  _.a 10 >+ !_.b  3 !_.c.d }  _.b _.c.d } !f >f")
    assert vm.al == [11, 3]


def test_root_aliasing_reads_and_exec(vm):
    vm.execute_code("{ { 5 } !_.g  40 !_  _. >{ !_.  >_.g  _ } } !f >f")
    assert vm.al == [5, 40]


def test_root_aliasing_ref_of_root(vm):
    vm.execute_code("{ _. >{ !_.  _. } } !f >f")
    outer = vm.al[0]
    assert isinstance(outer, CellRef)


def test_root_alias_replace_with_another_ref(vm):
    # docs/semantics.md: `!_.` with a CellRef while `_` holds one replaces the
    # value of the referred cell and drops its children.
    vm.execute_code("{ 7 !_.a  _. >{ !_.  9 !_.b  x. !_. }  _.  x. } !f >f")
    assert isinstance(vm.al[0], CellRef) and vm.al[0] == vm.al[1]
    check_error(vm, "{ 7 !_.a  _. >{ !_.  9 !_.b  x. !_. }  _.b } !f >f",
                undefined_register("_.b"), 1, 40)


def test_inner_block_with_aliased_root_sees_caller_cells(vm):
    vm.execute_code("{ 2 !_.n  _. { !_.  _.n _.n >* !_.n } !_.sq  >_.sq  _.n } !f >f")
    # `_. {...}` left the ref below the block; `!_.sq` stored the block; `>_.sq`
    # popped the ref into its `_`.
    assert vm.al == [4]


# ---------------------------------------------------------------- block / choose / chain

def test_block_pushes_current_block(vm):
    vm.execute_code("{ >block } !f >f  f")
    assert vm.al[0] is vm.al[1]
    assert isinstance(vm.al[0], Block)


def test_block_in_nested_and_after_return(vm):
    vm.execute_code("{ >block >{ >block } >block } !f >f")
    outer, inner, outer_again = vm.al
    assert outer is outer_again and inner is not outer


def test_block_outside_any_block(vm):
    check_error(vm, "1\n >block", ">block called at top-level (no current block)", 2, 2)


def test_block_builtin_value_pushed_without_exec(vm):
    vm.execute_code("block")
    assert isinstance(vm.al[0], soma.Builtin)


@pytest.mark.parametrize("cond,picked", [
    ("True", 1), ("False", 2), ("Nil", 2), ("Void", 2), ("0", 1), ("()", 1),
    ("x.", 1), ("{ }", 1), ("print", 1), ("-1", 1),
])
def test_choose_truthiness(vm, cond, picked):
    vm.execute_code("%s 1 2 >choose" % cond)
    assert vm.al == [picked]


def test_choose_does_not_execute(vm):
    vm.execute_code("True { 1 } { 2 } >choose")
    assert len(vm.al) == 1 and isinstance(vm.al[0], Block)


def test_choose_underflow_leaves_al(vm):
    check_error(vm, "1 2 >choose", "AL underflow: >choose requires 3 values", 1, 5)
    assert vm.al == [1, 2]


def test_chain_with_non_block_first(vm):
    vm.execute_code("5 >chain")
    assert vm.al == [5]
    vm.execute_code("Nil >chain")
    assert vm.al == [5, NIL]


def test_chain_runs_until_top_is_not_a_block(vm):
    vm.execute_code("{ 1 { 2 { 3 } } } >chain")
    assert vm.al == [1, 2, 3]


def test_chain_stops_when_block_is_not_on_top(vm):
    vm.execute_code("{ { 9 } 1 } >chain")
    assert len(vm.al) == 2 and isinstance(vm.al[0], Block) and vm.al[1] == 1


def test_chain_executes_builtins(vm):
    vm.execute_code("3 4 + >chain")
    assert vm.al == [7]
    vm.execute_code("{ 1 2 + } >chain")
    assert vm.al == [7, 3]


def test_chain_loop_is_flat(vm_factory):
    vm = vm_factory(False, max_depth=5)
    # 2,000 rounds of a counting loop stay at depth 1
    vm.execute_code("""
        0 !i
        { i 1 >+ !i   i 2000 ><  >block Nil >choose } >chain
        i
    """)
    assert vm.al == [NIL, 2000]


def test_chain_underflow(vm):
    check_error(vm, ">chain", "AL underflow: >chain requires 1 value (block)", 1, 1)


# ---------------------------------------------------------------- Code.count

def test_code_count_per_execution(pyvm):
    vm = pyvm
    code = vm.compile("{ 1 } !f  >f >f  f >chain  { } >chain")
    vm.run_program(code)
    f_code = code.consts[0].code
    assert code.count == 1
    assert f_code.count == 3
    assert code.consts[1].code.count == 1
    vm.run_program(code)
    assert code.count == 2 and f_code.count == 6


def test_code_count_of_exec_const_and_loops(pyvm):
    vm = pyvm
    code = vm.compile("0 !i { i 1 >+ !i  i 10 ><  >block Nil >choose } >chain  >{ }")
    vm.run_program(code)
    blocks = [c for c in code.consts if isinstance(c, Block)]
    assert [b.code.count for b in blocks] == [10, 1]


def test_code_count_not_shared_between_literals(pyvm):
    vm = pyvm
    code = vm.compile("{ } !a { } !b >a >a >b")
    vm.run_program(code)
    assert [c.code.count for c in code.consts] == [2, 1]


# ---------------------------------------------------------------- errors: catalogue

ERROR_CASES = [
    ("!x", "AL underflow: store requires value on AL", 1),
    ("!x.", "AL underflow: store requires value on AL", 1),
    ("!_.y", "AL underflow: store requires value on AL", 1),
    ("!_", "AL underflow: store requires value on AL", 1),
    ("!_.", "AL underflow: store requires value on AL", 1),
    ("!a.b.", "AL underflow: store requires value on AL", 1),
    ("!_.a.b", "AL underflow: store requires value on AL", 1),
    ("5 !v >v", "Cannot execute int: only Blocks are executable", 6),
    ("(a) !v >v", "Cannot execute str: only Blocks are executable", 8),
    ("x. !v >v", "Cannot execute CellRef: only Blocks are executable", 7),
    ("Nil !v >v", "AL underflow: exec requires executable Block on AL, got NilSingleton", 8),
    (">Void", "AL underflow: exec requires executable Block on AL, got VoidSingleton", 1),
    (">True", "Cannot execute TrueSingleton: only Blocks are executable", 1),
    ("3 !_ >_", "Cannot execute int: only Blocks are executable", 6),
    ("1 !_.v >_.v", "Cannot execute int: only Blocks are executable", 8),
    ("1 !a.b >a.b", "Cannot execute int: only Blocks are executable", 8),
    (">+", "AL underflow: + requires 2 values", 1),
    ("1 >-", "AL underflow: - requires 2 values", 3),
    ("1 >*", "AL underflow: * requires 2 values", 3),
    ("1 >/", "AL underflow: / requires 2 values", 3),
    ("1 >%", "AL underflow: % requires 2 values", 3),
    ("1 ><", "AL underflow: < requires 2 values", 3),
    ("(a) >concat", "AL underflow: concat requires 2 values", 5),
    (">toString", "AL underflow: to_string requires 1 value", 1),
    (">toInt", "AL underflow: to_int requires 1 value", 1),
    (">isVoid", "AL underflow: IsVoid requires 1 value", 1),
    (">isNil", "AL underflow: IsNil requires 1 value", 1),
    (">print", "AL underflow: print requires 1 value", 1),
    (">use", "AL underflow: use requires 1 value (extension name)", 1),
    ("1 (a) >+", "Type error in +: expected int, got int and str", 7),
    ("(a) 1 >-", "Type error in -: expected int, got str and int", 7),
    ("True 1 >*", "Type error in *: expected int, got TrueSingleton and int", 8),
    ("Nil Void >/", "Type error in /: expected int, got NilSingleton and VoidSingleton", 10),
    ("{ } 1 >%", "Type error in %: expected int, got Block and int", 7),
    ("print 1 >+", "Type error in +: expected int, got BuiltinBlock and int", 9),
    ("x. 1 >+", "Type error in +: expected int, got CellRef and int", 6),
    ("1 0 >/", "Division by zero", 5),
    ("1 0 >%", "Modulo by zero", 5),
    ("(a) 0 >/", "Type error in /: expected int, got str and int", 7),
    ("1 (a) ><", "Type mismatch in <: cannot compare int and str", 7),
    ("Nil Nil ><", "Cannot compare type NilSingleton with <", 9),
    ("True False ><", "Type mismatch in <: cannot compare TrueSingleton and FalseSingleton", 12),
    ("1 (a) >concat", "Type error in concat: expected string, got int and str", 7),
    ("Nil >toString", "Type error in to_string: expected int, got NilSingleton", 5),
    ("(5) >toString", "Type error in to_string: expected int, got str", 5),
    ("5 >toInt", "Type error in to_int: expected string, got int", 3),
    (">block", ">block called at top-level (no current block)", 1),
    ("(hi) >debug.error", "ASSERT FAILED: hi", 6),
    ("5 >debug.error", "ASSERT FAILED: 5", 3),
    ("Nil >debug.error", "ASSERT FAILED: Nil", 5),
    ("{ } >debug.error", "ASSERT FAILED: Block(body=[])", 5),
    (">debug.error", "ASSERT FAILED: (no message provided)", 1),
    ("5 >use", "use: expected string extension name, got int", 3),
    ("(nope) >use", "Extension 'nope' not found: No module named 'soma.extensions.nope'", 8),
    ("(a.b) >use", "Extension 'a.b' not found: No module named 'soma.extensions.a'", 7),
    ("() >use", "Extension '' not found: No module named 'soma.extensions.'", 4),
    ("(../x) >use", "Extension '../x' not found: No module named 'soma.extensions.'", 8),
]


@pytest.mark.parametrize("src,message,col", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_error_catalogue_at_top_level(vm, src, message, col):
    check_error(vm, src, message, 1, col)


NESTED_ERROR_CASES = [c for c in ERROR_CASES if c[0] != ">block"]


@pytest.mark.parametrize("src,message,col", NESTED_ERROR_CASES,
                         ids=[c[0] for c in NESTED_ERROR_CASES])
def test_error_catalogue_inside_nested_blocks(vm, src, message, col):
    # Put the failing program on line 3 inside two nested blocks: the position is
    # the failing statement inside the innermost block, not the outer `>f`.
    program = "{\n  >{\n    %s\n  }\n} !f\n>f" % src
    err = check_error(vm, program, message, 3, col + 4)
    assert vm.depth == 0 and vm.current_block is None


def test_read_line_at_end_of_input(vm_factory):
    vm = vm_factory(False, input=lambda: None)
    check_error(vm, "1 !x  >readLine", "read_line: EOF encountered", 1, 7)


def test_builtin_pops_before_type_check(vm):
    err_of(vm, "7 1 (a) >+")
    assert vm.al == [7]
    err_of(vm, "8 1 0 >/")
    assert vm.al == [7, 8]


def test_builtin_underflow_leaves_al_untouched(vm):
    err_of(vm, "9 >+")
    assert vm.al == [9]


def test_error_source_name(vm):
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("{ nope } !f\n>f", "prog.soma")
    err = info.value
    assert err.source == "prog.soma"
    assert (err.line, err.col) == (1, 3)
    assert err.describe() == "prog.soma:1:3: RuntimeError: " + undefined_store("nope")


def test_error_inside_stdlib_word_points_into_stdlib(svm):
    with pytest.raises(soma.RuntimeError) as info:
        svm.execute_code("(a) 1 >max", "user.soma")
    err = info.value
    assert err.message == "Type mismatch in <: cannot compare int and str"
    # the position is the failing `><` inside the stdlib word, so the file must be the stdlib
    assert err.source and err.source.endswith("stdlib.soma")
    with open(err.source, encoding="utf-8") as f:
        line = f.read().split("\n")[err.line - 1]
    assert line[err.col - 1:err.col + 1] == "><"
    assert "!max" in line


def test_error_inside_chained_block_position(vm):
    check_error(vm, "{ 1\n  { (a) 1 >+ } } >chain",
                "Type error in +: expected int, got str and int", 2, 11)


def test_error_in_deep_block_chain_position(vm):
    src = "{ >g } !f\n{ >h } !g\n{ 1 2 3\n   >nope } !h\n>f"
    check_error(vm, src, undefined_store("nope"), 4, 4)


# ---------------------------------------------------------------- errors: recovery

RECOVERY_CASES = [c[0] for c in ERROR_CASES] + [
    "{ >f } !f >f",        # recursion
    "1 2 3 { (x) 1 >+ } !g >g",
]


@pytest.mark.parametrize("bad", RECOVERY_CASES)
def test_vm_keeps_working_after_error(vm_factory, bad):
    vm = vm_factory(False, max_depth=50, input=lambda: None)
    vm.execute_code("1 !before")
    with pytest.raises(soma.RuntimeError):
        vm.execute_code("2 !done.a  { 3 !done.b } >chain  _. !done.reg  %s  4 !after" % bad)
    assert vm.depth == 0
    assert vm.current_block is None
    # completed statements stay, later ones never ran
    vm.al.clear()
    vm.execute_code("before done.a done.b")
    assert vm.al == [1, 2, 3]
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("after")
    assert info.value.message == undefined_store("after")
    # the VM still computes, nests blocks and reports top-level >block errors
    vm.al.clear()
    vm.execute_code("{ { 20 22 >+ } >chain } !k >k")
    assert vm.al == [42]
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code(">block")
    assert info.value.message == ">block called at top-level (no current block)"


def test_error_keeps_partial_block_writes(vm):
    with pytest.raises(soma.RuntimeError):
        vm.execute_code("{ 1 !a  2 !b.c  _.q  3 !d } !f >f")
    vm.execute_code("a b.c")
    assert vm.al == [1, 2]
    with pytest.raises(soma.RuntimeError):
        vm.execute_code("d")


def test_error_keeps_al_contents(vm):
    with pytest.raises(soma.RuntimeError):
        vm.execute_code("1 2 { 3 4 >nope } !f >f")
    assert vm.al == [1, 2, 3, 4]


def test_lex_and_parse_errors_leave_state(vm):
    vm.execute_code("1 !a")
    with pytest.raises(soma.LexError):
        vm.execute_code("2 !a 12ab")
    with pytest.raises(soma.ParseError):
        vm.execute_code("3 !a }")
    vm.execute_code("a")
    assert vm.al == [1]


def test_top_level_register_survives_errors(vm):
    vm.execute_code("5 !_.keep")
    with pytest.raises(soma.RuntimeError):
        vm.execute_code("6 !_.more >nope")
    vm.execute_code("_.keep _.more")
    assert vm.al == [5, 6]


# ---------------------------------------------------------------- recursion limits

def test_recursion_limit_small(vm_factory):
    vm = vm_factory(False, max_depth=25)
    err = check_error(vm, "{ >f } !f\n>f", "recursion too deep (limit 25 nested block executions)",
                      1, 3)
    assert isinstance(err, soma.SomaError)
    assert vm.depth == 0


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_recursion_limit_exact_boundary(vm_factory, limit):
    vm = vm_factory(False, max_depth=limit)
    vm.execute_code(">{ " * limit + "7 " + "} " * limit)
    assert vm.al == [7]
    err = err_of(vm, ">{ " * (limit + 1) + "} " * (limit + 1))
    assert err.message == "recursion too deep (limit %d nested block executions)" % limit
    assert (err.line, err.col) == (1, 3 * limit + 1)


def test_recursion_limit_default(vm):
    err = err_of(vm, "{ 1 >f } !f >f")
    assert err.message == "recursion too deep (limit 10000 nested block executions)"
    assert (err.line, err.col) == (1, 5)
    assert len(vm.al) == 10000
    vm.al.clear()
    vm.execute_code("{ 2 } !g >g")
    assert vm.al == [2]


def test_default_limit_allows_ten_thousand(vm):
    vm.execute_code(">{ " * 10_000 + "1 " + "} " * 10_000)
    assert vm.al == [1]


def test_recursion_through_chain_is_limited(vm_factory):
    vm = vm_factory(False, max_depth=40)
    err = err_of(vm, "{ f >chain } !f >f")
    assert err.message == "recursion too deep (limit 40 nested block executions)"


def test_recursion_through_stdlib_words(vm_factory):
    vm = vm_factory(True, max_depth=200)
    err = err_of(vm, "{ >f } { } !g !f  True f >if")
    assert err.message.startswith("recursion too deep (limit 200")


def test_mutual_recursion_default_limit_is_runtime_error(vm):
    err = err_of(vm, "{ >b } !a { >_.x } !_.x { >a } !b >a")
    assert type(err) is soma.RuntimeError


# ---------------------------------------------------------------- big ints

def test_big_multiplication(vm):
    vm.execute_code("100000000000000000000 3 >*")
    assert vm.al == [3 * 10 ** 20]


def test_big_arithmetic_exact(vm):
    a, b = 2 ** 100 + 7, -(3 ** 70)
    vm.execute_code("%d %d >+ %d %d >- %d %d >* %d %d >/ %d %d >%%" % ((a, b) * 5))
    assert vm.al == [a + b, a - b, a * b, a // b, a % b]


def test_5000_digit_literal_printed_back(run):
    digits = "123456789" * 555 + "12345"
    assert len(digits) == 5000
    vm, out = run("%s >print -%s >print" % (digits, digits))
    assert out == [digits, "-" + digits]


def test_5000_digit_to_string_and_back(vm):
    digits = "9" * 5000
    vm.execute_code("%s >toString !s  s  s >toInt" % digits)
    assert vm.al[0] == digits
    assert vm.al[1] == 10 ** 5000 - 1


def test_big_product_printed(run):
    vm, out = run("1" + "0" * 3000 + " " + "1" + "0" * 3000 + " >* >print")
    assert out == ["1" + "0" * 6000]


@pytest.mark.parametrize("a,b", [(-7, 2), (7, -2), (-7, -2), (7, 2), (-1, 3), (0, -5),
                                 (-(10 ** 30), 7), (10 ** 30, -(10 ** 15) - 1), (-6, 3)])
def test_floor_division_and_modulo(vm, a, b):
    vm.execute_code("%d %d >/ %d %d >%%" % (a, b, a, b))
    assert vm.al == [a // b, a % b]


def test_comparison(vm):
    vm.execute_code("1 2 >< 2 1 >< 2 2 >< (a) (b) >< (b) (a) >< %d %d ><"
                    % (-(10 ** 40), 10 ** 40))
    assert vm.al == [TRUE, FALSE, FALSE, TRUE, FALSE, TRUE]


# ---------------------------------------------------------------- output rendering

def test_print_rendering(run):
    vm, out = run("1 >print (s) >print True >print False >print Nil >print Void >print "
                  "{ } >print print >print x. >print () >print")
    assert out == ["1", "s", "True", "False", "Nil", "Void", "Block(body=[])", "<builtin print>",
                   "CellRef(...)", ""]
    assert vm.al == []


def test_concat_and_to_string(vm):
    vm.execute_code("(a) (b) >concat  -42 >toString  (x) () >concat")
    assert vm.al == ["ab", "-42", "x"]


@pytest.mark.parametrize("text,value", [
    ("12", 12), (" 12 ", 12), ("-3", -3), ("+5", 5), ("1_000", 1000), ("١٢", 12),
    ("a", NIL), ("", NIL), ("1.5", NIL), ("0x10", NIL), ("1 2", NIL),
])
def test_to_int(vm, text, value):
    vm.execute_code("(%s) >toInt" % text)
    assert vm.al == [value]


def test_is_void_is_nil(vm):
    vm.execute_code("Void >isVoid Nil >isVoid Nil >isNil Void >isNil 0 >isNil")
    assert vm.al == [TRUE, FALSE, TRUE, FALSE, FALSE]


def test_debug_type(vm):
    vm.execute_code("1 >debug.type (s) >debug.type True >debug.type False >debug.type "
                    "Nil >debug.type Void >debug.type { } >debug.type print >debug.type "
                    "x. >debug.type")
    assert vm.al == ["Int", "Str", "Bool", "Bool", "Nil", "Void", "Block", "BuiltinBlock",
                     "CellRef"]


def test_debug_id_identity(vm):
    vm.execute_code("a. >debug.id a. >debug.id b. >debug.id")
    assert vm.al[0] == vm.al[1] != vm.al[2]


# ---------------------------------------------------------------- fast paths vs general paths

_INIT = "1 !@a  2 !@b  3 !_.@a  4 !_.@b"


def _random_statements(rnd, depth=0):
    out = []
    for _ in range(rnd.randint(1, 10)):
        k = rnd.random()
        p = ("_.@" if rnd.random() < 0.5 else "@") + rnd.choice("ab")
        q = ("_.@" if rnd.random() < 0.5 else "@") + rnd.choice("ab")
        if k < 0.12:
            out.append(rnd.choice(["1", "2", "Void", "Nil", "(s)"]))
        elif k < 0.22:
            out.append(p)
        elif k < 0.28:
            out.append(p + ".")
        elif k < 0.38:
            out.append("%s. !%s" % (p, q))            # make q hold a CellRef
        elif k < 0.48:
            out.append("%d !%s" % (rnd.randint(5, 9), p))
        elif k < 0.54:
            out.append(rnd.choice(["Void", "7", "Nil"]) + " !" + p + ".")
        elif k < 0.6:
            out.append(">" + p)
        elif k < 0.68 and depth < 2:
            out.append("{\n" + _INIT + "\n" + "\n".join(_random_statements(rnd, depth + 1))
                       + "\n}")
        elif k < 0.74 and depth < 2:
            out.append(">{\n" + _INIT + "\n" + "\n".join(_random_statements(rnd, depth + 1))
                       + "\n}")
        elif k < 0.8:
            out.append(rnd.choice(["_", "_.", "!_", "!_.", "_. >{ !_. 8 !_.@a }"]))
        elif k < 0.86:
            out.append(p + ".x")
        elif k < 0.92:
            out.append("%d !%s.x" % (rnd.randint(5, 9), p))
        elif k < 0.96:
            out.append("Void !%s.x." % p)
        else:
            out.append(">choose")
    return out


def _outcome(vm_factory, src):
    from soma.values import render_al
    vm = vm_factory(False, max_depth=30)
    try:
        vm.execute_code(src)
        return render_al(vm.al), None
    except soma.SomaError as e:
        return render_al(vm.al), (type(e).__name__, e.message.replace("ns.", ""), e.line)


def test_single_component_paths_behave_like_longer_paths(vm_factory):
    """`a` / `_.a` (specialised handlers) against `ns.a` / `_.ns.a` (general walk):
    same AL, same errors (modulo the path text), same lines, on random programs."""
    import random
    for seed in range(500):
        rnd = random.Random(seed)
        prog = _INIT + "\n" + "\n".join(_random_statements(rnd))
        fast = _outcome(vm_factory, prog.replace("@", ""))
        general = _outcome(vm_factory, prog.replace("@", "ns."))
        assert fast == general, "seed %d:\n%s" % (seed, prog.replace("@", ""))


@pytest.mark.parametrize("src,message,col", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_al_after_each_catalogued_error(vm_factory, src, message, col):
    """A builtin's underflow leaves the AL alone; every other error has consumed its
    operands (builtins pop before they check types; `!` pops the value it stores)."""
    from soma.values import render_al
    vm = vm_factory(False, input=lambda: None)
    with pytest.raises(soma.RuntimeError):
        vm.execute_code(src)
    if message.startswith("AL underflow") and not message.startswith(
            ("AL underflow: store ", "AL underflow: exec ")):
        before = vm_factory(False)
        before.execute_code(src.rsplit(" ", 1)[0] if " " in src else "")
        assert render_al(before.al) != "[]" or src.count(" ") == 0
        assert render_al(vm.al) == render_al(before.al)
    else:
        assert vm.al == []
