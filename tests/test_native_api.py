"""The Python API and every extension on the native-state backend (soma.native.NativeVM).

These tests build NativeVMs directly, whatever SOMA_JIT says, and are skipped when the
extension `soma._native` is not built. The JIT threshold follows SOMA_JIT_THRESHOLD.
"""

import contextlib
import gc
import io
import os
import weakref

import pytest

import soma
import soma.vm
from soma import native
from wording import undefined_store  # noqa: E402

pytestmark = pytest.mark.skipif(not native.available(), reason="soma._native is not built")


class PurePythonVM(soma.vm.VM):
    """The pure-Python tier whatever SOMA_JIT says (VM.__new__ only redirects soma.VM)."""


def nvm(**kwargs):
    kwargs.setdefault("stdlib", False)
    return native.NativeVM(**kwargs)


# ---------------------------------------------------------------- backend selection

@pytest.mark.parametrize("value", ["0", "off", "python"])
def test_soma_jit_0_is_the_pure_python_vm(monkeypatch, value):
    monkeypatch.setenv("SOMA_JIT", value)
    vm = soma.VM(stdlib=False)
    assert type(vm) is soma.vm.VM


def test_soma_jit_1_is_native(monkeypatch):
    monkeypatch.setenv("SOMA_JIT", "1")
    vm = soma.VM(stdlib=False)
    assert isinstance(vm, native.NativeVM) and isinstance(vm, soma.VM)


def test_unset_picks_native_when_built(monkeypatch):
    monkeypatch.delenv("SOMA_JIT", raising=False)
    assert isinstance(soma.VM(stdlib=False), native.NativeVM)


def test_unset_falls_back_to_python_without_the_extension(monkeypatch):
    monkeypatch.delenv("SOMA_JIT", raising=False)
    monkeypatch.setattr(native, "_native", None)
    assert type(soma.VM(stdlib=False)) is soma.vm.VM


def test_soma_jit_1_without_the_extension_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("SOMA_JIT", "1")
    monkeypatch.setattr(native, "_native", None)
    with pytest.raises(ImportError) as info:
        soma.VM(stdlib=False)
    assert "pip install -e ." in str(info.value) and "setup.sh" in str(info.value)


def test_threshold_switch(monkeypatch):
    monkeypatch.setenv("SOMA_JIT_THRESHOLD", "off")
    assert nvm().backend == "native"
    monkeypatch.setenv("SOMA_JIT_THRESHOLD", "5")
    assert nvm().backend == "native+jit"
    monkeypatch.setenv("SOMA_JIT_THRESHOLD", "soon")
    with pytest.raises(ValueError):
        nvm()


def test_subclasses_of_vm_stay_python():
    class Mine(soma.vm.VM):
        pass
    assert type(Mine(stdlib=False)) is Mine


# ---------------------------------------------------------------- values

@pytest.mark.parametrize("n", [0, 1, -1, 2**47 - 1, 2**47, -2**47, -2**47 - 1, 2**63,
                               -2**63 - 1, 10**100, -10**100, 7**5000])
def test_ints_cross_exactly(n):
    vm = nvm()
    vm.al.append(n)
    vm.execute_code("!x x x 0 >+")
    assert vm.al == [n, n]
    assert vm.lookup("x") == n and type(vm.lookup("x")) is int


def test_big_int_arithmetic_is_exact():
    vm = nvm()
    vm.execute_code("99999999999999999999 99999999999999999999 >*  140737488355327 1 >+")
    assert vm.al == [99999999999999999999 ** 2, 2**47]


@pytest.mark.parametrize("s", ["", "abc", "h\u00e9llo \u2603 \U0001f600", "a\nb"])
def test_strings_cross(s):
    vm = nvm()
    vm.al.append(s)
    vm.execute_code("!s s s (!) >concat")
    assert vm.al == [s, s + "!"]


