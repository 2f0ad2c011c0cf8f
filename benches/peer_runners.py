"""The peer implementations of the benchmark programs, for `compare.py --peers`.

benches/peers/<program>.<ext> is the SOMA program benches/programs/<program>.soma
written directly as the same algorithm in another language. This module knows
which peers exist on this machine, how to build one (Rust) and how to time one
in a fresh process.

The protocol every peer follows (its harness, benches/peers/harness.*, does
the work): run as `<peer> [repeat]`, it runs the algorithm `repeat` times in
that one process, timing each run alone, and prints the program's `... ok`
line and then, on the last line, the best time in seconds. A wrong result
makes the peer fail (non-zero exit), and the line is checked against the one
the SOMA program prints, so a wrong peer cannot pass for a fast one.
"""

import os
import platform
import shutil
import subprocess
import sys

import sizes

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS_DIR = os.path.join(HERE, "peers")

# peer -> (source extension, how to get it when it is missing). In table order.
PEERS = {
    "cpython": (".py", "python3 (CPython)"),
    "pypy": (".py", "apt-get install pypy3"),
    "luajit": (".lua", "apt-get install luajit"),
    "rust": (".rs", "rustup (https://rustup.rs)"),
}


def locate(peer):
    """The interpreter or compiler for `peer`, or None when it is not installed."""
    if peer == "cpython":
        if platform.python_implementation() == "CPython":
            return sys.executable
        return shutil.which("python3")
    if peer == "pypy":
        return shutil.which("pypy3") or shutil.which("pypy")
    if peer == "luajit":
        return shutil.which("luajit")
    if peer == "rust":
        return shutil.which("rustc")
    raise ValueError("unknown peer %r" % peer)


def version(peer, executable):
    """One line naming the interpreter or compiler's version (for the report)."""
    flag = "-v" if peer == "luajit" else "--version"
    proc = subprocess.run([executable, flag], capture_output=True, text=True)
    text = (proc.stdout + proc.stderr).strip().splitlines()
    return " ".join(line.strip() for line in text[:2])


def find_peers(wanted):
    """-> ({peer: executable}, notes) for the peers in `wanted` that are installed;
    a note says how to get each missing one."""
    found, notes = {}, []
    for peer in [p for p in PEERS if p in wanted]:
        executable = locate(peer)
        if executable:
            found[peer] = executable
        else:
            notes.append("peer %s skipped: not installed (%s)" % (peer, PEERS[peer][1]))
    return found, notes


def source(peer, program):
    """The peer's source for `program`, or None when there is none."""
    path = os.path.join(PEERS_DIR, program + PEERS[peer][0])
    return path if os.path.exists(path) else None


def resized_source(peer, program, n, dest_dir):
    """The peer's source for `program` rewritten for size `n` (benches/sizes.py),
    written into `dest_dir` beside a copy of its harness; its path."""
    ext = PEERS[peer][0]
    path = source(peer, program)
    if path is None:
        raise KeyError("no %s peer for %s" % (peer, program))
    with open(path, encoding="utf-8") as f:
        text = sizes.resize(program, ext[1:], f.read(), n)
    out = os.path.join(dest_dir, program + ext)
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    shutil.copy(os.path.join(PEERS_DIR, "harness" + ext), dest_dir)
    return out


# (source path, its modification time, build directory) -> the binary built from it.
_BUILT = {}


def command(peer, executable, path, build_dir):
    """The command that runs the peer program at `path`. Rust is compiled first
    (`rustc -O`, into build_dir); a build failure raises RuntimeError."""
    if peer != "rust":
        return [executable, path]
    # Built once per source as it is now (compare.py --rounds runs each peer once per round).
    key = (os.path.abspath(path), os.path.getmtime(path), build_dir)
    if key in _BUILT:
        return [_BUILT[key]]
    # A name of its own: another source of the same name may be built into build_dir too.
    binary = os.path.join(build_dir, "%s-%d" % (os.path.basename(path)[:-3], len(_BUILT)))
    proc = subprocess.run([executable, "-O", "--edition", "2021", "-o", binary, path],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError("rustc failed: %s" % tail)
    _BUILT[key] = binary
    return [binary]


def time_peer(peer, executable, program, repeat, build_dir, expected_line, path=None):
    """-> (best seconds, None), or (None, why) when the peer failed or printed
    something other than `expected_line`; (None, None) when there is no peer
    source for the program. `path`: the source to run instead of the peer's own
    (a resized one)."""
    path = path or source(peer, program)
    if path is None:
        return None, None
    try:
        cmd = command(peer, executable, path, build_dir)
    except RuntimeError as err:
        return None, str(err)
    env = dict(os.environ)
    # The Python peers run outside our virtualenv's packages (PyPy could not use them).
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    proc = subprocess.run(cmd + [str(repeat)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return None, tail
    lines = proc.stdout.strip().splitlines()
    if len(lines) < 2:
        return None, "no result line and time in %r" % proc.stdout
    if expected_line is not None and lines[-2] != expected_line:
        return None, "printed %r, not %r" % (lines[-2], expected_line)
    return float(lines[-1]), None
