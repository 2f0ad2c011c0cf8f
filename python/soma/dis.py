"""`soma dis`: a readable listing of Code objects."""

from . import opcodes as op
from .code import all_codes
from .values import Block


def _describe_operand(code, opcode, operand):
    if op.OPCODES[opcode].operand == "const":
        value = code.consts[operand]
        if type(value) is Block:
            return "<%s>" % value.code.name
        return repr(value)
    root, comps = code.paths[operand]
    if root == op.REGISTER_ROOT:
        return ".".join(("_",) + comps)
    return ".".join(comps)


def disassemble(program):
    """Return the listing of `program` and every nested Code, as text."""
    lines = []
    for code in all_codes(program):
        lines.append("code %s (%d consts, %d paths)"
                     % (code.name, len(code.consts), len(code.paths)))
        for (opcode, operand), (line, col) in zip(code.instrs, code.positions):
            where = "%d:%d" % (line, col)
            lines.append("  %-8s %-13s %3d  ; %s" % (where, op.NAMES[opcode], operand,
                                                      _describe_operand(code, opcode, operand)))
        lines.append("")
    return "\n".join(lines)
