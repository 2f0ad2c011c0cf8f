"""Robustness: hostile or random input only ever raises soma errors, with positions.

Programs run with a small max_depth; the generators cannot spell `chain` (the
only way to loop without nesting), so every run terminates.
"""

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import soma
from soma.code import DecodeError, decode_module, encode_module
from soma.compiler import compile_source
from soma.lexer import lex

FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, database=None,
               suppress_health_check=[HealthCheck.too_slow])

SOMA_CHARS = " \n\t\r{}()>!._-+0123456789abxyz\\)_ \n"


def new_vm(vm_factory):
    out = []
    vm = vm_factory(False, max_depth=20, output=out.append, input=lambda: None)
    return vm


def run_checked(vm, src):
    """Run src; any failure must be a SomaError with a position. Return the error."""
    assume("chain" not in src)
    try:
        vm.execute_code(src, "fuzz.soma")
    except soma.SomaError as err:
        assert isinstance(err.line, int) and err.line >= 1, repr(err)
        assert isinstance(err.col, int) and err.col >= 1, repr(err)
        assert str(err).startswith("%d:%d: " % (err.line, err.col))
        assert isinstance(err, (soma.LexError, soma.ParseError, soma.RuntimeError))
        return err
    return None


def still_works(vm):
    vm.al.clear()
    assert vm.depth == 0 and vm.current_block is None
    vm.execute_code("{ 20 22 >+ } !_.k >_.k")
    assert vm.al == [42]


# ---------------------------------------------------------------- random programs

@FUZZ
@given(st.text(alphabet=SOMA_CHARS, max_size=80))
def test_random_soma_alphabet_text(vm_factory, src):
    vm = new_vm(vm_factory)
    run_checked(vm, src)
    still_works(vm)


@FUZZ
@given(st.text(max_size=60))
def test_random_unicode_text(vm_factory, src):
    vm = new_vm(vm_factory)
    run_checked(vm, src)
    still_works(vm)


@FUZZ
@given(st.binary(max_size=80), st.sampled_from(["latin-1", "utf-8"]))
def test_random_bytes_as_text(vm_factory, data, encoding):
    src = data.decode(encoding, errors="surrogateescape" if encoding == "utf-8" else "strict")
    vm = new_vm(vm_factory)
    run_checked(vm, src)
    still_works(vm)


VOCAB = [
    "1", "0", "-3", "99999999999999999999999", "(s)", "()", "(\\41\\)", "{", "}", "{", "}",
    ">{", "a", "a.b", "a.", "a.b.", "!a", "!a.b", "!a.", "!a.b.", ">a", ">a.b",
    "_", "_.", "_.x", "_.x.y", "_.x.", "!_", "!_.", "!_.x", "!_.x.", ">_", ">_.x",
    ">+", ">-", ">*", ">/", ">%", "><", ">choose", ">block", "block", ">print",
    ">toString", ">toInt", ">concat", ">isVoid", ">isNil", ">debug.type", ">debug.id",
    ">debug.al.dump", ">debug.error", ">debug.graph.dump", ">debug.graph.draw",
    ">debug.choose", "True", "False", "Nil", "Void", "+", ">readLine", ">!", "!", ">",
]


@FUZZ
@given(st.lists(st.sampled_from(VOCAB), max_size=40))
def test_random_token_programs(vm_factory, tokens):
    vm = new_vm(vm_factory)
    run_checked(vm, " ".join(tokens))
    still_works(vm)


@FEW
@given(st.lists(st.sampled_from(VOCAB), max_size=40), st.lists(st.sampled_from(VOCAB),
                                                               max_size=20))
def test_random_programs_share_a_vm(vm_factory, first, second):
    vm = new_vm(vm_factory)
    run_checked(vm, " ".join(first))
    run_checked(vm, " ".join(second))
    still_works(vm)


# ---------------------------------------------------------------- braces

@FUZZ
@given(st.lists(st.sampled_from(["{", "}", ">{", "1"]), max_size=60))
def test_brace_balance(tokens):
    src = " ".join(tokens)
    depth = 0
    ok = True
    for t in tokens:
        if t in ("{", ">{"):
            depth += 1
        elif t == "}":
            depth -= 1
            if depth < 0:
                ok = False
                break
    ok = ok and depth == 0
    try:
        compile_source(src)
    except soma.ParseError as err:
        assert not ok
        assert err.line == 1 and 1 <= err.col <= len(src) + 1
        assert err.message in ("Unexpected '}' without matching '{'",
                               "Unclosed block (missing '}')")
    else:
        assert ok


