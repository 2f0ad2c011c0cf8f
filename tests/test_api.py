"""The public Python API: `import soma`, VM options, values on the AL, errors, hooks."""

import builtins
import io
import sys

import pytest

import soma
from wording import undefined_store  # noqa: E402


def test_public_names():
    for name in ["VM", "SomaError", "LexError", "ParseError", "RuntimeError", "TRUE", "FALSE",
                 "NIL", "VOID", "Block", "Builtin", "CellRef"]:
        assert hasattr(soma, name), name
        assert name in soma.__all__
    assert isinstance(soma.__version__, str)


# ---------------------------------------------------------------- stdlib choice

def test_default_vm_has_stdlib():
    vm = soma.VM()
    vm.execute_code("3 >dup 4 >swap")
    assert vm.al == [3, 4, 3]


def test_stdlib_none_is_bundled():
    vm = soma.VM(stdlib=None)
    vm.execute_code("1 2 >max  Nil >list.cons >list.length")
    assert vm.al == [1]


def test_stdlib_false_has_only_builtins():
    vm = soma.VM(stdlib=False)
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code(">dup")
    assert info.value.message == undefined_store("dup")
    vm.execute_code("1 2 >+")
    assert vm.al == [3]


def test_stdlib_path(tmp_path):
    lib = tmp_path / "mini.soma"
    lib.write_text("{ !_.x _.x _.x >* } !square\n) a comment\n7 !_.seed\n", encoding="utf-8")
    vm = soma.VM(stdlib=str(lib))
    vm.execute_code("6 >square  _.seed")
    assert vm.al == [36, 7]
    with pytest.raises(soma.RuntimeError):
        vm.execute_code(">dup")


def test_stdlib_path_with_error_reports_file(tmp_path):
    lib = tmp_path / "bad.soma"
    lib.write_text("1 !ok\n  >nope\n", encoding="utf-8")
    with pytest.raises(soma.RuntimeError) as info:
        soma.VM(stdlib=str(lib))
    err = info.value
    assert (err.line, err.col) == (2, 3)
    assert err.source == str(lib)
    assert err.describe() == "%s:2:3: RuntimeError: %s" % (lib, undefined_store("nope"))


def test_missing_stdlib_path_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        soma.VM(stdlib=str(tmp_path / "nope.soma"))


# ---------------------------------------------------------------- the AL

def test_al_is_a_list_bottom_to_top():
    vm = soma.VM(stdlib=False)
    vm.execute_code("1 (two) True False Nil Void { } x. print")
    al = vm.al
    assert type(al) is list
    assert al[0] == 1 and type(al[0]) is int
    assert al[1] == "two" and type(al[1]) is str
    assert al[2] is soma.TRUE and al[3] is soma.FALSE
    assert al[4] is soma.NIL and al[5] is soma.VOID
    assert isinstance(al[6], soma.Block)
    assert isinstance(al[7], soma.CellRef)
    assert isinstance(al[8], soma.Builtin) and al[8].name == "print"
    assert [repr(v) for v in al[2:6]] == ["True", "False", "Nil", "Void"]


def test_singletons_are_not_python_bools():
    assert soma.TRUE is not True and soma.FALSE is not False
    assert soma.TRUE != True  # noqa: E712 - identity matters, not truthiness
    assert len({soma.TRUE, soma.FALSE, soma.NIL, soma.VOID}) == 4


def test_singletons_pickle_to_themselves():
    import pickle
    for v in (soma.TRUE, soma.FALSE, soma.NIL, soma.VOID):
        assert pickle.loads(pickle.dumps(v)) is v


def test_al_can_be_prepared_from_python():
    vm = soma.VM(stdlib=False)
    vm.al.extend([20, 22])
    vm.execute_code(">+")
    assert vm.al == [42]


def test_al_persists_across_execute_code():
    vm = soma.VM(stdlib=False)
    vm.execute_code("1")
    vm.execute_code("2")
    assert vm.al == [1, 2]


def test_cellref_equality_by_cell():
    vm = soma.VM(stdlib=False)
    vm.execute_code("a. a. b.")
    a1, a2, b = vm.al
    assert a1 == a2 and hash(a1) == hash(a2)
    assert a1 != b
    assert len({a1, a2, b}) == 2


# ---------------------------------------------------------------- errors

