// Peer of benches/programs/collatz.soma: total Collatz steps of every start
// value 1..3000 (= 215063). The SOMA Store cells (c.n, c.steps, total, i)
// live in `Store`, reached through `black_box` every round (memory the
// optimizer may not keep in registers, as a Store cell is); the step count
// of one start value is a function call, as >collatz is a block call.
mod harness;

use std::hint::black_box;

struct Store {
    c_n: i64,
    c_steps: i64,
    total: i64,
    i: i64,
}

#[inline(never)]
fn collatz(store: &mut Store, n: i64) -> i64 {
    store.c_n = n;
    store.c_steps = 0;
    if store.c_n > 1 {
        loop {
            let s = black_box(&mut *store);
            s.c_n = if s.c_n % 2 == 0 { s.c_n / 2 } else { s.c_n * 3 + 1 };
            s.c_steps += 1;
            if !(s.c_n > 1) {
                break;
            }
        }
    }
    store.c_steps
}

fn run() -> String {
    let mut store = Store { c_n: 0, c_steps: 0, total: 0, i: 1 };
    loop {
        let s = black_box(&mut store);
        let i = s.i;
        s.total = collatz(s, i) + s.total;
        s.i += 1;
        if !(s.i <= 3000) {
            break;
        }
    }
    assert!(store.total == 215063, "collatz gave the wrong total");
    "collatz ok".to_string()
}

fn main() {
    harness::main(run)
}
