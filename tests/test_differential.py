"""Random SOMA programs give the same AL, output and error on every tier.

2,000 programs per run from a fixed seed (reproduce one with
`python -m soma.difftest --seed SEED --count N`). The tiers are built
explicitly (pure Python; native state without compilation; native with every
block compiled before its first run), so this file compares all three
whatever SOMA_JIT says.
"""

import pytest

from soma import difftest
from soma.builtins import CORE_BUILTINS
from soma.values import Builtin

SEED = 20261121
COUNT = 2000


def test_generator_is_deterministic_and_varied():
    gen_a, gen_b = difftest.Generator(5), difftest.Generator(5)
    programs = [gen_a.program() for _ in range(200)]
    assert programs == [gen_b.program() for _ in range(200)]
    assert len(set(programs)) > 190
    # Most generated programs run deep; errors of several kinds are compared too.
    factory = difftest.available_factories()["python"]
    outcomes = [difftest.outcome(factory, p) for p in programs]
    finished = sum(1 for _, _, err, _ in outcomes if err is None)
    kinds = {err[0] for _, _, err, _ in outcomes if err is not None}
    assert finished > 40
    assert {"RuntimeError", "ParseError"} <= kinds


def test_every_tier_agrees_on_generated_programs():
    factories = difftest.available_factories()
    if len(factories) < 3:
        pytest.skip("the native extension is not built (scripts/setup.sh builds it)")
    report = []
    found = difftest.compare(factories, COUNT, SEED, report=report.append)
    assert not found, "\n".join(report)


def test_a_divergence_is_found_and_minimized():
    # A tier whose `-` is wrong must be caught, and the report cut down to a
    # program of a few statements.
    from soma.vm import VM

    def broken_sub(vm):
        b, a = vm.al.pop(), vm.al.pop()
        vm.al.append(a - b + 1)

    class PythonVM(VM):
        pass

    def good(out):
        return PythonVM(stdlib=False, max_depth=200, output=out)

    def bad(out):
        vm = PythonVM(stdlib=False, max_depth=200, output=out)
        vm._define("-", Builtin("-", broken_sub))
        return vm

    assert "-" in CORE_BUILTINS
    found = difftest.compare({"good": good, "bad": bad}, 300, SEED, report=lambda line: None)
    assert found
    for _, program, detail in found:
        assert ">-" in program
        assert detail["good"] != detail["bad"]
        # Minimal: every statement left is needed for the divergence (a hot loop needs the
        # cells and helpers it uses defined, so the count alone says little).
        pieces = difftest._split_statements(program)
        for i in range(len(pieces)):
            without = " ".join(pieces[:i] + pieces[i + 1:])
            assert difftest.outcome(good, without) == difftest.outcome(bad, without), without
