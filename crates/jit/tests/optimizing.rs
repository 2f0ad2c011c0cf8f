//! The optimizing tier (tier 2): baseline code that stays hot asks for it, the optimized code
//! is installed at a later safepoint (deterministically, in lockstep); a `chain` loop's body
//! is compiled by the optimizing tier at once.

mod common;
use common::{run_on, Runner, Tier};

fn tiers(r: &mut Runner) -> Vec<(String, u8)> {
    let s = soma_jit::stats(&mut r.vm).unwrap();
    s.blocks.iter().map(|b| (b.name.clone(), b.tier)).collect()
}

#[test]
fn a_block_that_stays_hot_is_compiled_again_by_the_optimizing_tier() {
    // Baseline after 1 run, optimized when its count reaches 5 (asked for by the baseline
    // code itself, installed at the next safepoint).
    let src = "{ 7 } !k  >k >k >k >k >k >k >k >k";
    let (reference, _) = run_on(Tier::Executor, src, false);
    let (o, mut r) = run_on(Tier::Optimizing(1, 5), src, false);
    assert_eq!(o, reference);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.blocks_compiled, s.optimized), (2, 1), "{s:?}");
    let t = tiers(&mut r);
    assert_eq!(t[0].1, 1);
    assert_eq!(t[1].1, 2);
    assert!(t[1].0.ends_with("_opt"), "{t:?}");
}

#[test]
fn a_block_past_the_threshold_before_its_baseline_code_is_installed_is_optimized_then() {
    // Baseline code asks for the optimizing tier on the entry that brings the count to the
    // threshold. Here the count is there already when the baseline code is translated (both
    // thresholds are 1), so that code would never ask: its install does.
    let src = "{ 7 } !k  >k >k >k >k >k >k";
    let (reference, _) = run_on(Tier::Executor, src, false);
    let (o, mut r) = run_on(Tier::Optimizing(1, 1), src, false);
    assert_eq!(o, reference);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.blocks_compiled, s.optimized), (2, 1), "{s:?}");
}

#[test]
fn a_loop_body_goes_to_the_optimizing_tier_at_once() {
    // A Block that runs `>block` is a `chain` loop's body: its first compile is optimized
    // (speculative here), with no baseline code before it.
    let src = "0 !n { n 1 >+ !n  n 20000 >< >block Nil >choose } >chain >drop n";
    let (reference, _) = run_on(Tier::Executor, src, true);
    let (o, mut r) = run_on(Tier::Optimizing(1, 100), src, true);
    assert_eq!(o, reference);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.blocks_compiled, s.optimized, s.speculative), (1, 1, 1), "{s:?}");
    // With the optimizing tier off, the baseline tier compiles it.
    let (o, mut r) = run_on(Tier::Jit(1), src, true);
    assert_eq!(o, reference);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.blocks_compiled, s.optimized), (1, 0), "{s:?}");
}

#[test]
fn optimized_code_deopts_like_baseline_code() {
    // Everything optimized at once; rebinding `+` mid-loop makes the guarded site leave the
    // optimized code through its deoptimisation exit.
    // `+` becomes a Block that adds through the saved builtin: same sums, another identity.
    let src = "+ !plus  0 !i  { i 1 >+ !i  i 100 >< >block Nil >choose } !step \
               >step >chain >drop  { >plus } !+  0 !i  >step >chain >drop  i";
    let (reference, _) = run_on(Tier::Executor, src, true);
    assert_eq!(reference.al, "[100]");
    let (o, mut r) = run_on(Tier::Optimizing(0, 0), src, true);
    assert_eq!(o, reference);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.deopts >= 1, "{s:?}");
    assert_eq!(s.optimized, s.blocks_compiled, "{s:?}");
}

#[test]
fn off_keeps_the_baseline_tier_only() {
    let src = "{ 7 } !k  >k >k >k >k >k >k >k >k";
    let (_, mut r) = run_on(Tier::Jit(1), src, false);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.blocks_compiled, s.optimized), (1, 0), "{s:?}");
}


/// The tier of each compile of the Block stored at `name`, in order.
fn tiers_of(r: &mut Runner, name: &str) -> Vec<u8> {
    let v = r.vm.read_store_path(&[name]).expect("a stored Block");
    let b = r.vm.block_obj(v).expect("a Block");
    let (module, code) = (b.module, b.code);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    s.blocks.iter().filter(|b| (b.module, b.code) == (module, code)).map(|b| b.tier).collect()
}

#[test]
fn a_block_recursing_at_the_threshold_goes_to_the_optimizing_tier_at_once() {
    // `fib` reaches the threshold (3) inside its own recursion and calls itself by name (from
    // a Block literal nested in it): recursion is its loop, its first compile is optimized.
    let fib = "{ !_.n  _.  _.n 2 ><  { !_. _.n }  { !_. _.n 1 >- >fib  _.n 2 >- >fib  >+ }  >choose >^ } !fib ";
    let src = format!("{fib} 15 >fib");
    let (reference, _) = run_on(Tier::Executor, &src, true);
    let (o, mut r) = run_on(Tier::Optimizing(3, 1_000_000), &src, true);
    assert_eq!(o, reference);
    assert_eq!(o.al, "[610]");
    assert_eq!(tiers_of(&mut r, "fib"), [2]);

    // The same Block reaching the threshold outside any recursion (base cases only): baseline.
    let src = format!("{fib} 1 >fib 0 >fib 1 >fib 0 >fib 15 >fib");
    let (reference, _) = run_on(Tier::Executor, &src, true);
    let (o, mut r) = run_on(Tier::Optimizing(3, 1_000_000), &src, true);
    assert_eq!(o, reference);
    assert_eq!(tiers_of(&mut r, "fib"), [1]);

    // A Block re-entered without calling itself (`twice` runs the Block it is given, which runs
    // `twice` again, three levels deep) is not recursing: baseline.
    let src = "{ !_.f >_.f >_.f } !twice  \
               { { { 1 } >twice } >twice } >twice";
    let (reference, _) = run_on(Tier::Executor, src, true);
    let (o, mut r) = run_on(Tier::Optimizing(3, 1_000_000), src, true);
    assert_eq!(o, reference);
    assert_eq!(tiers_of(&mut r, "twice"), [1]);
}
