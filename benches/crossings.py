#!/usr/bin/env python3
"""Cost of each kind of Python/native crossing of the native backend, in ns.

    SOMA_JIT=1 .venv/bin/python benches/crossings.py [--n 200000]

Crossing kinds (python/soma/native.py, crates/bridge/src/lib.rs):
  al push+pop        Machine.al_push(5) then Machine.al_pop() from Python (two crossings)
  al push+pop native the same pair inside one crossing (the runtime's own cost, for scale)
  store write        Machine.store_write("a.b.c", 5)
  store read         Machine.lookup("a.b.c")
  run module         Machine.run on an already serialized one-instruction module
                     (decode + load + execute + return), no compilation
  run loaded module  Machine.run_loaded: execute an already loaded module + return
  execute_code       NativeVM.execute_code("1 !x"): compile in Python + serialize + run
  host builtin call  one call of a Python-written builtin from native code (runtime ->
                     Python -> runtime), measured inside one run of 1000 calls
  exec_value         NativeVM.execute_value(block) of an empty block from Python

The pure-Python tier does none of these crossings; its per-op costs are printed for scale.
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

from soma import native  # noqa: E402
from soma.code import encode_module  # noqa: E402
from soma.compiler import compile_source  # noqa: E402
from soma.vm import VM as PyVM  # noqa: E402


def per_op(fn, n, ops_per_call=1, repeat=5):
    best = None
    for _ in range(repeat):
        t = time.perf_counter_ns()
        fn(n)
        dt = time.perf_counter_ns() - t
        best = dt if best is None else min(best, dt)
    return best / (n * ops_per_call)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    args = ap.parse_args()
    n = args.n
    if not native.available():
        sys.exit("soma._native is not built (pip install -e . / ./scripts/setup.sh)")
    os.environ["SOMA_JIT_THRESHOLD"] = "off"
    vm = native.NativeVM(stdlib=False)
    m = vm._m
    rows = []

    def push_pop(k):
        push, pop = m.al_push, m.al_pop
        for _ in range(k):
            push(5)
            pop()
    rows.append(("al push+pop (2 crossings)", per_op(push_pop, n)))
    rows.append(("al push+pop inside one crossing", per_op(m.bench_push_pop_native, n * 10)))

    def write(k):
        w = m.store_write
        for _ in range(k):
            w("a.b.c", 5)
    rows.append(("store write a.b.c", per_op(write, n)))

    def read(k):
        r = m.lookup
        for _ in range(k):
            r("a.b.c")
    rows.append(("store read a.b.c", per_op(read, n)))

    data = encode_module(compile_source("1 !x"))

    def run(k):
        r = m.run
        for _ in range(k):
            r(vm, data)
    rows.append(("run a serialized module (1 instr)", per_op(run, n // 10)))
    loaded = m.load(data)

    def run_loaded(k):
        r = m.run_loaded
        for _ in range(k):
            r(vm, loaded)
    rows.append(("run an already loaded module (1 instr)", per_op(run_loaded, n // 10)))

    def execute(k):
        e = vm.execute_code
        for _ in range(k):
            e("1 !x")
    rows.append(("execute_code('1 !x') incl. compile", per_op(execute, n // 20)))

    calls = 1000
    vm.register_extension_builtin("use.bench.nop", lambda v: None)
    host = encode_module(compile_source(">use.bench.nop " * calls))
    base = encode_module(compile_source(""))   # the run itself, subtracted

    def hosted(k):
        for _ in range(k):
            m.run(vm, host)
    t_host = per_op(hosted, max(1, n // 2000), calls)
    t_base = per_op(lambda k: [m.run(vm, base) for _ in range(k)], max(1, n // 2000), calls)
    rows.append(("host builtin call (native -> Python -> native)", t_host - t_base))

    vm.execute_code("{ } !f")
    block = vm.lookup("f")

    def ex(k):
        e = vm.execute_value
        for _ in range(k):
            e(block)
    rows.append(("execute_value(empty block) from Python", per_op(ex, n // 10)))

    # For scale: the pure-Python tier's cost of one SOMA instruction.
    class PurePython(PyVM):     # VM.__new__ only redirects soma.VM itself
        pass
    py = PurePython(stdlib=False)
    prog = compile_source("1 !x " * 1000)

    def py_ops(k):
        for _ in range(k):
            py.run_program(prog)
    rows.append(("pure-Python tier: one instruction (for scale)", per_op(py_ops, max(1, n // 2000), 2000)))
    nat = m.load(encode_module(prog))

    def nat_ops(k):
        for _ in range(k):
            m.run_loaded(vm, nat)
    rows.append(("native executor: one instruction (for scale)", per_op(nat_ops, max(1, n // 2000), 2000)))

    width = max(len(r[0]) for r in rows)
    for name, ns in rows:
        print("%-*s %10.1f ns" % (width, name, ns))


if __name__ == "__main__":
    main()
