// Peer of benches/programs/fib.soma: doubly recursive Fibonacci, fib(24) =
// 46368 (about 150,000 calls). The argument passes through `black_box` so
// that the compiler cannot evaluate the call at compile time.
mod harness;

use std::hint::black_box;

fn fib(n: i64) -> i64 {
    if n < 2 {
        return n;
    }
    fib(n - 1) + fib(n - 2)
}

fn run() -> String {
    let result = fib(black_box(24));
    assert!(result == 46368, "fib gave the wrong answer");
    "fib ok".to_string()
}

fn main() {
    harness::main(run)
}
