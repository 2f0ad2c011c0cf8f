"""Ctrl-C stops a runaway SOMA program and leaves the VM usable, on the selected tier.

The program runs in a child process (so a tier that never notices the signal
makes this test fail by timeout instead of hanging the suite); the parent
sends a real SIGINT once the child says the loop has started.
"""

import os
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import signal
import sys
import soma
# A process started in the background by a shell without job control (`./test &`, some CI
# runners) inherits SIGINT ignored, and Python then installs no handler of its own: put
# Python's default back, so the test checks the VM, not how it was launched.
signal.signal(signal.SIGINT, signal.default_int_handler)
vm = soma.VM(stdlib=False, output=lambda line: print(line, flush=True))
vm.execute_code("0 !n")
try:
    # Says "started" from inside the run, so the signal cannot arrive before
    # the handler is in place; the loop never ends on its own.
    vm.execute_code("(started) >print  { n 1 >+ !n  >block } >chain")
    print("finished?!", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
vm.execute_code("n 0 >< 2 3 >+")   # the Store kept the loop's count; the VM still runs
print(repr(vm.al[-2:]), flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix",
                    reason="needs POSIX signals")
def test_ctrl_c_interrupts_an_infinite_loop_and_the_vm_stays_usable():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(ROOT, "python") + os.pathsep + env.get("PYTHONPATH", "")
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "started"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        pytest.fail("the loop did not stop on SIGINT within 60 s")
    assert child.returncode == 0, err
    assert out.splitlines() == ["interrupted", "[False, 5]"]
