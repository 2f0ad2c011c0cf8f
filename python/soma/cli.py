"""The `soma` command line.

    soma                     with no arguments: run the program on standard input
    soma run FILE|-          run a program (`-` reads standard input);
                             --jit-stats prints what the JIT did to stderr;
                             --max-steps N, --time-limit SECONDS, --max-memory BYTES,
                             --max-depth N set its limits (docs/semantics.md)
    soma test PATH...        run `.soma` test files (directories are searched)
    soma dis FILE            print the bytecode of a program
    soma compile FILE -o OUT write the serialized bytecode (docs/bytecode.md)

`--stdlib PATH` loads another stdlib, `--no-stdlib` none. Errors go to stderr
as `FILE:LINE:COL: Class: message`, with exit status 1.
"""

import argparse
import os
import sys

from .code import encode_module
from .compiler import compile_source
from .dis import disassemble
from .errors import SomaError, describe
from .sources import read_source
from .testfile import run_paths
from .vm import VM


def _stdlib_choice(args):
    if args.no_stdlib:
        return False
    return args.stdlib  # None: the bundled one


def _read(path):
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    return read_source(path), path


def cmd_run(args):
    text, name = _read(args.file)
    if args.jit_stats:
        os.environ["SOMA_JIT_TIME"] = "1"   # the JIT then clocks time spent in compiled code
    vm = VM(stdlib=_stdlib_choice(args), max_depth=args.max_depth, max_memory=args.max_memory)
    try:
        vm.execute_code(text, name, max_steps=args.max_steps, time_limit=args.time_limit)
    finally:
        if args.jit_stats:
            sys.stdout.flush()
            sys.stderr.write(format_jit_stats(vm.jit_stats()) + "\n")
    return 0


def format_jit_stats(stats):
    if stats is None:
        return "jit: not running (pure-Python tier, or SOMA_JIT_THRESHOLD=off)"
    reasons = stats.get("deopts_by_reason") or []
    by_reason = ("\njit: deopts by reason: " + ", ".join("%d %s" % (n, why) for why, n in reasons)
                 if reasons else "")
    return ("jit: %d blocks compiled (%d failed, %d by the optimizing tier, %d of them "
            "speculative), compile time "
            "%.2f ms (median %d us per block), %d bytes of code, %.2f ms in native code, "
            "%d deopts, %d revalidated after calls, %d recompiles (%d speculating again with "
            "type feedback), %d blocks inlined, %d direct self-calls (%d with a leaf copy), "
            "%d translations retried, "
            "%d compiles served by the process's code cache (%d of them replayed, no IR "
            "built), %d Blocks tiering up early (compiled in an earlier VM)"
            % (stats["blocks_compiled"], stats["compile_failures"], stats.get("optimized", 0),
               stats.get("speculative", 0),
               stats["total_compile_ns"] / 1e6, stats["median_compile_us"],
               stats["total_code_bytes"], stats["native_ns"] / 1e6, stats["deopts"],
               stats.get("revalidated", 0),
               stats.get("recompiles", 0), stats.get("respecialized", 0),
               stats.get("inlined", 0), stats.get("direct_call_sites", 0),
               stats.get("leaf_copies", 0),
               stats.get("retranslations", 0),
               stats.get("code_cache_hits", 0) + stats.get("replayed", 0),
               stats.get("replayed", 0), stats.get("known_hot", 0))
            + "\njit: background: %d queued, %d installed, %d dropped stale, %d worker panics, "
              "%d postponed (budget), %d deferred behind an optimizing compile; %.2f ms queued "
              "in all, %.2f ms generating code on the "
              "compile thread, %.2f ms translating and %.2f ms installing on the main thread"
            % (stats.get("background_queued", 0), stats.get("background_installed", 0),
               stats.get("dropped_stale", 0), stats.get("worker_panics", 0),
               stats.get("postponed", 0), stats.get("deferred", 0),
               stats.get("queue_wait_ns", 0) / 1e6, stats.get("background_generate_ns", 0) / 1e6,
               stats.get("background_translate_ns", 0) / 1e6,
               stats.get("background_install_ns", 0) / 1e6)
            + by_reason)


def cmd_test(args):
    stdlib = _stdlib_choice(args)

    def factory(with_stdlib):
        return VM(stdlib=stdlib if with_stdlib else False)

    failed = run_paths(args.paths, factory, sys.stdout)
    return 1 if failed else 0


def cmd_dis(args):
    text, name = _read(args.file)
    sys.stdout.write(disassemble(compile_source(text, name)))
    return 0


def cmd_compile(args):
    text, name = _read(args.file)
    data = encode_module(compile_source(text, name))
    with open(args.output, "wb") as f:
        f.write(data)
    return 0


def _stdlib_options(parser, default):
    parser.add_argument("--stdlib", metavar="PATH", default=default,
                        help="load this stdlib instead of the bundled one")
    parser.add_argument("--no-stdlib", action="store_true", default=default,
                        help="load no stdlib")


def build_parser():
    parser = argparse.ArgumentParser(prog="soma", description="The SOMA language.")
    _stdlib_options(parser, None)
    # The options are accepted after the subcommand too; there they default to
    # "not given" so that they do not overwrite what came before it.
    common = argparse.ArgumentParser(add_help=False)
    _stdlib_options(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a SOMA program", parents=[common])
    p.add_argument("file", help="a .soma file, or - for standard input")
    p.add_argument("--max-steps", type=int, metavar="N",
                   help="stop after N block executions (LimitError)")
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="stop after SECONDS of running (LimitError)")
    p.add_argument("--max-memory", metavar="BYTES",
                   help="memory limit, e.g. 64M (default: SOMA_MAX_MEMORY, else a quarter "
                        "of physical memory, at most 512M)")
    p.add_argument("--max-depth", type=int, metavar="N", default=10_000,
                   help="nested block executions allowed (default 10000)")
    p.add_argument("--jit-stats", action="store_true",
                   help="after the run, print blocks compiled, compile time and native time")
    p.set_defaults(handler=cmd_run)
    p = sub.add_parser("test", help="run .soma test files", parents=[common])
    p.add_argument("paths", nargs="+", help="test files or directories")
    p.set_defaults(handler=cmd_test)
    p = sub.add_parser("dis", help="disassemble a SOMA program", parents=[common])
    p.add_argument("file")
    p.set_defaults(handler=cmd_dis)
    p = sub.add_parser("compile", help="write a program's serialized bytecode",
                       parents=[common])
    p.add_argument("file")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(handler=cmd_compile)
    return parser


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if not argv:
        # `soma < FILE` / `python -m soma < FILE`: run the program on standard input,
        # as the reference's command does (its build_docs.sh relies on it).
        argv = ["run", "-"]
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except SomaError as err:
        sys.stdout.flush()
        sys.stderr.write(err.describe() + "\n")
        return 1
    except OSError as err:
        sys.stderr.write("soma: %s\n" % err)
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("soma: interrupted\n")
        return 130
    except Exception as err:
        if getattr(err, "soma_line", None) is None:
            raise
        # A Python exception from an extension builtin, with the SOMA position.
        sys.stdout.flush()
        sys.stderr.write(describe(err) + "\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
