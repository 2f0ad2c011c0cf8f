//! Memory: long-running programs stay in bounded memory; cycles are reclaimed; roots hold.

mod common;
use soma_runtime::decode::Path;
use soma_runtime::encode::assemble;
use soma_runtime::exec::run_module;
use soma_runtime::heap::stress_requested;
use soma_runtime::opcodes::Root;
use soma_runtime::{Value, Vm};

/// Resident set size in bytes, from /proc/self/statm (0 where unavailable).
fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()))
        .map_or(0, |pages| pages * 4096)
}

fn reg_path(comps: &[&str]) -> Path {
    Path::new(Root::Register, comps.iter().map(|c| std::rc::Rc::from(*c)).collect())
}

/// Iterations for the long loops; stress mode collects at every safepoint (a full mark-sweep
/// each time), so it runs a hundredth of the loop to keep the suite's time reasonable.
fn iterations(normal: u64) -> u64 {
    if stress_requested() {
        normal / 100
    } else {
        normal
    }
}

#[test]
fn ten_million_register_frames_keep_the_heap_flat() {
    let mut vm = Vm::new();
    let module = vm.load_module(assemble("{ }").unwrap());
    let block = vm.module(module).unwrap().blocks[1];
    let x = reg_path(&["x"]);
    let x_up = reg_path(&["x", "up"]);
    let root = reg_path(&[]);
    let text = vm.heap().alloc_str("payload");
    let pin = vm.pin(text);

    let n = iterations(10_000_000);
    let mut checkpoint = None;
    let mut max_objects = 0;
    for i in 0..n {
        vm.enter_block(block).unwrap();
        // `_.x` = an Int, then `_.x.up` = a CellRef to `_`: a register frame whose cells
        // form a cycle, dropped at leave_block.
        vm.push(Value::small_int(i as i64 & 0xFFFF).unwrap());
        vm.set_reg(&x).unwrap();
        vm.ref_reg(&root).unwrap();
        vm.set_reg(&x_up).unwrap();
        vm.leave_block();
        vm.safepoint().unwrap();
        max_objects = max_objects.max(vm.heap_stats().objects);
        if i == n / 10 {
            checkpoint = Some((vm.heap_stats(), rss_bytes()));
        }
    }
    vm.collect();
    let (early, early_rss) = checkpoint.unwrap();
    let end = vm.heap_stats();
    let end_rss = rss_bytes();
    eprintln!(
        "iterations {n}: objects after collect {} (early {}), max live {max_objects}, \
         collections {}, rss early {} KiB end {} KiB",
        end.objects,
        early.objects,
        end.collections,
        early_rss / 1024,
        end_rss / 1024
    );
    // Everything allocated by the frames is garbage: only the VM's own objects remain.
    let baseline = {
        let mut fresh = Vm::new();
        fresh.load_module(assemble("{ }").unwrap());
        let keep = fresh.heap().alloc_str("payload");
        fresh.pin(keep);
        fresh.collect();
        fresh.heap_stats().objects
    };
    assert_eq!(end.objects, baseline, "no frame object survives");
    assert!(end.collections > 0);
    // Between collections the heap holds at most one budget's worth of garbage (the 1 MiB
    // floor of `heap.rs` is about 21,800 cells).
    assert!(max_objects < 50_000, "max live objects {max_objects}");
    assert!(
        end_rss <= early_rss + 8 * 1024 * 1024,
        "RSS grew from {early_rss} to {end_rss}"
    );
    assert_eq!(vm.pinned(pin).unwrap().as_str(), Some("payload"));
}

#[test]
fn a_long_soma_loop_runs_in_bounded_memory() {
    let n = iterations(1_000_000);
    let src = format!(
        "{n} !i\n\
         {{ i !_.n  _. !_.me  (a) (b) >concat !_.s  _.s. !_.r.link\n\
            i 1 >- !i  0 i >< >block Nil >choose }} >chain"
    );
    let r = {
        let mut vm = Vm::new();
        let id = vm.load_module(assemble(&src).unwrap());
        run_module(&mut vm, id).unwrap();
        vm
    };
    let mut vm = r;
    assert_eq!(vm.al().len(), 1);
    vm.collect();
    let stats = vm.heap_stats();
    eprintln!("soma loop {n}: {stats:?}");
    assert!(stats.objects < 200, "live objects after the loop: {}", stats.objects);
    assert!(stats.freed_objects as u64 >= 4 * n, "frames were reclaimed");
}

#[test]
fn cycles_through_the_store_are_reclaimed_once_unlinked() {
    let mut vm = Vm::new();
    // A cell referring to itself, a child referring to its parent, refs between subtrees.
    let build = vm.load_module(
        assemble(
            "a.b. !a.b  a. !a.b.up  a.b. !a.self\n\
             { } !blk  1 !c.0  c. !c.1.prev  (text) (more) >concat !c.1.s",
        )
        .unwrap(),
    );
    let unlink = vm.load_module(assemble("Void !a.  Void !c.  Void !blk.").unwrap());
    vm.collect();
    let baseline = vm.heap_stats().objects;
    run_module(&mut vm, build).unwrap();
    vm.collect();
    assert!(vm.heap_stats().objects > baseline + 5);
    run_module(&mut vm, unlink).unwrap();
    vm.collect();
    assert_eq!(vm.heap_stats().objects, baseline, "every cell and Str of the cycles is gone");
}

#[test]
fn deep_cell_chains_are_marked_without_recursion() {
    let mut vm = Vm::new();
    let mut prev = vm.store_ref_path(&["head"]);
    // A 200k-long chain of cells linked through their values (CellRefs), rooted at `head`.
    for _ in 0..200_000 {
        let c = vm.heap().alloc_cell();
        prev.set_value(c.as_value());
        prev = c;
    }
    vm.collect();
    assert!(vm.heap_stats().objects > 200_000);
    vm.write_store_path(&["head"], Value::NIL);
    vm.collect();
    assert!(vm.heap_stats().objects < 100);
}
