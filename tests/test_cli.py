"""The `soma` command line, run as `python -m soma` in a subprocess."""

import os
import re
import subprocess
import sys

import pytest

from soma import opcodes as op
from soma.code import all_codes, decode_module
from wording import undefined_store  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.join(os.path.dirname(HERE), "python")
SOMA_DIR = os.path.join(HERE, "soma")


def soma_cli(*args, stdin=None, cwd=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = PYTHON_DIR + (os.pathsep + env["PYTHONPATH"]
                                      if env.get("PYTHONPATH") else "")
    env.pop("SOMA_LIB", None)
    return subprocess.run([sys.executable, "-m", "soma"] + list(args), input=stdin,
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


@pytest.fixture
def prog(tmp_path):
    def write(text, name="p.soma"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)
    return write


def test_run_file(prog):
    path = prog("3 >dup >* >print (done) >print\n")
    r = soma_cli("run", path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "9\ndone\n", "")


def test_run_stdin():
    # the program itself consumed stdin, so readLine meets the end of input
    r = soma_cli("run", "-", stdin="2 3 >max >print\n>readLine >print\n")
    assert r.returncode == 1
    assert r.stdout == "3\n"
    assert r.stderr == "<stdin>:2:1: RuntimeError: read_line: EOF encountered\n"


def test_run_stdin_plain():
    r = soma_cli("run", "-", stdin="(a) (b) >concat >print\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, "ab\n", "")


def test_no_stdlib(prog):
    path = prog("1 >print\n3 >dup\n")
    r = soma_cli("--no-stdlib", "run", path)
    assert r.returncode == 1
    assert r.stdout == "1\n"
    assert r.stderr == "%s:2:3: RuntimeError: %s\n" % (path, undefined_store("dup"))


def test_custom_stdlib(prog):
    lib = prog("{ (custom) >print } !hello\n", "lib.soma")
    path = prog(">hello 1 >dup\n")
    r = soma_cli("--stdlib", lib, "run", path)
    assert r.returncode == 1
    assert r.stdout == "custom\n"
    assert r.stderr == "%s:1:10: RuntimeError: %s\n" % (path, undefined_store("dup"))


@pytest.mark.parametrize("text,line,col,cls,message", [
    ("1 >print\n  12ab\n", 2, 3, "LexError", "Invalid number '12ab'"),
    ("1 >print\n}\n", 2, 1, "ParseError", "Unexpected '}' without matching '{'"),
    ("1 >print\n{ 1 0 >/ } !f\n>f\n", 2, 7, "RuntimeError", "Division by zero"),
])
def test_errors_go_to_stderr_with_position(prog, text, line, col, cls, message):
    path = prog(text)
    r = soma_cli("run", path)
    assert r.returncode == 1
    assert r.stderr == "%s:%d:%d: %s: %s\n" % (path, line, col, cls, message)
    # output before a runtime error is kept; lex/parse errors run nothing
    assert r.stdout == ("1\n" if cls == "RuntimeError" else "")


def test_missing_file(tmp_path):
    r = soma_cli("run", str(tmp_path / "absent.soma"))
    assert r.returncode not in (0, 1)
    assert "absent.soma" in r.stderr
    assert "Traceback" not in r.stderr


def test_usage_error():
    r = soma_cli("frobnicate")
    assert r.returncode != 0
    assert "usage" in r.stderr


def test_no_arguments_runs_standard_input():
    # `python -m soma < FILE`, as the reference's build_docs.sh runs its documents.
    r = soma_cli(stdin="(from stdin) >print 2 3 >+ >print")
    assert (r.returncode, r.stdout, r.stderr) == (0, "from stdin\n5\n", "")


def test_no_arguments_error_is_positioned():
    r = soma_cli(stdin="1\n  >nope")
    assert r.returncode == 1
    assert r.stderr == "<stdin>:2:3: RuntimeError: %s\n" % undefined_store("nope")


def test_python_exception_from_an_extension_is_positioned(tmp_path):
    # md.t joins Strs only: a TypeError from the extension keeps its class in the message.
    prog = tmp_path / "bad.soma"
    prog.write_text("(markdown) >use >md.start\n  (a) 5 >md.t\n")
    r = soma_cli("run", str(prog))
    assert r.returncode == 1
    assert r.stderr.startswith("%s:2:9: TypeError: Text concatenation (>md.t) requires "
                               "string items, got Int" % prog)
    assert "Traceback" not in r.stderr


def test_test_command_all_pass(tmp_path):
    f = tmp_path / "ok.soma"
    f.write_text(") TEST: adds\n) EXPECT_AL: [3]\n1 2 >+\n\n"
                 ") TEST: prints\n) EXPECT_OUTPUT: hi\n(hi) >print\n", encoding="utf-8")
    r = soma_cli("test", str(f))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "PASS %s:1 adds" % f
    assert lines[1] == "PASS %s:5 prints" % f
    assert lines[-1] == "2 passed, 0 failed"


def test_test_command_with_failure(tmp_path):
    f = tmp_path / "mixed.soma"
    f.write_text(") TEST: good\n) EXPECT_AL: [1]\n1\n"
                 ") TEST: bad al\n) EXPECT_AL: [2]\n1\n"
                 ") TEST: wants error\n) EXPECT_ERROR: RuntimeError\n1\n"
                 ") TEST: expected error\n) EXPECT_ERROR: SomaError\nnope\n",
                 encoding="utf-8")
    r = soma_cli("test", str(f))
    assert r.returncode == 1
    out = r.stdout
    assert re.search(r"^PASS .*mixed\.soma:1 good$", out, re.M)
    assert re.search(r"^FAIL .*mixed\.soma:4 bad al$", out, re.M)
    assert "AL: expected [2], got [1]" in out
    assert re.search(r"^FAIL .*mixed\.soma:7 wants error$", out, re.M)
    assert re.search(r"^PASS .*mixed\.soma:10 expected error$", out, re.M)
    assert out.splitlines()[-1] == "2 passed, 2 failed"


def test_test_command_directory_and_01_rule(tmp_path):
    d = tmp_path / "suite"
    d.mkdir()
    (d / "01_bare.soma").write_text(") TEST: no stdlib\n) EXPECT_ERROR: RuntimeError\n>dup\n",
                                    encoding="utf-8")
    (d / "02_lib.soma").write_text(") TEST: stdlib\n) EXPECT_AL: [4, 4]\n4 >dup\n",
                                   encoding="utf-8")
    (d / "notes.txt").write_text(") TEST: ignored\n) EXPECT_AL: [9]\n", encoding="utf-8")
    r = soma_cli("test", str(d))
    assert r.returncode == 0, r.stdout
    assert r.stdout.splitlines()[-1] == "2 passed, 0 failed"
    assert r.stdout.index("01_bare") < r.stdout.index("02_lib")


def test_test_command_on_project_suite():
    r = soma_cli("test", SOMA_DIR)
    assert r.returncode == 0, r.stdout[-2000:]
    last = r.stdout.splitlines()[-1]
    m = re.fullmatch(r"(\d+) passed, 0 failed", last)
    assert m and int(m.group(1)) >= 500
    assert len([ln for ln in r.stdout.splitlines() if ln.startswith("PASS ")]) == \
        int(m.group(1))


def test_dis(prog):
    path = prog("1 a a. !a !a. >a _.x _.x. !_.x !_.x. >_.x >{ (s) }\n")
    r = soma_cli("dis", path)
    assert r.returncode == 0, r.stderr
    for name in op.NAMES:
        assert re.search(r"\b%s\b" % name, r.stdout), name
    assert r.stdout.startswith("code <program> (2 consts, 2 paths)\n")
    assert re.search(r"^code block@1:\d+ \(1 consts, 0 paths\)$", r.stdout, re.M)
    assert re.search(r"^\s+1:1\s+CONST\s+0\s+; 1$", r.stdout, re.M)
    assert "; 's'" in r.stdout


@pytest.mark.parametrize("command", ["dis", "compile"])
def test_dis_and_compile_report_errors_with_file_name(prog, tmp_path, command):
    extra = ["-o", str(tmp_path / "out.sbc")] if command == "compile" else []
    path = prog("{ 1\n")
    r = soma_cli(command, path, *extra)
    assert r.returncode == 1
    assert r.stderr == "%s:2:1: ParseError: Unclosed block (missing '}')\n" % path
    path = prog("1\n 2x\n", "lex.soma")
    r = soma_cli(command, path, *extra)
    assert r.returncode == 1
    assert r.stderr == "%s:2:2: LexError: Invalid number '2x'\n" % path


def test_compile_then_decode(prog, tmp_path):
    src = "%d (héllo) { 1 { !_.x } } !f >f\n" % (-(10 ** 30))
    path = prog(src)
    out = tmp_path / "p.sbc"
    r = soma_cli("compile", path, "-o", str(out))
    assert (r.returncode, r.stderr) == (0, "")
    data = out.read_bytes()
    assert data[:6] == b"SOMABC" and data[6:8] == b"\x01\x00"
    code = decode_module(data)
    assert code.source == path
    assert code.consts[:2] == [-(10 ** 30), "héllo"]
    assert [c.name for c in all_codes(code)] == ["<program>", "block@1:42", "block@1:46"]
    # identical to compiling in-process
    from soma.code import encode_module
    from soma.compiler import compile_source
    assert data == encode_module(compile_source(src, path))


@pytest.mark.parametrize("command", ["run", "dis", "test"])
def test_non_utf8_file_is_reported_not_a_traceback(tmp_path, command):
    path = tmp_path / "02_latin1.soma"
    path.write_bytes(b") TEST: t\n) EXPECT_AL: [1]\n1 (caf\xe9)\n")
    r = soma_cli(command, str(path))
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert str(path) in r.stderr + r.stdout


def test_run_jit_stats(prog, monkeypatch):
    path = prog("{ 1 >+ } !inc  1 >inc >inc >print\n")
    monkeypatch.setenv("SOMA_JIT", "0")
    r = soma_cli("run", "--jit-stats", path)
    assert (r.returncode, r.stdout) == (0, "3\n")
    assert r.stderr == "jit: not running (pure-Python tier, or SOMA_JIT_THRESHOLD=off)\n"
    try:
        import soma._native  # noqa: F401
    except ImportError:
        return   # the JIT half needs the extension (scripts/setup.sh builds it)
    monkeypatch.setenv("SOMA_JIT", "1")
    monkeypatch.setenv("SOMA_JIT_THRESHOLD", "0")
    r = soma_cli("run", "--jit-stats", path)
    assert (r.returncode, r.stdout) == (0, "3\n")
    background = (r"jit: background: (\d+) queued, (\d+) installed, (\d+) dropped stale, "
                  r"(\d+) worker panics, \d+ postponed \(budget\), \d+ deferred behind an "
                  r"optimizing compile; [\d.]+ ms queued in all, "
                  r"[\d.]+ ms generating code on the compile thread, [\d.]+ ms translating and "
                  r"[\d.]+ ms installing on the main thread\n")
    m = re.fullmatch(r"jit: [1-9]\d* blocks compiled \(0 failed, \d+ by the optimizing tier, "
                     r"\d+ of them speculative\), "
                     r"compile time [\d.]+ ms \(median \d+ us per block\), \d+ bytes of code, "
                     r"[\d.]+ ms in native code, \d+ deopts, \d+ revalidated after calls, "
                     r"\d+ recompiles \(\d+ speculating again with type feedback\), \d+ blocks inlined, "
                     r"\d+ direct self-calls \(\d+ with a leaf copy\), \d+ translations retried, "
                     r"\d+ compiles served by the process's code cache \(\d+ of them replayed, "
                     r"no IR built\), \d+ Blocks tiering up early \(compiled in an earlier VM\)\n"
                     + background + r"(jit: deopts by reason: .*\n)?", r.stderr)
    assert m, r.stderr
    assert m.groups()[:4] == ("0", "0", "0", "0")   # threshold 0 compiles synchronously
    # Tier-up in the background, installed at the next safepoint (lockstep: deterministic).
    path = prog("{ 1 >+ } !inc  1 >inc >inc >inc >inc >print\n")
    monkeypatch.setenv("SOMA_JIT_THRESHOLD", "1")
    monkeypatch.setenv("SOMA_JIT_BACKGROUND", "lockstep")
    r = soma_cli("run", "--jit-stats", path)
    assert (r.returncode, r.stdout) == (0, "5\n")
    m = re.search(background, r.stderr)
    assert m and m.groups() == ("1", "1", "0", "0"), r.stderr


def test_run_jit_stats_counts_deopts_by_reason(prog, monkeypatch):
    try:
        import soma._native  # noqa: F401
    except ImportError:
        pytest.skip("the JIT needs the extension (scripts/setup.sh builds it)")
    # `n` overflows the small-Int range in round 4 of a loop compiled speculatively at once;
    # the rounds after find a BigInt at entry, and the fourth deopt recompiles the loop.
    path = prog("140737488355324 !n  0 !k\n"
                "{ n 1 >+ !n  k 1 >+ !k  k 12 >< >block Nil >choose } >chain >drop  n >print\n")
    monkeypatch.setenv("SOMA_JIT", "1")
    monkeypatch.setenv("SOMA_JIT_THRESHOLD", "0")
    monkeypatch.setenv("SOMA_JIT_OPT_THRESHOLD", "0")
    r = soma_cli("run", "--jit-stats", path)
    assert (r.returncode, r.stdout) == (0, "140737488355336\n"), r.stderr
    m = re.search(r"\njit: deopts by reason: (.*)\n$", r.stderr)
    assert m, r.stderr
    reasons = dict((why, int(n)) for n, why in re.findall(r"(\d+) ([^,]+)", m.group(1)))
    assert reasons["Int overflow"] == 1, reasons
    assert reasons["entry check failed"] == 3, reasons
