#!/usr/bin/env python3
"""Time the SOMA benchmark programs on every tier and compare them.

    python benches/compare.py                       # our tiers
    python benches/compare.py --reference ~/soma    # plus the reference VM (a checkout)
    python benches/compare.py --peers               # plus the peer implementations
    python benches/compare.py --programs fib chain_loop --repeat 5
    python benches/compare.py --peers --size steady # larger sizes: steady state

Each (tier, program) pair runs in a fresh subprocess that times only the
program's execution (VM creation and stdlib loading excluded) and reports the
best of `--repeat` runs. Every program checks its own result and fails loudly
on a wrong answer, so a fast wrong tier cannot look like a win; the script also
checks that the run printed the program's `... ok` line.

The reference VM runs with OUR stdlib (loaded as plain SOMA source), so the
comparison measures the virtual machines, not the two libraries.

--peers also times benches/peers/: every program written directly as the same
algorithm (same data structures: cons lists, a persistent left-leaning
red-black tree for the dict, a persistent BST; Store cells as globals) in
Python (run by CPython and by PyPy), Lua (LuaJIT) and Rust (compiled here with
`rustc -O` into a temporary directory). A peer whose interpreter or compiler is
not installed is skipped with a note. Peers are timed the same way as our
tiers: a fresh process per (peer, program), and inside it the peer's harness
(benches/peers/harness.*) times only the algorithm, `--repeat` times, keeping
the best; interpreter start-up and compilation are excluded for every
implementation alike, so the figures are steady-state. A peer's JIT (PyPy,
LuaJIT) stays warm from one repeat to the next; our runner makes a fresh VM per
repeat, which installs the machine code an earlier repeat generated (the
process's code cache, docs/jit.md) but still translates and interprets up to
its thresholds again, so our best repeat is warm but a little colder than a
peer's. The SOMA source is compiled by the first repeat only (the native
backend keeps compiled modules per process, as a peer's module is compiled
once): the timed `execute_code` of the later repeats runs it. Each peer must print the same `... ok` line as the SOMA program.
The peers table gives the ratio `jit / peer`: how many times slower our JIT
tier is than that peer (below 1: faster).

--rounds N makes N passes, each timing every program on every tier and peer in
turn, and keeps each one's best over the passes. A shared host's speed drifts
by up to 2x over minutes (2026-12-06: the same process ran fib in 1.7 or 3.1 ms
depending on the minute, pinned to either core); interleaving puts the figures
a ratio compares in the same minutes. Use 3 or more on a shared machine.

--size steady runs chain_loop, collatz and fib (the loop and recursion
programs) at about ten times their own work (benches/sizes.py rewrites each
program and each peer, expected results included), on the jit tier unless
--tiers says otherwise: at their own sizes, a few milliseconds, our figures
still carry each VM's translations and the runs before tier-up; at the steady
sizes every implementation's one-time costs are a small part of the run, so
the ratios compare compiled loops and calls. Report both.

Writes a table to stdout and, with --out DIR (default benches/out), a JSON file,
an SVG bar chart of speed-ups over the pure-Python tier (peers included), and an
HTML page.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import peer_runners
import sizes

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROGRAMS_DIR = os.path.join(HERE, "programs")
STDLIB = os.path.join(ROOT, "python", "soma", "stdlib.soma")

# name -> (environment, runner kind). The runner kinds are below.
TIERS = {
    "python": ({"SOMA_JIT": "0"}, "ours"),
    "native": ({"SOMA_JIT": "1", "SOMA_JIT_THRESHOLD": "off"}, "ours"),
    "jit": ({"SOMA_JIT": "1"}, "ours"),
}

# Runs inside the subprocess: argv = program path, repeat count.
OUR_RUNNER = r"""
import sys, time
import soma
path, repeat = sys.argv[1], int(sys.argv[2])
src = open(path, encoding="utf-8").read()
lines = []
best = None
for _ in range(repeat):
    vm = soma.VM(output=lines.append)
    t = time.perf_counter()
    vm.execute_code(src, path)
    dt = time.perf_counter() - t
    best = dt if best is None else min(best, dt)
print(lines[-1] if lines else "")
print(best)
"""

REFERENCE_RUNNER = r"""
import sys, time, io, contextlib
ref, stdlib, path, repeat = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, ref)
from soma.vm import VM
lib = open(stdlib, encoding="utf-8").read()
src = open(path, encoding="utf-8").read()
best = None
for _ in range(repeat):
    vm = VM(load_stdlib=False)
    vm.execute_code(lib)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        t = time.perf_counter()
        vm.execute_code(src)
        dt = time.perf_counter() - t
    best = dt if best is None else min(best, dt)
