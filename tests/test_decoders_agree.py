"""The Python decoder (soma.code.decode_module) and the Rust one (the runtime's, run alone
through soma._native.decode_error) implement the same rules (docs/bytecode.md): fed the very
same bytes, valid modules and thousands of mutations of them, they must accept and reject
exactly the same inputs.

Mutations are seeded (reproducible): a byte replaced, inserted or deleted, the module cut
short, a stretch duplicated, and bytes set to values the format gives meaning to (tags, roots,
opcodes just out of range, LEB128 continuation bits). Both decoders also read a table of
constants from one file (format.tsv), so this test checks the rules, not the numbers.
"""

import os
import random

import pytest

from soma.code import DecodeError, decode_module, encode_module
from soma.compiler import compile_source

try:
    from soma import _native
except ImportError:   # the pure-Python tier without the extension: nothing to compare with
    _native = None

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

needs_native = pytest.mark.skipif(_native is None, reason="the native extension is not built")

# Programs whose modules are mutated: every construct the compiler emits (all opcodes, Int,
# BigInt, Str and nested Block constants, Store and Register paths, deep nesting).
PROGRAMS = [
    "1 2 >+ !x x",
    "(hello) !s s >print",
    "123456789012345678901234567890 -98765432109876543210 >*",
    "{ !_.n _.n 1 >+ } !inc 5 >inc",
    "{ { { 1 } } } !deep >deep >{ 2 } _.a. !_.b _.b",
    "a.b. !r 7 !r Void !a.b. a.b _ _.x.y",
    "{ _.  _.n 2 >< { !_. 1 } { !_. 2 } >choose >^ } !f",
]


def modules():
    mods = [encode_module(compile_source(text, "<t%d>" % i)) for i, text in enumerate(PROGRAMS)]
    with open(os.path.join(ROOT, "python", "soma", "stdlib.soma"), encoding="utf-8") as f:
        mods.append(encode_module(compile_source(f.read(), "stdlib.soma")))
    return mods


INTERESTING = [0x00, 0x01, 0x02, 0x03, 0x04, 0x0B, 0x0C, 0x7F, 0x80, 0xFF]


def mutate(data, rnd):
    data = bytearray(data)
    kind = rnd.randrange(6)
    pos = rnd.randrange(len(data))
    if kind == 0:
        data[pos] = rnd.randrange(256)
    elif kind == 1:
        data[pos] = rnd.choice(INTERESTING)
    elif kind == 2:
        data.insert(pos, rnd.choice(INTERESTING + [rnd.randrange(256)]))
    elif kind == 3:
        del data[pos]
    elif kind == 4:
        del data[pos:]
    else:
        n = rnd.randrange(1, 8)
        data[pos:pos] = data[pos:pos + n]
    return bytes(data)


def python_accepts(data):
    try:
        decode_module(data)
        return True
    except DecodeError:
        return False


@needs_native
def test_both_decoders_accept_the_valid_modules():
    for data in modules():
        assert python_accepts(data)
        assert _native.decode_error(data) is None


@needs_native
def test_both_decoders_accept_and_reject_the_same_mutations():
    rnd = random.Random(2026)
    mods = modules()
    disagreements = []
    accepted = 0
    for i in range(4000):
        data = mods[i % len(mods)]
        # Up to three mutations stacked: single ones are mostly rejected at once.
        for _ in range(rnd.randrange(1, 4)):
            data = mutate(data, rnd)
            if not data:
                break
        py = python_accepts(data)
        rust = _native.decode_error(data)
        accepted += py
        if py != (rust is None):
            disagreements.append((data, py, rust))
    assert not disagreements, "%d disagreements, first: %r" % (len(disagreements),
                                                                disagreements[0])
    # The mutations reach past the first checks: some are still valid modules.
    assert accepted > 0
