//! JIT compile time per block, two ways (the JIT's budget is a median under 300 µs):
//!
//! * every Code of the stdlib and of the benchmark programs (from their checked-in
//!   bytecode), compiled one at a time on a fresh VM with the JIT installed but tier-up
//!   off: the Store is empty, so nothing is specialised or inlined (the cost of lowering);
//! * the blocks that tier up while each benchmark program runs at the default threshold,
//!   after the stdlib: guarded sites and inlined Blocks included (what a user pays).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use soma_benches::{prepared_vm, read_bytecode, run_bytes, Tier, PROGRAMS};
use soma_jit::JitConfig;
use soma_runtime::Vm;

fn jit_vm() -> Box<Vm> {
    let mut vm = Vm::new();
    let config = JitConfig { threshold: None, verify: false, ..JitConfig::default() };
    soma_jit::install_with(&mut vm, config).expect("JIT installs");
    vm
}

/// Compile every block of `bytes` on a fresh VM; return the JIT's per-block compile times (µs).
fn compile_all(bytes: &[u8]) -> Vec<u64> {
    let mut vm = jit_vm();
    let id = vm.load_module_bytes(bytes).expect("bytecode decodes");
    let blocks = vm.module(id).expect("module loaded").blocks.clone();
    for &block in &blocks {
        soma_jit::compile_block(&mut vm, block).expect("block compiles");
    }
    let stats = soma_jit::stats(&mut vm).expect("JIT installed");
    stats.blocks.iter().map(|b| b.compile_us).collect()
}

fn compile_time(c: &mut Criterion) {
    let mut sources = vec!["stdlib"];
    sources.extend_from_slice(PROGRAMS);
    let mut all = Vec::new();
    for &stem in &sources {
        let bytes = read_bytecode(stem);
        let mut times = compile_all(&bytes);
        times.sort_unstable();
        println!(
            "compile {stem}: {} blocks, median {} us, max {} us",
            times.len(),
            times[times.len() / 2],
            times[times.len() - 1]
        );
        all.extend(times);
        // The whole module, block by block, as one measured unit.
        let mut group = c.benchmark_group("compile");
        group.sample_size(10);
        group.bench_function(stem, |b| {
            b.iter_batched(|| (), |_| compile_all(&bytes), BatchSize::PerIteration)
        });
        group.finish();
    }
    all.sort_unstable();
    println!("compile all: {} blocks, median {} us per block", all.len(), all[all.len() / 2]);

    let stdlib = read_bytecode("stdlib");
    let tier = Tier::Jit(soma_jit::config::DEFAULT_THRESHOLD);
    let mut tiered = Vec::new();
    for &stem in PROGRAMS {
        let mut vm = prepared_vm(&stdlib, tier);
        let before = soma_jit::stats(&mut vm).expect("JIT installed").blocks.len();
        run_bytes(&mut vm, &read_bytecode(stem), tier).expect("program runs");
        let stats = soma_jit::stats(&mut vm).expect("JIT installed");
        let mut times: Vec<u64> = stats.blocks[before..].iter().map(|b| b.compile_us).collect();
        times.sort_unstable();
        if let (Some(median), Some(max)) = (times.get(times.len() / 2), times.last()) {
            println!("tier-up {stem}: {} blocks, median {median} us, max {max} us", times.len());
        }
        tiered.extend(times);
    }
    tiered.sort_unstable();
    if let Some(median) = tiered.get(tiered.len() / 2) {
        println!("tier-up all: {} blocks, median {median} us per block", tiered.len());
    }
}

criterion_group!(benches, compile_time);
criterion_main!(benches);
