#!/usr/bin/env bash
# RUSTC_WRAPPER for the fuzz build (docs/fuzzing.md, "Build"): cargo-fuzz puts its
# coverage instrumentation (SanitizerCoverage: 8-bit counters, PC table, compare tracing) and
# `-Ccodegen-units=1` into RUSTFLAGS for every crate. For third-party crates (Cranelift,
# regalloc2, num-bigint, ...) we drop both: libFuzzer then scans only the counters of our own
# code after every run (with Cranelift instrumented, that scan was 70% of the run time) and the
# dependencies build several times faster. Sanitizer flags (ASan) and `--cfg fuzzing` stay
# on for every crate. Our crates are compiled exactly as cargo-fuzz asks.
rustc="$1"
shift
crate=""
prev=""
for a in "$@"; do
    if [ "$prev" = "--crate-name" ]; then crate="$a"; fi
    prev="$a"
done
case "$crate" in
    soma_runtime | soma_jit | soma_fuzz | decode | jit | execute | "")
        exec "$rustc" "$@" ;;
esac
args=()
for a in "$@"; do
    case "$a" in
        -Cpasses=sancov-module | -Cllvm-args=-sanitizer-coverage-* | -Ccodegen-units=1) ;;
        *) args+=("$a") ;;
    esac
done
exec "$rustc" "${args[@]}"