def test_error_hierarchy():
    for cls in (soma.LexError, soma.ParseError, soma.RuntimeError):
        assert issubclass(cls, soma.SomaError)
    assert issubclass(soma.SomaError, Exception)
    assert soma.RuntimeError is not builtins.RuntimeError
    assert issubclass(soma.RuntimeError, builtins.RuntimeError)
    assert not issubclass(soma.LexError, builtins.RuntimeError)
    assert not issubclass(soma.LexError, soma.ParseError)


@pytest.mark.parametrize("src,cls,line,col,message", [
    ("1\n 12ab", soma.LexError, 2, 2, "Invalid number '12ab'"),
    ("1\n\n  }", soma.ParseError, 3, 3, "Unexpected '}' without matching '{'"),
    ("1 2\n  >nope", soma.RuntimeError, 2, 3, undefined_store("nope")),
])
def test_errors_carry_position(src, cls, line, col, message):
    vm = soma.VM(stdlib=False)
    with pytest.raises(soma.SomaError) as info:
        vm.execute_code(src, "t.soma")
    err = info.value
    assert type(err) is cls
    assert (err.line, err.col, err.message) == (line, col, message)
    assert str(err) == "%d:%d: %s" % (line, col, message)
    assert err.source == "t.soma"
    assert err.describe() == "t.soma:%d:%d: %s: %s" % (line, col, cls.__name__, message)


def test_error_without_source_name_describes_input():
    vm = soma.VM(stdlib=False)
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("nope")
    assert info.value.describe() == "<input>:1:1: RuntimeError: " + undefined_store("nope")


def test_soma_error_at_keeps_first_position():
    err = soma.RuntimeError("m")
    assert str(err) == "m"
    err.at(3, 4).at(5, 6)
    assert (err.line, err.col) == (3, 4)
    assert str(err) == "3:4: m"


# ---------------------------------------------------------------- I/O hooks

def test_output_hook():
    lines = []
    vm = soma.VM(stdlib=False, output=lines.append)
    vm.execute_code("(a) >print 12 >print (multi\nline) >print")
    assert lines == ["a", "12", "multi\nline"]


def test_default_output_is_stdout(capsys):
    vm = soma.VM(stdlib=False)
    vm.execute_code("(hello) >print 5 >print")
    assert capsys.readouterr().out == "hello\n5\n"


def test_input_hook():
    feed = iter(["first", "", "third"])
    vm = soma.VM(stdlib=False, input=lambda: next(feed, None))
    vm.execute_code(">readLine >readLine >readLine")
    assert vm.al == ["first", "", "third"]
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code(" >readLine")
    assert info.value.message == "read_line: EOF encountered"
    assert (info.value.line, info.value.col) == (1, 2)
    assert vm.al == ["first", "", "third"]


def test_default_input_is_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("one\ntwo\n\nlast"))
    vm = soma.VM(stdlib=False)
    vm.execute_code(">readLine >readLine >readLine >readLine")
    assert vm.al == ["one", "two", "", "last"]
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code(">readLine")
    assert info.value.message == "read_line: EOF encountered"


def test_echo_program_with_hooks():
    out = []
    feed = iter(["x", "y"])
    vm = soma.VM(output=out.append, input=lambda: next(feed, None))
    vm.execute_code(">readLine >readLine >concat >print")
    assert out == ["xy"]


# ---------------------------------------------------------------- lookup

def test_lookup():
    vm = soma.VM(stdlib=False)
    vm.execute_code("5 !a.b  { } !f  a.c.  t. !r  9 !r.k")
    assert vm.lookup("a.b") == 5
    assert vm.lookup("a") is soma.VOID
    assert vm.lookup("a.c") is soma.VOID
    assert isinstance(vm.lookup("f"), soma.Block)
    assert vm.lookup("True") is soma.TRUE
    assert isinstance(vm.lookup("+"), soma.Builtin)
    assert vm.lookup("r.k") == 9        # follows the CellRef in r, as a read does
    with pytest.raises(soma.RuntimeError) as info:
        vm.lookup("a.nope")
    assert info.value.message == undefined_store("a.nope")


def test_lookup_sees_stdlib_words():
    vm = soma.VM()
    assert isinstance(vm.lookup("dup"), soma.Block)
    assert isinstance(vm.lookup("list.map"), soma.Block)


