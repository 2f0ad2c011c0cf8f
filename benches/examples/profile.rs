//! Run one benchmark program repeatedly from its checked-in bytecode, for `perf record`:
//!
//!     cargo build --release -p soma-benches --example profile
//!     SOMA_JIT_PERFMAP=1 perf record -g target/release/examples/profile fib 20
//!
//! Arguments: program stem, runs (default 10), tier (`jit` default, `exec`, or a threshold).

use soma_benches::{prepared_vm, read_bytecode, run_bytes, Tier};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let stem = args.get(1).map(String::as_str).unwrap_or("fib");
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let tier = match args.get(3).map(String::as_str) {
        None | Some("jit") => Tier::Jit(soma_jit::compiler::DEFAULT_THRESHOLD),
        Some("exec") => Tier::Executor,
        Some(t) => Tier::Jit(t.parse().expect("tier: jit, exec or a threshold")),
    };
    let stdlib = read_bytecode("stdlib");
    let program = read_bytecode(stem);
    let mut total = std::time::Duration::ZERO;
    for _ in 0..runs {
        let mut vm = prepared_vm(&stdlib, tier);
        let t = std::time::Instant::now();
        run_bytes(&mut vm, &program, tier).unwrap_or_else(|e| panic!("{stem}: {e}"));
        total += t.elapsed();
    }
    // Only the program is timed (VM creation and the stdlib are not), as in benches/compare.py.
    let per = total.as_secs_f64() / runs as f64;
    eprintln!("{stem}: {:.3} ms per run ({runs} runs, {tier:?})", per * 1e3);
}
