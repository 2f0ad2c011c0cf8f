#!/usr/bin/env bash
# Create (or refresh) the project's virtualenv in .venv with SOMA installed in
# editable mode: the Python package from python/, and the native extension
# built from crates/ by maturin in release mode. Idempotent: it reinstalls only
# when the Rust sources or the packaging files changed since the last install
# (Python sources are used in place).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
STAMP=.venv/.soma-installed
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
if [ -f "$STAMP" ] && [ -z "$(find crates Cargo.toml Cargo.lock pyproject.toml -newer "$STAMP" -print -quit)" ]; then
    exit 0
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet -e '.[test]'
touch "$STAMP"
