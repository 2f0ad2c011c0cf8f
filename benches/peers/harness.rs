// Timing harness shared by the Rust peers; each peer is one crate root that
// declares `mod harness;` and calls `harness::main(run)`, and the whole is
// built by `rustc -O --edition 2021 <peer>.rs` (benches/compare.py does this).
//
// `run` does the whole algorithm once and returns its "... ok" line, or
// panics when the result is wrong. `main` calls it `repeat` times (first
// command-line argument, default 1), timing each call alone with a monotonic
// clock, then prints the line and the best time in seconds on the last line:
// the protocol benches/compare.py reads.

use std::time::Instant;

pub fn main(run: fn() -> String) {
    let repeat: usize = std::env::args().nth(1).map_or(1, |a| a.parse().expect("repeat count"));
    let mut best = f64::INFINITY;
    let mut line = String::new();
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        line = run();
        best = best.min(start.elapsed().as_secs_f64());
    }
    assert!(line.ends_with(" ok"), "the peer returned {line:?}, not an ok line");
    println!("{line}");
    println!("{best:.9}");
}
