"""Set-up shared by the Python fuzz targets: make `soma` importable from a checkout,
instrument it for coverage when a target runs as a script under atheris, and hand a
target's `check(data)` to atheris as the fuzzing entry point."""

import contextlib
import importlib.util
import os
import sys

try:
    import atheris
except ImportError:
    atheris = None


def instrumented(as_script):
    """Context for a target's `soma` imports (instrumented only under atheris as a script)."""
    if "soma" not in sys.modules and importlib.util.find_spec("soma") is None:
        # Run from a checkout without the editable install.
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "..", "..", "python"))
    if as_script and atheris is not None:
        return atheris.instrument_imports(include=["soma"])
    return contextlib.nullcontext()


def fuzz(check):
    """Fuzz `check` with atheris, taking libFuzzer's options from the command line."""
    if atheris is None:
        sys.exit("atheris is not installed: pip install atheris")
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()