# ---------------------------------------------------------------- extension builtins

def test_register_extension_builtin_sees_python_values():
    seen = []

    def grab(vm):
        seen.append(list(vm.al))
        b = vm.al.pop()
        a = vm.al.pop()
        vm.al.append(a * 10 + b)

    vm = soma.VM(stdlib=False)
    vm.register_extension_builtin("use.t.combine", grab)
    vm.execute_code("(s) True Nil 4 2 >use.t.combine")
    assert seen == [["s", soma.TRUE, soma.NIL, 4, 2]]
    assert vm.al == ["s", soma.TRUE, soma.NIL, 42]
    assert isinstance(vm.lookup("use.t.combine"), soma.Builtin)


def test_builtin_can_push_foreign_objects():
    out = []
    vm = soma.VM(stdlib=False, output=out.append)
    vm.register_extension_builtin("use.t.flt", lambda vm: vm.al.append(2.5))
    vm.execute_code(">use.t.flt >use.t.flt >debug.type >use.t.flt >print")
    assert vm.al == [2.5, "float"]
    assert out == ["2.5"]


@pytest.mark.parametrize("name", ["x", "use", "use.", "use..a", "usex.a", "", "a.use.b",
                                  ".use.a"])
def test_extension_builtin_name_must_be_under_use(name):
    vm = soma.VM(stdlib=False)
    with pytest.raises(ValueError):
        vm.register_extension_builtin(name, lambda vm: None)


@pytest.mark.parametrize("exc", [
    KeyError("k"), ZeroDivisionError("division by zero"), ValueError("bad"),
    builtins.RuntimeError("host"),
])
def test_python_exception_in_builtin_keeps_its_class_and_gets_a_position(exc):
    def boom(vm):
        raise exc

    vm = soma.VM(stdlib=False)
    vm.register_extension_builtin("use.t.boom", boom)
    with pytest.raises(type(exc)) as info:
        vm.execute_code("1\n { 2 >use.t.boom } !f >f", "x.soma")
    err = info.value
    assert err is exc and not isinstance(err, soma.SomaError)
    assert (err.soma_line, err.soma_col) == (2, 6)
    assert err.soma_source == "x.soma"
    assert soma.errors.describe(err) == "x.soma:2:6: %s: %s" % (type(exc).__name__, exc)
    assert vm.depth == 0 and vm.current_block is None
    vm.execute_code("3")
    assert vm.al == [1, 2, 3]


def test_soma_error_raised_by_builtin_gets_position():
    def fail(vm):
        raise soma.RuntimeError("custom failure")

    vm = soma.VM(stdlib=False)
    vm.register_extension_builtin("use.t.fail", fail)
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("1 2\n   >use.t.fail")
    assert (info.value.line, info.value.col) == (2, 4)
    assert info.value.message == "custom failure"


def test_builtin_may_run_soma_code():
    def twice(vm):
        vm.execute_code("(nested) !from.builtin")
        vm.execute_code("1 1 >+")

    vm = soma.VM(stdlib=False)
    vm.register_extension_builtin("use.t.twice", twice)
    vm.execute_code("{ >use.t.twice } !f >f from.builtin")
    assert vm.al == [2, "nested"]


# ---------------------------------------------------------------- compile / run_program / files

def test_compile_and_run_program():
    vm = soma.VM(stdlib=False)
    code = vm.compile("1 !_.n  _.n 1 >+")
    vm.run_program(code)
    vm.run_program(code)
    assert vm.al == [2, 2]


def test_code_count_counts_program_runs(python_vm_factory):
    vm = python_vm_factory(False)
    code = vm.compile("1")
    vm.run_program(code)
    vm.run_program(code)
    assert code.count == 2


def test_execute_file(tmp_path):
    path = tmp_path / "p.soma"
    path.write_text("(from file) !msg\n  >nope\n", encoding="utf-8")
    vm = soma.VM(stdlib=False)
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_file(str(path))
    assert info.value.source == str(path)
    assert (info.value.line, info.value.col) == (2, 3)
    vm.execute_code("msg")
    assert vm.al == ["from file"]


def test_vms_are_independent():
    a, b = soma.VM(stdlib=False), soma.VM(stdlib=False)
    a.execute_code("1 !x 5")
    assert b.al == []
    with pytest.raises(soma.RuntimeError):
        b.execute_code("x")
