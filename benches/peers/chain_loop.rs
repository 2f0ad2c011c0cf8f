// Peer of benches/programs/chain_loop.soma: a counting loop of 1,000,000
// rounds on a Store cell. The SOMA Store cells live in `Store`, reached
// through `black_box` every round: memory the optimizer may not keep in a
// register or fold away, as a Store cell is (without it the loop would
// compile to a constant).
mod harness;

use std::hint::black_box;

struct Store {
    n: i64,
}

fn run() -> String {
    let mut store = Store { n: 0 };
    loop {
        let s = black_box(&mut store);
        s.n += 1;
        if !(s.n < 1_000_000) {
            break;
        }
    }
    assert!(store.n == 1_000_000, "loop gave the wrong count");
    "loop ok".to_string()
}

fn main() {
    harness::main(run)
}
