"""Peer of benches/programs/dict_workload.soma: 2,000 keys put in a scrambled
order, all looked up, the even ones removed, membership checked, then size and
the sum of the remaining values validated.

The dict is the SOMA stdlib's (python/soma/stdlib.soma, `dict.*`): a
persistent left-leaning red-black tree, not Python's hash map. A tree is None
(empty) or an immutable tuple (key, value, red, left, right); put and remove
copy the nodes on one root-to-leaf path and share the rest. Every function
below is the stdlib word of the same name (dict.#fix = fix, dict.#mrl =
move_red_left, ...) with the same steps: the classic left-leaning insert, and
the top-down delete. The SOMA Store cells (N, d, i, k, sum, found) are module
globals."""

from harness import main

KEY, VALUE, RED, LEFT, RIGHT = 0, 1, 2, 3, 4


def is_red(h):
    """dict.#red: Nil counts as black."""
    return h is not None and h[RED]


def left_is_red(h):
    """dict.#lred: is h's left child red? (None-safe)"""
    return h is not None and is_red(h[LEFT])


def paint(h, red):
    key, value, _, left, right = h
    return (key, value, red, left, right)


def with_left(h, left):
    key, value, red, _, right = h
    return (key, value, red, left, right)


def with_right(h, right):
    key, value, red, left, _ = h
    return (key, value, red, left, right)


def rotate_left(h):
    """dict.#rotl: lift the red right child x above h; x takes h's colour."""
    key, value, red, left, x = h
    down = (key, value, True, left, x[LEFT])
    return (x[KEY], x[VALUE], red, down, x[RIGHT])


def rotate_right(h):
    key, value, red, x, right = h
    down = (key, value, True, x[RIGHT], right)
    return (x[KEY], x[VALUE], red, x[LEFT], down)


def flip(h):
    """dict.#flip: invert the colours of h and of both children (both nodes)."""
    key, value, red, left, right = h
    return (key, value, not red, paint(left, not left[RED]), paint(right, not right[RED]))


def fix(h):
    """dict.#fix: restore the left-leaning shape on the way up."""
    if is_red(h[RIGHT]) and not is_red(h[LEFT]):
        h = rotate_left(h)
    if is_red(h[LEFT]) and left_is_red(h[LEFT]):
        h = rotate_right(h)
    if is_red(h[LEFT]) and is_red(h[RIGHT]):
        h = flip(h)
    return h


def find(key, h):
    """dict.#find: the node holding key, or None."""
    while h is not None:
        if key < h[KEY]:
            h = h[LEFT]
        elif h[KEY] < key:
            h = h[RIGHT]
        else:
            return h
    return None


def has(key, d):
    return find(key, d) is not None


def get(key, d):
    hit = find(key, d)
    if hit is None:
        raise KeyError("dict.get: key not found")
    return hit[VALUE]


def insert(key, value, h):
    """dict.#ins"""
    if h is None:
        return (key, value, True, None, None)
    if key < h[KEY]:
        h = with_left(h, insert(key, value, h[LEFT]))
    elif h[KEY] < key:
        h = with_right(h, insert(key, value, h[RIGHT]))
    else:
        h = (key, value, h[RED], h[LEFT], h[RIGHT])
    return fix(h)


def put(key, value, d):
    return paint(insert(key, value, d), False)


def remove(key, d):
    """dict.remove: a dict that lacks key comes back as it is."""
    if not has(key, d):
        return d
    if not is_red(d[LEFT]) and not is_red(d[RIGHT]):
        d = paint(d, True)
    d = delete(key, d)
    return None if d is None else paint(d, False)


def delete(key, h):
    """dict.#del: key is present below h; h or its left child is red."""
    if key < h[KEY]:
        if not is_red(h[LEFT]) and not left_is_red(h[LEFT]):
            h = move_red_left(h)
        return fix(with_left(h, delete(key, h[LEFT])))
    if is_red(h[LEFT]):
        h = rotate_right(h)
    differ = key < h[KEY] or h[KEY] < key
    if not differ and h[RIGHT] is None:
        return None
    if not is_red(h[RIGHT]) and not left_is_red(h[RIGHT]):
        h = move_red_right(h)
    if key < h[KEY] or h[KEY] < key:
        h = with_right(h, delete(key, h[RIGHT]))
    else:
        least = h[RIGHT]
        while least[LEFT] is not None:
            least = least[LEFT]
        h = (least[KEY], least[VALUE], h[RED], h[LEFT], delete_min(h[RIGHT]))
    return fix(h)


def delete_min(h):
    if h[LEFT] is None:
        return None
    if not is_red(h[LEFT]) and not left_is_red(h[LEFT]):
        h = move_red_left(h)
    return fix(with_left(h, delete_min(h[LEFT])))


def move_red_left(h):
    h = flip(h)
    if left_is_red(h[RIGHT]):
        h = flip(rotate_left(with_right(h, rotate_right(h[RIGHT]))))
    return h


def move_red_right(h):
    h = flip(h)
    if left_is_red(h[LEFT]):
        h = flip(rotate_right(h))
    return h


def walk(folder, acc, h, down):
    """dict.#walk: folder(key, value, acc) over every entry, ascending (or
    descending when down is true); recursion as deep as the tree."""
    if h is None:
        return acc
    near, far = (h[RIGHT], h[LEFT]) if down else (h[LEFT], h[RIGHT])
    acc = walk(folder, acc, near, down)
    acc = folder(h[KEY], h[VALUE], acc)
    return walk(folder, acc, far, down)


def size(d):
    return walk(lambda key, value, n: n + 1, 0, d, False)


def values(d):
    """The values as a cons list (value, next), in ascending key order."""
    return walk(lambda key, value, lst: (value, lst), None, d, True)


def fold(folder, acc, lst):
    while lst is not None:
        value, lst = lst
        acc = folder(acc, value)
    return acc


N = i = k = total = found = 0
d = None


def run():
    global N, d, i, k, total, found
    N = 2000
    d = None
    i = 0
    while True:
        k = i * 7919 % N
        d = put(k, k * 2, d)
        i = i + 1
        if not i < N:
            break
    i = 0
    total = 0
    while True:
        total = get(i, d) + total
        i = i + 1
        if not i < N:
            break
    if total != 3998000:
        raise SystemExit("dict lookups gave the wrong sum")
    i = 0
    while True:
        d = remove(i, d)
        i = i + 2
        if not i < N:
            break
    i = 0
    found = 0
    while True:
        if has(i, d):
            found = found + 1
        i = i + 1
        if not i < N:
            break
    if found != 1000:
        raise SystemExit("dict has-check found the wrong keys")
    if size(d) != 1000:
        raise SystemExit("dict has the wrong size")
    if fold(lambda acc, x: acc + x, 0, values(d)) != 2000000:
        raise SystemExit("dict values have the wrong sum")
    return "dict ok"


if __name__ == "__main__":
    main(run)
