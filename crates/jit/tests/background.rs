//! Tier-up in the background: code generated on the compile thread and installed at a later
//! safepoint. Lockstep mode fixes the install point (the next safepoint), so these tests do
//! not depend on timing; the free-running tests only compare results and counts that hold
//! whenever the code lands.

mod common;
use common::{run_on, Runner, Tier};
use soma_jit::{Background, JitConfig};
use soma_runtime::Vm;

/// A JIT runner; free-running background compiles get an unlimited main-thread budget, so
/// what they queue does not depend on how fast this machine translates.
fn runner(threshold: u64, background: Background) -> Runner {
    Runner::with_config(JitConfig {
        threshold: Some(threshold),
        verify: true,
        background,
        budget_allowance_ns: u64::MAX,
        // These tests count what goes through the queue; code another test of this process
        // generated would be installed from the code cache instead (tests/code_cache.rs).
        code_cache: false,
        ..JitConfig::default()
    })
}

fn compiled(vm: &Vm, name: &str) -> bool {
    let v = vm.read_store_path(&[name]).expect("a stored Block");
    vm.block_obj(v).expect("a Block").native_entry.get().is_some()
}

#[test]
fn background_code_is_installed_at_the_next_safepoint() {
    // `k` executes nothing itself, so no safepoint falls inside its own runs.
    let mut r = runner(2, Background::Lockstep);
    r.run_src("{ 7 } !k  >k >k").unwrap();
    assert!(!compiled(&r.vm, "k"), "two runs: still below the threshold");
    // The third run reaches the threshold: the block is translated and queued, and runs
    // interpreted this time.
    r.run_src(">k").unwrap();
    assert!(!compiled(&r.vm, "k"), "queued, not installed before a safepoint");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.background_queued, s.background_installed, s.blocks_compiled), (1, 0, 0));
    // The next execution of a value is a safepoint: the code is installed, and runs.
    let res = r.run_src(">k");
    assert_eq!(r.outcome(res).al, "[7, 7, 7, 7]");
    assert!(compiled(&r.vm, "k"));
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.background_queued, s.background_installed, s.blocks_compiled), (1, 1, 1));
    assert!(s.blocks[0].background);
}

/// Run `src` on the executor and in lockstep at threshold 1; return the JIT's statistics.
fn lockstep_matches_the_executor(src: &str) -> soma_jit::JitStats {
    let (reference, _) = run_on(Tier::Executor, src, false);
    let mut r = runner(1, Background::Lockstep);
    let res = r.run_src(src);
    assert_eq!(r.outcome(res), reference, "{src}");
    assert!(compiled(&r.vm, "f"));
    soma_jit::stats(&mut r.vm).unwrap()
}

#[test]
fn a_compile_whose_store_identity_changed_is_dropped_and_redone() {
    // Every run of `f` swaps the builtins bound to `+` and `next` before it executes `+`.
    // `f` is translated at its second entry with `+` specialised (guarded on the builtin it
    // held then); the swap that follows makes that code stale before the next safepoint (the
    // execution of `+`): it is dropped, and `f` is translated again against the Store as it
    // is now, which is still so at the next safepoint: installed.
    let s = lockstep_matches_the_executor("* !next  { next + !next !+  2 3 >+ } !f  >f >f >f >f >f");
    assert_eq!((s.dropped_stale, s.background_queued, s.background_installed), (1, 2, 1), "{s:?}");
    assert_eq!(s.compile_failures, 0, "{s:?}");
}

#[test]
fn a_block_whose_compiles_keep_going_stale_is_compiled_on_the_main_thread() {
    // Two swaps per run: the Store changes between every two safepoints, so every background
    // compile of `f` is stale when it could be installed; after MAX_STALE_DROPS drops the
    // main thread compiles it (and its guard deopts from then on, as it must).
    let s = lockstep_matches_the_executor(
        "* !next  { next + !next !+  2 3 >+  next + !next !+ } !f  >f >f >f >f >f >f",
    );
    let max = soma_jit::compiler::MAX_STALE_DROPS as u64;
    assert_eq!((s.dropped_stale, s.background_queued, s.background_installed), (max, max, 0), "{s:?}");
    assert_eq!(s.compile_failures, 0, "{s:?}");
}

