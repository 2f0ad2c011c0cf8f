"""The compiler, the Code objects, the serialized form (docs/bytecode.md) and the opcode table."""

import os
import re

import pytest

import soma
from soma import opcodes as op
from soma.code import Code, DecodeError, all_codes, decode_module, encode_module
from soma.compiler import compile_source
from soma.dis import disassemble
from soma.values import Block

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TSV = os.path.join(ROOT, "python", "soma", "opcodes.tsv")
BYTECODE_MD = os.path.join(ROOT, "docs", "bytecode.md")


def names(code):
    return [op.NAMES[o] for o, _ in code.instrs]


# ---------------------------------------------------------------- compiling

def test_one_instruction_per_statement_with_positions():
    code = compile_source("1 (s)\n a a. !a !a. >a\n  _ _. !_ !_. >_ _.x\n >{ } { }")
    assert names(code) == [
        "CONST", "CONST", "LOAD_STORE", "REF_STORE", "SET_STORE", "SETREF_STORE",
        "EXEC_STORE", "LOAD_REG", "REF_REG", "SET_REG", "SETREF_REG", "EXEC_REG",
        "LOAD_REG", "EXEC_CONST", "CONST"]
    assert code.positions == [(1, 1), (1, 3), (2, 2), (2, 4), (2, 7), (2, 10), (2, 14),
                              (3, 3), (3, 5), (3, 8), (3, 11), (3, 15), (3, 18),
                              (4, 2), (4, 7)]
    assert len(code.instrs) == len(code.positions)


def test_every_opcode_number_matches_its_name():
    for number, name in enumerate(op.NAMES):
        assert getattr(op, name) == number


def test_constants_interned():
    code = compile_source("1 2 1 (a) (a) (1) 1 %d %d" % (10 ** 30, 10 ** 30))
    assert code.consts == [1, 2, "a", "1", 10 ** 30]
    assert [arg for _, arg in code.instrs] == [0, 1, 0, 2, 2, 3, 0, 4, 4]
    assert type(code.consts[3]) is str and type(code.consts[0]) is int


def test_int_and_str_constants_not_conflated():
    code = compile_source("1 (1)")
    assert code.consts == [1, "1"]
    assert [type(c) for c in code.consts] == [int, str]


def test_block_literals_are_distinct_constants():
    code = compile_source("{ 1 } { 1 }")
    a, b = code.consts
    assert isinstance(a, Block) and isinstance(b, Block)
    assert a is not b and a.code is not b.code
    assert [arg for _, arg in code.instrs] == [0, 1]


def test_block_code_names_and_children():
    code = compile_source("1\n  { 2 { 3 } } >{ }")
    assert code.name == "<program>"
    kids = code.children()
    assert [k.name for k in kids] == ["block@2:3", "block@2:16"]
    assert [k.name for k in kids[0].children()] == ["block@2:7"]
    assert [c.name for c in all_codes(code)] == ["<program>", "block@2:3", "block@2:7",
                                                 "block@2:16"]


def test_source_name_recorded_on_every_code():
    code = compile_source("{ { } }", "x.soma")
    assert {c.source for c in all_codes(code)} == {"x.soma"}


def test_block_constant_is_the_same_object_on_every_evaluation():
    vm = soma.VM(stdlib=False)
    # The inner literal is evaluated once per call of f: same Block each time.
    vm.execute_code("{ { 7 } } !f  >f >f >f")
    assert len(vm.al) == 3
    assert vm.al[0] is vm.al[1] is vm.al[2]
    assert isinstance(vm.al[0], Block)


def test_block_literal_identity_in_a_chain_loop():
    vm = soma.VM(stdlib=False)
    # Each round pushes the literal {} and decrements a counter; five rounds.
    vm.execute_code("""
        5 !n
        { {} n 1 >- !n  0 n >< >block Nil >choose } >chain
    """)
    assert len(vm.al) == 6 and vm.al[-1] is soma.NIL    # chain leaves the stop value
    blocks = vm.al[:-1]
    assert all(isinstance(v, Block) for v in blocks)
    assert all(v is blocks[0] for v in blocks)


def test_same_text_different_literals_differ():
    vm = soma.VM(stdlib=False)
    vm.execute_code("{ 1 } { 1 }")
    assert vm.al[0] is not vm.al[1]