def test_singletons_are_the_soma_objects():
    vm = nvm()
    vm.execute_code("True False Nil Void")
    assert [v is w for v, w in zip(vm.al, (soma.TRUE, soma.FALSE, soma.NIL, soma.VOID))] \
        == [True] * 4
    vm.al.extend([soma.TRUE, soma.VOID])
    vm.execute_code(">isVoid")
    assert vm.al[-2:] == [soma.TRUE, soma.TRUE]


def test_block_identity_is_one_object_per_literal():
    vm = nvm()
    vm.execute_code("{ 1 } !f  f f  { 1 }")
    a, b, c = vm.al
    assert a is b and a is not c
    assert a is vm.lookup("f")
    assert isinstance(a, soma.Block)
    vm.al.clear()
    vm.al.append(a)
    vm.execute_code("!g >g")
    assert vm.al == [1] and vm.lookup("g") is a


def test_block_count_and_current_block():
    vm = nvm()
    seen = []
    vm.register_extension_builtin("use.t.cur", lambda v: seen.append(v.current_block))
    vm.execute_code("{ >use.t.cur } !f >f >use.t.cur")
    assert seen == [vm.lookup("f"), None]


def test_cellrefs_are_soma_cellrefs_with_identity():
    vm = nvm()
    vm.execute_code("a.b. a.b. c.")
    r1, r2, r3 = vm.al
    assert isinstance(r1, soma.CellRef)
    assert r1 == r2 and r1 != r3 and hash(r1) == hash(r2)
    vm.al.clear()
    vm.al.append(r1)
    vm.execute_code("!r 7 !r.x  a.b.x")
    assert vm.al == [7]


def test_cellref_keeps_its_cell_alive_from_python():
    vm = nvm()
    vm.execute_code("{ 5 !_.v _. } !mk >mk")
    ref = vm.al.pop()
    vm.execute_code("Nil !mk")
    vm._m.collect()
    vm.al.append(ref)
    vm.execute_code("!r r.v")
    assert vm.al[-1] == 5


def test_builtins_are_soma_builtins_with_identity():
    vm = nvm()
    plus = vm.lookup("+")
    assert isinstance(plus, soma.Builtin) and plus.name == "+"
    assert vm.lookup("+") is plus
    vm.al.extend([2, 3, plus])
    vm.execute_code("!p >p")
    assert vm.al == [5]
    vm.al.extend([4, 5])
    plus.fn(vm)                 # a native builtin called from Python
    assert vm.al == [5, 9]


def test_python_builtin_object_pushed_from_python_runs():
    vm = nvm()
    double = soma.Builtin("double", lambda v: v.al.append(v.al.pop() * 2))
    vm.al.extend([21, double])
    vm.execute_code("!d >d d")
    assert vm.al[0] == 42 and vm.al[1] is double


def test_foreign_objects_keep_identity_and_are_released():
    class Thing:
        pass
    vm = nvm()
    t = Thing()
    lst = [1, 2]
    vm.al.extend([t, lst, 2.5, soma.Block(None)])
    vm.execute_code("!d !c !b !a a b c d >debug.type")
    assert vm.al[0] is t and vm.al[1] is lst and vm.al[2] == 2.5
    assert vm.al[3] == "Block"
    w = weakref.ref(t)
    vm.al.clear()
    vm.execute_code("Nil !a")
    del t
    vm._m.collect()
    gc.collect()
    assert w() is None


def test_foreign_print_is_repr_and_type_names():
    out = []
    vm = nvm(output=out.append)
    vm.al.extend([[1, "x"], 1.5, {"k": 1}])
    vm.execute_code("!d !f !l  l >print f >print  l >debug.type d >debug.type f >debug.type")
    assert out == ["[1, 'x']", "1.5"]
    assert vm.al[-3:] == ["List", "Dict", "float"]


# ---------------------------------------------------------------- vm.al

