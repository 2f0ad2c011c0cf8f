//! A product by a small constant and the constant added right after it (`3 >* 1 >+`) are one
//! overflow check of the sum in speculative code (`translate/speculate.rs`,
//! `add_of_a_constant_next`). Each case must give the executor's outcome on every tier: the
//! check leaving at the product, a product out of range whose sum is back in it, the `+` path
//! rebound (its guard is taken with the product's lowering).

mod common;
use common::{run_all_optimized as run, SMALL_INT_MAX as MAX};
use soma_jit::deopt::DeoptReason;

#[test]
fn a_product_and_the_constant_added_to_it_are_checked_once() {
    // collatz's step on the 27 chain (111 steps).
    let src = "27 !n 0 !s \
               { n 2 >% 0 >== { n 2 >/ } { n 3 >* 1 >+ } >ifelse !n  s 1 >+ !s \
                 n 1 >> >block Nil >choose } >chain >drop s n";
    let s = run(src, "[111, 1]");
    assert_eq!((s.fused_checks, s.deopts), (1, 0), "{s:?}");
}

#[test]
fn a_sum_out_of_range_leaves_at_the_product_and_the_executor_makes_the_bigint() {
    // 3n + 1 passes the largest small Int in the third round: the fused check leaves with
    // the product's operands back on the AL, and the executor makes the BigInt.
    let start = MAX / 27;
    let src = format!("{start} !n 0 !k {{ n 3 >* 1 >+ !n  k 1 >+ !k  k 5 >< >block Nil >choose }} >chain >drop n");
    let mut expected = i128::from(start);
    for _ in 0..5 {
        expected = expected * 3 + 1;
    }
    let s = run(&src, &format!("[{expected}]"));
    assert!(s.fused_checks >= 1, "{s:?}");
    assert!(s.deopt_reasons[DeoptReason::IntOverflow as usize] >= 1, "{:?}", s.deopts_by_reason());
}

#[test]
fn a_product_out_of_range_whose_sum_is_back_in_it_needs_no_exit() {
    // 2^46 * 2 is one past the largest small Int; minus 1 it is the largest: SOMA's Ints
    // have no size, so only the sum's range matters, and it fits.
    let half = 1i64 << 46;
    let src = format!("{half} !h 0 !n 0 !k {{ h 2 >* -1 >+ !n  k 1 >+ !k  k 3 >< >block Nil >choose }} >chain >drop n");
    let s = run(&src, &format!("[{MAX}]"));
    assert_eq!((s.fused_checks, s.deopts), (1, 0), "{s:?}");
}

#[test]
fn the_add_path_rebound_between_runs_fails_the_preheader_guard() {
    // The fused `+` is assumed to be the builtin, checked once per entry like every guarded
    // path: rebound to a Block that adds 10 more (0 -> 11 -> 44 -> 143), the next run's entry
    // check leaves and the executor runs the Block.
    let src = "+ !plus  { 0 !k { k 3 >* 1 >+ !k  k 100 >< >block Nil >choose } >chain >drop k } !run \
               >run  { >plus 10 >plus } !+  >run";
    let s = run(src, "[121, 143]");
    assert!(s.fused_checks >= 1, "{s:?}");
    assert!(s.deopt_reasons[DeoptReason::EntryCheck as usize] >= 1, "{:?}", s.deopts_by_reason());
}
