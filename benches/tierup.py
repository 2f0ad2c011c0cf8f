#!/usr/bin/env python3
"""Does turning the JIT on ever cost the user? Native tier versus JIT at default settings.

    python benches/tierup.py                 # every row, 7 pairs each
    python benches/tierup.py --pairs 11 --rows fib chain_loop

Rows: every program of benches/programs at a small size and at its own (large) size, and
every file of tests/soma run as `soma test` runs it. Each measurement is a fresh process (so
every run starts with a cold JIT, as a user's does) that times the work a user waits for,
everything after `import soma`: creating the VM (the JIT's installation included) and loading
the stdlib, compiling and running the program (or every test of the file, each in its own VM,
as `soma test` does), and dropping the VM. Interpreter start-up and imports are left out: they
are the same for both tiers and would bury the difference. Native (`SOMA_JIT_THRESHOLD=off`)
and JIT (`SOMA_JIT=1`) runs alternate (native, jit, native, jit, ...), so both see the same
machine. Reported: the median time of each and the median of the per-pair ratios jit / native
(below 1: the JIT is faster).

A program checks its own result (a small size gets its expected values rewritten with it), and
every test of a file must pass, so a fast wrong tier fails the row instead of winning it.

The acceptance bar (issue "Tier-up that never loses"): no row more than 5% slower with the
JIT, and every row that runs longer than 50 ms natively faster with it. Rows breaking it are
marked; the exit status is 0 either way (timing is not a test).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROGRAMS = os.path.join(HERE, "programs")
TESTS = os.path.join(ROOT, "tests", "soma")

NATIVE = {"SOMA_JIT": "1", "SOMA_JIT_THRESHOLD": "off"}
JIT = {"SOMA_JIT": "1"}


def collatz_total(limit):
    total = 0
    for start in range(1, limit + 1):
        n, steps = start, 0
        while n > 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        total += steps
    return total


def _fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


# Program -> (small size, rewrite(text, size) -> text). Each rewrite replaces the program's
# size constants and the expected results that depend on them; `_sub` insists that the text
# it replaces is there, so a changed program fails loudly here instead of timing garbage.
def _sub(text, old, new):
    if old not in text:
        raise SystemExit("benches/tierup.py: %r not found; update its size rewrite" % old)
    return text.replace(old, new)


def _chain_loop(text, n):
    return _sub(text, "1000000", str(n))


def _collatz(text, n):
    return _sub(_sub(text, "i 3000 >=<", "i %d >=<" % n), "215063", str(collatz_total(n)))


def _dict(text, n):
    text = _sub(text, "2000 !N", "%d !N" % n)
    text = _sub(text, "sum 3998000", "sum %d" % (n * (n - 1)))
    text = _sub(text, "found 1000", "found %d" % (n // 2))
    text = _sub(text, "dict.size 1000", "dict.size %d" % (n // 2))
    return _sub(text, "2000000 >==", "%d >==" % (2 * sum(range(1, n, 2))))


def _fib_program(text, n):
    return _sub(_sub(text, "24 >fib", "%d >fib" % n), "46368", str(_fib(n)))


def _lists(text, n):
    return _sub(_sub(text, "20000 !N", "%d !N" % n), "399980000", str(n * (n - 1)))


def _strings(text, n):
    # n appends of (ab); the other string doubles (ab) until it is as long.
    doublings = (n).bit_length() - 1
    assert 1 << doublings == n, "a power of two"
    return _sub(_sub(text, "i 16384 ><", "i %d ><" % n), "j 14 ><", "j %d ><" % doublings)


def _bst(text, n):
    # n keys (n = 2^a * 5^b with 4 | n keeps x' = 3821x + 7919 mod n full-period), the kept
    # tree after n/2 inserts, 2n lookups.
    text = _sub(text, "4321 !x", "%d !x" % (4321 % n))
    text = _sub(text, "7919 >+ 8000 >%", "7919 >+ %d >%%" % n)
    text = _sub(text, "4000 !limit", "%d !limit" % (n // 2))
    text = _sub(text, "8000 !limit", "%d !limit" % n)
    text = _sub(text, "16000 >% tree", "%d >%% tree" % (2 * n))
    text = _sub(text, "i 16000 ><", "i %d ><" % (2 * n))
    text = _sub(text, "found 8000", "found %d" % n)
    text = _sub(text, "sum 95988000", "sum %d" % (3 * n * (n - 1) // 2))
    text = _sub(text, "bst.size 8000", "bst.size %d" % n)
    return _sub(text, "bst.size 4000", "bst.size %d" % (n // 2))


SMALL = {
    "bst": (200, _bst),
    "chain_loop": (2000, _chain_loop),
    "collatz": (100, _collatz),
    "dict_workload": (100, _dict),
    "fib": (14, _fib_program),
    "list_map_fold": (300, _lists),
    "string_build": (256, _strings),
}


def rows(tmp, only):
    """(name, kind, path) for every row; kind is "run" or "test"."""
    out = []
    for f in sorted(os.listdir(PROGRAMS)):
        if not f.endswith(".soma"):
            continue
        name = f[:-5]
        path = os.path.join(PROGRAMS, f)
        if name in SMALL:
            size, rewrite = SMALL[name]
            small = os.path.join(tmp, "%s_%d.soma" % (name, size))
            with open(path, encoding="utf-8") as src, open(small, "w", encoding="utf-8") as dst:
                dst.write(rewrite(src.read(), size))
            out.append(("%s (small: %d)" % (name, size), "run", small))
        out.append((name, "run", path))
    for f in sorted(os.listdir(TESTS)):
        if f.endswith(".soma"):
            out.append(("tests/soma/%s" % f, "test", os.path.join(TESTS, f)))
    if only:
        out = [r for r in out if any(o in r[0] for o in only)]
    return out


# Runs in the measured process: argv = kind, path. Prints the seconds the work took.
RUNNER = r"""
import gc, io, sys, time
import soma
from soma.testfile import run_paths
kind, path = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if kind == "run":
    lines = []
    vm = soma.VM(output=lines.append)
    vm.execute_code(open(path, encoding="utf-8").read(), path)
    if not lines or not lines[-1].endswith(" ok"):
        sys.exit("the program did not print its ok line: %r" % lines[-3:])
    del vm