def test_paths_presplit_register_omits_underscore():
    code = compile_source("a a.b.c _ _.x _.x.y a.b. !_.q. a")
    assert code.paths == [(op.STORE_ROOT, ("a",)), (op.STORE_ROOT, ("a", "b", "c")),
                          (op.REGISTER_ROOT, ()), (op.REGISTER_ROOT, ("x",)),
                          (op.REGISTER_ROOT, ("x", "y")), (op.STORE_ROOT, ("a", "b")),
                          (op.REGISTER_ROOT, ("q",))]
    # paths are interned: the second `a` reuses index 0; `a.b.` shares nothing with `a.b.c`
    assert code.instrs[-1] == (op.LOAD_STORE, 0)


def test_register_and_store_paths_with_same_components_are_distinct():
    code = compile_source("x _.x")
    assert code.paths == [(op.STORE_ROOT, ("x",)), (op.REGISTER_ROOT, ("x",))]


def test_underscore_named_store_path_is_store_rooted():
    code = compile_source("_x.y")
    assert code.paths == [(op.STORE_ROOT, ("_x", "y"))]
    assert names(code) == ["LOAD_STORE"]


def test_deep_nesting_compiles_without_recursion():
    n = 10_000
    code = compile_source("{ " * n + "} " * n)
    assert len(all_codes(code)) == n + 1


# ---------------------------------------------------------------- hand-built modules

def uleb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def sleb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def s(text):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return uleb(len(data)) + data


def c_int(v):
    return b"\x00" + sleb(v)


def c_big(sign, mag):
    return b"\x01" + bytes([sign]) + uleb(len(mag)) + mag


def c_str(t):
    return b"\x02" + s(t)


def c_block(i):
    return b"\x03" + uleb(i)


def p(root, comps):
    return bytes([root]) + uleb(len(comps)) + b"".join(s(c) for c in comps)


def ins(opcode, operand, line=1, col=1):
    return bytes([opcode]) + uleb(operand) + uleb(line) + uleb(col)


def code_bytes(name="c", consts=(), paths=(), instrs=()):
    return (s(name) + uleb(len(consts)) + b"".join(consts) + uleb(len(paths))
            + b"".join(paths) + uleb(len(instrs)) + b"".join(instrs))


def module(*codes, source="", magic=b"SOMABC", version=1, n_codes=None):
    return (magic + version.to_bytes(2, "little") + s(source)
            + uleb(len(codes) if n_codes is None else n_codes) + b"".join(codes))


def rejected(data):
    with pytest.raises(DecodeError):
        decode_module(data)


def test_encoder_output_is_exactly_the_documented_layout():
    code = compile_source("5 { _.x } !a", "f.soma")
    expected = module(
        code_bytes("<program>", [c_int(5), c_block(1)], [p(0, ["a"])],
                   [ins(op.CONST, 0, 1, 1), ins(op.CONST, 1, 1, 3), ins(op.SET_STORE, 0, 1, 11)]),
        code_bytes("block@1:3", [], [p(1, ["x"])], [ins(op.LOAD_REG, 0, 1, 5)]),
        source="f.soma")
    assert encode_module(code) == expected


@pytest.mark.parametrize("value,tagged", [
    (0, c_int(0)), (-1, c_int(-1)), (63, c_int(63)), (64, c_int(64)),
    (2 ** 63 - 1, c_int(2 ** 63 - 1)), (-2 ** 63, c_int(-2 ** 63)),
    (2 ** 63, c_big(0, (2 ** 63).to_bytes(8, "little"))),
    (-2 ** 63 - 1, c_big(1, (2 ** 63 + 1).to_bytes(8, "little"))),
    (10 ** 30, c_big(0, (10 ** 30).to_bytes(13, "little"))),
    (-(2 ** 64), c_big(1, (2 ** 64).to_bytes(9, "little"))),
])
def test_integer_constants_use_the_smallest_form(value, tagged):
    code = compile_source(str(value))
    assert encode_module(code) == module(
        code_bytes("<program>", [tagged], [], [ins(op.CONST, 0, 1, 1)]))


