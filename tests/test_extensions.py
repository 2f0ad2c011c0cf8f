"""The `python` and `load` extensions, and the `use` mechanism."""

import os
import sys
import types

import pytest

import soma
from soma import FALSE, NIL, TRUE, VOID


@pytest.fixture
def pvm(vm_factory):
    """A stdlib VM with the python extension loaded."""
    vm = vm_factory(True)
    vm.execute_code("(python) >use")
    return vm


@pytest.fixture
def bare_pvm(vm_factory):
    """A VM without the stdlib, with the python extension loaded."""
    vm = vm_factory(False)
    vm.execute_code("(python) >use")
    return vm


# ---------------------------------------------------------------- use.python.call

@pytest.mark.parametrize("src,result", [
    ("Void (abc) (str.upper)", "ABC"),
    ("Void -5 (abs)", 5),
    ("Void 16 (math.sqrt)", 4.0),
    ("Void 3 9 4 (max)", 9),
    ("Void (a) (b) (c) (os.path.join)", os.path.join("a", "b", "c")),
    ("Void (x,y) (,) (str.split)", ["x", "y"]),
    ("Void 2 10 (pow)", 1024),
    ("Void (len)", None),  # len() without arguments raises: see below
])
def test_call_success(pvm, src, result):
    pvm.execute_code(src + " >use.python.call")
    if result is None:
        assert pvm.al[0] is VOID and isinstance(pvm.al[1], TypeError)
        return
    assert pvm.al == [result, VOID]


def test_call_arguments_in_push_order(pvm):
    pvm.execute_code("Void 10 3 (divmod) >use.python.call")
    assert pvm.al == [(3, 1), VOID]


def test_call_leaves_values_below_the_void(pvm):
    pvm.execute_code("1 2 Void (x) (str.upper) >use.python.call")
    assert pvm.al == [1, 2, "X", VOID]


def test_call_converts_none_and_bools(pvm):
    pvm.execute_code("Void 1 (bool) >use.python.call  Void 0 (bool) >use.python.call "
                     "Void (x) (str.strip) >use.python.call")
    assert pvm.al == [TRUE, VOID, FALSE, VOID, "x", VOID]
    pvm.al.clear()
    pvm.execute_code("Void (abc) (str.isdigit) >use.python.call")
    assert pvm.al == [FALSE, VOID]


def test_call_returning_none_pushes_void(pvm, capsys):
    pvm.execute_code("Void (hi) (print) >use.python.call")
    assert pvm.al == [VOID, VOID]
    assert capsys.readouterr().out == "hi\n"


def test_call_raising_pushes_void_and_exception(pvm):
    pvm.execute_code("Void (x) (int) >use.python.call")
    assert pvm.al[0] is VOID
    exc = pvm.al[1]
    assert isinstance(exc, ValueError)
    assert "invalid literal" in str(exc)
    pvm.execute_code(">debug.type")
    assert pvm.al[-1] == "ValueError"


def test_call_non_callable_pushes_exception(pvm):
    pvm.execute_code("Void (math.pi) >use.python.call")
    assert pvm.al[0] is VOID and isinstance(pvm.al[1], TypeError)


@pytest.mark.parametrize("name", ["nope_zz", "nomod_zz.f", "math.nope_zz", "str.nope_zz",
                                  "x.", ""])
def test_call_unknown_name_pushes_void_and_str(pvm, name):
    pvm.execute_code("7 Void 1 (%s) >use.python.call" % name)
    assert pvm.al[:2] == [7, VOID]
    assert type(pvm.al[2]) is str and pvm.al[2]
    assert len(pvm.al) == 3


@pytest.mark.parametrize("name", [".x", ".os.path", "..", "a..b", "os..path"])
def test_call_malformed_name_pushes_void_and_str(pvm, name):
    # A name that cannot be resolved is reported on the AL, never raised.
    pvm.execute_code("7 Void 1 (%s) >use.python.call" % name)
    assert pvm.al[:2] == [7, VOID]
    assert type(pvm.al[2]) is str
    assert len(pvm.al) == 3


def test_call_errors(pvm):
    with pytest.raises(soma.RuntimeError) as info:
        pvm.execute_code("5 >use.python.call")
    assert info.value.message == "use.python.call: expected string callable name, got int"
    pvm.al.clear()
    with pytest.raises(soma.RuntimeError) as info:
        pvm.execute_code("1 2 (max) >use.python.call")
    assert info.value.message == "AL underflow: use.python.call requires Void terminator"
    with pytest.raises(soma.RuntimeError) as info:
        pvm.execute_code(">use.python.call")
    assert info.value.message == "AL underflow: use.python.call requires callable name"