def test_al_is_a_list_kept_in_step():
    vm = nvm()
    al = vm.al
    assert type(al) is list and al == []
    vm.execute_code("1 2 3")
    assert al == [1, 2, 3] and al[-1] == 3 and al[0] == 1 and len(al) == 3
    assert list(iter(al)) == [1, 2, 3] and repr(al) == "[1, 2, 3]"
    al.append(4)
    al[0] = 10
    del al[1]
    vm.execute_code(">+")
    assert vm.al is al and al == [10, 7]
    vm.al = [5]
    vm.execute_code("1 >+")
    assert vm.al == [6]


def test_al_in_a_python_builtin_and_back():
    vm = nvm()

    def swap_add(v):
        al = v.al
        b, a = al.pop(), al.pop()
        al.append(b)
        al.append(a)
        v.execute_value(v.lookup("+"))     # native code in the middle of a builtin
        al.append(len(al))

    vm.register_extension_builtin("use.t.f", swap_add)
    vm.execute_code("1 2 3 >use.t.f")
    assert vm.al == [1, 5, 2]


# ---------------------------------------------------------------- API

def test_execute_file_compile_run_program(tmp_path):
    path = tmp_path / "p.soma"
    path.write_text("1 2 >+ !x", encoding="utf-8")
    vm = nvm()
    vm.execute_file(str(path))
    assert vm.lookup("x") == 3
    code = vm.compile("x x >*")
    vm.run_program(code)
    vm.run_program(code)
    assert vm.al == [9, 9]


def test_lookup_undefined_is_a_soma_error():
    vm = nvm()
    with pytest.raises(soma.RuntimeError) as info:
        vm.lookup("nope.x")
    assert info.value.message == undefined_store("nope.x")


def test_register_extension_builtin_rules():
    vm = nvm()
    with pytest.raises(ValueError):
        vm.register_extension_builtin("bad", lambda v: None)
    calls = []
    vm.register_extension_builtin("use.t.count", lambda v: calls.append(len(v.al)))
    vm.execute_code("1 { >use.t.count } !f >f >f")
    assert calls == [1, 1]
    assert isinstance(vm.lookup("use.t.count"), soma.Builtin)


def test_a_run_is_one_crossing_plus_one_per_python_builtin():
    vm = nvm(stdlib=None)
    calls = []
    vm.register_extension_builtin("use.t.tick", lambda v: calls.append(1))
    vm.execute_code("0 !i { i 1 >+ !i  i 500 >< >block Nil >choose } >chain "
                    "{ >use.t.tick } !t >t >t")
    assert vm.lookup("i") == 500 and len(calls) == 2


def test_output_and_input_hooks():
    out = []
    lines = iter(["first", "second"])
    vm = nvm(output=out.append, input=lambda: next(lines, None))
    vm.execute_code(">readLine >print >readLine >print 42 >print")
    assert out == ["first", "second", "42"]
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code(">readLine")
    assert info.value.message == "read_line: EOF encountered"


def test_print_goes_to_sys_stdout_at_call_time():
    vm = nvm()
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        vm.execute_code("(hello) >print 12 >print")
    assert buf.getvalue() == "hello\n12\n"


def test_max_depth():
    vm = nvm(max_depth=50)
    assert vm.max_depth == 50
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("{ >block !_.b >_.b } !r\n>r")
    assert info.value.message == "recursion too deep (limit 50 nested block executions)"
    assert vm.depth == 0
    vm.execute_code("1")
    assert vm.al[-1] == 1


