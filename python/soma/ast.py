"""SOMA syntax tree. Every node records the line and column where its statement starts."""


class Node:
    __slots__ = ("line", "col")

    def _fields(self):
        return tuple(getattr(self, f) for f in self.__slots__)

    def __eq__(self, other):
        # Structural equality, positions excluded: handy for parser tests.
        return type(self) is type(other) and self._fields() == other._fields()

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(repr(f) for f in self._fields()))


class IntLit(Node):
    __slots__ = ("value",)

    def __init__(self, value, line=0, col=0):
        self.value, self.line, self.col = value, line, col


class StrLit(Node):
    __slots__ = ("value",)

    def __init__(self, value, line=0, col=0):
        self.value, self.line, self.col = value, line, col


class BlockLit(Node):
    """`{ ... }`: a list of statements, parsed eagerly."""
    __slots__ = ("body",)

    def __init__(self, body, line=0, col=0):
        self.body, self.line, self.col = body, line, col


class Path(Node):
    """`a.b.c` (a value path) or `a.b.c.` (a reference path, `is_ref`).

    `components` is the full split path; a path whose first component is `_`
    addresses the Register.
    """
    __slots__ = ("components", "is_ref")

    def __init__(self, components, is_ref=False, line=0, col=0):
        self.components, self.is_ref, self.line, self.col = tuple(components), is_ref, line, col

    @property
    def in_register(self):
        return self.components[0] == "_"

    def text(self):
        return ".".join(self.components) + ("." if self.is_ref else "")


class Exec(Node):
    """`>path` or `>{...}`; the target is a value Path or a BlockLit."""
    __slots__ = ("target",)

    def __init__(self, target, line=0, col=0):
        self.target, self.line, self.col = target, line, col


class Store(Node):
    """`!path` (value write) or `!path.` (replace or delete); the target is a Path."""
    __slots__ = ("target",)

    def __init__(self, target, line=0, col=0):
        self.target, self.line, self.col = target, line, col


class Program(Node):
    __slots__ = ("body",)

    def __init__(self, body, line=1, col=1):
        self.body, self.line, self.col = body, line, col