def test_hand_built_module_decodes():
    data = module(
        code_bytes("<program>", [c_int(-3), c_str("hé"), c_block(1), c_big(1, b"\x01\x02")],
                   [p(0, ["a", "b"]), p(1, [])],
                   [ins(op.CONST, 0, 1, 1), ins(op.EXEC_CONST, 2, 2, 5),
                    ins(op.LOAD_STORE, 0, 3, 1), ins(op.SET_REG, 1, 3, 9),
                    ins(op.CONST, 3, 4, 1)]),
        code_bytes("inner", [], [], []), source="m")
    prog = decode_module(data)
    assert prog.name == "<program>" and prog.source == "m"
    assert prog.consts[:2] == [-3, "hé"]
    assert isinstance(prog.consts[2], Block) and prog.consts[2].code.name == "inner"
    assert prog.consts[2].code.source == "m"
    assert prog.consts[3] == -0x0201
    assert prog.paths == [(0, ("a", "b")), (1, ())]
    assert prog.instrs == [(0, 0), (11, 2), (1, 0), (6, 1), (0, 3)]
    assert prog.positions == [(1, 1), (2, 5), (3, 1), (3, 9), (4, 1)]


# ---------------------------------------------------------------- round trips

def same_code(a, b):
    ca, cb = all_codes(a), all_codes(b)
    assert len(ca) == len(cb)
    index_a = {id(c): i for i, c in enumerate(ca)}
    index_b = {id(c): i for i, c in enumerate(cb)}
    for x, y in zip(ca, cb):
        assert (x.name, x.paths, x.instrs, x.positions) == \
               (y.name, [(r, tuple(c)) for r, c in y.paths], y.instrs, y.positions)
        assert len(x.consts) == len(y.consts)
        for u, v in zip(x.consts, y.consts):
            assert type(u) is type(v)
            if isinstance(u, Block):
                assert index_a[id(u.code)] == index_b[id(v.code)]
            else:
                assert u == v


ROUND_TRIP_PROGRAMS = [
    "",
    "1 2 >+",
    "%d %d %d %d" % (2 ** 63, -2 ** 63 - 1, 3 * 10 ** 20, -(10 ** 200)),
    "(héllo ✓ \\1F600\\ \\0\\) () (\\28\\\\29\\)",
    "{ 1 { 2 { 3 (x) } >{ _.a } } } !f >f",
    "a.b.c a. !x !x. _ _. !_ !_. >_ _.p.q !_.p.q. >a.b >{ } list.#loop =! +",
    "\n\n   { \n  x }\n >{ y }",
]


@pytest.mark.parametrize("src", ROUND_TRIP_PROGRAMS)
def test_encode_decode_round_trip(src):
    code = compile_source(src, "rt.soma")
    data = encode_module(code)
    back = decode_module(data)
    same_code(code, back)
    assert back.source == "rt.soma"
    assert encode_module(back) == data


def test_decoded_program_runs_like_the_original():
    src = ("%d 3 >* (é) { !_.x _.x _.x >* } !sq 12 >sq -7 2 >/ -7 2 >%% { { 5 } } >{ >{ } }"
           % (10 ** 20))
    a = soma.VM(stdlib=False)
    a.execute_code(src)
    b = soma.VM(stdlib=False)
    b.run_program(decode_module(encode_module(compile_source(src))))
    assert a.al[:-1] == b.al[:-1] == [3 * 10 ** 20, "é", 144, -4, 1]
    assert isinstance(b.al[-1], Block)


def test_encode_source_override():
    code = compile_source("1", "a.soma")
    assert decode_module(encode_module(code, source="b.soma")).source == "b.soma"


# ---------------------------------------------------------------- decoder rejections

VALID = module(
    code_bytes("<program>", [c_int(1), c_block(1), c_str("s"), c_big(0, b"\x05\x01")],
               [p(0, ["a"]), p(1, ["x"]), p(1, [])],
               [ins(op.CONST, 0), ins(op.EXEC_CONST, 1), ins(op.LOAD_STORE, 0),
                ins(op.LOAD_REG, 1), ins(op.SET_REG, 2)]),
    code_bytes("b", [c_int(-5)], [p(0, ["q", "r"])], [ins(op.EXEC_STORE, 0, 9, 9)]),
    source="v.soma")


def test_valid_reference_module_decodes():
    prog = decode_module(VALID)
    assert len(all_codes(prog)) == 2


def test_every_prefix_of_a_valid_module_is_rejected():
    for data in (VALID, encode_module(compile_source(" ".join(ROUND_TRIP_PROGRAMS[2:5])))):
        decode_module(data)
        for n in range(len(data)):
            with pytest.raises(DecodeError):
                decode_module(data[:n])


def test_trailing_bytes_rejected():
    rejected(VALID + b"\x00")
    rejected(VALID + b"SOMABC")


