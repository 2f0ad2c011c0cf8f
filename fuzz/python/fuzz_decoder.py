"""Fuzz target: `soma.code.decode_module` on arbitrary bytes.

Property, for any input bytes:
  * `decode_module` returns a program Code or raises `soma.code.DecodeError`, nothing else
    (no IndexError, UnicodeDecodeError, RecursionError, MemoryError, ...);
  * whatever it accepts, the writer can write again, and that writing is a fixed point
    (decode -> encode -> decode -> encode gives the same bytes). The first encoding may differ
    from the input: the writer emits the smallest Int form and numbers Codes in preorder.
    (`tree_size` guards the re-encoding against Code graphs that would write out
    exponentially many Codes, should the decoder ever accept shared Codes again.)

Run it with atheris (coverage-guided; `pip install atheris`, not a project dependency):

    .venv/bin/python fuzz/python/fuzz_decoder.py fuzz/work/py_decoder fuzz/corpus/py_decoder -max_total_time=120

`check(data)` is the target body; tests/test_fuzz_targets.py runs it over the committed corpus
and seeded random inputs without atheris.
"""

from harness import fuzz, instrumented

with instrumented(__name__ == "__main__"):
    from soma.code import Code, DecodeError, decode_module, encode_module
    from soma.values import Block

MAX_TREE = 2000


def tree_size(program, cap=MAX_TREE):
    """How many Codes `encode_module` would write (stops counting past `cap`)."""
    n = 0
    stack = [program]
    while stack:
        code = stack.pop()
        n += 1
        if n > cap:
            return n
        stack.extend(c.code for c in code.consts if type(c) is Block)
    return n


def check(data):
    """The target body: returns normally, or raises AssertionError / an unexpected error."""
    try:
        program = decode_module(data)
    except DecodeError:
        return
    assert isinstance(program, Code), program
    if tree_size(program) > MAX_TREE:
        return
    once = encode_module(program)
    again = decode_module(once)
    assert encode_module(again) == once, "encode/decode is not a fixed point"


if __name__ == "__main__":
    fuzz(check)
