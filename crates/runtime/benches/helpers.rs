//! Criterion benches of the runtime helpers, called through the C ABI as JIT code calls them.
//!
//! Run: `cargo bench -p soma-runtime --bench helpers -- --warm-up-time 1 --measurement-time 2`

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use soma_runtime::decode::Path;
use soma_runtime::encode::assemble;
use soma_runtime::exec::run_module;
use soma_runtime::ffi::*;
use soma_runtime::opcodes::Root;
use soma_runtime::{Value, Vm};

fn path(root: Root, comps: &[&str]) -> Path {
    Path::new(root, comps.iter().map(|c| std::rc::Rc::from(*c)).collect())
}

fn helpers(c: &mut Criterion) {
    // Every access goes through this one pointer (as JIT code and the bridge do).
    let vmp: *mut Vm = Box::into_raw(Vm::new());
    // SAFETY: `vmp` is live until the end of this function; benches are single-threaded and
    // no two references from `vm()` are used at once.
    let vm = || unsafe { &mut *vmp };
    vm().heap().set_stress(false);
    let one = Value::small_int(1).unwrap().to_bits();

    c.bench_function("al_push_pop", |b| {
        let mut out = 0u64;
        // SAFETY: live VM; out pointer valid.
        b.iter(|| unsafe {
            soma_rt_push(vmp, black_box(one));
            soma_rt_pop(vmp, &mut out);
            black_box(out)
        })
    });

    let store_path = path(Root::Store, &["bench", "counter", "value"]);
    vm().write_store_path(&["bench", "counter", "value"], Value::small_int(0).unwrap());
    c.bench_function("store_read_3_components", |b| {
        let mut out = 0u64;
        // SAFETY: live VM; the path outlives the calls.
        b.iter(|| unsafe {
            soma_rt_load_store(vmp, &store_path);
            soma_rt_pop(vmp, &mut out);
            black_box(out)
        })
    });
    c.bench_function("store_write_3_components", |b| {
        // SAFETY: live VM; the path outlives the calls.
        b.iter(|| unsafe {
            soma_rt_push(vmp, one);
            soma_rt_set_store(vmp, &store_path)
        })
    });

    let reg_path = path(Root::Register, &["x"]);
    let module = vm().load_module(assemble("{ }").unwrap());
    let block = vm().module(module).unwrap().blocks[1].to_bits();
    c.bench_function("register_write_in_fresh_frame", |b| {
        // SAFETY: live VM; frames are entered and left in pairs.
        b.iter(|| unsafe {
            soma_rt_enter_block(vmp, block);
            soma_rt_push(vmp, one);
            soma_rt_set_reg(vmp, &reg_path);
            soma_rt_leave_block(vmp)
        })
    });

    c.bench_function("alloc_str_16_bytes", |b| {
        let mut out = 0u64;
        let text = "sixteen bytes!!!";
        // SAFETY: live VM; the buffer is valid. Garbage is collected at the safepoint.
        b.iter(|| unsafe {
            soma_rt_safepoint(vmp);
            soma_rt_new_str(vmp, text.as_ptr(), text.len(), &mut out);
            black_box(out)
        })
    });

    c.bench_function("int_add_overflow_to_bigint", |b| {
        let max = Value::small_int(soma_runtime::value::SMALL_INT_MAX).unwrap().to_bits();
        let mut out = 0u64;
        // SAFETY: live VM; immediates as operands.
        b.iter(|| unsafe {
            soma_rt_safepoint(vmp);
            soma_rt_int_arith(vmp, 0, black_box(max), one, &mut out);
            black_box(out)
        })
    });

    // One full collection of a heap holding 10,000 live Store cells plus fresh garbage.
    for i in 0..10_000 {
        vm().write_store_path(&["live", &i.to_string()], Value::small_int(i).unwrap());
    }
    c.bench_function("collect_10k_live_cells_1k_garbage", |b| {
        b.iter_batched(
            || {
                for _ in 0..1000 {
                    vm().heap().alloc_str("garbage");
                }
            },
            // One full mark-sweep per iteration.
            |()| vm().collect(),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("collect_10k_live_cells_10k_dead_cells", |b| {
        b.iter_batched(
            || {
                // Dead cells with a child each, as dropped Register frames leave them.
                for _ in 0..5_000 {
                    let parent = vm().heap().alloc_cell();
                    let child = vm().heap().alloc_cell();
                    parent.insert_child("garbage", child);
                }
            },
            // One full mark-sweep per iteration.
            |()| vm().collect(),
            BatchSize::PerIteration,
        )
    });
    // SAFETY: created by Box::into_raw above and not used afterwards.
    unsafe { soma_rt_vm_free(vmp) };

    let mut fib_vm = Vm::new();
    fib_vm.heap().set_stress(false);
    let fib = fib_vm.load_module(
        assemble("{ !_.n _.n _.n 2 >< { } { !_.m _.m 1 >- >fib _.m 2 >- >fib >+ } >choose >chain } !fib")
            .unwrap(),
    );
    run_module(&mut fib_vm, fib).unwrap();
    let call = fib_vm.load_module(assemble("20 >fib").unwrap());
    c.bench_function("executor_fib_20", |b| {
        b.iter(|| {
            run_module(&mut fib_vm, call).unwrap();
            fib_vm.pop()
        })
    });
}

criterion_group!(benches, helpers);
criterion_main!(benches);