@pytest.mark.parametrize("magic", [b"SOMABX", b"somabc", b"\x00" * 6, b"BCSOMA"])
def test_bad_magic(magic):
    rejected(VALID.replace(b"SOMABC", magic, 1))


@pytest.mark.parametrize("version", [0, 2, 0x100, 0xFFFF])
def test_unknown_version(version):
    rejected(b"SOMABC" + version.to_bytes(2, "little") + VALID[8:])


def test_zero_codes_rejected():
    rejected(module())


def test_more_codes_announced_than_present():
    rejected(module(code_bytes("<program>"), n_codes=2))


def test_overlong_leb():
    # n_codes written in 11 bytes (value 1)
    head = b"SOMABC\x01\x00" + s("")
    body = code_bytes("<program>")
    assert decode_module(head + b"\x81\x00" + body)      # non-minimal but <= 10 bytes: fine
    rejected(head + b"\x81" + b"\x80" * 9 + b"\x00" + body)
    rejected(head + b"\x80" * 11 + b"\x01" + body)


def test_uleb_out_of_range():
    head = b"SOMABC\x01\x00" + s("")
    # 10 bytes whose value needs more than 64 bits
    rejected(head + b"\xff" * 9 + b"\x7f" + code_bytes("<program>"))
    rejected(head + b"\x80" * 9 + b"\x02" + code_bytes("<program>"))


def test_sleb_out_of_i64_range():
    ok = module(code_bytes("<program>", [b"\x00" + sleb(2 ** 63 - 1)], [], [ins(0, 0)]))
    assert decode_module(ok).consts == [2 ** 63 - 1]
    rejected(module(code_bytes("<program>", [b"\x00" + b"\x80" * 9 + b"\x01"], [],
                               [ins(0, 0)])))     # 2**63
    rejected(module(code_bytes("<program>", [b"\x00" + b"\x80" * 10 + b"\x00"], [],
                               [ins(0, 0)])))     # 11 bytes


def test_length_runs_past_end():
    rejected(b"SOMABC\x01\x00" + uleb(100) + b"abc")
    rejected(module(code_bytes("<program>", [c_big(0, b"\x01")], [], [])).replace(
        b"\x01\x00\x01\x01", b"\x01\x00\x09\x01", 1))


@pytest.mark.parametrize("bad", [b"\xff", b"\xc3", b"\xed\xa0\x80", b"a\x80"])
def test_invalid_utf8(bad):
    rejected(module(code_bytes("<program>"), source=bad))
    rejected(module(code_bytes(bad)))
    rejected(module(code_bytes("<program>", [b"\x02" + s(bad)], [], [])))
    rejected(module(code_bytes("<program>", [], [p(0, [bad])], [])))


@pytest.mark.parametrize("tag", [4, 5, 0x7F, 0xFF])
def test_unknown_constant_tag(tag):
    rejected(module(code_bytes("<program>", [bytes([tag]) + b"\x00"], [], [])))


@pytest.mark.parametrize("root", [2, 3, 0xFF])
def test_unknown_path_root(root):
    rejected(module(code_bytes("<program>", [], [p(root, ["a"])], [])))


@pytest.mark.parametrize("opcode", [len(op.OPCODES), len(op.OPCODES) + 1, 0x7F, 0xFF])
def test_unknown_opcode(opcode):
    assert len(op.OPCODES) == 12
    rejected(module(code_bytes("<program>", [c_int(1)], [p(0, ["a"])], [ins(opcode, 0)])))


@pytest.mark.parametrize("sign", [2, 0xFF])
def test_bad_bigint_sign(sign):
    rejected(module(code_bytes("<program>", [c_big(sign, b"\x01")], [], [])))


def test_bigint_magnitude_with_trailing_zero():
    assert decode_module(module(code_bytes("<program>", [c_big(0, b"\x00\x01")], [], []))
                         ).consts == [256]
    rejected(module(code_bytes("<program>", [c_big(0, b"\x01\x00")], [], [])))
    rejected(module(code_bytes("<program>", [c_big(1, b"\x00")], [], [])))


def test_const_index_out_of_range():
    rejected(module(code_bytes("<program>", [c_int(1)], [], [ins(op.CONST, 1)])))
    rejected(module(code_bytes("<program>", [], [], [ins(op.CONST, 0)])))
    rejected(module(code_bytes("<program>", [c_block(1)], [], [ins(op.EXEC_CONST, 1)]),
                    code_bytes("b")))


