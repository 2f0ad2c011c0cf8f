"""Python-level checks of stdlib words: large dict workloads against a Python model,
and long lists, where .soma tests would be unwieldy."""

import random

import pytest

import soma
from soma import FALSE, NIL, TRUE, VOID


# ---------------------------------------------------------------- dict helpers

class SomaDict:
    """Drive a SOMA dict held in the Store at `d` from Python."""

    def __init__(self, vm):
        self.vm = vm
        vm.execute_code("Nil !d")
        # `!d.` (replace), not `!d`: d holds a CellRef, and storing the Nil of an
        # emptied dict with `!d` would write through into the old root node.
        self._put = vm.compile("d >dict.put !d.")
        self._remove = vm.compile("d >dict.remove !d.")
        self._get = vm.compile("d >dict.get")
        self._has = vm.compile("d >dict.has")
        self._size = vm.compile("d >dict.size")

    def _run(self, code, *args):
        al = self.vm.al
        al.clear()
        al.extend(args)
        self.vm.run_program(code)
        return list(al)

    def put(self, k, v):
        assert self._run(self._put, k, v) == []

    def remove(self, k):
        assert self._run(self._remove, k) == []

    def get(self, k):
        (value,) = self._run(self._get, k)
        return value

    def has(self, k):
        (flag,) = self._run(self._has, k)
        return flag

    def size(self):
        (n,) = self._run(self._size)
        return n

    def keys(self):
        return self._run(self.vm.compile("d >dict.keys >list.to_al"))

    def values(self):
        return self._run(self.vm.compile("d >dict.values >list.to_al"))

    def root(self):
        return self.vm.lookup("d")


def node_reader(vm):
    """fields(ref) -> (key, color, left, right) of a dict node, on any tier."""
    program = vm.compile("!_.n  _.n.key _.n.color _.n.left _.n.right")

    def fields(ref):
        if getattr(ref, "cell", None) is not None:      # pure-Python cells: read directly
            kids = ref.cell.children
            return tuple(kids[k].value for k in ("key", "color", "left", "right"))
        saved = list(vm.al)
        vm.al.clear()
        vm.al.append(ref)
        vm.run_program(program)
        out = tuple(vm.al)
        vm.al.clear()
        vm.al.extend(saved)
        return out
    return fields


def check_red_black(vm, root):
    """Validate the left-leaning red-black invariants; return the number of nodes."""
    if root is NIL:
        return 0
    assert isinstance(root, soma.CellRef)
    fields = node_reader(vm)
    assert fields(root)[1] is FALSE, "root must be black"
    count = 0
    black_heights = set()
    # iterative DFS: (node, lo, hi, parent_red, blacks_so_far)
    stack = [(root, None, None, False, 0)]
    while stack:
        node, lo, hi, parent_red, blacks = stack.pop()
        if node is NIL:
            black_heights.add(blacks)
            continue
        key, color, left, right = fields(node)
        assert color in (TRUE, FALSE)
        red = color is TRUE
        assert not (red and parent_red), "red node with a red child at %r" % (key,)
        if lo is not None:
            assert lo < key
        if hi is not None:
            assert key < hi
        if right is not NIL:
            assert fields(right)[1] is FALSE, "red right child (not left-leaning)"
        count += 1
        nb = blacks + (0 if red else 1)
        stack.append((left, lo, key, red, nb))
        stack.append((right, key, hi, red, nb))
    assert len(black_heights) == 1, "unequal black heights %r" % black_heights
    return count


def check_against_model(sd, model):
    assert sd.size() == len(model)
    assert sd.keys() == sorted(model)
    assert sd.values() == [model[k] for k in sorted(model)]
    assert check_red_black(sd.vm, sd.root()) == len(model)


# ---------------------------------------------------------------- dict workloads

