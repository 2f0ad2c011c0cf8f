//! Induction ranges (`induction.rs`): a loop's bound makes its counter's overflow check
//! unnecessary after the first round, and the loop's entry is guarded instead. Each case must
//! give the executor's outcome on every tier; the guard's exit and the recompile that follows
//! it are driven on purpose.

mod common;
use common::{run_all_optimized as run, SMALL_INT_MAX as MAX};
use soma_jit::compiler::DEOPTS_BEFORE_RECOMPILE;
use soma_jit::deopt::DeoptReason;

#[test]
fn a_counting_loop_drops_its_step_check_and_guards_its_entry() {
    let s = run("0 !n { n 1 >+ !n  n 50000 >< >block Nil >choose } >chain >drop n", "[50000]");
    assert_eq!((s.speculative, s.bounded_checks, s.deopts), (1, 1, 0), "{s:?}");
}

#[test]
fn a_countdown_is_bounded_from_below() {
    // `0 n ><` keeps `n` at 1 or more for the next round: `n - 1` cannot leave the range.
    let s = run("50000 !n { n 1 >- !n  0 n >< >block Nil >choose } >chain >drop n", "[0]");
    assert_eq!((s.bounded_checks, s.deopts), (1, 0), "{s:?}");
}

#[test]
fn a_loop_entered_past_its_bound_leaves_before_its_first_round_then_keeps_its_checks() {
    // The loop Block runs once from 0 (in range) and then five times from 500, where the
    // guard fails: the executor runs that one round each time; after four such exits the
    // recompile keeps the overflow check and guards nothing.
    let src = "{ n 1 >+ !n  n 100 >< >block Nil >choose } !step \
               0 !n  step >chain >drop n \
               500 !n step >chain >drop  500 !n step >chain >drop  500 !n step >chain >drop \
               500 !n step >chain >drop  500 !n step >chain >drop n \
               0 !n  step >chain >drop n";
    let s = run(src, "[100, 501, 100]");
    assert_eq!(s.deopt_reasons[DeoptReason::InductionRange as usize], DEOPTS_BEFORE_RECOMPILE as u64, "{s:?}");
    assert_eq!(s.deopts, DEOPTS_BEFORE_RECOMPILE as u64, "{s:?}");
    assert_eq!(s.respecialized, 1, "speculative again, with the feedback: {s:?}");
    assert_eq!(s.bounded_checks, 1, "only the first compile dropped the check: {s:?}");
    let step: Vec<bool> = s.blocks.iter().filter(|b| (b.module, b.code) == (1, 1)).map(|b| b.speculative).collect();
    assert_eq!(step, [true, true], "{s:?}");
}

#[test]
fn an_entry_at_the_top_of_the_range_leaves_and_the_executor_makes_the_bigint() {
    // Later rounds stay below MAX, so `n + 1` fits in them; the first round's `n` is MAX
    // itself: the guard sends it to the executor, whose sum is a BigInt.
    let src = format!("{MAX} !n {{ n 1 >+ !n  n {MAX} >< >block Nil >choose }} >chain >drop n");
    let s = run(&src, &format!("[{}]", MAX + 1));
    assert_eq!(s.bounded_checks, 1, "{s:?}");
    assert_eq!(s.deopt_reasons[DeoptReason::InductionRange as usize], 1, "{s:?}");
}

#[test]
fn a_step_the_bound_does_not_cover_keeps_its_check() {
    // `n < MAX` lets `n` reach MAX - 1, and `n + 2` may then overflow: the check stays, and
    // it is what leaves when the sum does not fit.
    let start = MAX - 7;
    let src = format!("{start} !n {{ n 2 >+ !n  n {MAX} >< >block Nil >choose }} >chain >drop n");
    let s = run(&src, &format!("[{}]", MAX + 1));
    assert_eq!(s.bounded_checks, 0, "{s:?}");
    assert!(s.deopt_reasons[DeoptReason::IntOverflow as usize] >= 1, "{s:?}");
}

#[test]
fn a_counter_tested_before_its_step_is_bounded_by_the_test() {
    // The test comes first: a round that goes on had `n < 100` before its step, so the next
    // starts at 100 at most.
    let s = run("0 !n { n 100 >< >block Nil >choose  n 1 >+ !n } >chain >drop n", "[101]");
    assert_eq!((s.bounded_checks, s.deopts), (1, 0), "{s:?}");
}
