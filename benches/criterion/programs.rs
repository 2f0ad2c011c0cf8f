//! End-to-end SOMA programs run natively from their serialized bytecode: the
//! reference executor against the JIT. Each iteration runs the whole program
//! on a VM that already has the stdlib loaded; the programs check their own
//! results and raise on a wrong answer, which fails the bench.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use soma_benches::{prepared_vm, read_bytecode, run_bytes, Tier, PROGRAMS};
use std::time::Duration;

fn programs(c: &mut Criterion) {
    let stdlib = read_bytecode("stdlib");
    for &name in PROGRAMS {
        let program = read_bytecode(name);
        let mut group = c.benchmark_group(format!("program/{name}"));
        group.sample_size(10).measurement_time(Duration::from_secs(5));
        for (label, tier) in [("executor", Tier::Executor), ("jit", Tier::Jit(2))] {
            group.bench_function(label, |b| {
                b.iter_batched(
                    || prepared_vm(&stdlib, tier),
                    |mut vm| {
                        run_bytes(&mut vm, &program, tier)
                            .unwrap_or_else(|e| panic!("{name} on {label}: {e}"));
                        vm
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        group.finish();
    }
}

criterion_group!(benches, programs);
criterion_main!(benches);
