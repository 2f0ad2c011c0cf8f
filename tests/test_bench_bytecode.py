"""Checked-in bytecode that Rust tests and benches load must match its sources.

benches/bytecode/*.bc are compiled from benches/programs/*.soma and the stdlib
by benches/build-bytecode.sh; if a program, the stdlib or the compiler changes
without a rebuild, the Rust benches would time stale code.
"""

import os

import pytest

from soma.code import decode_module, encode_module
from soma.compiler import compile_source

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BYTECODE = os.path.join(ROOT, "benches", "bytecode")


def sources():
    yield "stdlib", "python/soma/stdlib.soma"
    programs = os.path.join(ROOT, "benches", "programs")
    for name in sorted(os.listdir(programs)):
        if name.endswith(".soma"):
            yield name[:-5], "benches/programs/" + name


@pytest.mark.parametrize("stem,source", list(sources()), ids=lambda v: str(v))
def test_checked_in_bytecode_is_current(stem, source):
    with open(os.path.join(ROOT, source), encoding="utf-8") as f:
        expected = encode_module(compile_source(f.read(), source))
    with open(os.path.join(BYTECODE, stem + ".bc"), "rb") as f:
        actual = f.read()
    assert actual == expected, "stale %s.bc: run benches/build-bytecode.sh" % stem
    assert encode_module(decode_module(actual)) == actual


def test_jit_corpus_is_current():
    # crates/jit/tests/every_code.rs runs every tests/soma case from this file.
    import importlib.util
    path = os.path.join(ROOT, "crates", "jit", "tests", "fixtures", "make_corpus.py")
    spec = importlib.util.spec_from_file_location("make_corpus", path)
    make_corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_corpus)
    expected, _ = make_corpus.build()
    with open(make_corpus.TARGET, "rb") as f:
        actual = f.read()
    assert actual == expected, "stale corpus.bin: run crates/jit/tests/fixtures/make_corpus.py"