@pytest.mark.parametrize("name", [n for n in op.NAMES if op.OPCODES[op.NAMES.index(n)].operand
                                  == "path"])
def test_path_index_out_of_range(name):
    opcode = getattr(op, name)
    root = 1 if name.endswith("_REG") else 0
    good = module(code_bytes("<program>", [], [p(root, ["a"])], [ins(opcode, 0)]))
    decode_module(good)
    rejected(module(code_bytes("<program>", [], [p(root, ["a"])], [ins(opcode, 1)])))
    rejected(module(code_bytes("<program>", [], [], [ins(opcode, 0)])))


@pytest.mark.parametrize("name", [n for n in op.NAMES if op.OPCODES[op.NAMES.index(n)].operand
                                  == "path"])
def test_wrong_path_root_for_opcode(name):
    opcode = getattr(op, name)
    wrong = 0 if name.endswith("_REG") else 1
    rejected(module(code_bytes("<program>", [], [p(wrong, ["a"])], [ins(opcode, 0)])))


def test_store_path_with_no_components():
    assert decode_module(module(code_bytes("<program>", [], [p(1, [])], [])))
    rejected(module(code_bytes("<program>", [], [p(0, [])], [])))


@pytest.mark.parametrize("comps", [[""], ["a", ""], ["a.b"], ["."], ["a", "b."]])
@pytest.mark.parametrize("root", [0, 1])
def test_bad_path_components(comps, root):
    rejected(module(code_bytes("<program>", [], [p(root, comps)], [])))


@pytest.mark.parametrize("const", [c_int(1), c_str("x"), c_big(0, b"\x01")])
def test_exec_const_of_non_block(const):
    rejected(module(code_bytes("<program>", [const], [], [ins(op.EXEC_CONST, 0)])))
    # the same constant under CONST is fine
    decode_module(module(code_bytes("<program>", [const], [], [ins(op.CONST, 0)])))


def test_block_reference_rules():
    ok = module(code_bytes("<program>", [c_block(1), c_block(3)]),
                code_bytes("a", [c_block(2)]), code_bytes("b"), code_bytes("c"))
    decode_module(ok)
    rejected(module(code_bytes("<program>", [c_block(1), c_block(2)]),
                    code_bytes("a", [c_block(2)]), code_bytes("b")))        # two parents
    rejected(module(code_bytes("<program>"), code_bytes("orphan")))         # no parent
    rejected(module(code_bytes("<program>", [c_block(0)])))                 # code 0
    rejected(module(code_bytes("<program>", [c_block(1)]),
                    code_bytes("a", [c_block(1)])))                         # itself
    rejected(module(code_bytes("<program>", [c_block(2)]), code_bytes("a"),
                    code_bytes("b", [c_block(1)])))                         # backward
    rejected(module(code_bytes("<program>", [c_block(1)]),
                    code_bytes("a", [c_block(0)])))                         # back to 0
    rejected(module(code_bytes("<program>", [c_block(1)])))                 # past the end
    rejected(module(code_bytes("<program>", [c_block(5)]), code_bytes("a")))


def test_code_named_by_two_block_constants_is_rejected_or_listed_once():
    # Block literals nest, so each Code but code 0 has exactly one parent. A module
    # in which two Block constants name the same Code must either be rejected, or be
    # handled as a graph: every Code listed once, and re-encoded without duplicates.
    data = module(code_bytes("<program>", [c_block(1), c_block(1)], [],
                             [ins(op.CONST, 0), ins(op.CONST, 1)]),
                  code_bytes("shared"))
    try:
        prog = decode_module(data)
    except DecodeError:
        return
    assert [c.name for c in all_codes(prog)] == ["<program>", "shared"]
    assert len(encode_module(prog)) == len(data)


def test_shared_codes_do_not_blow_up_exponentially():
    # 12 Codes, each naming the next one twice: 2**11 paths through the graph.
    n = 12
    data = module(*([code_bytes("c%d" % i, [c_block(i + 1), c_block(i + 1)], [],
                                [ins(op.CONST, 0), ins(op.CONST, 1)]) for i in range(n - 1)]
                    + [code_bytes("last")]))
    try:
        prog = decode_module(data)
    except DecodeError:
        return
    assert len(all_codes(prog)) <= n
    assert len(encode_module(prog)) <= 2 * len(data)


