// Peer of benches/programs/dict_workload.soma: 2,000 keys put in a scrambled
// order, all looked up, the even ones removed, membership checked, then size
// and the sum of the remaining values validated.
//
// The dict is the SOMA stdlib's (python/soma/stdlib.soma, dict.*): a
// persistent left-leaning red-black tree, not a hash map. A tree is None
// (empty) or a reference-counted node never modified once built; put and
// remove copy the nodes on one root-to-leaf path and share the rest. Every
// function below is the stdlib word of the same name (dict.#fix = fix,
// dict.#mrl = move_red_left, ...) with the same steps: the classic
// left-leaning insert and the top-down delete. The SOMA Store cells (N, d,
// i, k, sum, found) live in `Store`, reached through `black_box` every round.
mod harness;

use std::hint::black_box;
use std::rc::Rc;

type Tree = Option<Rc<Node>>;

struct Node {
    key: i64,
    value: i64,
    red: bool,
    left: Tree,
    right: Tree,
}

fn node(key: i64, value: i64, red: bool, left: Tree, right: Tree) -> Rc<Node> {
    Rc::new(Node { key, value, red, left, right })
}

/// dict.#red: None counts as black.
fn is_red(h: &Tree) -> bool {
    h.as_ref().is_some_and(|n| n.red)
}

/// dict.#lred: is h's left child red? (None-safe)
fn left_is_red(h: &Tree) -> bool {
    h.as_ref().is_some_and(|n| is_red(&n.left))
}

fn paint(h: &Node, red: bool) -> Rc<Node> {
    node(h.key, h.value, red, h.left.clone(), h.right.clone())
}

fn with_left(h: &Node, left: Tree) -> Rc<Node> {
    node(h.key, h.value, h.red, left, h.right.clone())
}

fn with_right(h: &Node, right: Tree) -> Rc<Node> {
    node(h.key, h.value, h.red, h.left.clone(), right)
}

fn child(t: &Tree) -> &Node {
    t.as_deref().expect("the red-black invariants guarantee a node here")
}

/// dict.#rotl: lift the red right child x above h; x takes h's colour.
fn rotate_left(h: &Node) -> Rc<Node> {
    let x = child(&h.right);
    let down = node(h.key, h.value, true, h.left.clone(), x.left.clone());
    node(x.key, x.value, h.red, Some(down), x.right.clone())
}

fn rotate_right(h: &Node) -> Rc<Node> {
    let x = child(&h.left);
    let down = node(h.key, h.value, true, x.right.clone(), h.right.clone());
    node(x.key, x.value, h.red, x.left.clone(), Some(down))
}

/// dict.#flip: invert the colours of h and of both children (both nodes).
fn flip(h: &Node) -> Rc<Node> {
    let (left, right) = (child(&h.left), child(&h.right));
    node(h.key, h.value, !h.red, Some(paint(left, !left.red)), Some(paint(right, !right.red)))
}

/// dict.#fix: restore the left-leaning shape on the way up.
fn fix(mut h: Rc<Node>) -> Rc<Node> {
    if is_red(&h.right) && !is_red(&h.left) {
        h = rotate_left(&h);
    }
    if is_red(&h.left) && left_is_red(&h.left) {
        h = rotate_right(&h);
    }
    if is_red(&h.left) && is_red(&h.right) {
        h = flip(&h);
    }
    h
}

/// dict.#find: the node holding key, or None.
fn find(key: i64, mut h: &Tree) -> Option<&Node> {
    while let Some(n) = h {
        if key < n.key {
            h = &n.left;
        } else if n.key < key {
            h = &n.right;
        } else {
            return Some(n);
        }
    }
    None
}

fn has(key: i64, d: &Tree) -> bool {
    find(key, d).is_some()
}

fn get(key: i64, d: &Tree) -> i64 {
    find(key, d).expect("dict.get: key not found").value
}

/// dict.#ins
fn insert(key: i64, value: i64, h: &Tree) -> Rc<Node> {
    let Some(n) = h else {
        return node(key, value, true, None, None);
    };
    let copied = if key < n.key {
        with_left(n, Some(insert(key, value, &n.left)))
    } else if n.key < key {
        with_right(n, Some(insert(key, value, &n.right)))
    } else {
        node(key, value, n.red, n.left.clone(), n.right.clone())
    };
    fix(copied)
}

fn put(key: i64, value: i64, d: &Tree) -> Tree {
    Some(paint(&insert(key, value, d), false))
}

fn move_red_left(h: &Node) -> Rc<Node> {
    let mut h = flip(h);
    if left_is_red(&h.right) {
        let right = rotate_right(child(&h.right));
        h = flip(&rotate_left(&with_right(&h, Some(right))));
    }
    h
}

