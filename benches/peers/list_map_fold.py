"""Peer of benches/programs/list_map_fold.soma: build 0..N-1 with cons, double
every element with map, sum with fold: N(N-1) for N = 20,000.

Lists are linked cons cells as in the SOMA stdlib: None (empty) or an
immutable pair (value, next), so lists share tails. map and fold are the
stdlib's algorithms: map reverses the list, then conses transform(x) for
each element of the reversed list (from the last element back to the first,
so the result keeps the order); fold is a left fold from the head. The SOMA
Store cells (N, xs, i, doubled, total) are module globals."""

from harness import main


def cons(value, rest):
    return (value, rest)


def reverse(lst):
    acc = None
    while lst is not None:
        value, lst = lst
        acc = (value, acc)
    return acc


def list_map(lst, transform):
    todo = reverse(lst)
    acc = None
    while todo is not None:
        value, todo = todo
        acc = (transform(value), acc)
    return acc


def fold(folder, acc, lst):
    while lst is not None:
        value, lst = lst
        acc = folder(acc, value)
    return acc


N = 0
xs = doubled = None
i = total = 0


def run():
    global N, xs, i, doubled, total
    N = 20000
    xs = None
    i = 0
    while True:
        xs = cons(i, xs)
        i = i + 1
        if not i < N:
            break
    doubled = list_map(xs, lambda x: x * 2)
    total = fold(lambda acc, x: acc + x, 0, doubled)
    if total != 399980000:
        raise SystemExit("list map/fold gave the wrong sum")
    return "lists ok"


if __name__ == "__main__":
    main(run)
