"""The benchmark programs (benches/programs/) give their answer on the JIT as a user runs it.

Each program checks its own result and prints its `... ok` line only when it is right. Here
each runs as `soma run` does, in a fresh process, under JIT settings where code lands at
different points of the run: the defaults (background compiles installed whenever they are
ready), a main-thread budget so small that most tier-ups are postponed (Blocks run
interpreted while the code that calls them, or that they call, is compiled), and lockstep
compiles at threshold 1 with the optimizing tier at 2 (every Block through both tiers, the
code installed at fixed points). A wrong answer or an error fails the test. Nothing is timed.

These runs set their own tier, so conftest.py collects them once, in the suite's
default-threshold JIT tier (`SOMA_JIT=1` with no threshold set), not again in each tier.
"""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benches"))

import compare  # noqa: E402  (benches/compare.py)

PROGRAMS = sorted(f[:-5] for f in os.listdir(compare.PROGRAMS_DIR) if f.endswith(".soma"))

SETTINGS = {
    "defaults": {},
    "tight budget": {"SOMA_JIT_BUDGET": "1,50"},
    "lockstep, both tiers": {"SOMA_JIT_THRESHOLD": "1", "SOMA_JIT_OPT_THRESHOLD": "2",
                             "SOMA_JIT_BACKGROUND": "lockstep"},
}


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("program", PROGRAMS)
def test_program_gives_its_answer_on_the_jit(program, setting):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOMA_")}
    env.update({"SOMA_JIT": "1", "PYTHONPATH": os.path.join(ROOT, "python")}, **SETTINGS[setting])
    path = os.path.join(compare.PROGRAMS_DIR, program + ".soma")
    r = subprocess.run([sys.executable, "-m", "soma", "run", path], env=env,
                       capture_output=True, text=True, timeout=300)
    assert (r.returncode, r.stdout.strip()) == (0, compare.expected_line(program)), r.stderr
