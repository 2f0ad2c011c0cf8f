"""The opcode table, loaded from `opcodes.tsv` (the single definition shared with Rust).

After import, each opcode is a module constant (`CONST`, `LOAD_STORE`, ...), and
`OPCODES` lists `Opcode` records in numeric order.
"""

import os
from collections import namedtuple

from . import bytecode_format as _format

Opcode = namedtuple("Opcode", "number name operand doc")

TABLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "opcodes.tsv")
OPERAND_KINDS = ("const", "path")


def load_table(path=TABLE_PATH):
    table = []
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            number, name, operand, doc = line.split("\t")
            op = Opcode(int(number), name, operand, doc)
            if op.number != len(table):
                raise ValueError("opcodes.tsv: opcode %s is not numbered %d" % (name, len(table)))
            if op.operand not in OPERAND_KINDS:
                raise ValueError("opcodes.tsv: bad operand kind for %s" % name)
            table.append(op)
    return tuple(table)


OPCODES = load_table()
NAMES = tuple(op.name for op in OPCODES)
globals().update({op.name: op.number for op in OPCODES})

# The opcodes the compiler pairs with each statement form, by path root (the root bytes of
# the serialized form, format.tsv).
STORE_ROOT, REGISTER_ROOT = _format.ROOT_STORE, _format.ROOT_REGISTER
LOAD = {STORE_ROOT: LOAD_STORE, REGISTER_ROOT: LOAD_REG}          # noqa: F821
REF = {STORE_ROOT: REF_STORE, REGISTER_ROOT: REF_REG}             # noqa: F821
SET = {STORE_ROOT: SET_STORE, REGISTER_ROOT: SET_REG}             # noqa: F821
SETREF = {STORE_ROOT: SETREF_STORE, REGISTER_ROOT: SETREF_REG}    # noqa: F821
EXEC = {STORE_ROOT: EXEC_STORE, REGISTER_ROOT: EXEC_REG}          # noqa: F821
PATH_OPS = frozenset(op.number for op in OPCODES if op.operand == "path")
REGISTER_OPS = frozenset(op.number for op in OPCODES if op.name.endswith("_REG"))
