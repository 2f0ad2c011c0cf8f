"""The `.soma` test-file format and its runner (`soma test`).

    ) TEST: name
    ) EXPECT_AL: [1, (text), True, Block]
    ) EXPECT_OUTPUT: first line\\nsecond line
    ) EXPECT_ERROR: RuntimeError
    ... SOMA source up to the next `) TEST:` ...

Files whose name starts with `01_` run without the stdlib. Each test gets a
fresh VM. Output lines are compared with surrounding whitespace stripped and
blank lines ignored. An expected error matches the raised class or any of its
SOMA base classes by name.
"""

import io
import os
from contextlib import redirect_stdout

from .errors import SomaError, describe
from .sources import read_source
from .values import render_al

_MARKERS = ("TEST:", "EXPECT_AL:", "EXPECT_OUTPUT:", "EXPECT_ERROR:")


class SomaTest:
    def __init__(self, name, path, line):
        self.name = name
        self.path = path
        self.line = line          # where `) TEST:` stands
        self.expect_al = None
        self.expect_output = []
        self.expect_error = None
        self.source_lines = []

    @property
    def source(self):
        return "\n".join(self.source_lines)


def _marker(line):
    stripped = line.strip()
    if not stripped.startswith(")"):
        return None, None
    rest = stripped[1:].lstrip()
    for marker in _MARKERS:
        if rest.startswith(marker):
            return marker, rest[len(marker):].strip()
    return None, None


def parse_test_file(path):
    text = read_source(path)
    tests = []
    current = None
    for number, line in enumerate(text.split("\n"), 1):
        marker, value = _marker(line)
        if marker == "TEST:":
            current = SomaTest(value, path, number)
            tests.append(current)
            # Keep line numbers of the source equal to the file's.
            current.source_lines = [""] * number
            continue
        if current is None:
            continue
        if marker == "EXPECT_AL:":
            current.expect_al = value
        elif marker == "EXPECT_OUTPUT:":
            current.expect_output.extend(value.split("\\n"))
        elif marker == "EXPECT_ERROR:":
            current.expect_error = value
        else:
            current.source_lines.append(line)
        if marker is not None:
            current.source_lines.append("")
    return tests


def uses_stdlib(path):
    return not os.path.basename(path).startswith("01_")


def run_test(test, vm_factory):
    """Run one test; return None if it passed, else a message saying why not."""
    captured = io.StringIO()
    try:
        with redirect_stdout(captured):
            vm = vm_factory(uses_stdlib(test.path))
            vm.execute_code(test.source, test.path)
    except Exception as err:
        # A SomaError, or a Python exception an extension builtin raised (located).
        if not isinstance(err, SomaError) and getattr(err, "soma_line", None) is None:
            raise
        if test.expect_error is None:
            return "unexpected %s" % describe(err)
        names = [cls.__name__ for cls in type(err).__mro__]
        if test.expect_error not in names:
            return "expected %s, got %s" % (test.expect_error, describe(err))
        return None
    if test.expect_error is not None:
        return "expected %s, but the program finished with AL %s" % (
            test.expect_error, render_al(vm.al))
    if test.expect_al is not None:
        actual = render_al(vm.al)
        if actual != test.expect_al:
            return "AL: expected %s, got %s" % (test.expect_al, actual)
    if test.expect_output:
        actual = [ln.strip() for ln in captured.getvalue().split("\n") if ln.strip()]
        expected = [ln.strip() for ln in test.expect_output if ln.strip()]
        if actual != expected:
            return "output: expected %r, got %r" % (expected, actual)
    return None


def collect(paths):
    files = []
    for path in paths:
        if os.path.isdir(path):
            for root, _, names in os.walk(path):
                files.extend(os.path.join(root, n) for n in names if n.endswith(".soma"))
        else:
            files.append(path)
    return sorted(files)


def run_paths(paths, vm_factory, out):
    """Run every test in `paths`; write a line per test and the closing line. Return failures."""
    passed = failed = 0
    for path in collect(paths):
        for test in parse_test_file(path):
            problem = run_test(test, vm_factory)
            where = "%s:%d" % (path, test.line)
            if problem is None:
                passed += 1
                out.write("PASS %s %s\n" % (where, test.name))
            else:
                failed += 1
                out.write("FAIL %s %s\n     %s\n" % (where, test.name, problem))
    out.write("%d passed, %d failed\n" % (passed, failed))
    return failed
