#!/usr/bin/env python3
"""Does turning the JIT on ever cost the user? Native tier versus JIT at default settings.

    python benches/tierup.py                 # 7 pairs a row (21 for rows under 50 ms)
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
(below 1: the JIT is faster), with the ratios' quartiles and the number of pairs (rows shorter
than 50 ms natively get three times as many: their ratio moves by about the bar itself).

A program checks its own result (a small size, benches/sizes.py, gets its expected values
rewritten with it), and every test of a file must pass, so a fast wrong tier fails the row
instead of winning it.

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

import sizes

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROGRAMS = os.path.join(HERE, "programs")
TESTS = os.path.join(ROOT, "tests", "soma")

NATIVE = {"SOMA_JIT": "1", "SOMA_JIT_THRESHOLD": "off"}
JIT = {"SOMA_JIT": "1"}

# The bar's long rows: those that run longer than this natively must be faster with the JIT;
# shorter ones get three times the pairs.
LONG_ROW_S = 0.05


def rows(tmp, only):
    """(name, kind, path) for every row; kind is "run" or "test"."""
    out = []
    for f in sorted(os.listdir(PROGRAMS)):
        if not f.endswith(".soma"):
            continue
        name = f[:-5]
        path = os.path.join(PROGRAMS, f)
        if name in sizes.SMALL:
            size = sizes.SMALL[name]
            small = os.path.join(tmp, "%s_%d.soma" % (name, size))
            with open(path, encoding="utf-8") as src, open(small, "w", encoding="utf-8") as dst:
                dst.write(sizes.resize(name, "soma", src.read(), size))
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
        print("%-40s %10s %10s %9s  %11s %3s" % ("row", "native", "jit", "jit/nat", "quartiles", "n"))
        for name, kind, path in rows(tmp, args.rows):
            warm = run_once(kind, path, NATIVE)   # warm-up: file cache, imports
            # A short row's ratio moves by as much as the bar itself from run to run: it gets
            # three times the pairs (they are cheap), so that its median is worth comparing.
            pairs = args.pairs * 3 if warm < LONG_ROW_S else args.pairs
            native, jit, ratios = [], [], []
            for _ in range(pairs):
                a = run_once(kind, path, NATIVE)
                b = run_once(kind, path, JIT)
                native.append(a)
                jit.append(b)
                ratios.append(b / a)
            n, j, r = statistics.median(native), statistics.median(jit), statistics.median(ratios)
            q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (r, r, r)
            verdict = ""
            if r > 1.05:
                verdict = "SLOWER by more than 5%"
            elif n > LONG_ROW_S and r >= 1.0:
                verdict = "not faster (runs > 50 ms natively)"
            table.append({"row": name, "native_s": n, "jit_s": j, "ratio": r, "ratio_q1": q1,
                          "ratio_q3": q3, "pairs": pairs,
                          "native_runs": native, "jit_runs": jit, "verdict": verdict})
            print("%-40s %9.1fms %9.1fms %9.3f  %5.3f-%5.3f %3d  %s"
                  % (name, n * 1e3, j * 1e3, r, q1, q3, pairs, verdict), flush=True)
    bad = [t for t in table if t["verdict"]]
    print("%d rows, %d breaking the bar; geometric mean jit/native %.3f"
          % (len(table), len(bad), statistics.geometric_mean([t["ratio"] for t in table])))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tierup.json"), "w") as f:
        json.dump({"pairs": args.pairs, "rows": table}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
