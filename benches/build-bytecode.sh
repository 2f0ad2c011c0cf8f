#!/usr/bin/env bash
# Compile the stdlib and the benchmark programs to serialized bytecode
# (docs/bytecode.md) for `cargo bench`, which runs them without Python.
# The .bc files are checked in; tests/test_bench_bytecode.py fails when they
# are stale, so rerun this after changing a program, the stdlib or the compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD/python${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -m soma compile python/soma/stdlib.soma -o benches/bytecode/stdlib.bc
for src in benches/programs/*.soma; do
    stem="$(basename "$src" .soma)"
    "$PY" -m soma compile "$src" -o "benches/bytecode/$stem.bc"
done
