"""Regenerate the committed seed corpora under fuzz/corpus/ (docs/fuzzing.md).

    .venv/bin/python fuzz/make_corpus.py

Seeds: the serialized benchmark programs and stdlib (benches/bytecode/*.bc), small programs
compiled by the Python compiler (SNIPPETS), and truncated / bit-flipped copies of both
(deterministic: fixed random seed). The `execute` target's seeds are not made here: its input is
an `arbitrary` byte stream, so its corpus is a minimised sample of a fuzzing run
(`cargo fuzz cmin execute`).
"""

import hashlib
import os
import random
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))

from soma.code import encode_module  # noqa: E402
from soma.compiler import compile_source  # noqa: E402

SNIPPETS = [
    "2 3 >+ (five) !name",
    "1 2 >- 3 >* 7 >/ 5 >%",
    "4611686018427387903 1 >+ -4611686018427387904 1 >-",
    "9223372036854775807 1 >+ 9223372036854775807 >* -9223372036854775808 -1 >/",
    "140737488355327 1 >+ -140737488355328 -1 >+ 3037000499 3037000499 >*",
    "123456789012345678901234567890 -98765432109876543210 >*",
    "7 0 >/",
    "7 0 >%",
    "-7 2 >/ -7 2 >% 7 -2 >/ 7 -2 >%",
    "(a) (b) >concat (12) >toInt >toString",
    "1 2 >< (x) (y) >< 1 (x) ><",
    "True (yes) (no) >choose Nil 1 2 >choose",
    "{ 1 } { 2 } False >choose >chain",
    "0 !n { n 1 >+ !n n 10 >< { >block } Nil >choose } >chain n",
    "{ _.x 1 >+ !_.x } !inc 5 !_.x >inc _.x",
    "a.b.c. !_.r 5 !_.r a.b.c",
    "1 !x x. !r Void !x. x",
    "{ >block } !f 0 !d >f",
    "{ >f } !f >f",
    ">{ 1 2 >+ } >{ (in block) >print }",
    "Void >isVoid Nil >isNil 3 >debug.type",
    "1 >debug.error",
    "5 !a.b 6 !a.c a. >debug.graph.dump a. >debug.graph.draw",
    "Nil { 1 } >debug.chain 3 >debug.chain",
    "True (a) (b) >debug.choose",
    "undefined.path",
    ">_.nothing",
    "1 >print (text) >print { } >print",
    "{ { { 1 } } } >chain >chain >chain",
    "x. !_.self _.self. !_.self _.self",
    "(\\48\\\\49\\) !s s s >concat",
    ">readLine",
    "(nope) >use",
    "{ >block } >chain",
    "3 !x { x x >* !x >block } >chain",
    "(ab) !x { x x >concat !x >block } >chain",
    "{ >f >f } !f >f",
]


def write(dirname, data):
    os.makedirs(dirname, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(dirname, name), "wb") as f:
        f.write(data)


def mutations(data, rng, n):
    out = []
    for cut in sorted({len(data) // 2, len(data) - 1, 7, 9, 12}):
        if 0 < cut < len(data):
            out.append(data[:cut])
    for _ in range(n):
        b = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        out.append(bytes(b))
    return out


def main():
    corpus = os.path.join(ROOT, "fuzz", "corpus")
    rng = random.Random(7)
    modules = []
    bench = os.path.join(ROOT, "benches", "bytecode")
    for name in sorted(os.listdir(bench)):
        if name.endswith(".bc"):
            with open(os.path.join(bench, name), "rb") as f:
                modules.append(f.read())
    for text in SNIPPETS:
        modules.append(encode_module(compile_source(text, "seed.soma")))
    for data in modules:
        for target in ("decode", "jit", "py_decoder"):
            write(os.path.join(corpus, target), data)
        for m in mutations(data, rng, 3):
            for target in ("decode", "py_decoder"):
                write(os.path.join(corpus, target), m)
    texts = [t.encode() for t in SNIPPETS]
    texts.append(open(os.path.join(ROOT, "python", "soma", "stdlib.soma"), "rb").read())
    texts.append(open(os.path.join(ROOT, "examples", "hello.soma"), "rb").read())
    soma_tests = os.path.join(ROOT, "tests", "soma")
    for name in sorted(os.listdir(soma_tests)):
        path = os.path.join(soma_tests, name)
        if name.endswith(".soma") and os.path.getsize(path) < 9000:
            texts.append(open(path, "rb").read())
    texts += [b"{" * 300 + b"}" * 300, b"9" * 5000, b"(unterminated", b"\\", b">", b"!", b"_x",
              b"a..b", b"(\\110000\\)", b"(\\D800\\)", b"}", b"{", b"\xff\xfe", b">{ } !", b"1.5"]
    for t in texts:
        write(os.path.join(corpus, "py_frontend"), t)


if __name__ == "__main__":
    main()
