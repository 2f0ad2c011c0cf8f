"""Fuzz target: the Python front end (lexer, parser, compiler) and the bytecode writer/reader.

Property, for any input text:
  * lexing, parsing and compiling raise nothing but `soma.SomaError` (LexError/ParseError);
  * a program that compiles survives `encode_module` -> `decode_module` exactly: the same
    Codes in the same order with the same names, constants, paths, instructions and
    positions, and re-encoding the decoded program gives the same bytes.

Run it with atheris (coverage-guided; `pip install atheris`, not a project dependency):

    .venv/bin/python fuzz/python/fuzz_frontend.py fuzz/work/py_frontend fuzz/corpus/py_frontend -max_total_time=120

`check(data)` is the target body; tests/test_fuzz_targets.py runs it over the committed corpus
and seeded random inputs without atheris.
"""

from harness import fuzz, instrumented

with instrumented(__name__ == "__main__"):
    from soma.code import all_codes, decode_module, encode_module
    from soma.compiler import compile_source
    from soma.errors import SomaError
    from soma.lexer import lex
    from soma.parser import parse
    from soma.values import Block


def text_of(data):
    """The source text a fuzzer input stands for (invalid UTF-8 replaced)."""
    return data.decode("utf-8", errors="replace")


def flatten(program):
    """Every Code of `program` (preorder) as plain data; Block constants become indexes."""
    codes = all_codes(program)
    index = {id(c): i for i, c in enumerate(codes)}
    flat = []
    for c in codes:
        consts = []
        for k in c.consts:
            if type(k) is Block:
                consts.append(("block", index[id(k.code)]))
            else:
                consts.append((type(k).__name__, k))
        assert len(c.instrs) == len(c.positions), c
        for line, col in c.positions:
            assert line >= 1 and col >= 1, (c, line, col)
        flat.append((c.name, c.source, consts, [tuple(p) for p in c.paths],
                     [tuple(i) for i in c.instrs], [tuple(p) for p in c.positions]))
    return flat


def check(data):
    """The target body: returns normally, or raises AssertionError / an unexpected error."""
    text = text_of(data)
    try:
        lex(text)
        parse(text)
        program = compile_source(text, "fuzz.soma")
    except SomaError:
        return
    encoded = encode_module(program)
    decoded = decode_module(encoded)
    assert flatten(decoded) == flatten(program), "decode(encode(program)) differs"
    assert encode_module(decoded) == encoded, "re-encoding the decoded program differs"


if __name__ == "__main__":
    fuzz(check)
