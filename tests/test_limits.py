"""Resource limits on the selected tier: a long loop runs in flat memory.

A 10-million-iteration `>chain` loop whose body writes Register cells (a fresh
Register per iteration, a CellRef into it, a Store cell) must not grow the
process: every tier reclaims dropped Registers. A 1-million-iteration run
first sets the baseline (allocators keep freed pages, so its peak is the
reference); the 10-million run may then add only a small slack.
"""

import os

import pytest

import soma

LOOP = """
0 !n
{ n 1 >+ !n  n !_.a  _.a !_.b  _.b. !_.r  _.r !last  n ITERATIONS >< >block Nil >choose } >chain
"""


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_ten_million_iterations_run_in_flat_memory(vm_factory):
    vm = vm_factory(False)
    vm.execute_code(LOOP.replace("ITERATIONS", "1000000"))
    baseline = resident_bytes()
    vm.execute_code(LOOP.replace("ITERATIONS", "10000000"))
    grown = resident_bytes() - baseline
    assert vm.lookup("n") == 10_000_000
    assert vm.al == [soma.NIL, soma.NIL]
    assert grown < 16 * 1024 * 1024, "resident set grew by %d bytes" % grown