@pytest.mark.parametrize("src, cls, msg, line, col", [
    ("1 (a", soma.LexError, None, 1, 3),
    ("{ 1", soma.ParseError, None, 1, 4),
    ("1 (a) >+", soma.RuntimeError,
     "Type error in +: expected int, got int and str", 1, 7),
    ("{\n  >nope } !f >f", soma.RuntimeError, undefined_store("nope"), 2, 3),
    ("5 0 >/", soma.RuntimeError, "Division by zero", 1, 5),
    ("(x) >debug.error", soma.RuntimeError, "ASSERT FAILED: x", 1, 5),
    ("(nope) >use", soma.RuntimeError,
     "Extension 'nope' not found: No module named 'soma.extensions.nope'", 1, 8),
    ("5 >use", soma.RuntimeError, "use: expected string extension name, got int", 1, 3),
])
def test_errors_match_the_python_tier(src, cls, msg, line, col):
    results = []
    for vm in (PurePythonVM(stdlib=False), nvm()):
        with pytest.raises(soma.SomaError) as info:
            vm.execute_code(src, "file.soma")
        e = info.value
        results.append((type(e), e.message, e.line, e.col, e.source))
    assert results[0] == results[1]
    assert results[1][0] is cls and (results[1][2], results[1][3]) == (line, col)
    assert results[1][4] == "file.soma"
    if msg:
        assert results[1][1] == msg


def test_error_inside_a_stdlib_word_names_the_stdlib():
    vm = nvm(stdlib=None)
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("(a) 1 >max", "user.soma")
    assert info.value.source.endswith("stdlib.soma")


def test_store_keeps_completed_statements_after_an_error():
    vm = nvm()
    with pytest.raises(soma.RuntimeError):
        vm.execute_code("1 !a  2 !b  >nope  3 !c")
    assert vm.lookup("a") == 1 and vm.lookup("b") == 2
    with pytest.raises(soma.RuntimeError):
        vm.lookup("c")
    vm.execute_code("a b >+")
    assert vm.al[-1] == 3


def test_python_exception_in_a_builtin_keeps_its_class():
    vm = nvm()

    def boom(v):
        raise ValueError("bad thing")
    vm.register_extension_builtin("use.t.boom", boom)
    with pytest.raises(ValueError) as info:
        vm.execute_code("1 !a\n  >use.t.boom")
    e = info.value
    assert (str(e), e.soma_line, e.soma_col) == ("bad thing", 2, 3)
    vm.execute_code("a")
    assert vm.al[-1] == 1


def test_soma_error_raised_by_a_builtin_is_positioned():
    vm = nvm()

    def fail(v):
        raise soma.RuntimeError("from python")
    vm.register_extension_builtin("use.t.fail", fail)
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("{ >use.t.fail } !f\n>f", "x.soma")
    assert (info.value.line, info.value.col, info.value.source) == (1, 3, "x.soma")


# ---------------------------------------------------------------- extensions

def test_python_extension_call_import_and_helpers():
    vm = nvm(stdlib=None)
    vm.execute_code("(python) >use  Void (abc) (str.upper) >use.python.call "
                    ">use.python.getResult  Void 16 (math.isqrt) >use.python.call >drop")
    assert vm.al == ["ABC", 4]
    vm.al.clear()
    vm.execute_code("Void (x) (int) >use.python.call >use.python.getException")
    assert isinstance(vm.al[0], ValueError)
    vm.al.clear()
    vm.execute_code("(json) >use.python.import (no_such_mod_xyz) >use.python.import")
    assert vm.al == [soma.TRUE, soma.FALSE]
    vm.al.clear()
    vm.execute_code("Void 2 3 (pow) >use.python.call >drop  Void (x) (callable) "
                    ">use.python.call >drop  Void Nil (print) >use.python.call >drop")
    assert vm.al[:2] == [8, soma.FALSE] and vm.al[2] is soma.VOID


def test_python_extension_load_and_load_extension(tmp_path):
    f = tmp_path / "lib.soma"
    f.write_text("41 1 >+ !answer  7 !_.x\n", encoding="utf-8")
    vm = nvm(stdlib=None)
    vm.load_extension("python")
    vm.load_extension("python")             # once only
    assert "python" in vm.loaded_extensions
    vm.al.append(str(f))
    vm.execute_code("!p p >use.python.load  answer _.x")
    assert vm.al[-2:] == [42, 7]
    with pytest.raises(soma.RuntimeError) as info:
        vm.load_extension("no_such_extension")
    assert info.value.message == ("Extension 'no_such_extension' not found: "
                                  "No module named 'soma.extensions.no_such_extension'")


