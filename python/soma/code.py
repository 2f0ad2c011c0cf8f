"""Code objects and their serialized form (docs/bytecode.md, version 1).

A Code is one straight-line unit of bytecode: the top-level program or one
block literal. It also carries the profile the JIT reads (`count`, bumped on
every execution) and the JIT's slot (`native`).
"""

from . import bytecode_format as fmt
from . import opcodes as op
from .values import Block

# The format's constants live in format.tsv, shared with the Rust decoder.
FORMAT_VERSION = fmt.VERSION
MAGIC = fmt.MAGIC
CONST_INT, CONST_BIGINT, CONST_STR, CONST_BLOCK = (
    fmt.CONST_INT, fmt.CONST_BIGINT, fmt.CONST_STR, fmt.CONST_BLOCK)
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


class Code:
    """Bytecode of one program or block literal.

    consts    Int, Str or Block values (a Block constant is a nested block literal)
    paths     (root, components) pairs; root is opcodes.STORE_ROOT or REGISTER_ROOT,
              and a Register path omits the leading `_`
    instrs    (opcode, operand) pairs
    positions (line, col) of each instruction's statement
    """

    __slots__ = ("name", "source", "consts", "paths", "instrs", "positions",
                 "count", "native", "quick", "__weakref__")

    def __init__(self, name, source="", consts=None, paths=None, instrs=None, positions=None):
        self.name = name
        self.source = source
        self.consts = consts if consts is not None else []
        self.paths = paths if paths is not None else []
        self.instrs = instrs if instrs is not None else []
        self.positions = positions if positions is not None else []
        self.count = 0       # executions so far: the profile tier-up reads
        self.native = None   # the JIT's compiled entry, once there is one
        self.quick = None    # the interpreter's pre-resolved form, built on first run

    def __repr__(self):
        return "<Code %s: %d instrs>" % (self.name, len(self.instrs))

    def children(self):
        """The Codes of the block literals directly inside this one."""
        return [c.code for c in self.consts if type(c) is Block]


def all_codes(program):
    """`program` and every Code nested in it, parents before children (preorder)."""
    order = []
    stack = [program]
    while stack:
        code = stack.pop()
        order.append(code)
        stack.extend(reversed(code.children()))
    return order


# ---------------------------------------------------------------- encoding

def _uleb(out, n):
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _sleb(out, n):
    while True:
        byte = n & 0x7F
        n >>= 7
        if (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40):
            out.append(byte)
            return
        out.append(byte | 0x80)


def _str(out, text):
    data = text.encode("utf-8")
    _uleb(out, len(data))
    out += data


def encode_module(program, source=None):
    """Serialize `program` and its nested Codes to bytes."""
    codes = all_codes(program)
    index = {id(c): i for i, c in enumerate(codes)}
    out = bytearray(MAGIC)
    out += FORMAT_VERSION.to_bytes(2, "little")
    _str(out, program.source if source is None else source)
    _uleb(out, len(codes))
    for code in codes:
        _str(out, code.name)
        _uleb(out, len(code.consts))
        for c in code.consts:
            t = type(c)
            if t is int and _I64_MIN <= c <= _I64_MAX:
                out.append(CONST_INT)
                _sleb(out, c)
            elif t is int:
                out.append(CONST_BIGINT)
                out.append(1 if c < 0 else 0)
                mag = abs(c)
                data = mag.to_bytes((mag.bit_length() + 7) // 8, "little")
                _uleb(out, len(data))
                out += data
            elif t is str:
                out.append(CONST_STR)
                _str(out, c)
            elif t is Block:
                out.append(CONST_BLOCK)
                _uleb(out, index[id(c.code)])
            else:
                raise TypeError("cannot serialize constant %r" % (c,))
        _uleb(out, len(code.paths))
        for root, comps in code.paths:
            out.append(root)
            _uleb(out, len(comps))
            for comp in comps:
                _str(out, comp)
        _uleb(out, len(code.instrs))
        for (opcode, operand), (line, col) in zip(code.instrs, code.positions):
            out.append(opcode)
            _uleb(out, operand)
            _uleb(out, line)
            _uleb(out, col)
    return bytes(out)


# ---------------------------------------------------------------- decoding

class DecodeError(ValueError):
    """Malformed serialized bytecode."""


class _Reader:
    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def fail(self, what):
        raise DecodeError("%s at byte %d" % (what, self.pos))

    def byte(self):
        if self.pos >= len(self.data):
            self.fail("unexpected end of input")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n):
        if n > len(self.data) - self.pos:
            self.fail("length %d runs past the end" % n)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def uleb(self):
        result = shift = 0
        for _ in range(10):
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if result >> 64:
                    self.fail("LEB128 value out of range")
                return result
        self.fail("LEB128 longer than 10 bytes")

    def sleb(self):
        result = shift = 0
        for _ in range(10):
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                if b & 0x40:
                    result -= 1 << shift
                if not _I64_MIN <= result <= _I64_MAX:
                    self.fail("LEB128 value out of range")
                return result
        self.fail("LEB128 longer than 10 bytes")

    def str(self):
        raw = self.take(self.uleb())
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.fail("invalid UTF-8")