def test_deep_block_nesting_pushes_one_block(vm):
    vm.execute_code("{" * 10_000 + "}" * 10_000)
    assert len(vm.al) == 1 and isinstance(vm.al[0], soma.Block)


@pytest.mark.parametrize("n", [9_999, 10_000])
def test_deep_exec_nesting_within_default_limit_runs(vm, n):
    vm.execute_code(">{ " * n + "5 " + "} " * n)
    assert vm.al == [5]


@pytest.mark.parametrize("n", [10_001, 30_000])
def test_deep_exec_nesting_past_limit_is_runtime_error(vm, n):
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code(">{" * n + "}" * n)
    assert info.value.message == "recursion too deep (limit 10000 nested block executions)"
    assert (info.value.line, info.value.col) == (1, 2 * 10_000 + 1)
    assert vm.depth == 0
    still_works(vm)


def test_deep_nesting_serializes(vm):
    code = compile_source("{ " * 10_000 + "} " * 10_000)
    back = decode_module(encode_module(code))
    depth = 0
    while back.consts:
        back = back.consts[0].code
        depth += 1
    assert depth == 10_000


# ---------------------------------------------------------------- integers

@FEW
@given(st.integers(min_value=4000, max_value=6000), st.integers(0, 2 ** 32),
       st.sampled_from(["", "-", "+"]))
def test_long_integer_literals(vm_factory, n, seed, sign):
    import random
    rnd = random.Random(seed)
    digits = str(rnd.randint(1, 9)) + "".join(str(rnd.randint(0, 9)) for _ in range(n - 1))
    out = []
    vm = vm_factory(False, output=out.append)
    vm.execute_code("%s%s !n  n >print  n >toString >toInt" % (sign, digits))
    expected = ("-" if sign == "-" else "") + digits
    assert out == [expected]
    value = vm.al[0]
    assert type(value) is int
    assert value.bit_length() > 13_000
    assert (value < 0) == (sign == "-")


def test_int_max_str_digits_unchanged_by_vm(vm):
    import sys
    if not hasattr(sys, "get_int_max_str_digits"):
        pytest.skip("no int digit limit in this Python")
    before = sys.get_int_max_str_digits()
    vm.execute_code("9" * 6000 + " >toString >toInt")
    assert sys.get_int_max_str_digits() == before


# ---------------------------------------------------------------- escapes

@FUZZ
@given(st.text(max_size=12).filter(lambda t: "\\" not in t and ")" not in t))
def test_escapes_match_model(body):
    src = "(\\%s\\)" % body
    valid = bool(body) and all(c in "0123456789abcdefABCDEF" for c in body)
    value = int(body, 16) if valid else None
    valid = valid and value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF
    try:
        toks = lex(src)
    except soma.LexError as err:
        assert not valid
        assert (err.line, err.col) >= (1, 2)
    else:
        assert valid, src
        assert toks[0].value == chr(value)


# ---------------------------------------------------------------- decoder

VALID_MODULES = [
    encode_module(compile_source(src)) for src in [
        "1 (s) { 2 { !_.x } } !f >f",
        "%d %d a.b. !_. >{ }" % (10 ** 30, -(2 ** 70)),
    ]
]


@FUZZ
@given(st.binary(max_size=120))
def test_decoder_random_bytes(data):
    try:
        decode_module(data)
    except DecodeError:
        pass


@FUZZ
@given(st.binary(max_size=120))
def test_decoder_random_bytes_after_valid_header(data):
    try:
        decode_module(b"SOMABC\x01\x00" + data)
    except DecodeError:
        pass


@FUZZ
@given(st.sampled_from(VALID_MODULES), st.data())
def test_decoder_mutated_modules(module, data):
    buf = bytearray(module)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        pos = data.draw(st.integers(0, max(0, len(buf) - 1)))
        if kind == "flip" and buf:
            buf[pos] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            buf.insert(pos, data.draw(st.integers(0, 255)))
        elif buf:
            del buf[pos]
    try:
        code = decode_module(bytes(buf))
    except DecodeError:
        return
    # Whatever decodes must re-encode to a module that decodes again.
    again = encode_module(code)
    decode_module(again)


@pytest.mark.parametrize("src", ["(\udc80) !s  s", "\udcff", "a\ud800b !x", "(ok) (\udfff) >concat"])
def test_lone_surrogates_in_source_text(vm, src):
    # Text decoded with errors="surrogateescape" can carry lone surrogates; the VM
    # must run it or reject it with a SomaError, never leak a UnicodeError.
    try:
        vm.execute_code(src, "s.soma")
    except soma.SomaError as err:
        assert err.line is not None
    vm.al.clear()
    vm.execute_code("1 2 >+")
    assert vm.al == [3]
