// Peer of benches/programs/list_map_fold.soma: build 0..N-1 with cons,
// double every element with map, sum with fold: N(N-1) for N = 20,000.
//
// Lists are linked cons cells as in the SOMA stdlib: None (empty) or a
// reference-counted node {value, next} never modified once built, so lists
// share tails. map and fold are the stdlib's algorithms: map reverses the
// list, then conses transform(x) for each element of the reversed list (from
// the last element back to the first, so the result keeps the order); fold is
// a left fold from the head. transform and folder are passed as `&dyn Fn`, as
// a Block is a value chosen at run time. The SOMA Store cells (N, xs, i,
// doubled, total) live in `Store`, reached through `black_box` every round.
mod harness;

use std::hint::black_box;
use std::rc::Rc;

type List = Option<Rc<Node>>;

struct Node {
    value: i64,
    next: List,
}

/// Drops a long list iteratively (the default drop would recurse once per
/// node); stops at the first node that another list still shares.
impl Drop for Node {
    fn drop(&mut self) {
        let mut next = self.next.take();
        while let Some(shared) = next {
            match Rc::try_unwrap(shared) {
                Ok(mut node) => next = node.next.take(),
                Err(_) => break,
            }
        }
    }
}

fn cons(value: i64, next: List) -> List {
    Some(Rc::new(Node { value, next }))
}

fn reverse(mut list: &List) -> List {
    let mut acc = None;
    while let Some(node) = list {
        acc = cons(node.value, acc);
        list = &node.next;
    }
    acc
}

fn map(list: &List, transform: &dyn Fn(i64) -> i64) -> List {
    let todo = reverse(list);
    let mut rest = &todo;
    let mut acc = None;
    while let Some(node) = rest {
        acc = cons(transform(node.value), acc);
        rest = &node.next;
    }
    acc
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
    xs: List,
    i: i64,
    doubled: List,
    total: i64,
}

fn run() -> String {
    let mut store = Store { n: 20000, xs: None, i: 0, doubled: None, total: 0 };
    loop {
        let s = black_box(&mut store);
        s.xs = cons(s.i, s.xs.take());
        s.i += 1;
        if !(s.i < s.n) {
            break;
        }
    }
    let s = black_box(&mut store);
    s.doubled = map(&s.xs, &|x| x * 2);
    s.total = fold(&|acc, x| acc + x, 0, &s.doubled);
    assert!(store.total == 399_980_000, "list map/fold gave the wrong sum");
    "lists ok".to_string()
}

fn main() {
    harness::main(run)
}