else:
    out = io.StringIO()
    if run_paths([path], lambda with_stdlib: soma.VM(stdlib=None if with_stdlib else False), out):
        sys.exit(out.getvalue())
gc.collect()
print(time.perf_counter() - t)
"""


def run_once(kind, path, tier):
    env = dict(os.environ)
    for var in ("SOMA_JIT_THRESHOLD", "SOMA_JIT_BACKGROUND", "SOMA_JIT_DUMP", "SOMA_JIT_TIME"):
        env.pop(var, None)
    env.update(tier)
    env["PYTHONPATH"] = os.path.join(ROOT, "python") + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", RUNNER, kind, path], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit("FAILED: %s %s with %s:\n%s%s" % (kind, path, tier, proc.stdout[-2000:],
                                                          proc.stderr[-2000:]))
    return float(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=7, help="native/jit pairs per row")
    parser.add_argument("--rows", nargs="*", help="only rows whose name contains one of these")
    parser.add_argument("--out", default=os.path.join(HERE, "out"), help="where to write tierup.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        table = []
        print("%-40s %10s %10s %9s  %s" % ("row", "native", "jit", "jit/nat", ""))
        for name, kind, path in rows(tmp, args.rows):
            run_once(kind, path, NATIVE)   # warm-up: file cache, imports
            native, jit, ratios = [], [], []
            for _ in range(args.pairs):
                a = run_once(kind, path, NATIVE)
                b = run_once(kind, path, JIT)
                native.append(a)
                jit.append(b)
                ratios.append(b / a)
            n, j, r = statistics.median(native), statistics.median(jit), statistics.median(ratios)
            verdict = ""
            if r > 1.05:
                verdict = "SLOWER by more than 5%"
            elif n > 0.05 and r >= 1.0:
                verdict = "not faster (runs > 50 ms natively)"
            table.append({"row": name, "native_s": n, "jit_s": j, "ratio": r,
                          "native_runs": native, "jit_runs": jit, "verdict": verdict})
            print("%-40s %9.1fms %9.1fms %9.3f  %s" % (name, n * 1e3, j * 1e3, r, verdict),
                  flush=True)
    bad = [t for t in table if t["verdict"]]
    print("%d rows, %d breaking the bar; geometric mean jit/native %.3f"
          % (len(table), len(bad), statistics.geometric_mean([t["ratio"] for t in table])))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tierup.json"), "w") as f:
        json.dump({"pairs": args.pairs, "rows": table}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