def test_dict_2000_keys_put_and_remove_against_python_dict(vm_factory):
    vm = vm_factory(True)
    sd = SomaDict(vm)
    rnd = random.Random(20261121)
    model = {}
    keys = list(range(-1000, 1000))
    rnd.shuffle(keys)
    for i, k in enumerate(keys):
        sd.put(k, k * 3)
        model[k] = k * 3
        if i in (0, 2, 63, 1999):
            check_against_model(sd, model)
    # overwrite a few hundred existing keys: size must not change
    for k in rnd.sample(keys, 300):
        sd.put(k, (k, "new"))
        model[k] = (k, "new")
    check_against_model(sd, model)
    # spot-check reads
    for k in rnd.sample(keys, 200):
        assert sd.get(k) == model[k]
        assert sd.has(k) is TRUE
    for k in (1000, 5000, -1001):
        assert sd.has(k) is FALSE
    # remove 1,500 present keys and 100 absent ones, interleaved
    doomed = rnd.sample(keys, 1500) + list(range(2000, 2100))
    rnd.shuffle(doomed)
    for i, k in enumerate(doomed):
        sd.remove(k)
        model.pop(k, None)
        if i % 800 == 0:
            check_against_model(sd, model)
    check_against_model(sd, model)
    for k in keys:
        assert (sd.has(k) is TRUE) == (k in model)
    # drain completely
    for k in list(model):
        sd.remove(k)
        del model[k]
    assert sd.root() is NIL
    assert sd.size() == 0 and sd.keys() == []


def test_dict_string_keys(vm_factory):
    vm = vm_factory(True)
    sd = SomaDict(vm)
    rnd = random.Random(7)
    words = sorted({"".join(rnd.choice("abcxyz") for _ in range(rnd.randint(0, 6)))
                    for _ in range(400)})
    model = {}
    order = words[:]
    rnd.shuffle(order)
    for w in order:
        sd.put(w, len(w))
        model[w] = len(w)
    check_against_model(sd, model)
    for w in order[::2]:
        sd.remove(w)
        del model[w]
    check_against_model(sd, model)


def test_dict_is_persistent(vm_factory):
    vm = vm_factory(True)
    vm.execute_code("""
        Nil !d0
        1 (one) d0 >dict.put !d1
        2 (two) d1 >dict.put !d2
        1 d2 >dict.remove !d3
        d0 >dict.size d1 >dict.size d2 >dict.size d3 >dict.size
        1 d2 >dict.get  1 d3 >dict.has
    """)
    assert vm.al == [0, 1, 2, 1, "one", FALSE]


def test_dict_get_missing_key_errors(vm_factory):
    vm = vm_factory(True)
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("Nil 1 (a) >rot >dict.put !d  2 d >dict.get")
    assert info.value.message == "ASSERT FAILED: dict.get: key not found"


def test_dict_get_or_and_fold(vm_factory):
    vm = vm_factory(True)
    vm.execute_code("""
        Nil !d
        { !_.i  _.i _.i _.i >* d >dict.put !d } !add
        1 >add 2 >add 3 >add 10 >add
        5 (dflt) d >dict.get_or  10 (dflt) d >dict.get_or
        { !_.acc !_.v !_.k  _.acc _.v >+ } 0 d >dict.fold
    """)
    assert vm.al == ["dflt", 100, 114]


def test_dict_mixed_key_types_is_a_type_error(vm_factory):
    vm = vm_factory(True)
    with pytest.raises(soma.RuntimeError) as info:
        vm.execute_code("1 (a) Nil >dict.put !d  (k) (b) d >dict.put")
    assert info.value.message.startswith("Type mismatch in <: cannot compare ")


# ---------------------------------------------------------------- long lists

N = 10_000


def test_list_from_al_to_al_round_trip_10000(vm_factory):
    vm = vm_factory(True)
    items = list(range(N))
    vm.al.append(VOID)
    vm.al.extend(items)
    vm.execute_code(">list.from_al !l  l >list.length  l >list.to_al")
    assert vm.al[0] == N
    assert vm.al[1:] == items


def test_list_round_trip_mixed_values(vm_factory):
    vm = vm_factory(True)
    items = [i if i % 3 else "s%d" % i for i in range(3000)] + [TRUE, NIL, FALSE]
    vm.al.append(VOID)
    vm.al.extend(items)
    vm.execute_code(">list.from_al >list.to_al")
    assert vm.al == items


def test_list_from_al_leaves_values_below_void(vm_factory):
    vm = vm_factory(True)
    vm.execute_code("(below) Void 1 2 3 >list.from_al >list.to_al")
    assert vm.al == ["below", 1, 2, 3]


