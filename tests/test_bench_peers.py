"""The peers of the benchmark programs (benches/peers/, timed by
`benches/compare.py --peers`) exist for every program and give its answer.

Each peer is run once through the same code compare.py uses and must print the
SOMA program's `... ok` line (a peer fails on a wrong result). Peers whose
interpreter or compiler is not installed (PyPy, LuaJIT, rustc) are skipped: the
suite needs only CPython. Nothing here is timed.
"""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHES = os.path.join(ROOT, "benches")
sys.path.insert(0, BENCHES)

import compare  # noqa: E402  (benches/compare.py)
import peer_runners  # noqa: E402

PROGRAMS = sorted(f[:-5] for f in os.listdir(compare.PROGRAMS_DIR) if f.endswith(".soma"))


@pytest.mark.parametrize("program", PROGRAMS)
def test_every_program_has_a_peer_in_every_language(program):
    for peer in peer_runners.PEERS:
        assert peer_runners.source(peer, program), "no %s peer for %s" % (peer, program)


@pytest.mark.parametrize("program", PROGRAMS)
def test_every_program_names_its_ok_line(program):
    assert compare.expected_line(program), "%s prints no `(... ok) >print` line" % program


@pytest.mark.parametrize("peer", list(peer_runners.PEERS))
def test_peers_print_the_programs_ok_line(peer, tmp_path):
    executable = peer_runners.locate(peer)
    if executable is None:
        pytest.skip("%s is not installed" % peer)
    for program in PROGRAMS:
        seconds, error = peer_runners.time_peer(
            peer, executable, program, 1, str(tmp_path), compare.expected_line(program))
        assert error is None, "%s on %s: %s" % (program, peer, error)
        assert seconds is not None and seconds >= 0


def test_a_peer_with_the_wrong_line_fails(tmp_path):
    seconds, error = peer_runners.time_peer(
        "cpython", sys.executable, "fib", 1, str(tmp_path), "not fib ok")
    assert seconds is None and "not fib ok" in error


# Resized programs (benches/sizes.py: tierup.py's small sizes, compare.py --size steady).
# They run here at the small sizes: the rules and the expected results they write are the
# same at every size, and a small size keeps CPython's run short.

import sizes  # noqa: E402  (benches/sizes.py)


@pytest.mark.parametrize("program", sorted(sizes.STEADY))
@pytest.mark.parametrize("peer", list(peer_runners.PEERS))
def test_resized_peers_give_the_resized_answer(program, peer, tmp_path):
    executable = peer_runners.locate(peer)
    if executable is None:
        pytest.skip("%s is not installed" % peer)
    path = peer_runners.resized_source(peer, program, sizes.SMALL[program], str(tmp_path))
    with open(path, encoding="utf-8") as f:
        assert "%d" % sizes.SMALL[program] in f.read()
    seconds, error = peer_runners.time_peer(
        peer, executable, program, 1, str(tmp_path), compare.expected_line(program), path)
    assert error is None, "%s on %s: %s" % (program, peer, error)


@pytest.mark.parametrize("program", sorted(sizes.SMALL))
def test_resized_soma_programs_give_the_resized_answer(program):
    import soma
    with open(os.path.join(compare.PROGRAMS_DIR, program + ".soma"), encoding="utf-8") as f:
        own = f.read()
    text = sizes.resize(program, "soma", own, sizes.SMALL[program])
    assert text != own
    lines = []
    soma.VM(output=lines.append).execute_code(text, program + ".soma")
    assert lines[-1:] == [compare.expected_line(program)]


def test_a_resize_whose_text_is_gone_fails():
    with pytest.raises(SystemExit, match="not found"):
        sizes.resize("fib", "py", "def fib(n): pass", 10)


def test_a_resized_answer_is_checked():
    # collatz's expected total at 100, with the loop left at its own size: the program
    # computes 215063 and must refuse the rewritten total.
    text = open(os.path.join(compare.PROGRAMS_DIR, "collatz.soma"), encoding="utf-8").read()
    text = text.replace("215063", str(sizes.collatz_total(100)))
    import soma
    lines = []
    with pytest.raises(Exception):
        soma.VM(output=lines.append).execute_code(text, "collatz.soma")
    assert compare.expected_line("collatz") not in lines