fn move_red_right(h: &Node) -> Rc<Node> {
    let mut h = flip(h);
    if left_is_red(&h.left) {
        h = flip(&rotate_right(&h));
    }
    h
}

fn delete_min(h: &Rc<Node>) -> Tree {
    if h.left.is_none() {
        return None;
    }
    let mut h = h.clone();
    if !is_red(&h.left) && !left_is_red(&h.left) {
        h = move_red_left(&h);
    }
    let left = delete_min(h.left.as_ref().expect("a left child"));
    Some(fix(with_left(&h, left)))
}

/// dict.#del: key is present below h; h or its left child is red.
fn delete(key: i64, h: &Rc<Node>) -> Tree {
    let mut h = h.clone();
    if key < h.key {
        if !is_red(&h.left) && !left_is_red(&h.left) {
            h = move_red_left(&h);
        }
        let left = delete(key, h.left.as_ref().expect("key is present on the left"));
        return Some(fix(with_left(&h, left)));
    }
    if is_red(&h.left) {
        h = rotate_right(&h);
    }
    let differ = key < h.key || h.key < key;
    if !differ && h.right.is_none() {
        return None;
    }
    if !is_red(&h.right) && !left_is_red(&h.right) {
        h = move_red_right(&h);
    }
    let right = h.right.as_ref().expect("a right child");
    let copied = if key < h.key || h.key < key {
        with_right(&h, delete(key, right))
    } else {
        let mut least: &Node = right;
        while let Some(smaller) = least.left.as_deref() {
            least = smaller;
        }
        node(least.key, least.value, h.red, h.left.clone(), delete_min(right))
    };
    Some(fix(copied))
}

/// dict.remove: a dict that lacks key comes back as it is.
fn remove(key: i64, d: &Tree) -> Tree {
    if !has(key, d) {
        return d.clone();
    }
    let mut root = d.clone().expect("a dict holding key is not empty");
    if !is_red(&root.left) && !is_red(&root.right) {
        root = paint(&root, true);
    }
    delete(key, &root).map(|r| paint(&r, false))
}

/// dict.#walk: folder(key, value, acc) over every entry, ascending (or
/// descending when down is true); recursion as deep as the tree.
fn walk<A>(folder: &dyn Fn(i64, i64, A) -> A, acc: A, h: &Tree, down: bool) -> A {
    let Some(n) = h else {
        return acc;
    };
    let (near, far) = if down { (&n.right, &n.left) } else { (&n.left, &n.right) };
    let acc = walk(folder, acc, near, down);
    let acc = folder(n.key, n.value, acc);
    walk(folder, acc, far, down)
}

fn size(d: &Tree) -> i64 {
    walk(&|_, _, n| n + 1, 0, d, false)
}

/// A cons list of values, as list.cons builds them.
type List = Option<Rc<ListNode>>;

struct ListNode {
    value: i64,
    next: List,
}

/// The values, in ascending key order.
fn values(d: &Tree) -> List {
    walk(&|_, value, next| Some(Rc::new(ListNode { value, next })), None, d, true)
}

fn fold(folder: &dyn Fn(i64, i64) -> i64, mut acc: i64, mut list: &List) -> i64 {
    while let Some(node) = list {
        acc = folder(acc, node.value);
        list = &node.next;
    }
    acc
}

struct Store {
    n: i64,
    d: Tree,
    i: i64,
    k: i64,
    sum: i64,
    found: i64,
}

fn run() -> String {
    let mut store = Store { n: 2000, d: None, i: 0, k: 0, sum: 0, found: 0 };
    loop {
        let s = black_box(&mut store);
        s.k = s.i * 7919 % s.n;
        s.d = put(s.k, s.k * 2, &s.d);
        s.i += 1;
        if !(s.i < s.n) {
            break;
        }
    }
    store.i = 0;
    loop {
        let s = black_box(&mut store);
        s.sum = get(s.i, &s.d) + s.sum;
        s.i += 1;
        if !(s.i < s.n) {
            break;
        }
    }
    assert!(store.sum == 3_998_000, "dict lookups gave the wrong sum");
    store.i = 0;
    loop {
        let s = black_box(&mut store);
        s.d = remove(s.i, &s.d);
        s.i += 2;
        if !(s.i < s.n) {
            break;
        }
    }
    store.i = 0;
    loop {
        let s = black_box(&mut store);
        if has(s.i, &s.d) {
            s.found += 1;
        }
        s.i += 1;
        if !(s.i < s.n) {
            break;
        }
    }
    assert!(store.found == 1000, "dict has-check found the wrong keys");
    assert!(size(&store.d) == 1000, "dict has the wrong size");
    let total = fold(&|acc, x| acc + x, 0, &values(&store.d));
    assert!(total == 2_000_000, "dict values have the wrong sum");
    "dict ok".to_string()
}

fn main() {
    harness::main(run)
}
