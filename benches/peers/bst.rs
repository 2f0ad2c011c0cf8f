// Peer of benches/programs/bst.soma: a persistent (path-copying) unbalanced
// binary search tree. The keys 0..7999 go in, in the order of the
// full-period sequence x' = (3821x + 7919) mod 8000 from x = 4321, each with
// the value 3*key; the tree after the first 4,000 inserts must still hold
// 4,000 entries at the end; then 16,000 lookups (i*7919 mod 16000) find
// 8,000 keys whose values sum to 95988000.
//
// A tree is None or a reference-counted node never modified once built;
// insert copies the nodes on its path and shares the rest. insert, get and
// size recurse, as the SOMA blocks do. The SOMA Store cells (tree, half, x,
// i, limit, found, sum, v) live in `Store`, reached through `black_box` every
// round.
mod harness;

use std::hint::black_box;
use std::rc::Rc;

type Tree = Option<Rc<Node>>;

struct Node {
    key: i64,
    value: i64,
    left: Tree,
    right: Tree,
}

fn node(key: i64, value: i64, left: Tree, right: Tree) -> Tree {
    Some(Rc::new(Node { key, value, left, right }))
}

fn insert(key: i64, value: i64, t: &Tree) -> Tree {
    let Some(n) = t else {
        return node(key, value, None, None);
    };
    if key < n.key {
        return node(n.key, n.value, insert(key, value, &n.left), n.right.clone());
    }
    if n.key < key {
        return node(n.key, n.value, n.left.clone(), insert(key, value, &n.right));
    }
    node(key, value, n.left.clone(), n.right.clone())
}

/// The value of key, or None when it is absent.
fn get(key: i64, t: &Tree) -> Option<i64> {
    let n = t.as_ref()?;
    if key < n.key {
        return get(key, &n.left);
    }
    if n.key < key {
        return get(key, &n.right);
    }
    Some(n.value)
}

fn size(t: &Tree) -> i64 {
    match t {
        None => 0,
        Some(n) => size(&n.left) + size(&n.right) + 1,
    }
}

struct Store {
    tree: Tree,
    half: Tree,
    x: i64,
    i: i64,
    limit: i64,
    found: i64,
    sum: i64,
    v: Option<i64>,
}

/// The SOMA program's insert.round loop.
fn insert_until_limit(store: &mut Store) {
    loop {
        let s = black_box(&mut *store);
        s.tree = insert(s.x, s.x * 3, &s.tree);
        s.x = (s.x * 3821 + 7919) % 8000;
        s.i += 1;
        if !(s.i < s.limit) {
            break;
        }
    }
}

fn run() -> String {
    let mut store =
        Store { tree: None, half: None, x: 4321, i: 0, limit: 4000, found: 0, sum: 0, v: None };
    insert_until_limit(&mut store);
    store.half = store.tree.clone();
    store.limit = 8000;
    insert_until_limit(&mut store);
    store.i = 0;
    loop {
        let s = black_box(&mut store);
        s.v = get(s.i * 7919 % 16000, &s.tree);
        if let Some(v) = s.v {
            s.found += 1;
            s.sum = v + s.sum;
        }
        s.i += 1;
        if !(s.i < 16000) {
            break;
        }
    }
    assert!(store.found == 8000, "bst lookups found the wrong keys");
    assert!(store.sum == 95_988_000, "bst lookups gave the wrong sum");
    assert!(size(&store.tree) == 8000, "bst has the wrong size");
    assert!(size(&store.half) == 4000, "bst: an older tree changed");
    "bst ok".to_string()
}

fn main() {
    harness::main(run)
}