print(best)
"""


def native_available():
    try:
        subprocess.run([sys.executable, "-c", "import soma._native"], check=True,
                       capture_output=True)
        return True
    except subprocess.CalledProcessError:
        return False


def expected_line(program):
    """The `... ok` line the program prints when its result is right, or None."""
    with open(os.path.join(PROGRAMS_DIR, program + ".soma"), encoding="utf-8") as f:
        match = re.search(r"\(([^()]* ok)\) >print", f.read())
    return match.group(1) if match else None


def time_program(tier, program, repeat, reference=None, path=None):
    """-> (best seconds, None) or (None, why). `path`: the program's source to run
    instead of its own (a resized one)."""
    path = path or os.path.join(PROGRAMS_DIR, program + ".soma")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(ROOT, "python") + os.pathsep + env.get("PYTHONPATH", "")
    if tier == "reference":
        env.pop("PYTHONPATH")
        cmd = [sys.executable, "-c", REFERENCE_RUNNER, reference, STDLIB, path, str(repeat)]
    else:
        env.update(TIERS[tier][0])
        cmd = [sys.executable, "-c", OUR_RUNNER, path, str(repeat)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return None, tail
    lines = proc.stdout.strip().splitlines()
    wanted = expected_line(program)
    if tier != "reference" and wanted is not None and lines[-2:-1] != [wanted]:
        return None, "printed %r, not %r" % (lines[-2:-1], wanted)
    return float(lines[-1]), None


def svg_chart(results, tiers, programs, base):
    """A grouped bar chart of speed-up over `base`, log scale, as SVG text."""
    import math
    width, height, left, bottom, top = 900, 420, 60, 80, 30
    plot_h = height - bottom - top
    speedups = [results[p][t] and results[p][base] and results[p][base] / results[p][t]
                for p in programs for t in tiers]
    hi = max([s for s in speedups if s] + [2.0])
    lo = min([s for s in speedups if s] + [1.0])
    top_decade = 10 ** math.ceil(math.log10(hi))
    lo_decade = 10 ** math.floor(math.log10(lo))   # 1x unless some tier is slower
    if lo_decade == top_decade:
        top_decade *= 10

    def y(value):
        frac = (math.log10(value) - math.log10(lo_decade)) / (
            math.log10(top_decade) - math.log10(lo_decade))
        return top + plot_h * (1 - frac)

    colors = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948",
              "#b07aa1", "#9c755f"]
    group_w = (width - left - 20) / len(programs)
    bar_w = group_w * 0.8 / len(tiers)
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
             'font-family="sans-serif" font-size="12">' % (width, height)]
    decade = lo_decade
    while decade <= top_decade * 1.0001:
        parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>'
                     % (left, width - 20, y(decade), y(decade)))
        parts.append('<text x="%d" y="%.1f" text-anchor="end">%gx</text>'
                     % (left - 5, y(decade) + 4, decade))
        decade *= 10
    parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#333"/>'
                 % (left, width - 20, y(1), y(1)))
    for gi, program in enumerate(programs):
        gx = left + gi * group_w + group_w * 0.1
        for ti, tier in enumerate(tiers):
            t, b = results[program][tier], results[program][base]
            if not t or not b:
                continue
            s = b / t
            x = gx + ti * bar_w
            y0, y1 = sorted((y(1), y(s)))
            parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">'
                         '<title>%s on %s: %.3fs, %.2fx</title></rect>'
                         % (x, y0, bar_w - 2, max(y1 - y0, 1), colors[ti % len(colors)],
                            program, tier, t, s))
            if bar_w >= 30:
                parts.append('<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">'
                             '%.1fx</text>' % (x + bar_w / 2, y0 - 3, s))
            else:  # too narrow for a level label: write it upwards from the bar's top
                cx, cy = x + bar_w / 2 + 3, y0 - 3
                parts.append('<text x="%.1f" y="%.1f" font-size="9" transform="rotate(-90 %.1f '
                             '%.1f)">%.1fx</text>' % (cx, cy, cx, cy, s))
        parts.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                     % (gx + group_w * 0.4, height - bottom + 18, program))
    for ti, tier in enumerate(tiers):
        lx = left + ti * min(130, (width - left) // len(tiers))
        parts.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>'
                     % (lx, height - 30, colors[ti % len(colors)]))
        parts.append('<text x="%d" y="%d">%s</text>' % (lx + 16, height - 20, tier))
    parts.append('<text x="%d" y="18" font-size="14">Speed-up over the %s tier '
                 '(log scale; higher is faster)</text>' % (left, base))
    parts.append("</svg>")
    return "\n".join(parts)


def print_tier_table(results, tiers, programs, base):
    header = "%-16s" % "program" + "".join("%12s" % t for t in tiers)
    header += "".join("%17s" % ("%s speed-up" % t) for t in tiers if t != base)
    print(header)
    for program in programs:
        row = results[program]
        line = "%-16s" % program
        line += "".join("%11.3fs" % row[t] if row[t] else "%12s" % "failed" for t in tiers)
        for t in tiers:
            if t == base:
                continue
            if row[t] and row.get(base):
                line += "%16.2fx" % (row[base] / row[t])
            else:
                line += "%17s" % "-"
        print(line)


def peer_ratios(results, peers, programs, ours="jit"):
    """{program: {peer: our time / peer time}}: how many times slower our tier is."""
    ratios = {}
    for program in programs:
        row = results[program]
        ratios[program] = {p: (row.get(ours) / row[p] if row.get(ours) and row.get(p) else None)
                           for p in peers}
    return ratios


def print_peer_table(results, ratios, peers, programs, ours="jit"):
    print()
    print("peers: the same algorithms in other languages; %s/peer = how many times "
          "slower our %s tier is" % (ours, ours))
    header = "%-16s%12s" % ("program", ours) + "".join("%12s" % p for p in peers)
    header += "".join("%13s" % ("%s/%s" % (ours, p)) for p in peers)
    print(header)
    for program in programs:
        row = results[program]
        cells = [row.get(ours)] + [row.get(p) for p in peers]
        line = "%-16s" % program
        line += "".join("%11.4fs" % t if t else "%12s" % "-" for t in cells)
        line += "".join("%12.2fx" % r if r else "%13s" % "-"
                        for r in (ratios[program][p] for p in peers))
        print(line)


def html_report(results, ratios, tiers, peers, programs, svg):
    def seconds(value):
        return "%.4f s" % value if value else "-"

    columns = tiers + peers
    ratio_columns = ["jit/%s" % p for p in peers] if "jit" in tiers else []
    rows = "".join(
        "<tr><td>%s</td>%s%s</tr>" % (
            p,
            "".join("<td>%s</td>" % seconds(results[p].get(c)) for c in columns),
            "".join("<td>%s</td>" % ("%.2fx" % ratios[p][peer] if ratios[p][peer] else "-")
                    for peer in peers) if ratio_columns else "")
        for p in programs)
    note = ("<p>Peers are the same algorithms written directly in Python (CPython, PyPy), "
            "Lua (LuaJIT) and Rust (benches/peers/). jit/peer is how many times slower "
            "our JIT tier is than the peer.</p>" if peers else "")
    return ("<!doctype html><meta charset=utf-8><title>SOMA tiers</title>"
            "<h1>SOMA benchmark programs by tier</h1>%s%s"
            "<table border=1 cellpadding=4><tr><th>program</th>%s</tr>%s</table>"
            % (svg, note, "".join("<th>%s</th>" % c for c in columns + ratio_columns), rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", metavar="DIR",
                        help="a checkout of the reference SOMA repository to time as well")
    parser.add_argument("--peers", nargs="*", metavar="PEER",
                        help="also time the peer implementations of benches/peers/ (all "
                             "installed ones, or those named: %s)"
                             % " ".join(peer_runners.PEERS))
    parser.add_argument("--programs", nargs="*", help="program names (default: all)")
    parser.add_argument("--tiers", nargs="*", help="tiers to run (default: all available)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="passes over every program, tier and peer, interleaved (the best "
                             "of all rounds kept)")
    parser.add_argument("--size", choices=["own", "steady"], default="own",
                        help="the programs' own sizes, or the steady-state sizes of "
                             "benches/sizes.py (chain_loop, collatz and fib only)")
    parser.add_argument("--out", help="where to write the report (default benches/out, "
                                      "and benches/out/steady for --size steady)")
    args = parser.parse_args()

    steady = args.size == "steady"
    out_dir = args.out or os.path.join(HERE, "out", "steady" if steady else "")
    if steady:
        programs = args.programs or sorted(sizes.STEADY)
        others = [p for p in programs if p not in sizes.STEADY]
        if others:
            parser.error("no steady size for %s (benches/sizes.py has %s)"
                         % (" ".join(others), " ".join(sorted(sizes.STEADY))))
        if args.reference:
            parser.error("--reference runs at the programs' own sizes only")
    else:
        programs = args.programs or sorted(f[:-5] for f in os.listdir(PROGRAMS_DIR)
                                           if f.endswith(".soma"))
    default_tiers = ["python", "native", "jit"] if native_available() else ["python"]
    if steady:
        # The interpreting tiers would take minutes at these sizes.
        default_tiers = ["jit"] if native_available() else ["python"]
    tiers = args.tiers or default_tiers
    if args.reference:
        tiers = ["reference"] + tiers
    base = "python"
    program_paths = {p: None for p in programs}
    work = tempfile.TemporaryDirectory(prefix="soma-sizes-") if steady else None
    if steady:
        for p in programs:
            program_paths[p] = os.path.join(work.name, p + ".soma")
            with open(os.path.join(PROGRAMS_DIR, p + ".soma"), encoding="utf-8") as src:
                text = sizes.resize(p, "soma", src.read(), sizes.STEADY[p])
            with open(program_paths[p], "w", encoding="utf-8") as dst:
                dst.write(text)
        print("steady-state sizes: %s" % ", ".join("%s %d" % (p, sizes.STEADY[p]) for p in programs))

    peers, notes, versions, found = [], [], {}, {}
    if args.peers is not None:
        unknown = [p for p in args.peers if p not in peer_runners.PEERS]
        if unknown:
            parser.error("unknown peer(s) %s; known: %s"
                         % (" ".join(unknown), " ".join(peer_runners.PEERS)))
        found, notes = peer_runners.find_peers(args.peers or list(peer_runners.PEERS))
        peers = list(found)
        versions = {p: peer_runners.version(p, exe) for p, exe in found.items()}

    # Every round times each program on every tier and peer one after the other, and each
    # figure is the best over the rounds: a shared host's speed drifts over minutes, so a
    # ratio compares figures taken seconds apart, in the same rounds, never one side's good
    # minute with the other's bad one.
    results = {program: {} for program in programs}
    failures = []
    with tempfile.TemporaryDirectory(prefix="soma-peers-") as build_dir:
        peer_paths = {}
        if steady:
            for program in programs:
                for peer in found:
                    peer_paths[program, peer] = peer_runners.resized_source(
                        peer, program, sizes.STEADY[program], build_dir)
        for _ in range(args.rounds):
            for program in programs:
                wanted = expected_line(program)
                for name in tiers + peers:
                    if name in results[program] and results[program][name] is None:
                        continue  # failed (or has no source) in an earlier round
                    if name in found:
                        seconds, error = peer_runners.time_peer(
                            name, found[name], program, args.repeat, build_dir, wanted,
                            peer_paths.get((program, name)))
                    else:
                        seconds, error = time_program(name, program, args.repeat,
                                                      args.reference, program_paths[program])
                    if error:
                        failures.append("%s on %s: %s" % (program, name, error))
                    best = results[program].get(name)
                    results[program][name] = (seconds if best is None or seconds is None
                                              else min(best, seconds))
    ratios = peer_ratios(results, peers, programs)

    print_tier_table(results, tiers, programs, base)
    if args.peers is not None:
        if "jit" not in tiers:
            notes.append("no jit tier was timed, so there are no jit/peer ratios")
        print_peer_table(results, ratios, peers, programs)
        for peer in peers:
            print("  %-8s %s" % (peer, versions[peer]))
    for note in notes:
        print("NOTE:", note)
    for failure in failures:
        print("FAILED:", failure)

    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tiers.json"), "w") as f:
        json.dump({"tiers": tiers, "peers": peers, "peer_versions": versions,
                   "repeat": args.repeat, "rounds": args.rounds, "size": args.size,
                   "sizes": {p: sizes.STEADY[p] for p in programs} if steady else None,
                   "results": results, "jit_over_peer": ratios,
                   "notes": notes, "failures": failures}, f, indent=2)
    if base in tiers:
        chart_tiers = [t for t in tiers if t != base] + peers
        if chart_tiers:
            svg = svg_chart(results, chart_tiers, programs, base)
            with open(os.path.join(out_dir, "tiers.svg"), "w") as f:
                f.write(svg)
            with open(os.path.join(out_dir, "tiers.html"), "w") as f:
                f.write(html_report(results, ratios, tiers, peers, programs, svg))
            print("report: %s" % os.path.join(out_dir, "tiers.html"))
    if work:
        work.cleanup()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
