//! Resource limits on the reference executor: step budget, time limit, interrupt flag (set
//! from another thread), memory limit; each a `Limit` error with a position, the VM usable
//! afterwards.

use soma_runtime::encode::assemble;
use soma_runtime::exec::run_module;
use soma_runtime::{ErrorClass, SomaError, Vm};
use std::time::Duration;

fn run_on(vm: &mut Vm, src: &str) -> Result<(), SomaError> {
    let id = vm.load_module(assemble(src).expect("assembles"));
    run_module(vm, id)
}

fn store_int(vm: &Vm, name: &str) -> i64 {
    vm.read_store_path(&[name]).and_then(|v| v.as_small_int()).expect("an Int")
}

fn assert_usable(vm: &mut Vm) {
    let before = vm.al().len();
    run_on(vm, "1 2 >+").expect("runs after the error");
    assert_eq!(vm.pop().and_then(|v| v.as_small_int()), Some(3));
    assert_eq!(vm.al().len(), before);
}

const COUNTING: &str = "0 !n { n 1 >+ !n >block } >chain";

#[test]
fn a_step_budget_stops_a_never_ending_chain_at_the_same_round() {
    for max in [0u64, 1, 999, 4096, 5000] {
        let mut vm = Vm::new();
        vm.begin_budget(Some(max), None);
        let e = run_on(&mut vm, COUNTING).unwrap_err();
        assert_eq!(e.class, ErrorClass::Limit);
        assert_eq!(e.message, format!("Step limit exceeded (limit {max} block executions)"));
        assert_eq!((e.line, e.col), (1, 27), "positioned at the chain");
        assert_eq!(store_int(&vm, "n"), max as i64, "the Store keeps the completed rounds");
        assert_eq!(vm.steps_taken(), max + 1);
        assert_eq!(vm.depth(), 0);
        assert_usable(&mut vm);
    }
}

#[test]
fn a_time_limit_stops_a_never_ending_chain() {
    let mut vm = Vm::new();
    vm.begin_budget(None, Some(Duration::from_millis(50)));
    let e = run_on(&mut vm, COUNTING).unwrap_err();
    assert_eq!((e.class, e.message.as_str()), (ErrorClass::Limit, "Time limit exceeded"));
    assert!(store_int(&vm, "n") > 0);
    assert_usable(&mut vm);
}

#[test]
fn the_interrupt_flag_set_from_another_thread_stops_a_run() {
    let mut vm = Vm::new();
    // A fallback so that a broken interrupt fails the test instead of hanging it.
    vm.begin_budget(None, Some(Duration::from_secs(60)));
    let flag = vm.interrupt_handle();
    // Crosses threads: only the Arc<AtomicBool>; the VM stays on this thread.
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let e = run_on(&mut vm, COUNTING).unwrap_err();
    setter.join().unwrap();
    assert_eq!((e.class, e.message.as_str()), (ErrorClass::Limit, "Interrupted"));
    assert_usable(&mut vm);
}

#[test]
fn the_doubling_program_stops_at_the_memory_limit_and_the_heap_shrinks_back() {
    const LIMIT: usize = 8 << 20;
    let mut vm = Vm::new();
    vm.set_max_memory(LIMIT);
    let doubling = format!("(xy) !s {{ s s >concat !s }} !d\n{}", " >d".repeat(34));
    let e = run_on(&mut vm, &doubling).unwrap_err();
    assert_eq!(e.class, ErrorClass::Limit);
    assert_eq!(e.message, format!("Memory limit exceeded (limit {LIMIT} bytes)"));
    assert_eq!((e.line, e.col), (1, 15), "positioned at the concat");
    let kept = vm.read_store_path(&["s"]).and_then(|v| v.as_str().map(str::len)).unwrap();
    assert!((LIMIT / 8..=LIMIT / 2).contains(&kept), "the last completed write stays: {kept}");
    vm.collect();
    assert!(vm.heap_stats().bytes <= LIMIT, "within the limit after a collection");
    assert_usable(&mut vm);
    run_on(&mut vm, "Void !s.").unwrap();
    vm.collect();
    assert!(vm.heap_stats().bytes < 1 << 20);
}

#[test]
fn a_heap_over_its_limit_still_runs_reads_and_frees_but_cannot_double() {
    let mut vm = Vm::new();
    run_on(&mut vm, "(0123456789abcdef) !s { s s >concat !s } !d >d >d >d >d >d >d >d >d >d >d >d >d").unwrap();
    vm.collect();
    // Lower the limit below what the Store already holds.
    vm.set_max_memory(vm.heap_stats().bytes / 2);
    let e = run_on(&mut vm, ">d").unwrap_err();
    assert_eq!(e.class, ErrorClass::Limit);
    run_on(&mut vm, "s !t").expect("a write that does not grow the heap runs");
    assert_usable(&mut vm);
    run_on(&mut vm, "Void !s. Void !t.").expect("frees");
    run_on(&mut vm, "(ab) !s >d >d").expect("room again after freeing");
}

#[test]
fn big_products_are_refused_before_they_are_computed() {
    let mut vm = Vm::new();
    vm.set_max_memory(1 << 20);
    let e = run_on(&mut vm, "3 !x { x x >* !x } !sq >sq >sq >sq >sq >sq >sq >sq >sq >sq >sq >sq >sq >sq >sq >sq >sq >sq >sq >sq >sq >sq >sq >sq >sq")
        .unwrap_err();
    assert_eq!(e.message, "Memory limit exceeded (limit 1048576 bytes)");
    assert_usable(&mut vm);
}
