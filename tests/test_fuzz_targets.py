"""The Python fuzz targets (fuzz/python/) run without atheris: each target's body over its
committed seed corpus plus a few hundred seeded random inputs, so the targets cannot rot and
their properties hold on every CI run. Coverage-guided runs: docs/fuzzing.md."""

import importlib.util
import os
import random
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
FUZZ = os.path.join(ROOT, "fuzz")
N_RANDOM = 300


def _load(name):
    # The targets import their shared set-up (fuzz/python/harness.py) as a sibling module.
    if os.path.join(FUZZ, "python") not in sys.path:
        sys.path.insert(0, os.path.join(FUZZ, "python"))
    spec = importlib.util.spec_from_file_location(name, os.path.join(FUZZ, "python", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


frontend = _load("fuzz_frontend")
decoder = _load("fuzz_decoder")


def _corpus(name):
    d = os.path.join(FUZZ, "corpus", name)
    files = sorted(os.listdir(d))
    assert files, "empty corpus " + d
    for f in files:
        with open(os.path.join(d, f), "rb") as fh:
            yield f, fh.read()


# Fragments random programs are glued from: every token kind, the modifiers, block braces,
# escapes (good and bad), comments and a few malformed pieces.
FRAGMENTS = [
    "1", "-2", "+3", "0", "007", "4611686018427387904", "-9223372036854775809", "1.5", "1e3",
    "(s)", "(a b)", "()", "(\\41\\)", "(\\110000\\)", "(\\zz\\)", "(\\", "(open",
    "{", "}", ">{", ">", "!", ">+", ">-", ">*", ">/", ">%", "><", ">chain", ">choose", ">block",
    ">print", "x", "x.", "x.y", "x.y.", "!x", "!x.", "_", "_.", "_.a", "!_.a", ">_.a", "_a",
    "a..b", ".a", "a.", ">a.", "!!", ">>", ") comment", "\n", "\t", " ", "é", "\u00a0", "\x00",
    "True", "Nil", "Void", "debug.type", ">debug.chain",
]


def _random_text(rng):
    parts = [rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 30))]
    seps = [rng.choice([" ", " ", "\n", ""]) for _ in parts]
    return "".join(p + s for p, s in zip(parts, seps))


def test_frontend_corpus():
    for name, data in _corpus("py_frontend"):
        frontend.check(data)


def test_frontend_random():
    rng = random.Random(20261121)
    for _ in range(N_RANDOM):
        text = _random_text(rng)
        frontend.check(text.encode("utf-8"))
    for _ in range(50):  # raw bytes, including invalid UTF-8
        frontend.check(bytes(rng.randrange(256) for _ in range(rng.randint(0, 40))))


def _mutate(data, rng):
    b = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0 and b:  # flip bits
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncate
        del b[rng.randrange(len(b) + 1):]
    elif kind == 2:  # insert random bytes
        i = rng.randrange(len(b) + 1)
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    elif b:  # overwrite with an interesting byte
        b[rng.randrange(len(b))] = rng.choice([0, 1, 2, 3, 0x7F, 0x80, 0xFF])
    return bytes(b)


def test_decoder_corpus():
    for name, data in _corpus("py_decoder"):
        decoder.check(data)


def test_decoder_random():
    rng = random.Random(11)
    seeds = [data for _, data in _corpus("py_decoder") if len(data) < 4096]
    for _ in range(N_RANDOM):
        decoder.check(_mutate(rng.choice(seeds), rng))
    for _ in range(50):
        decoder.check(b"SOMABC\x01\x00" + bytes(rng.randrange(256) for _ in range(rng.randint(0, 40))))


def test_decoder_rejects_only_with_decode_error():
    # The target's property is not vacuous: bad input reaches DecodeError, and a non-DecodeError
    # exception escapes `check`.
    from soma.code import DecodeError, decode_module

    with pytest.raises(DecodeError):
        decode_module(b"SOMABC\x02\x00")
    decoder.check(b"SOMABC\x02\x00")


def test_frontend_detects_a_broken_round_trip(monkeypatch):
    # If decoding lost information, the target would notice.
    real = frontend.decode_module

    def lossy(data):
        program = real(data)
        program.positions = [(line + 1, col) for line, col in program.positions]
        return program

    monkeypatch.setattr(frontend, "decode_module", lossy)
    with pytest.raises(AssertionError):
        frontend.check(b"1 2 >+")
