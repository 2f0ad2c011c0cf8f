"""Path operations on the pure-Python cell graph.

A path is walked from a *holder*: the children dict of the Store's root cell,
or a Register's holder dict whose only key is `_` (the Register root). The
interpreter passes paths pre-split as `(init, last)`: the components before
the last one, and the last one.

Walking rules (shared by reads, reference reads and value writes): an
intermediate cell whose value is a CellRef is replaced by the referenced cell
(one hop). Deletes walk the raw structure: no hop, nothing created.
"""

from .values import Cell, CellRef, VOID


def find(children, init, last):
    """The cell at the path, or None if any part of it was never created."""
    for name in init:
        cell = children.get(name)
        if cell is None:
            return None
        value = cell.value
        if type(value) is CellRef:
            cell = value.cell
        children = cell.children
    return children.get(last)


def vivify(children, init, last):
    """The cell at the path, creating it and any missing parents (value Void)."""
    for name in init:
        cell = children.get(name)
        if cell is None:
            cell = children[name] = Cell(VOID)
        value = cell.value
        if type(value) is CellRef:
            cell = value.cell
        children = cell.children
    cell = children.get(last)
    if cell is None:
        cell = children[last] = Cell(VOID)
    return cell


def write_value(cell, value):
    """`!path`: a cell holding a CellRef passes a non-CellRef write through to its target."""
    current = cell.value
    if type(current) is CellRef and type(value) is not CellRef:
        current.cell.value = value
    else:
        cell.value = value


def replace(cell, value):
    """`!path.` with a non-Void value: new value, no children."""
    cell.value = value
    cell.children.clear()


def delete(children, init, last):
    """`!path.` with Void: remove the cell and its subtree, if the raw path exists."""
    for name in init:
        cell = children.get(name)
        if cell is None:
            return
        children = cell.children
    children.pop(last, None)


def register_root(holder):
    """The Register root `_` as paths see it (following a CellRef it holds), or None."""
    root = holder.get("_")
    if root is not None and type(root.value) is CellRef:
        return root.value.cell
    return root


def vivify_register_root(holder):
    root = holder.get("_")
    if root is None:
        root = holder["_"] = Cell(VOID)
    if type(root.value) is CellRef:
        return root.value.cell
    return root


class StoreRoot(Cell):
    """The Store's root cell, with the path methods Python code uses on `vm.store`.

    `components` is a list of names (`["a", "b"]` for `a.b`). Reads and writes follow
    the walking rules of SOMA code; reading a path never created raises
    `soma.RuntimeError`, as `a.b` would.
    """

    __slots__ = ()

    def read_value(self, components):
        comps = components_of(components)
        cell = find(self.children, comps[:-1], comps[-1])
        if cell is None:
            from .messages import undefined_store
            raise undefined_store(".".join(comps))
        return cell.value

    def write_value(self, components, value):
        comps = components_of(components)
        write_value(vivify(self.children, comps[:-1], comps[-1]), value)


def components_of(components):
    """A path given as a list of names, checked."""
    comps = list(components)
    if not comps or not all(type(c) is str and c and "." not in c for c in comps):
        raise ValueError("a path is a non-empty list of names (no dots), got %r"
                         % (components,))
    return comps
