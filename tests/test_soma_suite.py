"""Every `.soma` test in tests/soma, one pytest case each (`file::name`).

The VM comes from conftest's `vm_factory` fixture, so setting SOMA_JIT runs the
same cases on another tier. Files named `01_*` run without the stdlib.
"""

import glob
import os

import pytest

import soma
from soma import testfile

SOMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "soma")
FILES = sorted(glob.glob(os.path.join(SOMA_DIR, "*.soma")))


def _collect():
    cases = []
    seen = set()
    for path in FILES:
        base = os.path.basename(path)
        for test in testfile.parse_test_file(path):
            ident = "%s::%s" % (base, test.name)
            if ident in seen:   # keep ids unique even if a name repeats in a file
                ident = "%s@%d" % (ident, test.line)
            seen.add(ident)
            cases.append(pytest.param(test, id=ident))
    return cases


CASES = _collect()


def test_suite_is_present():
    assert len(FILES) >= 10
    assert len(CASES) >= 500
    assert any(os.path.basename(f).startswith("01_") for f in FILES)


@pytest.mark.parametrize("test", CASES)
def test_soma(test, vm_factory):
    made = []

    def factory(with_stdlib):
        # The `01_` rule: testfile decides with_stdlib from the file name.
        assert with_stdlib == (not os.path.basename(test.path).startswith("01_"))
        vm = vm_factory(with_stdlib)
        made.append(vm)
        return vm

    problem = testfile.run_test(test, factory)
    assert made, "run_test never built a VM"
    assert problem is None, "%s:%d %s: %s" % (test.path, test.line, test.name, problem)


# ---------------------------------------------------------------- the runner can fail

def _one(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    tests = testfile.parse_test_file(str(path))
    assert len(tests) == 1
    return tests[0]


def _factory(vm_factory):
    return lambda with_stdlib: vm_factory(with_stdlib)


@pytest.mark.parametrize("body,problem", [
    (") EXPECT_AL: [2]\n1\n", "AL: expected [2], got [1]"),
    (") EXPECT_AL: [(a), True, Block]\n(a) True { }\n", None),
    (") EXPECT_AL: [(a)]\n(b)\n", "AL: expected [(a)], got [(b)]"),
    (") EXPECT_OUTPUT: x\\ny\n(x) >print (z) >print\n", "output: expected"),
    (") EXPECT_OUTPUT: x\\ny\n(x) >print\n\n(y) >print\n", None),
    (") EXPECT_ERROR: RuntimeError\n1\n", "expected RuntimeError, but the program finished"),
    (") EXPECT_ERROR: LexError\nnope\n", "expected LexError, got "),
    (") EXPECT_ERROR: SomaError\n12ab\n", None),
    (") EXPECT_AL: []\nnope\n", "unexpected "),
])
def test_runner_reports_problems(tmp_path, vm_factory, body, problem):
    test = _one(tmp_path, "02_x.soma", ") TEST: t\n" + body)
    result = testfile.run_test(test, _factory(vm_factory))
    if problem is None:
        assert result is None
    else:
        assert result is not None and problem in result


def test_runner_01_files_have_no_stdlib(tmp_path, vm_factory):
    text = ") TEST: t\n) EXPECT_AL: [1, 1]\n1 >dup\n"
    assert testfile.run_test(_one(tmp_path, "02_a.soma", text), _factory(vm_factory)) is None
    problem = testfile.run_test(_one(tmp_path, "01_a.soma", text), _factory(vm_factory))
    assert problem is not None and "Undefined Store path: 'dup'" in problem


def test_parsed_source_keeps_file_line_numbers(tmp_path, vm_factory):
    path = tmp_path / "02_lines.soma"
    path.write_text(") header\n) TEST: first\n) EXPECT_AL: [1]\n1\n"
                    ") TEST: second\n) EXPECT_ERROR: RuntimeError\n\n  nope\n",
                    encoding="utf-8")
    first, second = testfile.parse_test_file(str(path))
    assert (first.name, first.line, first.expect_al) == ("first", 2, "[1]")
    assert (second.name, second.line, second.expect_error) == ("second", 5, "RuntimeError")
    vm = vm_factory(True)
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code(second.source, str(path))
    assert (info.value.line, info.value.col) == (8, 3)