def test_load_extension_runs_files_in_the_top_level_register(tmp_path, monkeypatch):
    (tmp_path / "here.soma").write_text("6 !here  _.x\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOMA_LIB", raising=False)
    vm = nvm()
    vm.execute_code("(load) >use  3 !_.x  { (here.soma) >load } !f >f  here")
    assert vm.al == [3, 6]


def test_load_error_names_the_loaded_file(tmp_path, monkeypatch):
    (tmp_path / "bad.soma").write_text("1\n  (a) >+\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    vm = nvm()
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("(load) >use (bad.soma) >load", "main.soma")
    assert (info.value.line, info.value.col) == (2, 7)
    assert info.value.source == "bad.soma"


def test_every_bundled_extension_loads():
    import pkgutil
    import soma.extensions
    names = [m.name for m in pkgutil.iter_modules(soma.extensions.__path__)]
    assert {"python", "load", "markdown", "math"} <= set(names)
    # Modules of the markdown extension that are libraries, not extensions.
    helpers = {"markdown_emitter", "markdown_lists"}
    assert helpers <= set(names)
    for name in set(names) - helpers:
        vm = nvm(stdlib=None)
        vm.al.append(name)
        vm.execute_code(">use")
        assert name in vm.loaded_extensions


def test_stdlib_runs_native():
    vm = nvm(stdlib=None)
    vm.execute_code("3 4 >max 1 2 >swap")
    assert vm.al == [4, 2, 1]


def test_cli_style_run_through_soma_vm(monkeypatch):
    monkeypatch.setenv("SOMA_JIT", "1")
    out = []
    vm = soma.VM(output=out.append)
    vm.execute_code("(x) >print")
    assert out == ["x"] and isinstance(vm, native.NativeVM)


def test_environment_is_untouched():
    assert "SOMA_JIT_THRESHOLD" not in os.environ or os.environ["SOMA_JIT_THRESHOLD"]


def test_output_hook_that_raises_fails_the_print_as_in_the_python_tier():
    def bad(line):
        raise OSError("disk full")
    results = []
    for vm in (PurePythonVM(stdlib=False, output=bad), nvm(output=bad)):
        with pytest.raises(OSError) as info:
            vm.execute_code("1 !a\n(x) >print 2 !b")
        e = info.value
        results.append((str(e), e.soma_line, e.soma_col))
        assert vm.lookup("a") == 1
        with pytest.raises(soma.RuntimeError):
            vm.lookup("b")
    assert results[0] == results[1] == ("disk full", 2, 5)


def test_run_program_reuses_the_loaded_module_and_reports_counts():
    vm = nvm()
    code = vm.compile("{ 1 } !f  >f >f  f >chain  { } >chain  f")
    vm.run_program(code)
    first = vm.al[-1]
    f_code = code.consts[0].code
    assert code.count == 1 and f_code.count == 3 and code.consts[1].code.count == 1
    vm.run_program(code)
    assert code.count == 2 and f_code.count == 6
    assert vm.al[-1] is first          # the same Block: the module was loaded once


def test_a_vm_whose_builtin_closes_over_it_is_collected():
    refs = []
    for _ in range(3):
        vm = nvm()
        vm.register_extension_builtin("use.t.me", lambda v, vm=vm: vm.al.append(1))
        vm.execute_code(">use.t.me")
        refs.append(weakref.ref(vm._m))
        del vm
    gc.collect()
    assert all(r() is None for r in refs)


def test_a_vm_is_freed_when_its_last_reference_goes():
    # No reference cycle between the front end and its backend: the native heap goes at
    # once, not at the cyclic collector's next pass (a process making VM after VM would
    # otherwise hold several heaps and fault every page of each new one in fresh).
    gc.disable()
    try:
        for stdlib in (False, None):
            vm = native.NativeVM(stdlib=stdlib, output=lambda line: None)
            vm.execute_code("1 2 >+ >print  x. !y")
            front, machine = weakref.ref(vm), weakref.ref(vm._m)
            del vm
            assert front() is None and machine() is None
    finally:
        gc.enable()


def test_a_source_is_compiled_once_per_process(monkeypatch):
    # The second run of the same text and name takes the compiled module from the cache (in
    # a fresh VM, with the same outcome); another name, another text, or a source that
    # fails to compile are compiled again.
    compiled = []
    real = native.compile_source

    def counting(text, name):
        compiled.append((text, name))
        return real(text, name)

    monkeypatch.setattr(native, "compile_source", counting)
    text = "(cached %d) !msg  msg >print  6 7 >*" % os.getpid()
    for _ in range(2):
        lines = []
        vm = nvm(stdlib=False, output=lines.append)
        vm.execute_code(text, "cached.soma")
        assert lines == ["cached %d" % os.getpid()] and vm.al == [42]
    assert compiled == [(text, "cached.soma")]
    nvm(stdlib=False).execute_code(text, "other.soma")
    assert compiled[-1] == (text, "other.soma")
    for _ in range(2):
        with pytest.raises(soma.ParseError):
            nvm(stdlib=False).execute_code("{ 1 2", "broken.soma")
    assert [c for c in compiled if c[1] == "broken.soma"] == [("{ 1 2", "broken.soma")] * 2


def test_the_module_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(native, "_MODULE_CACHE", {})
    monkeypatch.setattr(native, "_module_cache_bytes", 0)
    for i in range(native._MODULE_CACHE_LIMIT + 10):
        nvm(stdlib=False).execute_code("%d !x" % i, "bounded.soma")
    assert len(native._MODULE_CACHE) == native._MODULE_CACHE_LIMIT
    assert ("0 !x", "bounded.soma") not in native._MODULE_CACHE
    last = "%d !x" % (native._MODULE_CACHE_LIMIT + 9)
    assert (last, "bounded.soma") in native._MODULE_CACHE
    assert native._module_cache_bytes == sum(len(d) + len(k[0]) for k, d in native._MODULE_CACHE.items())


def test_a_vm_dropped_on_another_thread_is_freed_by_its_own(monkeypatch):
    # A `threading.Timer(t, vm.interrupt)` may hold the last reference to a VM. The Machine is
    # single-threaded: freed there, PyO3 reported an error and leaked it. Its own thread now
    # frees it, at its next VM work.
    import sys
    import threading
    errors = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: errors.append(u.exc_value))
    vm = native.NativeVM(stdlib=False)
    vm.execute_code("1 !x")
    machine = weakref.ref(vm._m)
    holder = [vm]
    del vm
    thread = threading.Thread(target=holder.clear)
    thread.start()
    thread.join()
    gc.collect()
    assert errors == [] and holder == []
    assert machine() is not None, "kept for its own thread"
    native.NativeVM(stdlib=False).execute_code("2 !y")
    assert machine() is None, "freed by its own thread"
    assert errors == []


def test_a_cellref_dropped_on_another_thread_is_released_by_the_next_run():
    # The Machine is single-threaded: a CellRef whose last reference dies on another thread
    # (e.g. a thread calling vm.interrupt() collects a cycle) is queued, not unpinned there.
    import threading
    from soma import native
    if not native.available():
        pytest.skip("the native extension is not built")
    vm = native.NativeVM(stdlib=False)
    vm.execute_code("x.")
    holder = [vm.al.pop()]
    vm.al = []                      # no AL snapshot keeps the CellRef: `holder` is the last
    handle = holder[0]._h
    assert vm._m.pinned_bits(handle) is not None
    worker = threading.Thread(target=holder.clear)
    worker.start()
    worker.join()
    assert vm._m.pinned_bits(handle) is not None     # still pinned: queued for the owner
    vm.execute_code("1")
    assert vm._m.pinned_bits(handle) is None