def test_foreign_object_roundtrip(vm_factory):
    out = []
    vm = vm_factory(True, output=out.append)
    vm.execute_code("(python) >use  Void (abc) (tuple) >use.python.call !_.err !_.t "
                    "_.t >print  _.t >debug.type  Void _.t (len) >use.python.call  _.err")
    assert out == ["('a', 'b', 'c')"]
    assert vm.al == ["tuple", 3, VOID, VOID]


# ---------------------------------------------------------------- use.python.import / load

def test_import(pvm):
    pvm.execute_code("(json) >use.python.import  (no_such_module_zz) >use.python.import "
                     "(os.path) >use.python.import")
    assert pvm.al == [TRUE, FALSE, TRUE]


@pytest.mark.parametrize("name", ["", ".x", "..", "a..b"])
def test_import_of_malformed_name_is_false(pvm, name):
    pvm.execute_code("(%s) >use.python.import" % name)
    assert pvm.al == [FALSE]


def test_import_type_error(pvm):
    with pytest.raises(soma.RuntimeError) as info:
        pvm.execute_code("5 >use.python.import")
    assert info.value.message == "use.python.import: expected string module name, got int"


def test_python_load(pvm, tmp_path):
    f = tmp_path / "lib.soma"
    f.write_text("{ 2 >* } !double\n21 >double !answer\n", encoding="utf-8")
    pvm.execute_code("(%s) >use.python.load  answer" % f)
    assert pvm.al == [42]


def test_python_load_errors(pvm, tmp_path):
    missing = tmp_path / "missing.soma"
    with pytest.raises(soma.RuntimeError) as info:
        pvm.execute_code("(%s) >use.python.load" % missing)
    assert info.value.message == "use.python.load: file not found: %s" % missing
    with pytest.raises(soma.RuntimeError) as info:
        pvm.execute_code("(%s) >use.python.load" % tmp_path)
    assert info.value.message.startswith("use.python.load: cannot read %s" % tmp_path)
    bad = tmp_path / "bad.soma"
    bad.write_text("1\n 2 >nope\n", encoding="utf-8")
    with pytest.raises(soma.RuntimeError) as info:
        pvm.execute_code("(%s) >use.python.load" % bad)
    assert (info.value.source, info.value.line, info.value.col) == (str(bad), 2, 4)


# ---------------------------------------------------------------- helpers

def test_helpers_after_success(pvm):
    pvm.execute_code("Void (ab) (str.upper) >use.python.call !_.e !_.r "
                     "_.e >use.python.succeeded  _.e >use.python.failed "
                     "_.r _.e >use.python.getResult  _.r _.e >use.python.getException")
    assert pvm.al == [TRUE, FALSE, "AB", VOID]


def test_helpers_after_failure(pvm):
    pvm.execute_code("Void (x) (int) >use.python.call !_.e !_.r "
                     "_.e >use.python.succeeded  _.e >use.python.failed "
                     "_.r _.e >use.python.getResult  _.r _.e >use.python.getException")
    assert pvm.al[:3] == [FALSE, TRUE, VOID]
    assert isinstance(pvm.al[3], ValueError)


def test_helpers_work_without_the_stdlib(bare_pvm):
    # The extension's own helpers may not depend on stdlib words (not, drop, swap).
    bare_pvm.execute_code("Void (x) (int) >use.python.call !_.e !_.r "
                          "_.e >use.python.succeeded  _.e >use.python.failed "
                          "_.r _.e >use.python.getResult  _.r _.e >use.python.getException")
    assert bare_pvm.al[:3] == [FALSE, TRUE, VOID]
    assert isinstance(bare_pvm.al[3], ValueError)


def test_helpers_are_blocks(pvm):
    for name in ("succeeded", "failed", "getResult", "getException"):
        assert isinstance(pvm.lookup("use.python." + name), soma.Block)
    for name in ("call", "import", "load"):
        assert isinstance(pvm.lookup("use.python." + name), soma.Builtin)


# ---------------------------------------------------------------- load extension

def test_load_from_cwd(vm_factory, tmp_path, monkeypatch):
    (tmp_path / "here.soma").write_text("6 !here  _.x\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOMA_LIB", raising=False)
    vm = vm_factory(False)
    vm.execute_code("(load) >use  3 !_.x  (here.soma) >load  here")
    # a loaded file runs as top-level code: it shares the top-level Register
    assert vm.al == [3, 6]


