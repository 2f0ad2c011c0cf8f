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
# Short bounded runs of the Rust fuzz targets (docs/fuzzing.md; the Python fuzz targets run in
# pytest). Installs cargo-fuzz if missing; SOMA_FUZZ=0 skips.
step "Fuzz: Rust targets, ~25 s each (fuzz/ci.sh)" "^(==|   stat::)" \
    fuzz/ci.sh

# The language suite and pytest on every tier: pure Python; native state without compiling;
# the JIT compiling every block before its first run; the JIT at its default threshold. The
# JIT tiers check every replayed translation against the translation it stands for
# (docs/jit.md, "Replayed translations"): a difference aborts the run.
TIERS=(
    "pure-Python tier|SOMA_JIT=0"
    "native backend without JIT|SOMA_JIT=1 SOMA_JIT_THRESHOLD=off"
    "JIT, everything compiled|SOMA_JIT=1 SOMA_JIT_THRESHOLD=0 SOMA_JIT_CHECK_REPLAY=1"
    "JIT, default threshold|SOMA_JIT=1 SOMA_JIT_CHECK_REPLAY=1"
)
for tier in "${TIERS[@]}" "JIT, everything compiled by the optimizing tier|SOMA_JIT=1 SOMA_JIT_THRESHOLD=0 SOMA_JIT_OPT_THRESHOLD=0 SOMA_JIT_CHECK_REPLAY=1"; do
    name="${tier%%|*}"; vars="${tier#*|}"
    # shellcheck disable=SC2086  # $vars is a list of VAR=value words
    step ".soma suite, $name (soma test)" "passed, " env $vars .venv/bin/soma test tests/soma
done
for tier in "${TIERS[@]}"; do
    name="${tier%%|*}"; vars="${tier#*|}"
    echo "== pytest, $name"
    # shellcheck disable=SC2086
    env $vars "$PY" -m pytest -q -p no:cacheprovider tests
done

# The runtime and the JIT as aarch64 machine code under qemu-aarch64 (docs/jit.md, "Targets"):
# installs its toolchain when missing, cross-builds into target/aarch64, fails on any difference.
step "aarch64 under qemu (scripts/aarch64.sh)" "^(aarch64|!!!)" \
    scripts/aarch64.sh
