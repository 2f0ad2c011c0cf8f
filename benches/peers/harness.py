"""Timing harness shared by the Python peers (run by CPython and by PyPy).

A peer module defines `run()`, which does the whole algorithm once and returns
its `... ok` line, or raises when the result is wrong. `main(run)` calls it
`repeat` times (first command-line argument, default 1) in this one process,
timing each call alone with a monotonic clock, then prints the line and the
best time in seconds on the last line: the protocol benches/compare.py reads.
Interpreter start-up is outside the timed region; a JIT (PyPy's) stays warm
from one repeat to the next, so the best repeat is its steady state.
"""

import sys
import time


def main(run):
    repeat = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    best = None
    line = None
    for _ in range(repeat):
        start = time.perf_counter()
        line = run()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    if not line.endswith(" ok"):
        raise SystemExit("the peer returned %r, not an ok line" % (line,))
    print(line)
    print(best)
