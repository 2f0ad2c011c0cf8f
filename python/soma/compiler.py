"""The SOMA compiler: syntax tree to Code objects.

One instruction per statement. Paths are split and interned per Code; literals
(including block literals, as Blocks) go to the constant table. Compilation is
iterative so that deeply nested blocks compile without recursion.
"""

from . import opcodes as op
from .ast import BlockLit, Exec, IntLit, Path, Store, StrLit
from .code import Code
from .errors import SomaError
from .parser import parse
from .values import Block


class _CodeBuilder:
    def __init__(self, name, source):
        self.code = Code(name, source)
        self._const_index = {}
        self._path_index = {}

    def const(self, value):
        # Ints and Strs are interned by (type, value); a Block only equals itself.
        key = (type(value), value) if type(value) is not Block else (Block, id(value))
        index = self._const_index.get(key)
        if index is None:
            index = self._const_index[key] = len(self.code.consts)
            self.code.consts.append(value)
        return index

    def path(self, node):
        comps = node.components
        if comps[0] == "_":
            key = (op.REGISTER_ROOT, comps[1:])
        else:
            key = (op.STORE_ROOT, comps)
        index = self._path_index.get(key)
        if index is None:
            index = self._path_index[key] = len(self.code.paths)
            self.code.paths.append(key)
        return key[0], index

    def emit(self, opcode, operand, node):
        self.code.instrs.append((opcode, operand))
        self.code.positions.append((node.line, node.col))


def compile_program(program, source=""):
    """Compile a Program node; return the top-level Code."""
    top = _CodeBuilder("<program>", source)
    # Work list of (builder, statements) still to compile. A block literal's
    # Code is created (and its Block constant placed) when its parent reaches
    # it, and its body is compiled afterwards.
    work = [(top, program.body)]
    while work:
        builder, body = work.pop()
        for node in body:
            t = type(node)
            if t is IntLit or t is StrLit:
                builder.emit(op.CONST, builder.const(node.value), node)
            elif t is BlockLit:
                builder.emit(op.CONST, builder.const(_new_block(node, source, work)), node)
            elif t is Path:
                root, index = builder.path(node)
                builder.emit((op.REF if node.is_ref else op.LOAD)[root], index, node)
            elif t is Store:
                root, index = builder.path(node.target)
                builder.emit((op.SETREF if node.target.is_ref else op.SET)[root], index, node)
            elif t is Exec:
                target = node.target
                if type(target) is BlockLit:
                    builder.emit(op.EXEC_CONST,
                                 builder.const(_new_block(target, source, work)), node)
                else:
                    root, index = builder.path(target)
                    builder.emit(op.EXEC[root], index, node)
            else:
                raise TypeError("cannot compile %r" % (node,))
    return top.code


def _new_block(node, source, work):
    builder = _CodeBuilder("block@%d:%d" % (node.line, node.col), source)
    work.append((builder, node.body))
    return Block(builder.code)


def compile_source(text, source=""):
    """Lex, parse and compile; return the top-level Code. Errors name `source`."""
    try:
        program = parse(text)
    except SomaError as err:
        if err.source is None:
            err.source = source or None
        raise
    return compile_program(program, source)
