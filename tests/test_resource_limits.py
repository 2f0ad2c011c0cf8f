"""Memory, step, time and depth limits, and vm.interrupt(), on the selected tier.

Every limit is a `soma.LimitError` (a `soma.RuntimeError`) with the position of the
statement that was running, the VM stays usable, and the Store keeps what completed
statements wrote. Steps are block executions (docs/semantics.md, "Limits"), counted the
same way by every tier, so a step budget stops a program at the same statement everywhere,
compiled code included. No test here depends on speed: deadlines are only ever a fallback
that turns a hang into a failure.
"""

import os
import threading
import time

import pytest

import soma
from soma import limits

MiB = 1 << 20

DOUBLING = "(xy) !s { s s >concat !s } !d\n" + " >d" * 34

NEVER_ENDING = "0 !n { n 1 >+ !n >block } >chain"


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def expect_limit(vm, source, message, **kwargs):
    with pytest.raises(soma.LimitError) as info:
        vm.execute_code(source, **kwargs)
    err = info.value
    assert isinstance(err, soma.RuntimeError)
    assert err.message == message
    assert err.line is not None and err.col is not None
    return err


def still_usable(vm):
    vm.execute_code("1 2 >+")
    assert vm.al[-1] == 3
    vm.al.pop()


# -- memory ------------------------------------------------------------------------

@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_the_doubling_program_stops_at_the_memory_limit_and_gives_memory_back(vm_factory):
    vm = vm_factory(True, max_memory=64 * MiB)
    start = resident_bytes()
    err = expect_limit(vm, DOUBLING, "Memory limit exceeded (limit %d bytes)" % (64 * MiB))
    assert (err.line, err.col) == (1, 15)        # the concat
    after = resident_bytes()
    still_usable(vm)
    # The Store keeps the last string written (at most half the limit); the failed
    # concat's garbage is gone.
    kept = len(vm.lookup("s"))
    assert 8 * MiB <= kept <= 64 * MiB
    assert after - start < kept + 24 * MiB, "resident set grew by %d bytes" % (after - start)
    vm.execute_code("Void !s.")
    still_usable(vm)


def test_big_products_stop_at_the_memory_limit(vm_factory):
    vm = vm_factory(False, max_memory=MiB // 2)
    expect_limit(vm, "3 !x { x x >* !x } !sq" + " >sq" * 40,
                 "Memory limit exceeded (limit %d bytes)" % (MiB // 2))
    assert 2 ** 20 < vm.lookup("x").bit_length() <= MiB // 2 * 8
    still_usable(vm)


def test_an_al_that_grows_forever_stops_at_the_memory_limit(vm_factory):
    vm = vm_factory(False, max_memory=MiB)
    expect_limit(vm, "{ 1 >block } >chain", "Memory limit exceeded (limit %d bytes)" % MiB)
    # Checked at poll points: at most one poll interval of pushes past the limit.
    assert MiB // 16 < len(vm.al) <= MiB // 8 + limits.POLL_INTERVAL
    vm.al = []
    still_usable(vm)


def test_the_memory_limit_is_configurable_and_has_a_machine_default(vm_factory, monkeypatch):
    vm = vm_factory(False)
    assert vm.max_memory == limits.default_max_memory()
    assert 0 < vm.max_memory <= limits.DEFAULT_MEMORY_CAP
    vm.max_memory = "32M"
    assert vm.max_memory == 32 * MiB
    monkeypatch.setenv("SOMA_MAX_MEMORY", "3G")
    assert vm_factory(False).max_memory == 3 << 30
    monkeypatch.setenv("SOMA_MAX_MEMORY", "lots")
    with pytest.raises(ValueError):
        vm_factory(False)


# -- steps -------------------------------------------------------------------------

def test_a_never_ending_chain_stops_at_its_step_budget(vm_factory):
    vm = vm_factory(False)
    err = expect_limit(vm, NEVER_ENDING, "Step limit exceeded (limit 1000 block executions)",
                       max_steps=1000)
    assert (err.line, err.col) == (1, 27)         # the chain
    assert vm.lookup("n") == 1000                 # 1000 rounds ran, the 1001st did not
    assert vm.steps_taken() == 1001
    still_usable(vm)


def test_steps_inside_called_and_inlined_blocks_count_the_same_on_every_tier(vm_factory):
    # Two steps a round (the round, then `inc`), so step 2001 is the 1001st round.
    vm = vm_factory(True, max_steps=2000)
    for _ in range(3):   # later runs take compiled code at the default threshold too
        vm.execute_code("0 !n")
        err = expect_limit(vm, "{ n >inc !n >block } >chain",
                           "Step limit exceeded (limit 2000 block executions)")
        assert (err.line, err.col) == (1, 22)     # the chain
        assert vm.lookup("n") == 1000
        vm.al = []
    still_usable(vm)


def test_a_budget_large_enough_lets_the_program_finish(vm_factory):
    vm = vm_factory(True)
    vm.execute_code("0 !n { n 1 >+ !n n 10 >< } !body >body >body", max_steps=2)
    assert vm.al == [soma.TRUE, soma.TRUE]
    expect_limit(vm, ">body >body >body", "Step limit exceeded (limit 2 block executions)",
                 max_steps=2)


# -- time and interrupt --------------------------------------------------------------

def watchdog(vm, seconds):
    """Interrupt `vm` after `seconds` unless cancelled: a broken limit fails, never hangs."""
    timer = threading.Timer(seconds, vm.interrupt)
    timer.daemon = True
    timer.start()
    return timer


def test_a_never_ending_chain_stops_at_its_time_limit(vm_factory):
    vm = vm_factory(False)
    timer = watchdog(vm, 60)
    try:
        expect_limit(vm, NEVER_ENDING, "Time limit exceeded", time_limit=0.2)
    finally:
        timer.cancel()
    assert vm.lookup("n") > 0
    still_usable(vm)


def test_interrupt_from_another_thread_stops_a_never_ending_chain(vm_factory):
    vm = vm_factory(True)
    stopper = threading.Timer(0.1, vm.interrupt)
    stopper.start()
    try:
        # The time limit is only a fallback: if interrupt() were not seen, the run would
        # end with "Time limit exceeded" and the message check would fail.
        expect_limit(vm, "0 !n { n >inc !n >block } >chain", "Interrupted", time_limit=60)
    finally:
        stopper.join()
    assert vm.lookup("n") > 0
    still_usable(vm)


def test_a_limit_set_on_the_vm_applies_to_every_run(vm_factory):
    vm = vm_factory(False, time_limit=0.05)
    timer = watchdog(vm, 60)
    try:
        for _ in range(2):
            expect_limit(vm, "{ >block } >chain", "Time limit exceeded")
    finally:
        timer.cancel()
    vm.time_limit = None
    vm.max_steps = 10
    expect_limit(vm, "{ >block } >chain", "Step limit exceeded (limit 10 block executions)")


def test_bad_limit_values_are_rejected(vm_factory):
    vm = vm_factory(False)
    with pytest.raises(ValueError):
        vm.execute_code("1", max_steps=-1)
    with pytest.raises(ValueError):
        vm.execute_code("1", time_limit=-0.5)
    with pytest.raises(ValueError):
        vm_factory(False, max_memory=0)


# -- depth -------------------------------------------------------------------------

def test_the_depth_limit_is_configurable(vm_factory):
    vm = vm_factory(False, max_depth=50)
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("{ >f } !f >f")
    assert info.value.message == "recursion too deep (limit 50 nested block executions)"
    vm.max_depth = 20
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code(">f")
    assert info.value.message == "recursion too deep (limit 20 nested block executions)"
    still_usable(vm)
