#!/usr/bin/env python3
"""Run the `.soma` language tests (tests/soma/*.soma) on the native reference executor.

Each test is compiled by python/soma, run by `examples/run_bc.rs` (after the compiled stdlib
unless the file name starts with `01_`), and checked against its EXPECT_AL / EXPECT_OUTPUT /
EXPECT_ERROR the way python/soma/testfile.py checks the Python tier.

    cargo build -p soma-runtime --example run_bc
    python3 crates/runtime/scripts/conformance.py [tests/soma/FILE.soma ...]
"""

import glob
import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))

from soma.code import encode_module  # noqa: E402
from soma.compiler import compile_source  # noqa: E402
from soma.errors import SomaError  # noqa: E402
from soma.testfile import parse_test_file, uses_stdlib  # noqa: E402

RUNNER = os.path.join(ROOT, "target", "debug", "examples", "run_bc")
STDLIB = os.path.join(ROOT, "python", "soma", "stdlib.soma")
ERROR_BASES = {"LexError": "SomaError", "ParseError": "SomaError", "RuntimeError": "SomaError"}


def run_test(test, stdlib_bc, tmp):
    try:
        code = compile_source(test.source, test.path)
    except SomaError as e:
        # Lex and parse errors never reach the runtime; the front end reports them.
        got_error = type(e).__name__
        return check(test, [], None, got_error, "")
    with open(tmp, "wb") as f:
        f.write(encode_module(code))
    args = [RUNNER] + ([stdlib_bc] if uses_stdlib(test.path) else []) + [tmp]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    lines = r.stdout.split("\n")
    if r.returncode == 0:
        while lines and lines[-1] == "":
            lines.pop()
        al = lines.pop() if lines else ""
        return check(test, lines, al, None, "")
    err = r.stderr.strip()
    return check(test, lines, None, err.split(":", 1)[0], err)


def check(test, output, al, error_class, error_text):
    problems = []
    if test.expect_error:
        want = test.expect_error
        if error_class is None:
            problems.append("expected %s, got AL %s" % (want, al))
        elif want not in (error_class, ERROR_BASES.get(error_class)):
            problems.append("expected %s, got %s" % (want, error_text or error_class))
    elif error_class is not None:
        problems.append("unexpected error: %s" % (error_text or error_class))
    if test.expect_al is not None and error_class is None and al != test.expect_al:
        problems.append("AL %s, expected %s" % (al, test.expect_al))
    if test.expect_output:
        got = [l.strip() for l in output if l.strip()]
        want = [l.strip() for l in test.expect_output if l.strip()]
        if got != want:
            problems.append("output %r, expected %r" % (got, want))
    return problems


def main():
    files = sys.argv[1:] or sorted(glob.glob(os.path.join(ROOT, "tests", "soma", "*.soma")))
    failures = total = 0
    with tempfile.TemporaryDirectory() as d:
        stdlib_bc = os.path.join(d, "stdlib.bc")
        with open(STDLIB, encoding="utf-8") as f:
            src = f.read()
        with open(stdlib_bc, "wb") as f:
            f.write(encode_module(compile_source(src, STDLIB)))
        tmp = os.path.join(d, "t.bc")
        for path in files:
            for test in parse_test_file(path):
                total += 1
                problems = run_test(test, stdlib_bc, tmp)
                if problems:
                    failures += 1
                    print("FAIL %s:%d %s" % (os.path.basename(path), test.line, test.name))
                    for p in problems:
                        print("    " + p)
    print("%d tests, %d failures" % (total, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
