#!/usr/bin/env bash
# Every test suite, in the order a failure is cheapest to read. Run from the
# project root with the virtualenv made by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
LOG="$(mktemp -d)"

# Run a command quietly; show its summary lines, or its whole log if it fails.
step() {
    local title="$1" pattern="$2"; shift 2
    echo "== $title"
    if "$@" >"$LOG/out" 2>&1; then
        grep -E "$pattern" "$LOG/out" || true
    else
        cat "$LOG/out"
        echo "FAILED: $title"
        exit 1
    fi
}

step "Rust: cargo test (workspace)" "^test result" \
    cargo test --workspace --quiet
step "Rust: runtime tests under GC stress (collect at every safepoint)" "^test result" \
    env SOMA_GC_STRESS=1 cargo test -p soma-runtime --quiet
step "Benches compile (cargo bench --no-run)" "^error" \
    cargo bench --workspace --no-run --quiet
step ".soma suite, pure-Python tier (soma test)" "passed, " \
    env SOMA_JIT=0 .venv/bin/soma test tests/soma
step ".soma suite, native backend without JIT (soma test)" "passed, " \
    env SOMA_JIT=1 SOMA_JIT_THRESHOLD=off .venv/bin/soma test tests/soma

echo "== pytest, pure-Python tier"
SOMA_JIT=0 "$PY" -m pytest -q tests

echo "== pytest, native backend without JIT"
SOMA_JIT=1 SOMA_JIT_THRESHOLD=off "$PY" -m pytest -q tests

# Last: short bounded runs of the Rust fuzz targets (docs/fuzzing.md; the Python fuzz targets
# already ran in pytest). Installs cargo-fuzz if missing; SOMA_FUZZ=0 skips.
step "Fuzz: Rust targets, ~25 s each (fuzz/ci.sh)" "^(==|   stat::)" \
    fuzz/ci.sh
