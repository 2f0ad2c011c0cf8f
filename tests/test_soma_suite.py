"""Every `.soma` test in tests/soma, one pytest case each (`file::name`).

The VM comes from conftest's `vm_factory` fixture, so setting SOMA_JIT runs the
same cases on another tier. Files named `01_*` run without the stdlib.
"""

import glob
import os

import pytest

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
