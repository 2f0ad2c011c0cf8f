#!/usr/bin/env python3
"""Differential check: the native reference executor against the pure-Python tier.

Generates random SOMA programs (path reads/refs/writes/deletes on Store and Register, CellRefs,
context passing, blocks, chain loops, arithmetic with big ints, strings, printing), runs each
on python/soma's VM and, compiled by python/soma, on the native executor
(`examples/run_bc.rs`), and compares the printed output, the final AL and any error (class,
line:col, message).

    cargo build -p soma-runtime --example run_bc
    python3 crates/runtime/scripts/differential.py [SEED] [COUNT]
"""

import os
import random
import signal
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))

from soma.code import encode_module  # noqa: E402
from soma.compiler import compile_source  # noqa: E402
from soma.errors import SomaError  # noqa: E402
from soma.values import render_al  # noqa: E402

from soma.vm import VM  # noqa: E402

RUNNER = os.path.join(ROOT, "target", "debug", "examples", "run_bc")


def gen_path(rng):
    root = rng.choice(["_", "_", "a", "b"])
    comps = [rng.choice(["x", "y"]) for _ in range(rng.randint(0, 2))]
    return ".".join([root] + comps)


def gen_value(rng):
    return rng.choice(["1", "-7", "10000000000000000000000", "(s)", "Void", "Nil",
                       "_.", "a.", "a.x.", "b.y.", "{ 1 }"])


def gen_stmt(rng, depth=0):
    """One statement, usually with the operands it needs pushed first, so that programs get
    past their first few statements."""
    stmt = gen_raw_stmt(rng, depth)
    if rng.random() < 0.6 and (stmt.startswith("!") or stmt.startswith(">")):
        stmt = " ".join(gen_value(rng) for _ in range(rng.randint(1, 3))) + " " + stmt
    return stmt


def gen_raw_stmt(rng, depth=0):
    r = rng.random()
    p = gen_path(rng)
    if r < 0.12:
        return str(rng.choice([-3, -1, 0, 1, 2, 7, 140737488355327, -140737488355328,
                               10**20, -(10**20)]))
    if r < 0.17:
        return rng.choice(["Void", "Nil", "True", "(s)", "()"])
    if r < 0.27:
        return p
    if r < 0.37:
        return p + "."
    if r < 0.52:
        return "!" + p
    if r < 0.62:
        return "!" + p + "."
    if r < 0.70:
        return ">" + rng.choice(["+", "-", "*", "/", "%", "<", "concat", "toString",
                                 "isVoid", "isNil", "debug.type", "print", "choose"])
    if r < 0.78 and depth < 2:
        body = " ".join(gen_stmt(rng, depth + 1) for _ in range(rng.randint(0, 5)))
        return rng.choice(["{ %s }", ">{ %s }", "{ _. !_. %s }"]) % body
    if r < 0.84:
        return ">chain"
    if r < 0.88:
        return ">" + p
    if r < 0.92 and depth > 0:
        return ">block"
    return "_. " + rng.choice(["!_.", "!_.x", "!a"])


class Timeout(BaseException):  # not an Exception: the VM must not wrap it
    pass


def _alarm(signum, frame):
    raise Timeout()


# Random programs can loop forever (a block that leaves itself on the AL for `chain`);
# both sides get the same time limit and such programs count as equal.
TIME_LIMIT = 2


def python_result(src):
    out = []
    vm = VM(stdlib=False, output=out.append, input=lambda: None, max_depth=200)
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT)
    try:
        vm.execute_code(src)
        return "\n".join(out + [render_al(vm.al)])
    except SomaError as e:
        return "\n".join(out + ["ERR %s: %s" % (type(e).__name__, e)])
    except Timeout:
        return "TIMEOUT"
    finally:
        signal.alarm(0)


def native_result(src, tmp):
    with open(tmp, "wb") as f:
        f.write(encode_module(compile_source(src, "")))
    try:
        r = subprocess.run([RUNNER, "--max-depth", "200", tmp], capture_output=True, text=True,
                           timeout=TIME_LIMIT)
    except subprocess.TimeoutExpired:
        return "TIMEOUT"
    lines = r.stdout.rstrip("\n").split("\n") if r.stdout else []
    if r.returncode != 0:
        lines.append("ERR " + r.stderr.strip())
    return "\n".join(lines)


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    rng = random.Random(seed)
    mismatches = 0
    with tempfile.TemporaryDirectory() as d:
        tmp = os.path.join(d, "p.bc")
        for _ in range(count):
            src = " ".join(gen_stmt(rng) for _ in range(rng.randint(3, 14)))
            src += " " + " ".join(rng.choice(["a", "b", "a.x", "b.y", "_", "_.x", "a.x.y"])
                                  + " >debug.type" for _ in range(2))
            py, nat = python_result(src), native_result(src, tmp)
            if py != nat:
                mismatches += 1
                if mismatches <= 5:
                    print("=== MISMATCH:", repr(src))
                    print("--- python:\n" + py)
                    print("--- native:\n" + nat)
    print("seed %d: %d programs, %d mismatches" % (seed, count, mismatches))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
