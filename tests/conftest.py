"""Shared fixtures for the SOMA pytest suites.

The VM *tier* under test follows the product's own rule for SOMA_JIT
(python/soma/native.py):

    SOMA_JIT=0 / off / python / false / no   the pure-Python tier
    SOMA_JIT=1                                the native backend (fails if not built)
    unset                                     native if soma._native is built, else Python

`vm_factory` builds VMs of that tier, so every suite written against it (and the
parametrized `.soma` suite) runs on whichever tier is selected. Tests about the
pure-Python tier's own internals (Code objects, quickening, depth bookkeeping)
use `python_vm_factory`, which always builds the pure-Python VM.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON_DIR = os.path.join(ROOT, "python")
SOMA_TEST_DIR = os.path.join(HERE, "soma")

if PYTHON_DIR not in sys.path:
    sys.path.insert(0, PYTHON_DIR)

import soma  # noqa: E402
import soma.vm  # noqa: E402


class PythonVM(soma.vm.VM):
    """The pure-Python tier whatever SOMA_JIT says (VM.__new__ only redirects `soma.VM`)."""


def _make(cls):
    def factory(with_stdlib, **kwargs):
        """A fresh VM; `with_stdlib` False means no stdlib at all."""
        if not with_stdlib:
            kwargs["stdlib"] = False
        return cls(**kwargs)
    return factory


# test_bench_programs.py runs each benchmark program under JIT settings of its own: it is
# collected once, in the default-threshold JIT tier (SOMA_JIT=1, no threshold set), not again
# in every tier of the suite.
collect_ignore = []
if os.environ.get("SOMA_JIT") != "1" or "SOMA_JIT_THRESHOLD" in os.environ:
    collect_ignore.append("test_bench_programs.py")


python_factory = _make(PythonVM)
selected_factory = _make(soma.VM)


def selected_tier():
    """'python' or 'native': what `soma.VM()` builds under the current SOMA_JIT."""
    vm = soma.VM(stdlib=False)
    return "python" if isinstance(vm, soma.vm.VM) and type(vm).__name__ == "VM" else "native"


def pytest_report_header(config):
    return "SOMA tier: %s (SOMA_JIT=%r)" % (selected_tier(), os.environ.get("SOMA_JIT"))


@pytest.fixture(scope="session")
def tier_name():
    return selected_tier()


@pytest.fixture(scope="session")
def vm_factory():
    """factory(with_stdlib, **kwargs) -> a fresh VM of the selected tier."""
    return selected_factory


@pytest.fixture(scope="session")
def python_vm_factory():
    """factory(with_stdlib, **kwargs) -> a fresh pure-Python VM."""
    return python_factory


@pytest.fixture
def vm(vm_factory):
    """A fresh VM of the selected tier, without the stdlib."""
    return vm_factory(False)


@pytest.fixture
def svm(vm_factory):
    """A fresh VM of the selected tier, with the bundled stdlib."""
    return vm_factory(True)


@pytest.fixture
def pyvm(python_vm_factory):
    """A fresh pure-Python VM without the stdlib."""
    return python_vm_factory(False)


@pytest.fixture
def run(vm_factory):
    """run(src, stdlib=False) -> (vm, printed lines): execute on a fresh VM."""
    def _run(src, stdlib=False, **kwargs):
        out = []
        kwargs.setdefault("output", out.append)
        machine = vm_factory(stdlib, **kwargs)
        machine.execute_code(src)
        return machine, out
    return _run
