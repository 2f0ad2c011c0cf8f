//! Run serialized SOMA modules under the JIT (or the executor) and print the AL and JIT stats.
//!
//! `cargo run --release -p soma-jit --example jit_run -- [--executor] [--repeat N] FILE.bc ...`
//!
//! Modules run in order on one VM (e.g. the compiled stdlib, then a program); the last one is
//! run N times. The JIT reads `SOMA_JIT_THRESHOLD`, `SOMA_JIT_DUMP`, `SOMA_JIT_PERFMAP`.

use soma_runtime::render::al_form;
use soma_runtime::Vm;
use std::time::Instant;

fn main() {
    let mut vm = Vm::new();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let executor = args.first().map(String::as_str) == Some("--executor");
    if executor {
        args.remove(0);
    } else {
        soma_jit::install(&mut vm).expect("JIT installs");
    }
    let mut repeat = 1;
    if args.first().map(String::as_str) == Some("--repeat") {
        repeat = args[1].parse().expect("--repeat N");
        args.drain(..2);
    }
    let n = args.len();
    for (i, path) in args.iter().enumerate() {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let id = vm.load_module_bytes(&bytes).expect("decodes");
        let times = if i + 1 == n { repeat } else { 1 };
        let t0 = Instant::now();
        for r in 0..times {
            if r > 0 {
                while vm.pop().is_some() {}
            }
            let result = if executor {
                soma_runtime::exec::run_module(&mut vm, id)
            } else {
                soma_jit::run_module(&mut vm, id)
            };
            if let Err(e) = result {
                eprintln!("{}: {e}", e.class.name());
                std::process::exit(1);
            }
        }
        if i + 1 == n {
            eprintln!("{path}: {times} run(s) in {:.3} ms", t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    let items: Vec<String> = vm.al().iter().map(|&v| al_form(v)).collect();
    println!("[{}]", items.join(", "));
    if let Some(s) = soma_jit::stats(&mut vm) {
        eprintln!(
            "jit: {} blocks compiled ({} failed), {} us compiling (median {} us/block), {} code bytes, {} deopts, {} us in native code",
            s.blocks_compiled,
            s.compile_failures,
            s.total_compile_ns / 1000,
            s.median_compile_us(),
            s.total_code_bytes,
            s.deopts,
            s.native_ns / 1000
        );
    }
}
