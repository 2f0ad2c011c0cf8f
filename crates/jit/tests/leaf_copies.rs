//! Leaf copies (docs/jit.md, "Leaf copies"; `translate/leaf.rs`): at a direct self-call site,
//! speculative code inlines its own Block once and, where that copy would call the Block
//! again, leaves it for a direct call that runs the call again from its start. Running a
//! call's beginning twice is only right when nothing saw the first run, so these tests run
//! copies whose paths stop, overflow, print, and run out of steps or depth at every point,
//! and compare each outcome with the executor's.

mod common;
use common::{diff, on_big_stack, run_on, Runner, Tier};
use soma_jit::deopt::DeoptReason;
use soma_jit::JitStats;

const ALL_OPTIMIZED: Tier = Tier::Optimizing(0, 0);

/// `ifelse` without the stdlib (the arms adopt the caller's Register).
const FIB: &str = "{ !_.n  _. _.n 2 >< { !_. _.n } { !_. _.n 1 >- >fib  _.n 2 >- >fib >+ } >choose !_.go >_.go } !fib ";

/// `src` run on `tier` with a step budget of `budget`: the outcome and the JIT's statistics.
fn run_with_budget(src: &str, tier: Tier, budget: u64) -> (common::Outcome, Option<JitStats>) {
    let mut r = Runner::new(tier);
    r.vm.begin_budget(Some(budget), None);
    let res = r.run_src(src);
    (r.outcome(res), soma_jit::stats(&mut r.vm))
}

/// The executor's outcome on the all-optimized tier and every other (`diff`, which includes
/// the unrolled tier leaf copies fall back to); the all-optimized run's statistics.
fn like_the_executor(src: &str, stdlib: bool) -> JitStats {
    let (reference, _) = run_on(Tier::Executor, src, stdlib);
    let (o, mut r) = run_on(ALL_OPTIMIZED, src, stdlib);
    assert_eq!(o, reference, "source:\n{src}");
    assert_eq!(r.vm.shadow_depth(), 0);
    assert_eq!(r.vm.depth(), 0);
    diff(src, stdlib);
    soma_jit::stats(&mut r.vm).unwrap()
}

#[test]
fn fib_takes_its_leaves_inline() {
    let src = format!("{FIB} 20 >fib");
    let s = like_the_executor(&src, false);
    // All optimized at once unrolls the recursion one level: the four call sites of the
    // unrolled copy get a copy each; nothing deopts.
    assert_eq!((s.leaf_copies, s.direct_call_sites, s.unrolled, s.deopts), (4, 4, 1, 0), "{s:?}");
    // Not unrolled: both sites of the one level get a copy.
    let mut r = Runner::with_config(soma_jit::JitConfig { unroll_after: None, ..all_optimized() });
    let res = r.run_src(&src);
    assert_eq!(r.outcome(res).al, "[6765]");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.leaf_copies, s.direct_call_sites, s.unrolled, s.deopts), (2, 2, 0, 0), "{s:?}");
}

/// The all-optimized tier's settings, to vary one of them.
fn all_optimized() -> soma_jit::JitConfig {
    soma_jit::JitConfig {
        threshold: Some(0),
        opt_threshold: Some(0),
        verify: true,
        background: soma_jit::Background::Lockstep,
        early_tier_up: false,
        ..soma_jit::JitConfig::default()
    }
}

#[test]
fn the_stdlib_fib_takes_its_leaves_inline() {
    let s = like_the_executor(
        "{ !_.n  _.  _.n 2 ><  { !_. _.n }  { !_. _.n 1 >- >fib  _.n 2 >- >fib >+ } >choose >^ } !fib  18 >fib",
        true,
    );
    assert!(s.leaf_copies >= 2, "{s:?}");
}

#[test]
fn a_leaf_that_overflows_inside_its_copy_leaves_with_the_copys_frames() {
    // The base case adds past the small-Int range: the exit is inside the copy (its frames
    // made real for the executor), the BigInts go up through the callers' AL.
    let src = "{ !_.n _. _.n 2 >< { !_. _.n 140737488355327 >+ } \
               { !_. _.n 1 >- >p  _.n 2 >- >p >+ } >choose !_.go >_.go } !p 9 >p";
    let s = like_the_executor(src, false);
    assert!(s.leaf_copies >= 1, "{s:?}");
    assert!(s.deopt_reasons[DeoptReason::IntOverflow as usize] >= 1, "{s:?}");
}

