//! Executor vs JIT on bytecode fixtures (fib 22, a 100k-round chain loop, a stdlib dict
//! workload), and compile time per block.
//!
//! `cargo bench -p soma-jit --bench jit -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use soma_jit::JitConfig;
use soma_runtime::Vm;

const STDLIB: &[u8] = include_bytes!("../../runtime/tests/fixtures/stdlib.bc");
const FIB: &[u8] = include_bytes!("fixtures/fib.bc");
const CHAIN: &[u8] = include_bytes!("fixtures/chain_loop.bc");
const DICT: &[u8] = include_bytes!("fixtures/dict.bc");

fn config(threshold: u64) -> JitConfig {
    JitConfig {
        threshold: Some(threshold),
        verify: false,
        ..JitConfig::default()
    }
}

/// A VM with the stdlib loaded (if asked) and `program` loaded; returns the program's id.
fn setup(jit: bool, stdlib: bool, program: &[u8]) -> (Box<Vm>, u32) {
    let mut vm = Vm::new();
    if jit {
        soma_jit::install_with(&mut vm, config(0)).unwrap();
    }
    if stdlib {
        let id = vm.load_module_bytes(STDLIB).unwrap();
        soma_jit::run_module(&mut vm, id).unwrap();
    }
    let id = vm.load_module_bytes(program).unwrap();
    (vm, id)
}

fn run(vm: &mut Vm, id: u32) {
    soma_jit::run_module(vm, id).unwrap();
    while vm.pop().is_some() {}
}

fn workloads(c: &mut Criterion) {
    for (name, bytes, stdlib) in [("fib22", FIB, false), ("chain_loop_100k", CHAIN, false), ("dict_300", DICT, true)] {
        let mut g = c.benchmark_group(name);
        g.sample_size(10);
        for (tier, jit) in [("executor", false), ("jit", true)] {
            let (mut vm, id) = setup(jit, stdlib, bytes);
            run(&mut vm, id); // warm: compiles everything at threshold 0
            g.bench_function(tier, |b| b.iter(|| run(&mut vm, id)));
        }
        g.finish();
    }
}

fn compile_time(c: &mut Criterion) {
    // Median compile time over every Code of the stdlib, from the JIT's own stats.
    let mut vm = Vm::new();
    soma_jit::install_with(&mut vm, config(u64::MAX)).unwrap();
    let id = vm.load_module_bytes(STDLIB).unwrap();
    let blocks = vm.module(id).unwrap().blocks.clone();
    for &b in &blocks {
        soma_jit::compile_block(&mut vm, b).unwrap();
    }
    let s = soma_jit::stats(&mut vm).unwrap();
    let mut sizes: Vec<usize> = s.blocks.iter().map(|b| b.code_size).collect();
    sizes.sort_unstable();
    println!(
        "stdlib: {} blocks compiled, median compile time {} us, total {} us, median code size {} bytes",
        s.blocks_compiled,
        s.median_compile_us(),
        s.total_compile_ns / 1000,
        sizes[sizes.len() / 2]
    );
    // One block end to end (translate + Cranelift + finalize): fib's body.
    c.bench_function("compile_fib_body", |b| {
        b.iter_batched(
            || {
                let mut vm = Vm::new();
                soma_jit::install_with(&mut vm, config(u64::MAX)).unwrap();
                let id = vm.load_module_bytes(FIB).unwrap();
                let block = vm.module(id).unwrap().blocks[1];
                (vm, block)
            },
            |(mut vm, block)| {
                soma_jit::compile_block(&mut vm, block).unwrap();
                vm
            },
            BatchSize::PerIteration,
        )
    });
}

criterion_group!(benches, compile_time, workloads);
criterion_main!(benches);