def test_long_list_words_without_recursion_errors(vm_factory):
    vm = vm_factory(True, max_depth=200)   # long lists must not nest per element
    vm.al.append(VOID)
    vm.al.extend(range(1, N + 1))
    vm.execute_code("""
        >list.from_al !l
        l >list.reverse !r
        r >list.length
        { >+ } 0 l >list.fold
        l r >list.append >list.length
        r.value  l.value
    """)
    assert vm.al == [N, N * (N + 1) // 2, 2 * N, N, 1]


def test_long_list_map_and_filter(vm_factory):
    vm = vm_factory(True, max_depth=200)
    vm.al.append(VOID)
    vm.al.extend(range(3000))
    vm.execute_code("""
        >list.from_al !l
        l { 2 >* } >list.map >list.to_al
    """)
    assert vm.al == [2 * i for i in range(3000)]
    vm.al.clear()
    vm.execute_code("{ 3 >% 0 >== } l >list.filter >list.to_al")
    assert vm.al == [i for i in range(3000) if i % 3 == 0]


def test_al_drain_order(vm_factory):
    vm = vm_factory(True)
    # action runs as ( x acc -- acc' ) for the top item first
    vm.execute_code("Void (a) (b) (c) () { !_.acc !_.x  _.acc _.x >concat } >al.drain")
    assert vm.al == ["cba"]
    vm.al.clear()
    vm.execute_code("Void (a) (b) (c) () { >concat } >al.drain")
    assert vm.al == ["abc"]


def test_times_while_do(vm_factory):
    vm = vm_factory(True, max_depth=100)
    vm.execute_code("""
        0 !n  500 { n 1 >+ !n } >times  n
        0 !i  { i 1000 >< } { i 1 >+ !i } >while  i
        0 !j  { j 1 >+ !j } { j 700 >< } >do  j
        0 { 1 } >times
    """)
    assert vm.al == [500, 1000, 700, 1]


# ---------------------------------------------------------------- small words against Python

def test_comparison_words_against_python(vm_factory):
    vm = vm_factory(True)
    rnd = random.Random(3)
    words = [">", "==", "=!", "=<", "=>", "min", "max"]
    for _ in range(200):
        if rnd.random() < 0.5:
            a, b = rnd.randint(-5, 5), rnd.randint(-5, 5)
            la, lb = str(a), str(b)
        else:
            a, b = rnd.choice(["", "a", "b", "ab", "B"]), rnd.choice(["", "a", "b", "ab", "B"])
            la, lb = "(%s)" % a, "(%s)" % b
        vm.al.clear()
        vm.execute_code(" ".join("%s %s >%s" % (la, lb, w) for w in words))
        flags = [a > b, a == b, a != b, a <= b, a >= b]
        expected = [TRUE if f else FALSE for f in flags] + [a if a < b else b,
                                                            a if b < a else b]
        assert vm.al == expected, (a, b)


FALSY = {"True": False, "False": True, "Nil": True, "Void": True, "0": False, "()": False}


@pytest.mark.parametrize("x", sorted(FALSY))
def test_logic_words(vm_factory, x):
    vm = vm_factory(True)
    for y in ("7", "Nil"):
        vm.al.clear()
        vm.execute_code("%s >not  %s %s >and  %s %s >or" % (x, x, y, x, y))
        y_val = 7 if y == "7" else NIL
        x_true = not FALSY[x]
        assert vm.al == [FALSE if x_true else TRUE,
                         y_val if x_true else FALSE,
                         TRUE if x_true else y_val], (x, y)


@pytest.mark.parametrize("n", [-3, -1, 0, 1, 10 ** 20, -(10 ** 20)])
def test_arithmetic_words(vm_factory, n):
    vm = vm_factory(True)
    vm.execute_code("%d >abs %d >inc %d >dec" % (n, n, n))
    assert vm.al == [abs(n), n + 1, n - 1]


def test_stack_words(vm_factory):
    vm = vm_factory(True)
    vm.execute_code("1 >dup  2 3 >swap  4 5 >over  6 7 8 >rot  9 >drop")
    assert vm.al == [1, 1, 3, 2, 4, 5, 4, 7, 8, 6]