@pytest.mark.parametrize("line,col", [(0, 1), (1, 0), (0, 0)])
def test_zero_positions(line, col):
    rejected(module(code_bytes("<program>", [c_int(1)], [], [ins(op.CONST, 0, line, col)])))


def test_decode_error_is_a_value_error_with_offset():
    with pytest.raises(DecodeError) as info:
        decode_module(b"SOMABX\x01\x00")
    assert isinstance(info.value, ValueError)
    assert "byte" in str(info.value)


def test_decoder_accepts_bytearray_and_memoryview():
    assert decode_module(bytearray(VALID)).name == "<program>"
    assert decode_module(memoryview(VALID)).name == "<program>"


# ---------------------------------------------------------------- disassembly

ALL_OPS_SRC = "1 a a. !a !a. >a _.x _.x. !_.x !_.x. >_.x >{ }"


def test_program_uses_every_opcode():
    assert set(names(compile_source(ALL_OPS_SRC))) == set(op.NAMES)


def test_disassembly_mentions_every_opcode_and_operand():
    text = disassemble(compile_source(ALL_OPS_SRC + "\n(str) %d" % 10 ** 25))
    for name in op.NAMES:
        assert re.search(r"\b%s\b" % name, text), name
    assert "code <program> (" in text
    assert "code block@1:44 (0 consts, 0 paths)" in text
    assert "; 'str'" in text and "; %d" % 10 ** 25 in text
    assert "; _.x" in text and "; a" in text
    assert re.search(r"^\s+1:1\s+CONST\s+0\s+; 1$", text, re.M)
    assert re.search(r"^\s+2:1\s+CONST\s+\d+\s+; 'str'$", text, re.M)


# ---------------------------------------------------------------- opcode table

def _read_tsv():
    rows = []
    with open(TSV, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#"):
                rows.append(line.split("\t"))
    return rows


def test_opcode_table_matches_tsv():
    rows = _read_tsv()
    assert len(rows) == len(op.OPCODES) == 12
    for (number, name, operand, doc), entry in zip(rows, op.OPCODES):
        assert int(number) == entry.number
        assert name == entry.name
        assert operand == entry.operand
        assert doc == entry.doc
    assert [e.number for e in op.OPCODES] == list(range(len(op.OPCODES)))
    assert op.load_table() == op.OPCODES
    assert op.load_table(TSV) == op.OPCODES


def test_opcode_table_matches_bytecode_md():
    with open(BYTECODE_MD, encoding="utf-8") as f:
        doc_rows = re.findall(r"^\| (\d+) \| `(\w+)` \| (\w+) \|", f.read(), re.M)
    assert [(int(n), name, kind) for n, name, kind in doc_rows] == \
           [(e.number, e.name, e.operand) for e in op.OPCODES]


def test_derived_opcode_sets():
    assert op.REGISTER_OPS == {op.LOAD_REG, op.REF_REG, op.SET_REG, op.SETREF_REG, op.EXEC_REG}
    assert op.PATH_OPS == set(range(1, 11))
    for table in (op.LOAD, op.REF, op.SET, op.SETREF, op.EXEC):
        assert op.NAMES[table[op.STORE_ROOT]].endswith("_STORE")
        assert op.NAMES[table[op.REGISTER_ROOT]].endswith("_REG")
    assert (op.STORE_ROOT, op.REGISTER_ROOT) == (0, 1)


def test_load_table_rejects_bad_files(tmp_path):
    bad_number = tmp_path / "a.tsv"
    bad_number.write_text("0\tCONST\tconst\tx\n2\tLOAD\tpath\ty\n", encoding="utf-8")
    with pytest.raises(ValueError):
        op.load_table(str(bad_number))
    bad_kind = tmp_path / "b.tsv"
    bad_kind.write_text("0\tCONST\tnumber\tx\n", encoding="utf-8")
    with pytest.raises(ValueError):
        op.load_table(str(bad_kind))
    good = tmp_path / "c.tsv"
    good.write_text("# comment\n\n0\tA\tconst\tdoc\n1\tB\tpath\tdoc2\n", encoding="utf-8")
    assert [(e.number, e.name, e.operand) for e in op.load_table(str(good))] == \
           [(0, "A", "const"), (1, "B", "path")]


def test_code_repr_and_defaults():
    c = Code("n")
    assert (c.consts, c.paths, c.instrs, c.positions, c.count, c.native) == ([], [], [], [], 0,
                                                                            None)
    assert "n" in repr(c)