#[test]
fn a_panic_on_the_compile_thread_leaves_the_block_interpreted() {
    let src = "{ 1 >+ } !inc  0 >inc >inc >inc >inc";
    let (reference, _) = run_on(Tier::Executor, src, false);
    let mut r = Runner::with_config(JitConfig {
        threshold: Some(1),
        background: Background::Lockstep,
        inject_worker_panic: true,
        ..JitConfig::default()
    });
    let res = r.run_src(src);
    assert_eq!(r.outcome(res), reference);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.worker_panics, s.compile_failures, s.blocks_compiled), (1, 1, 0), "{s:?}");
    assert!(!compiled(&r.vm, "inc"));
    // The VM, and the compile thread, keep working.
    let res = r.run_src("{ 2 >* } !dbl  1 >dbl >dbl >dbl");
    assert_eq!(r.outcome(res).al, "[4, 8]");
}

#[test]
fn free_running_background_compiles_match_the_executor() {
    const FIB: &str = "{ !_.n _.n _.n 2 >< { } { !_.m _.m 1 >- >fib _.m 2 >- >fib >+ } >choose >chain } !fib";
    let src = format!("{FIB}\n20 >fib 15 >fib");
    let (reference, _) = run_on(Tier::Executor, &src, false);
    let mut r = runner(5, Background::On);
    let res = r.run_src(&src);
    assert_eq!(r.outcome(res), reference);
    soma_jit::wait_for_background(&mut r.vm);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.background_queued >= 1, "{s:?}");
    assert_eq!(s.background_installed + s.dropped_stale, s.background_queued, "{s:?}");
    assert!(compiled(&r.vm, "fib"));
    // And the installed code gives the same answers.
    let res = r.run_src("10 >fib");
    assert_eq!(r.outcome(res).al, "[6765, 610, 55]");
}

#[test]
fn dropping_a_vm_with_compiles_in_flight_is_clean() {
    // Many blocks queued at once, the VM dropped at once: the worker is told to stop, finishes
    // the job it holds and is joined; queued jobs are discarded with their translations.
    let blocks: String = (0..40).map(|i| format!("{{ {i} >+ }} !b{i} ")).collect();
    let runs: String = (0..40).map(|i| format!("1 >b{i} >b{i} ")).collect();
    for _ in 0..10 {
        let mut r = runner(1, Background::On);
        r.run_src(&format!("{blocks} {runs}")).unwrap();
        let s = soma_jit::stats(&mut r.vm).unwrap();
        assert_eq!(s.background_queued, 40, "{s:?}");
        drop(r);
    }
}

/// A JIT at threshold 2 compiling in the background whose main-thread budget is always spent.
fn runner_with_budget_spent() -> Runner {
    Runner::with_config(budget_spent())
}

fn runner_with_budget_spent_never_exempt() -> Runner {
    Runner::with_config(JitConfig { budget_exempt_executions: 0, ..budget_spent() })
}

fn budget_spent() -> JitConfig {
    JitConfig {
        threshold: Some(2),
        background: Background::On,
        budget_percent: 0,
        budget_allowance_ns: 0,
        // No late share either: under valgrind a run lasts past its start.
        budget_late_percent: 0,
        code_cache: false,
        ..JitConfig::default()
    }
}

#[test]
fn with_the_main_thread_budget_spent_a_block_is_postponed_until_its_count_doubles() {
    let mut r = runner_with_budget_spent();
    let delay = |r: &Runner| {
        let v = r.vm.read_store_path(&["k"]).unwrap();
        r.vm.block_obj(v).unwrap().tier_up_shift.get()
    };
    r.run_src("{ 7 } !k  >k >k").unwrap();
    assert_eq!(delay(&r), 0);
    // Third run: count 2 = the threshold, postponed to count 4 (threshold + 2).
    r.run_src(">k").unwrap();
    assert_eq!(delay(&r), 2);
    // Fourth run: count 3, nothing; fifth: count 4, postponed again, to 8.
    r.run_src(">k >k").unwrap();
    assert_eq!(delay(&r), 6);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.postponed, s.background_queued, s.blocks_compiled), (2, 0, 0), "{s:?}");
    let res = r.run_src("");
    assert_eq!(r.outcome(res).al, "[7, 7, 7, 7, 7]");
}

#[test]
fn a_block_hot_enough_is_translated_with_the_budget_spent() {
    const LOOP: &str = "{ i 1 >+ !i  i 400 >< >block Nil >choose } !body  0 !i  body >chain";
    let compiled = |r: &mut Runner| {
        soma_jit::wait_for_background(&mut r.vm);
        let body = r.vm.read_store_path(&["body"]).unwrap();
        r.vm.block_obj(body).unwrap().native_entry.get().is_some()
    };
    // Exempt from 64 executions: postponed at its first due counts, then queued although the
    // budget is still spent.
    let mut r = Runner::with_config(JitConfig {
        budget_exempt_executions: 64,
        budget_exempt_after_ns: 0,
        ..budget_spent()
    });
    r.run_src(LOOP).unwrap();
    assert!(compiled(&mut r), "{:?}", soma_jit::stats(&mut r.vm));
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.postponed >= 1 && s.background_queued == 1, "{s:?}");
    // With no exemption it stays postponed.
    let mut r = runner_with_budget_spent_never_exempt();
    r.run_src(LOOP).unwrap();
    assert!(!compiled(&mut r), "{:?}", soma_jit::stats(&mut r.vm));
}

