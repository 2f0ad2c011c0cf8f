"""Peer of benches/programs/bst.soma: a persistent (path-copying) unbalanced
binary search tree. The keys 0..7999 go in, in the order of the full-period
sequence x' = (3821x + 7919) mod 8000 from x = 4321, each with the value
3*key; the tree after the first 4,000 inserts must still hold 4,000 entries
at the end; then 16,000 lookups (i*7919 mod 16000) find 8,000 keys whose
values sum to 95988000.

A tree is None or an immutable tuple (key, value, left, right); insert copies
the nodes on its path and shares the rest. insert, get and size recurse, as
the SOMA blocks do. The SOMA Store cells (tree, half, x, i, limit, found,
sum, v) are module globals."""

from harness import main

KEY, VALUE, LEFT, RIGHT = 0, 1, 2, 3


def insert(key, value, t):
    if t is None:
        return (key, value, None, None)
    if key < t[KEY]:
        return (t[KEY], t[VALUE], insert(key, value, t[LEFT]), t[RIGHT])
    if t[KEY] < key:
        return (t[KEY], t[VALUE], t[LEFT], insert(key, value, t[RIGHT]))
    return (key, value, t[LEFT], t[RIGHT])


def get(key, t):
    """The value of key, or None when it is absent."""
    if t is None:
        return None
    if key < t[KEY]:
        return get(key, t[LEFT])
    if t[KEY] < key:
        return get(key, t[RIGHT])
    return t[VALUE]


def size(t):
    if t is None:
        return 0
    return size(t[LEFT]) + size(t[RIGHT]) + 1


tree = half = v = None
x = i = limit = found = total = 0


def insert_until_limit():
    """The SOMA program's insert.round loop."""
    global tree, x, i
    while True:
        tree = insert(x, x * 3, tree)
        x = (x * 3821 + 7919) % 8000
        i = i + 1
        if not i < limit:
            break


def run():
    global tree, half, x, i, limit, found, total, v
    tree = None
    x = 4321
    i = 0
    limit = 4000
    insert_until_limit()
    half = tree
    limit = 8000
    insert_until_limit()
    i = 0
    found = 0
    total = 0
    while True:
        v = get(i * 7919 % 16000, tree)
        if v is not None:
            found = found + 1
            total = v + total
        i = i + 1
        if not i < 16000:
            break
    if found != 8000:
        raise SystemExit("bst lookups found the wrong keys")
    if total != 95988000:
        raise SystemExit("bst lookups gave the wrong sum")
    if size(tree) != 8000:
        raise SystemExit("bst has the wrong size")
    if size(half) != 4000:
        raise SystemExit("bst: an older tree changed")
    return "bst ok"


if __name__ == "__main__":
    main(run)
