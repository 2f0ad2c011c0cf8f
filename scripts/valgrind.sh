#!/usr/bin/env bash
# Run the runtime's and the JIT's test binaries under valgrind (memcheck).
#
#   scripts/valgrind.sh                 # every test binary of soma-runtime and soma-jit
#   scripts/valgrind.sh soma-runtime    # one package
#
# Exits non-zero on the first binary with a memory error or a definite leak.
# `--smc-check=all-non-file` lets valgrind see code the JIT writes at run time.
# The GC tests run once more with SOMA_GC_STRESS=1 (collect at every safepoint).
# Slow: tens of minutes on 2 cores; not part of ./test.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=("$@")
[ $# -eq 0 ] && packages=(soma-runtime soma-jit)
log="$(mktemp)"

# Run one test binary under memcheck; print its test summary; stop on any error.
check() {
    echo "== valgrind $(basename "$1")${SOMA_GC_STRESS:+ (SOMA_GC_STRESS=1)}"
    if valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
            --smc-check=all-non-file "$1" --test-threads=1 >"$log" 2>&1; then
        grep -E "^test result" "$log" || true
    else
        cat "$log"
        echo "valgrind: errors in $(basename "$1")"
        exit 1
    fi
}

for pkg in "${packages[@]}"; do
    mapfile -t bins < <(cargo test -p "$pkg" --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import sys, json
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m.get("profile", {}).get("test"):
        print(m["executable"])')
    for bin in "${bins[@]}"; do
        check "$bin"
        case "$(basename "$bin")" in
            gc-*) SOMA_GC_STRESS=1 check "$bin" ;;
        esac
    done
done
echo "valgrind: clean"
