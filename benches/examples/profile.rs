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
        None | Some("jit") => Tier::Jit(soma_jit::config::DEFAULT_THRESHOLD),
        Some("exec") => Tier::Executor,
        Some(t) => Tier::Jit(t.parse().expect("tier: jit, exec or a threshold")),
    };
    let stdlib = read_bytecode("stdlib");
    let program = read_bytecode(stem);
    let mut total = std::time::Duration::ZERO;
    let mut compile_us: Vec<u64> = Vec::new();
    for _ in 0..runs {
        let mut vm = prepared_vm(&stdlib, tier);
        let before = soma_jit::stats(&mut vm).map_or(0, |s| s.blocks.len());
        let t = std::time::Instant::now();
        run_bytes(&mut vm, &program, tier).unwrap_or_else(|e| panic!("{stem}: {e}"));
        total += t.elapsed();
        if let Some(s) = soma_jit::stats(&mut vm) {
            compile_us.extend(s.blocks[before..].iter().map(|b| b.compile_us));
        }
    }
    compile_us.sort_unstable();
    if let Some(median) = compile_us.get(compile_us.len() / 2) {
        let sum: u64 = compile_us.iter().sum();
        eprintln!(
            "{stem}: {} blocks compiled per run, median {median} us, {:.2} ms per run compiling",
            compile_us.len() / runs.max(1),
            sum as f64 / 1e3 / runs.max(1) as f64
        );
    }
    // Only the program is timed (VM creation and the stdlib are not), as in benches/compare.py.
    let per = total.as_secs_f64() / runs as f64;
    eprintln!("{stem}: {:.3} ms per run ({runs} runs, {tier:?})", per * 1e3);
}