#[test]
fn a_postponed_block_called_from_compiled_code_waits_for_its_due_count() {
    // Compiled code asks for its callees' code at every call; a callee postponed for the
    // budget must not be looked at again (and counted again) before its new due count.
    let mut r = runner_with_budget_spent();
    // `c` calls the Block in its Register, so the call goes through the runtime's call path.
    r.run_src("{ 7 } !k  { !_.f >_.f >_.f >_.f >_.f >_.f >_.f >_.f >_.f } !c").unwrap();
    let c = r.vm.read_store_path(&["c"]).unwrap();
    soma_jit::compile_block(&mut r.vm, c).unwrap();
    let res = r.run_src("k >c");
    assert_eq!(r.outcome(res).al, "[7, 7, 7, 7, 7, 7, 7, 7]");
    // Asked at counts 0..7: postponed at 0 (due 3: twice the count, at least the threshold
    // plus one), at 3 (due 6) and at 6 (due 12); the asks in between return at once.
    let k = r.vm.read_store_path(&["k"]).unwrap();
    assert_eq!(r.vm.block_obj(k).unwrap().tier_up_shift.get(), 10);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.postponed, s.background_queued), (3, 0), "{s:?}");
}

#[test]
fn a_baseline_compile_asked_for_while_an_optimizing_one_is_in_flight_waits() {
    // The loop body reaches the threshold in round 2 and goes to the optimizing tier (a loop
    // body); `e`, run by every round, reaches it right after, while that compile is in flight
    // (installs held: nothing lands before `wait_for_background`). `e` waits for its count to
    // double, twice; once the optimized code is in, `e` is queued at its next due count.
    let mut r = Runner::with_config(JitConfig {
        threshold: Some(2),
        background: Background::On,
        budget_allowance_ns: u64::MAX,
        hold_installs: true,
        code_cache: false,
        ..JitConfig::default()
    });
    let res = r.run_src("{ 5 } !e  0 !n { >e !_.x  n 1 >+ !n  n 6 >< >block Nil >choose } >chain !_.junk  n");
    assert_eq!(r.outcome(res).al, "[6]");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.background_queued, s.deferred), (1, 2), "{s:?}");
    let e = r.vm.read_store_path(&["e"]).unwrap();
    assert_eq!(r.vm.block_obj(e).unwrap().tier_up_due(2), 8);
    soma_jit::wait_for_background(&mut r.vm);
    assert_eq!(soma_jit::stats(&mut r.vm).unwrap().optimized, 1);
    // The hook looks at the count before the run adds to it: the ninth run is due, and is
    // queued, with nothing optimizing in flight.
    r.run_src(">e >e").unwrap();
    assert_eq!(soma_jit::stats(&mut r.vm).unwrap().background_queued, 1);
    r.run_src(">e").unwrap();
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.background_queued, s.deferred), (2, 2), "{s:?}");
}

#[test]
fn threshold_zero_compiles_synchronously_even_with_background_on() {
    let mut r = runner(0, Background::On);
    r.run_src("{ 1 >+ } !inc  0 >inc").unwrap();
    assert!(compiled(&r.vm, "inc"));
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!(s.background_queued, 0, "{s:?}");
}

#[test]
fn background_off_compiles_before_the_block_runs() {
    let mut r = runner(1, Background::Off);
    r.run_src("{ 1 >+ } !inc  0 >inc >inc").unwrap();
    assert!(compiled(&r.vm, "inc"));
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.background_queued, s.blocks_compiled), (0, 1), "{s:?}");
}

#[test]
fn the_environment_switch() {
    assert_eq!(Background::parse("0"), Some(Background::Off));
    assert_eq!(Background::parse(" off "), Some(Background::Off));
    assert_eq!(Background::parse("1"), Some(Background::On));
    assert_eq!(Background::parse("LOCKSTEP"), Some(Background::Lockstep));
    assert_eq!(Background::parse("maybe"), None);
    assert_eq!(JitConfig::default().background, Background::On);
}
