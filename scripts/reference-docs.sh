#!/bin/bash
# Render the reference SOMA's docs/*.soma with the reference VM and with ours, and diff.
#
#   scripts/reference-docs.sh [REFERENCE_CHECKOUT] [TIER...]
#
# REFERENCE_CHECKOUT defaults to /tmp/refsoma; TIERs are SOMA_JIT settings for our VM
# (default: 0 1). Each .soma runs as the reference's build_docs.sh runs it,
# `python3 -m soma < FILE`, in a copy of the docs tree under a scratch directory, so that
# the package imported is the one chosen by PYTHONPATH (the reference's, or ours from
# this checkout's .venv), never a `soma/` next to the file. Prints, per implementation,
# how many documents rendered (exit 0) and the wall time; then, per tier, how many of
# ours are byte-identical to the reference's output (stdout and exit status), listing
# the others. Then the same comparison for the reference's example programs: the .soma
# files of examples/ and markdown/ (run the same way) and the Python example scripts
# examples/sin_calculator/run_soma_sin.py and examples/ffi/python_ffi_demo.py.
# Not part of ./test: CI has no reference checkout.
set -uo pipefail

REF=${1:-/tmp/refsoma}
shift || true
TIERS=("$@")
[[ ${#TIERS[@]} -eq 0 ]] && TIERS=(0 1)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$HERE/.venv/bin/python"
[[ -x "$PY" ]] || { echo "run scripts/setup.sh first (no $PY)" >&2; exit 2; }
[[ -d "$REF/docs" ]] || { echo "no reference checkout at $REF" >&2; exit 2; }

WORK=$(mktemp -d /tmp/reference-docs.XXXXXX)
cp -r "$REF/docs" "$WORK/docs"
mapfile -t FILES < <(cd "$WORK" && find docs -name '*.soma' -type f | sort)

# render NAME PYTHON [ENV...]: outputs to $WORK/out/NAME/<file>.md (+ .rc)
render() {
    local name=$1 python=$2
    shift 2
    local out="$WORK/out/$name" start end ok=0
    mkdir -p "$out"
    start=$(date +%s.%N)
    for f in "${FILES[@]}"; do
        mkdir -p "$out/$(dirname "$f")"
        (cd "$WORK" && env "$@" "$python" -m soma < "$f" \
            > "$out/${f%.soma}.md" 2>"$out/${f%.soma}.err")
        echo $? > "$out/${f%.soma}.rc"
        [[ $(cat "$out/${f%.soma}.rc") == 0 ]] && ok=$((ok + 1))
    done
    end=$(date +%s.%N)
    printf '%-14s rendered %d/%d in %.1f s\n' "$name" "$ok" "${#FILES[@]}" \
        "$(echo "$end - $start" | bc)"
}

render reference python3 PYTHONPATH="$REF"
for tier in "${TIERS[@]}"; do
    render "ours-jit$tier" "$PY" SOMA_JIT="$tier"
done
for tier in "${TIERS[@]}"; do
    same=0
    diffs=()
    for f in "${FILES[@]}"; do
        base=${f%.soma}
        if cmp -s "$WORK/out/reference/$base.md" "$WORK/out/ours-jit$tier/$base.md" &&
           cmp -s "$WORK/out/reference/$base.rc" "$WORK/out/ours-jit$tier/$base.rc"; then
            same=$((same + 1))
        else
            diffs+=("$f")
        fi
    done
    echo "SOMA_JIT=$tier: $same/${#FILES[@]} byte-identical to the reference"
    for f in "${diffs[@]}"; do echo "  differs: $f"; done
done

# -- the example programs ------------------------------------------------------
# Each implementation runs them in its own copy of examples/ and markdown/ (a .soma in
# its own directory, where markdown ones render their .md/.html), so the comparison
# covers what they print, their exit status and the files they write.
mapfile -t EXAMPLES < <(cd "$REF" && find examples markdown -name '*.soma' -type f | sort)
SCRIPTS=(examples/sin_calculator/run_soma_sin.py examples/ffi/python_ffi_demo.py)
run_examples() {
    local name=$1 python=$2
    shift 2
    local tree="$WORK/ex/$name" out="$WORK/exout/$name"
    mkdir -p "$tree" "$out"
    cp -r "$REF/examples" "$REF/markdown" "$tree/"
    for f in "${EXAMPLES[@]}"; do
        (cd "$tree/$(dirname "$f")" && env "$@" "$python" -m soma < "$(basename "$f")" \
            > "$out/${f//\//_}.out" 2>/dev/null
         echo "exit $?" >> "$out/${f//\//_}.out")
    done
    for f in "${SCRIPTS[@]}"; do
        (cd "$tree" && env "$@" "$python" "$f" > "$out/${f//\//_}.out" 2>/dev/null
         echo "exit $?" >> "$out/${f//\//_}.out")
    done
}
run_examples reference python3 PYTHONPATH="$REF"
for tier in "${TIERS[@]}"; do
    run_examples "ours-jit$tier" "$PY" SOMA_JIT="$tier"
    same=0
    for f in "${EXAMPLES[@]}" "${SCRIPTS[@]}"; do
        if cmp -s "$WORK/exout/reference/${f//\//_}.out" \
                  "$WORK/exout/ours-jit$tier/${f//\//_}.out"; then
            same=$((same + 1))
        else
            echo "  example differs: $f"
        fi
    done
    total=$(( ${#EXAMPLES[@]} + ${#SCRIPTS[@]} ))
    echo "SOMA_JIT=$tier: $same/$total example programs print the same and exit the same"
    if diff -r -q -x __pycache__ "$WORK/ex/reference" "$WORK/ex/ours-jit$tier"; then
        echo "SOMA_JIT=$tier: the files they write are identical"
    fi
done
echo "outputs kept in $WORK/out, $WORK/exout and $WORK/ex"