#[test]
fn a_copy_that_would_print_before_it_leaves_is_not_made() {
    // `pr` prints: a call in the copy's path to its own call, which running the call again
    // would make twice. The translation gives its copies up (and unrolls instead, all
    // optimized at once); each line is printed once.
    let src = "{ (x) >print } !pr \
               { !_.n >pr _. _.n 1 >< { !_. 0 } { !_. _.n 1 >- >q 1 >+ } >choose !_.go >_.go } !q 5 >q";
    let s = like_the_executor(src, true);
    assert_eq!((s.leaf_copies, s.unrolled), (0, 1), "{s:?}");
    assert!(s.retranslations >= 1, "{s:?}");
    let (o, _) = run_on(ALL_OPTIMIZED, src, true);
    assert_eq!(o.out.len(), 6, "{o:?}");
    // A leaf that prints (`print` itself needs a real frame, so this copy is not inlined at
    // all): the same lines as the executor.
    let src = "{ !_.n _. _.n 1 >< { !_. _.n >print 0 } { !_. _.n 1 >- >q 1 >+ } >choose !_.go >_.go } !q 5 >q";
    let s = like_the_executor(src, true);
    assert_eq!(s.leaf_copies, 0, "{s:?}");
}

#[test]
fn a_step_budget_stops_leaf_copies_at_the_same_statement() {
    // The copy's entries count down the poll countdown; leaving the copy puts it back, and
    // the direct call counts them again, as the executor counts each entry once. Every budget
    // from 1 to 400 stops fib(9) (about 330 entries) somewhere else: each must stop where the
    // executor stops, with the same error and AL.
    let src = format!("{FIB} 9 >fib");
    let run = |tier: Tier, budget: u64| run_with_budget(&src, tier, budget);
    let mut copies = 0;
    for budget in 1..=400 {
        let (reference, _) = run(Tier::Executor, budget);
        let (o, s) = run(ALL_OPTIMIZED, budget);
        assert_eq!(o, reference, "budget {budget}");
        copies += s.expect("installed").leaf_copies;
    }
    assert!(copies > 0, "no leaf copy compiled");
    let (reference, _) = run(Tier::Executor, 400);
    assert!(reference.err.is_none(), "fib(9) fits 400 steps: {reference:?}");
}

#[test]
fn recursion_past_the_depth_limit_with_leaf_copies_is_the_executors_error() {
    on_big_stack(|| {
        // Every path of the copy calls again: it leaves at once, and the depth its virtual
        // frame added is put back before the direct call counts its own.
        let s = like_the_executor("{ !_.n _.n 1 >- >inf 1 >+ } !inf 5 >inf", false);
        assert!(s.leaf_copies >= 1, "{s:?}");
        let s = like_the_executor(
            "{ !_.n _. _.n 0 >< { !_. 0 } { !_. _.n 1 >- >deep 1 >+ } >choose !_.go >_.go } !deep 20000 >deep",
            false,
        );
        assert!(s.leaf_copies >= 1, "{s:?}");
    });
}

#[test]
fn a_long_recursion_with_leaf_copies_takes_its_polls() {
    // fib(22) makes about 86,000 entries: the polls fall due inside copies and direct calls
    // alike, most near a region's test (taken early), some at a direct call's turn.
    let src = format!("{FIB} 22 >fib");
    let (reference, _) = run_on(Tier::Executor, &src, false);
    let (o, mut r) = run_on(ALL_OPTIMIZED, &src, false);
    assert_eq!(o, reference);
    assert_eq!(o.al, "[17711]");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.leaf_copies >= 1 && s.early_polls >= 1, "{s:?}");
}

#[test]
fn switched_off_direct_recursion_unrolls_as_before() {
    let mut r = Runner::with_config(soma_jit::JitConfig { leaf_inline: false, ..all_optimized() });
    let res = r.run_src(&format!("{FIB} 20 >fib"));
    assert_eq!(r.outcome(res).al, "[6765]");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.leaf_copies, s.unrolled, s.direct_call_sites), (0, 1, 4), "{s:?}");
}

#[test]
fn polls_taken_early_inside_copies_keep_a_far_step_budget_exact() {
    // fib(20) makes about 33,000 entries: with budgets that end near its end, the polls
    // before are taken early (the budget is good for a whole interval), some of them inside
    // a copy that then leaves for its direct call. The countdown the poll re-armed must
    // survive the leave (the copy's own entries given back on top of it): restored to the
    // site's value instead, the next poll comes an interval early and charges steps never
    // run, and the budget stops the run before the executor would.
    let src = format!("{FIB} 20 >fib");
    let run = |tier: Tier, budget: u64| run_with_budget(&src, tier, budget);
    let mut early = 0;
    for budget in (30_000..30_040).chain([25_001, 31_337, 32_768]) {
        let (reference, _) = run(Tier::Executor, budget);
        assert!(reference.err.is_some(), "budget {budget} stops fib(20): {reference:?}");
        // With leaf copies, and unrolled without them (the same early polls, no copy).
        for tier in [ALL_OPTIMIZED, Tier::Unrolled] {
            let (o, s) = run(tier, budget);
            assert_eq!(o, reference, "budget {budget}, {tier:?}");
            early += s.expect("installed").early_polls;
        }
    }
    assert!(early > 0, "no poll was taken early");
}
