"""Shared fixtures for the SOMA pytest suites.

The VM *tier* under test is chosen by the environment variable SOMA_JIT:

    unset, "", "0", "off", "python"   the pure-Python tier (soma.VM)

The JIT tiers will register themselves in TIERS once they exist; any other
value stops the run with a usage error rather than silently testing the
pure-Python tier under a JIT name.
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


def _python_tier(with_stdlib, **kwargs):
    """A fresh pure-Python VM; `with_stdlib` False means no stdlib at all."""
    if not with_stdlib:
        kwargs["stdlib"] = False
    return soma.VM(**kwargs)


# name -> factory(with_stdlib, **VM keyword arguments) -> VM
TIERS = {"python": _python_tier}
_ALIASES = {"": "python", "0": "python", "off": "python", "python": "python"}


def selected_tier():
    raw = os.environ.get("SOMA_JIT", "").strip().lower()
    return _ALIASES.get(raw, raw)


def pytest_configure(config):
    tier = selected_tier()
    if tier not in TIERS:
        raise pytest.UsageError(
            "SOMA_JIT=%r names no known VM tier (known: %s)"
            % (os.environ.get("SOMA_JIT"), ", ".join(sorted(TIERS))))


def pytest_report_header(config):
    return "SOMA tier: %s" % selected_tier()


@pytest.fixture(scope="session")
def tier_name():
    return selected_tier()


@pytest.fixture(scope="session")
def vm_factory():
    """factory(with_stdlib, **kwargs) -> a fresh VM of the selected tier."""
    return TIERS[selected_tier()]


@pytest.fixture
def vm(vm_factory):
    """A fresh VM without the stdlib."""
    return vm_factory(False)


@pytest.fixture
def svm(vm_factory):
    """A fresh VM with the bundled stdlib."""
    return vm_factory(True)


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
