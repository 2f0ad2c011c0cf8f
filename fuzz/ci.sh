#!/usr/bin/env bash
# Short bounded fuzz run for CI (docs/fuzzing.md): build the Rust fuzz targets with cargo-fuzz
# (libFuzzer + ASan) and run each for FUZZ_SECONDS (default 25) from its committed seed corpus.
# Exits non-zero if any target crashes (the input is kept under fuzz/artifacts/<target>/).
# The Python targets run in pytest (tests/test_fuzz_targets.py).
#
#   fuzz/ci.sh                      # all targets
#   FUZZ_SECONDS=300 fuzz/ci.sh jit # one target, longer
#   SOMA_FUZZ=0 fuzz/ci.sh          # skip (prints why, exits 0)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${SOMA_FUZZ:-1}" = 0 ]; then
    echo "== fuzz/ci.sh skipped (SOMA_FUZZ=0)"
    exit 0
fi

SECS="${FUZZ_SECONDS:-25}"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(decode jit execute)

# Only the stable toolchain exists here; cargo-fuzz needs -Z flags (sanitizers, coverage
# passes), which RUSTC_BOOTSTRAP=1 lets stable accept.
export RUSTC_BOOTSTRAP=1
# Instrument our crates only (see fuzz/rustc-wrapper.sh).
export RUSTC_WRAPPER="$PWD/fuzz/rustc-wrapper.sh"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked
fi

t0=$(date +%s)
echo "== build (cargo fuzz build)"
cargo fuzz build
echo "   built in $(( $(date +%s) - t0 )) s"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
status=0
for t in "${TARGETS[@]}"; do
    echo "== $t: ${SECS} s"
    mkdir -p "$WORK/$t" "fuzz/artifacts/$t"
    # New inputs go to the scratch dir (first corpus argument); the committed seeds are only read.
    if ! cargo fuzz run "$t" "$WORK/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$SECS" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$WORK/$t.log" 2>&1; then
        grep -v -E '^#[0-9]+\s+(NEW|REDUCE|pulse)' "$WORK/$t.log" | tail -n 60
        echo "FAILED: fuzz target $t crashed (input kept under fuzz/artifacts/$t/)"
        status=1
        continue
    fi
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$WORK/$t.log" \
        | sed 's/^/   /'
done
echo "== fuzz/ci.sh done in $(( $(date +%s) - t0 )) s"
exit $status
