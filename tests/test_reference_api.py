"""The Python API that extensions written for the reference VM use, and the math extension.

Runs on the tier SOMA_JIT selects (scripts/test-all.sh runs this file on each).
"""

import builtins
import sys
import types

import pytest

import soma
import soma.vm
from soma.values import FALSE, NIL, TRUE, VOID


def test_soma_vm_exposes_the_reference_names():
    assert soma.vm.Void is VOID and soma.vm.Nil is NIL
    assert soma.vm.True_ is TRUE and soma.vm.False_ is FALSE
    kinds = [soma.vm.VoidSingleton, soma.vm.NilSingleton, soma.vm.TrueSingleton,
             soma.vm.FalseSingleton]
    assert len(set(kinds)) == 4
    for value, kind in zip((VOID, NIL, TRUE, FALSE), kinds):
        assert type(value) is kind
        assert [isinstance(value, k) for k in kinds].count(True) == 1
    assert soma.vm.RuntimeError is soma.RuntimeError
    assert issubclass(soma.vm.RuntimeError, builtins.RuntimeError)
    assert soma.vm.BuiltinBlock is soma.Builtin and soma.vm.CellRef is soma.CellRef


def test_run_soma_program_returns_the_al():
    assert soma.vm.run_soma_program("2 3 >+ (x) Void") == [5, "x", VOID]


def test_load_stdlib_false_means_no_stdlib():
    vm = soma.vm.VM(load_stdlib=False)
    with pytest.raises(soma.RuntimeError, match="Undefined Store path: 'dup'"):
        vm.execute_code(">dup")


def test_load_stdlib_later_and_only_once():
    vm = soma.vm.VM(load_stdlib=False)
    vm._load_stdlib()
    vm.execute_code("{ 1 } !dup")        # a redefinition the second call must not undo
    vm._load_stdlib()
    vm.execute_code("5 >dup 2 >swap")
    assert vm.al == [5, 2, 1]
    vm = soma.vm.VM()
    vm.execute_code("{ 7 } !dup")
    vm._load_stdlib()                      # loaded by the constructor already
    vm.execute_code(">dup")
    assert vm.al == [7]


def test_store_paths_for_python_code():
    vm = soma.VM(stdlib=False)
    vm.store.write_value(["a", "b", "c"], 42)
    assert vm.store.read_value(["a", "b", "c"]) == 42
    assert vm.store.read_value(["a", "b"]) is VOID      # auto-vivified parent
    vm.store.write_value(["v"], VOID)                   # Void is an ordinary value here
    assert vm.store.read_value(["v"]) is VOID
    vm.store.write_value(["items"], [1, 2])             # a Python object stays itself
    assert vm.store.read_value(["items"]) == [1, 2]
    vm.execute_code("a.b.c 1 >+ !a.b.c")
    assert vm.store.read_value(["a", "b", "c"]) == 43
    with pytest.raises(soma.RuntimeError, match="Undefined Store path: 'never.set'"):
        vm.store.read_value(["never", "set"])
    with pytest.raises(ValueError):
        vm.store.read_value([])
    with pytest.raises(ValueError):
        vm.store.write_value(["a.b"], 1)


def test_store_write_goes_through_a_cellref_as_soma_does():
    vm = soma.VM(stdlib=False)
    vm.execute_code("1 !target  target. !ref")
    vm.store.write_value(["ref"], 7)
    assert vm.lookup("target") == 7


def test_register_paths_for_python_code():
    vm = soma.VM(stdlib=False)
    vm.register.write_value(["_", "temp"], VOID)
    assert vm.register.read_value(["_", "temp"]) is VOID
    vm.register.write_value(["_"], 5)
    assert vm.register.read_value(["_"]) == 5
    vm.execute_code("_.temp _")
    assert vm.al == [VOID, 5]
    with pytest.raises(soma.RuntimeError, match="Undefined Register path"):
        vm.register.read_value(["_", "missing"])
    with pytest.raises(ValueError):
        vm.register.read_value(["x"])


@pytest.fixture
def extension_module(monkeypatch):
    """Install a module as soma.extensions.<name> for the test."""
    def install(name, **attrs):
        module = types.ModuleType("soma.extensions." + name)
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, module.__name__, module)
        return module
    return install


def test_get_soma_setup_hook_runs(extension_module):
    def shout(vm):
        vm.al.append(vm.al.pop().upper())

    extension_module(
        "refstyle",
        register=lambda vm: vm.register_extension_builtin("use.refstyle.shout", shout),
        get_soma_setup=lambda: "{ >use.refstyle.shout (!) >concat } !loud")
    vm = soma.VM(stdlib=False)
    vm.execute_code("(refstyle) >use (hi) >loud")
    assert vm.al == ["HI!"]


def test_our_soma_setup_hook_still_runs(extension_module):
    extension_module("ourstyle", register=lambda vm: None,
                     soma_setup=lambda: "7 !use.ourstyle.seven")
    vm = soma.VM(stdlib=False)
    vm.execute_code("(ourstyle) >use use.ourstyle.seven")
    assert vm.al == [7]


@pytest.mark.parametrize("exc_type", [TypeError, ValueError, KeyError])
def test_extension_exception_keeps_its_class(extension_module, exc_type):
    def fail(vm):
        raise exc_type("from the extension")

    extension_module("failing", register=lambda vm: vm.register_extension_builtin(
        "use.failing.now", fail))
    vm = soma.VM(stdlib=False)
    with pytest.raises(exc_type) as info:
        vm.execute_code("(failing) >use\n 1 >use.failing.now")
    assert (info.value.soma_line, info.value.soma_col) == (2, 4)
    vm.execute_code("2")
    assert vm.al == [1, 2]


# -- the math extension --------------------------------------------------------

@pytest.mark.parametrize("program,al", [
    ("-5 >use.math.abs 7 >use.math.abs 0 >use.math.abs", [5, 7, 0]),
    ("3 9 >use.math.max 9 3 >use.math.max 3 9 >use.math.min 9 3 >use.math.min", [9, 9, 3, 3]),
    ("-4 >use.math.square -3 >use.math.cube", [16, -27]),
    ("-3 >use.math.isEven -3 >use.math.isOdd 0 >use.math.isEven 4 >use.math.isOdd",
     [FALSE, TRUE, TRUE, FALSE]),
])
def test_math_words(program, al):
    for stdlib in (None, False):      # core builtins only: works without the stdlib
        vm = soma.VM(stdlib=stdlib)
        vm.execute_code("(math) >use " + program)
        assert vm.al == al


def test_math_words_need_ints():
    vm = soma.VM(stdlib=False)
    with pytest.raises(soma.RuntimeError, match="Type error in \\*"):
        vm.execute_code("(math) >use (x) >use.math.square")