def test_load_from_soma_lib(vm_factory, tmp_path, monkeypatch):
    lib1, lib2 = tmp_path / "l1", tmp_path / "l2"
    lib1.mkdir()
    lib2.mkdir()
    (lib2 / "m.soma").write_text("(from lib2) !where\n", encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("SOMA_LIB", os.pathsep.join([str(tmp_path / "absent"), str(lib1),
                                                     str(lib2)]))
    vm = vm_factory(False)
    vm.execute_code("(load) >use  (m.soma) >load  where")
    assert vm.al == ["from lib2"]


def test_load_prefers_cwd_over_soma_lib(vm_factory, tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "m.soma").write_text("(lib) !where\n", encoding="utf-8")
    (tmp_path / "m.soma").write_text("(cwd) !where\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOMA_LIB", str(lib))
    vm = vm_factory(False)
    vm.execute_code("(load) >use  (m.soma) >load  where")
    assert vm.al == ["cwd"]


def test_load_from_inside_a_block(vm_factory, tmp_path, monkeypatch):
    (tmp_path / "w.soma").write_text("{ 99 } !word\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    vm = vm_factory(True)
    vm.execute_code("(load) >use  { (w.soma) >load >word } !go >go")
    assert vm.al == [99]


def test_load_errors(vm_factory, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOMA_LIB", str(tmp_path / "nothing"))
    vm = vm_factory(False)
    vm.execute_code("(load) >use")
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("(zz.soma) >load")
    assert info.value.message == \
        "load: 'zz.soma' not found in the current directory or SOMA_LIB"
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("5 >load")
    assert info.value.message == "load: expected string file name, got int"
    vm.al.clear()
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code(">load")
    assert info.value.message == "AL underflow: load requires 1 value"


def test_error_inside_loaded_file_points_into_it(vm_factory, tmp_path, monkeypatch):
    (tmp_path / "e.soma").write_text("1 !ok\n\n   (a) 1 >+\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    vm = vm_factory(False)
    vm.execute_code("(load) >use")
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("(e.soma) >load")
    err = info.value
    assert (err.line, err.col) == (3, 10)
    assert err.source == "e.soma"
    vm.execute_code("ok")
    assert vm.al[-1] == 1


# ---------------------------------------------------------------- use

def test_unknown_extension(vm):
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("(x) >use")
    assert info.value.message == "Extension 'x' not found: No module named 'soma.extensions.x'"
    assert (info.value.line, info.value.col) == (1, 5)


# The module named is the one Python's import reports missing, as in the reference.
@pytest.mark.parametrize("name,missing", [
    ("no_such_ext_zz", "no_such_ext_zz"), ("a.b", "a"), ("../python", ""),
    ("python/x", "python/x"), ("1x", "1x"), (" ", " "), ("", "")])
def test_unknown_extension_names(vm, name, missing):
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("(%s) >use" % name)
    assert info.value.message == ("Extension '%s' not found: No module named "
                                  "'soma.extensions.%s'" % (name, missing))


def test_use_type_error(vm):
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("Nil >use")
    assert info.value.message == "use: expected string extension name, got NilSingleton"


def test_loading_twice_is_a_no_op(svm):
    svm.execute_code("(python) >use  1 !use.python.succeeded  (python) >use "
                     "use.python.succeeded")
    assert svm.al == [1]
    assert "python" in svm.loaded_extensions


def test_loading_twice_in_one_program_keeps_builtins(vm):
    vm.execute_code("(load) >use (load) >use (python) >use (load) >use")
    assert isinstance(vm.lookup("use.load.file"), soma.Builtin)
    assert isinstance(vm.lookup("load"), soma.Block)
    assert vm.loaded_extensions == {"load", "python"}


def test_extensions_are_per_vm(vm_factory):
    a, b = vm_factory(False), vm_factory(False)
    a.execute_code("(python) >use")
    with pytest.raises(soma.RuntimeError):
        b.execute_code("use.python.call")


def test_extension_module_protocol(vm, monkeypatch):
    calls = []
    mod = types.ModuleType("soma.extensions.fake_zz")

    def register(machine):
        calls.append("register")
        machine.register_extension_builtin("use.fake_zz.hi", lambda m: m.al.append("hi"))

    def soma_setup():
        calls.append("setup")
        return "{ >use.fake_zz.hi >use.fake_zz.hi } !use.fake_zz.twice"

    mod.register = register
    mod.soma_setup = soma_setup
    monkeypatch.setitem(sys.modules, "soma.extensions.fake_zz", mod)
    vm.execute_code("(fake_zz) >use  >use.fake_zz.twice  (fake_zz) >use")
    assert vm.al == ["hi", "hi"]
    assert calls == ["register", "setup"]


def test_extension_without_register_hook(vm, monkeypatch):
    monkeypatch.setitem(sys.modules, "soma.extensions.hookless_zz",
                        types.ModuleType("soma.extensions.hookless_zz"))
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("(hookless_zz) >use")
    assert info.value.message == "Extension 'hookless_zz' has no register(vm) hook"
    assert "hookless_zz" not in vm.loaded_extensions
