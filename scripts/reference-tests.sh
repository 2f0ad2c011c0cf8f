#!/bin/bash
# Run the reference SOMA's Python test files against our implementation.
#
#   scripts/reference-tests.sh [REFERENCE_CHECKOUT] [TIER...]
#
# REFERENCE_CHECKOUT defaults to /tmp/refsoma, TIERs (SOMA_JIT settings) to 0 1. The
# tests are copied to a scratch directory (so `import soma` finds ours, from this
# checkout's .venv) and run with pytest, one file at a time; prints the pass counts.
# The reference's tests drive its internal pipeline (`lex` -> `Parser(tokens).parse()`
# -> `compile_program` -> `vm.execute`); a sitecustomize written here maps those four
# names onto our `execute_code` for the run. Its test_lexer/test_parser/test_vm test the
# reference's own token, syntax-tree and node classes, which we do not have: they are
# run and reported, not expected to pass. Not part of ./test (CI has no reference).
set -uo pipefail

REF=${1:-/tmp/refsoma}
shift || true
TIERS=("$@")
[[ ${#TIERS[@]} -eq 0 ]] && TIERS=(0 1)
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$HERE/.venv/bin/python"
[[ -x "$PY" ]] || { echo "run scripts/setup.sh first (no $PY)" >&2; exit 2; }
[[ -d "$REF/tests" ]] || { echo "no reference checkout at $REF" >&2; exit 2; }

WORK=$(mktemp -d /tmp/reference-tests.XXXXXX)
cp -r "$REF/tests" "$WORK/tests"
mkdir -p "$WORK/shim"
cat > "$WORK/shim/sitecustomize.py" <<'PY'
# The reference's internal pipeline, mapped onto soma.VM.execute_code (our lexer stays
# the one our compiler uses; the token list only carries its source along).
import soma.lexer
import soma.parser
import soma.vm

_lex = soma.lexer.lex


class _Tokens(list):
    source = ""


def _lex_keeping_source(source):
    tokens = _Tokens(_lex(source))
    tokens.source = source
    return tokens


class _Parser:
    def __init__(self, tokens):
        self.tokens = tokens

    def parse(self):
        return self.tokens.source


soma.lexer.lex = _lex_keeping_source
soma.parser.Parser = _Parser
soma.vm.compile_program = lambda program: program
soma.vm.VM.execute = lambda self, program: self.execute_code(program)
PY

for tier in "${TIERS[@]}"; do
    echo "== SOMA_JIT=$tier"
    for f in "$WORK"/tests/test_*.py; do
        result=$(cd "$WORK" && PYTHONPATH="$WORK/shim" SOMA_JIT="$tier" \
                 "$PY" -m pytest -q -p no:cacheprovider "tests/$(basename "$f")" 2>&1 | tail -1)
        printf '%-42s %s\n' "$(basename "$f")" "$result"
    done
done