def decode_module(data):
    """Decode bytes written by `encode_module`; return the program Code.

    Every malformed input raises DecodeError (the rules are in docs/bytecode.md).
    """
    r = _Reader(data)
    if r.take(len(MAGIC)) != MAGIC:
        r.fail("bad magic")
    version = int.from_bytes(r.take(2), "little")
    if version != FORMAT_VERSION:
        r.fail("unsupported version %d" % version)
    source = r.str()
    n_codes = r.uleb()
    if n_codes == 0:
        r.fail("module has no code")
    # Two passes: read every Code, then link Block constants (which only point forward).
    raw_codes = []
    for index in range(n_codes):
        name = r.str()
        consts = []
        for _ in range(r.uleb()):
            tag = r.byte()
            if tag == CONST_INT:
                consts.append(r.sleb())
            elif tag == CONST_BIGINT:
                sign = r.byte()
                if sign > 1:
                    r.fail("bad sign byte")
                mag = r.take(r.uleb())
                if mag and mag[-1] == 0:
                    r.fail("bigint magnitude has a trailing zero byte")
                value = int.from_bytes(mag, "little")
                consts.append(-value if sign else value)
            elif tag == CONST_STR:
                consts.append(r.str())
            elif tag == CONST_BLOCK:
                target = r.uleb()
                if target <= index or target >= n_codes:
                    r.fail("block constant names code %d from code %d" % (target, index))
                consts.append(_PendingBlock(target))
            else:
                r.fail("unknown constant tag %d" % tag)
        paths = []
        for _ in range(r.uleb()):
            root = r.byte()
            if root not in (op.STORE_ROOT, op.REGISTER_ROOT):
                r.fail("unknown path root %d" % root)
            comps = tuple(r.str() for _ in range(r.uleb()))
            if root == op.STORE_ROOT and not comps:
                r.fail("Store path with no components")
            for comp in comps:
                if not comp or "." in comp:
                    r.fail("bad path component %r" % comp)
            paths.append((root, comps))
        instrs, positions = [], []
        for _ in range(r.uleb()):
            opcode = r.byte()
            if opcode >= len(op.OPCODES):
                r.fail("unknown opcode %d" % opcode)
            operand = r.uleb()
            line, col = r.uleb(), r.uleb()
            if line == 0 or col == 0:
                r.fail("position 0")
            kind = op.OPCODES[opcode].operand
            if kind == "const":
                if operand >= len(consts):
                    r.fail("constant index %d out of range" % operand)
                if opcode == op.EXEC_CONST and type(consts[operand]) is not _PendingBlock:
                    r.fail("EXEC_CONST of a non-block constant")
            else:
                if operand >= len(paths):
                    r.fail("path index %d out of range" % operand)
                want = op.REGISTER_ROOT if opcode in op.REGISTER_OPS else op.STORE_ROOT
                if paths[operand][0] != want:
                    r.fail("path root does not match %s" % op.NAMES[opcode])
            instrs.append((opcode, operand))
            positions.append((line, col))
        raw_codes.append(Code(name, source, consts, paths, instrs, positions))
    if r.pos != len(r.data):
        r.fail("trailing bytes")
    # Block literals nest, so every Code but the program has exactly one parent.
    parents = [0] * n_codes
    for code in raw_codes:
        for c in code.consts:
            if type(c) is _PendingBlock:
                parents[c.index] += 1
    for index in range(1, n_codes):
        if parents[index] != 1:
            raise DecodeError("code %d is named by %d block constants (must be exactly 1)"
                              % (index, parents[index]))
    blocks = [Block(c) for c in raw_codes]
    for code in raw_codes:
        code.consts = [blocks[c.index] if type(c) is _PendingBlock else c for c in code.consts]
    return raw_codes[0]


class _PendingBlock:
    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index
