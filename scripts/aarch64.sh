#!/usr/bin/env bash
# Run the runtime and the JIT as aarch64 machine code, under qemu-aarch64 (docs/jit.md,
# "Targets"): cross-build them for aarch64-unknown-linux-gnu, then run
#   1. the runtime's executor tests (crates/runtime/tests/exec.rs);
#   2. the differential runner (crates/jit/tests/every_code.rs): every Code of the .soma corpus,
#      the stdlib and the benchmark programs, on the executor and compiled at threshold 0;
#      its per-source outcomes must also equal those of the same runner on this x86_64 host;
#   3. the JIT's differential tests (diff, random with fewer programs, toplevel, env, debug)
#      and the speculative tier's poll tests;
#      the two about a stack size run alone, on a main thread of that size.
# Exits non-zero on any failure or difference.
#
# Installs what it needs when missing (root and apt-get; Debian bookworm packages): Debian's
# rustc-web (Rust 1.96, with an aarch64 standard library, in /usr/bin; the rustup toolchain on
# PATH has no aarch64 library and there is no network to fetch one), the aarch64 C toolchain
# as linker, qemu-user. When it cannot install them it says so and how, and exits 0 outside CI
# (a developer without root can still run ./test) but 1 in CI (CI=true), where it must run.
#
# The build goes to target/aarch64 (not to target/, so the host build is untouched), in the
# test profile (opt-level 1, as the host's tests) without debug info, which would only slow
# the build and the link. (A release build was not measured against it.)
set -euo pipefail
cd "$(dirname "$0")/.."

TRIPLE=aarch64-unknown-linux-gnu
SYSROOT=/usr/aarch64-linux-gnu
DEBIAN_RUSTC=/usr/bin/rustc
PACKAGES=(rustc-web "libstd-rust-web-dev:arm64" gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
INSTALL="dpkg --add-architecture arm64 && apt-get update && apt-get install -y ${PACKAGES[*]}"
OUT=target/aarch64

missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
            echo "$p"
        fi
    done
}

cannot_install() {
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "!!! aarch64: NOT RUN: $1"
    echo "!!! Install the cross toolchain and qemu as root, then run scripts/aarch64.sh:"
    echo "!!!     $INSTALL"
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    if [ "${CI:-}" = true ]; then
        exit 1
    fi
    exit 0
}

if ! command -v dpkg-query >/dev/null; then
    cannot_install "this is not a Debian system (no dpkg-query)"
fi
if [ -n "$(missing_packages)" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        cannot_install "missing $(missing_packages | tr '\n' ' '); no root or apt-get to install them"
    fi
    start=$SECONDS
    echo "aarch64: installing $(missing_packages | tr '\n' ' ')"
    export DEBIAN_FRONTEND=noninteractive
    dpkg --add-architecture arm64
    apt-get update -q >"$OUT.apt.log" 2>&1 || { cat "$OUT.apt.log"; exit 1; }
    # shellcheck disable=SC2046  # one word per package
    apt-get install -y -q --no-install-recommends $(missing_packages) >>"$OUT.apt.log" 2>&1 \
        || { cat "$OUT.apt.log"; exit 1; }
    echo "aarch64: installed in $((SECONDS - start)) s"
fi
mkdir -p "$OUT"

# Cargo for the cross build: Debian's rustc (also for build scripts, which need a host
# library of the same version: rustc-web brings it), the cross gcc as linker, and qemu as the
# runner of every aarch64 binary cargo runs. The preloaded shim refuses thread creation
# (scripts/aarch64-no-threads.c says why), so the tests run on the guest's main thread, whose
# stack is the stack rlimit qemu starts with: 1 GiB (as the x86_64 runs get a 1 GiB thread),
# or $STACK bytes.
SHIM="$PWD/$OUT/libsoma-no-threads.so"
# Seconds one test binary may run under qemu (every_code, the longest, takes 3-6 min): a
# miscompiled loop condition can make a program loop forever, and that must fail the step.
LIMIT=1200
aarch64-linux-gnu-gcc -shared -fPIC -O2 -o "$SHIM" scripts/aarch64-no-threads.c
cross() { # cross SUBCOMMAND ARGS...
    local sub="$1"
    shift
    env RUSTC="$DEBIAN_RUSTC" CARGO_TARGET_DIR="$OUT" CARGO_PROFILE_TEST_DEBUG=false \
        cargo "$sub" --target "$TRIPLE" \
        --config "target.$TRIPLE.linker='aarch64-linux-gnu-gcc'" \
        --config "target.$TRIPLE.runner=['prlimit', '--stack=${STACK:-$((1 << 30))}', 'timeout', '$LIMIT', \
                  'qemu-aarch64', '-L', '$SYSROOT', '-E', 'LD_PRELOAD=$SHIM']" \
        "$@"
}

start=$SECONDS
echo "aarch64: building ($("$DEBIAN_RUSTC" --version))"
{
    cross test --no-run -p soma-runtime --test exec
    cross test --no-run -p soma-jit
} >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 1; }
echo "aarch64: built in $((SECONDS - start)) s"

start=$SECONDS
echo "aarch64: the executor's tests"
cross test --quiet -p soma-runtime --test exec -- --test-threads=1

echo "aarch64: every Code of the corpus, the stdlib and the programs, executor against JIT"
SOMA_DIFF_OUTCOMES="$PWD/$OUT/outcomes-aarch64.txt" cross test --quiet -p soma-jit --test every_code
echo "aarch64: ... and its outcomes against x86_64's"
SOMA_DIFF_OUTCOMES="$PWD/$OUT/outcomes-x86_64.txt" cargo test --quiet -p soma-jit --test every_code >/dev/null
if ! diff "$OUT/outcomes-x86_64.txt" "$OUT/outcomes-aarch64.txt" >"$OUT/outcomes.diff"; then
    head -c 20000 "$OUT/outcomes.diff"
    echo "aarch64: the outcomes differ from x86_64's (< x86_64, > aarch64)"
    exit 1
fi
echo "aarch64: $(wc -l <"$OUT/outcomes-aarch64.txt") outcomes equal to x86_64's"

echo "aarch64: the JIT's differential tests"
# The two tests about a given stack size run alone, on a main thread of that size.
SMALL_STACK=runaway_recursion_on_a_small_stack_is_an_error_not_a_crash
MAIN_SIZED_STACK=depth_limit_recursion_fits_an_8_mib_stack
cross test --quiet -p soma-jit --test diff --test toplevel --test env --test debug -- \
    --test-threads=1 --skip "$SMALL_STACK" --skip "$MAIN_SIZED_STACK"
STACK=$((512 << 10)) cross test --quiet -p soma-jit --test diff -- --exact "$SMALL_STACK"
STACK=$((8 << 20)) cross test --quiet -p soma-jit --test diff -- --exact "$MAIN_SIZED_STACK"
SOMA_JIT_PROGRAMS=300 cross test --quiet -p soma-jit --test random -- --test-threads=1
# Polls taken early from compiled loops call a trampoline in Cranelift's preserve_all
# convention (crates/jit/src/quiet_calls.rs): run them here too.
cross test --quiet -p soma-jit --test speculative -- --test-threads=1 poll
echo "aarch64: ran in $((SECONDS - start)) s"
