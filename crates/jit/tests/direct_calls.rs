//! Direct self-calls (docs/jit.md, "Direct self-calls"): speculative code of a recursive Block
//! calls itself with the arguments and the result outside the AL. Every way out of that
//! protocol is taken here on purpose: a callee that deoptimises and leaves its result on the
//! AL, a callee that leaves nothing, the checks before the call failing (depth limit, frame
//! stack growth, the poll's turn), the shadow stack running out inside a direct callee, the
//! recursive Block rebound mid-recursion. Each must give the executor's outcome.

mod common;
use common::{diff, on_big_stack, run_on, Runner, Tier};
use soma_jit::{Background, JitConfig};
use soma_jit::deopt::DeoptReason;

const ALL_OPTIMIZED: Tier = Tier::Optimizing(0, 0);

/// Run `src` (no stdlib) on the executor and all-optimized: the same outcome, and some call
/// compiled as a direct self-call. Then every other tier. Returns the JIT's Runner.
fn calls_directly_like_the_executor(src: &str, stdlib: bool) -> Runner {
    let (reference, _) = run_on(Tier::Executor, src, stdlib);
    let (o, mut r) = run_on(ALL_OPTIMIZED, src, stdlib);
    assert_eq!(o, reference, "source:\n{src}");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.direct_call_sites >= 1, "no direct self-call compiled: {s:?}");
    assert_eq!(r.vm.shadow_depth(), 0);
    assert_eq!(r.vm.depth(), 0);
    diff(src, stdlib);
    r
}

fn deopt_count(r: &mut Runner, reason: DeoptReason) -> u64 {
    soma_jit::stats(&mut r.vm).unwrap().deopt_reasons[reason as usize]
}

/// `ifelse` without the stdlib: `_. cond { !_. then } { !_. else } >choose !_.go >_.go` (the arms
/// adopt the caller's Register).
const FIB: &str = "{ !_.n  _. _.n 2 >< { !_. _.n } { !_. _.n 1 >- >fib  _.n 2 >- >fib >+ } >choose !_.go >_.go } !fib ";

#[test]
fn fib_calls_itself_directly_without_leaving() {
    let src = format!("{FIB} 20 >fib");
    let mut r = calls_directly_like_the_executor(&src, false);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    // All optimized at once unrolls the recursion and gives the copy's four call sites a
    // leaf copy each (tests/leaf_copies.rs).
    assert_eq!((s.unrolled, s.leaf_copies, s.direct_call_sites, s.deopts), (1, 4, 4, 0), "{s:?}");
    let (o, _) = run_on(ALL_OPTIMIZED, &src, false);
    assert_eq!(o.al, "[6765]");
    // Without leaf copies it unrolls the recursion one level: fib inlined once into
    // itself, the two calls of each level direct.
    let mut r = Runner::with_config(JitConfig { leaf_inline: false, ..all_optimized_config() });
    let res = r.run_src(&src);
    assert_eq!(r.outcome(res).al, "[6765]");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.unrolled, s.direct_call_sites, s.deopts), (1, 4, 0), "{s:?}");
    // Neither: one level, two direct calls.
    let mut r = Runner::with_config(JitConfig { unroll_after: None, leaf_inline: false, ..all_optimized_config() });
    let res = r.run_src(&src);
    assert_eq!(r.outcome(res).al, "[6765]");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.unrolled, s.direct_call_sites, s.deopts), (0, 2, 0), "{s:?}");
}

/// The all-optimized tier's settings, to vary one of them.
fn all_optimized_config() -> JitConfig {
    JitConfig {
        threshold: Some(0),
        opt_threshold: Some(0),
        verify: true,
        background: Background::Lockstep,
        early_tier_up: false,
        ..JitConfig::default()
    }
}

/// Speculative code of a recursion that keeps running is compiled again with the recursion
/// unrolled, in the background, while the recursion runs; once installed, the old code's
/// direct calls go to the new code (the recursion moves over at its next call, not when it
/// returns), and the answer is the executor's.
#[test]
fn a_recursion_that_keeps_running_unrolls_and_moves_over_mid_recursion() {
    let src = format!("{FIB} 22 >fib");
    let (reference, _) = run_on(Tier::Executor, &src, false);
    let config = JitConfig {
        threshold: Some(1),
        opt_threshold: Some(1),
        unroll_after: Some(2),
        verify: true,
        background: Background::Lockstep,
        early_tier_up: false,
        ..JitConfig::default()
    };
    // The code takes its polls early, and without a host hook never declines one: the
    // unrolling it asks for after `unroll_after` of them waits for a routine exit, which the
    // hook's turn gives (every ninth poll, as in the bridge).
    fn hook(_: &mut soma_runtime::Vm, _: *mut std::ffi::c_void) -> soma_runtime::error::RtResult<()> {
        Ok(())
    }
    // Without leaf copies, and with them (first at the one level's two sites, then at the
    // unrolled copy's four).
    for leaf_inline in [false, true] {
        let mut r = Runner::with_config(JitConfig { leaf_inline, ..config.clone() });
        r.vm.set_poll(Some(hook), std::ptr::null_mut());
        let res = r.run_src(&src);
        assert_eq!(r.outcome(res), reference);
        assert_eq!(reference.al, "[17711]");
        let s = soma_jit::stats(&mut r.vm).unwrap();
        assert_eq!(s.unrolled, 1, "{s:?}");
        assert_eq!(s.leaf_copies, if leaf_inline { 2 + 4 } else { 0 }, "{s:?}");
        assert!(s.calls_moved >= 1, "the old code's calls went to the unrolled code: {s:?}");
        assert!(s.poll_exits >= 1 && s.early_polls >= 2, "{s:?}");
        assert_eq!(r.vm.shadow_depth(), 0);
        assert_eq!(r.vm.depth(), 0);
    }
    // Off: never unrolled, however long it runs.
    let mut r = Runner::with_config(JitConfig { unroll_after: None, ..config });
    let res = r.run_src(&src);
    assert_eq!(r.outcome(res), reference);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.unrolled, s.calls_moved), (0, 0), "{s:?}");
}

/// Unrolled code's guards deopt as the one-level code's do: a small-Int result that
/// overflows deep inside the copy, and the Block rebound by a Block it is given.
#[test]
fn unrolled_code_deopts_where_its_assumptions_fail() {
    let src = "{ !_.n _. _.n 2 >< { !_. 140737488355000 } { !_. _.n 1 >- >p _.n 2 >- >p >+ } >choose !_.go >_.go } !p 9 >p";
    let (reference, _) = run_on(Tier::Executor, src, false);
    let (o, mut r) = run_on(Tier::Unrolled, src, false);
    assert_eq!(o, reference);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    // The first code and its recompile with the feedback the overflow taught both unroll.
    assert!(s.unrolled >= 1, "{s:?}");
    assert!(deopt_count(&mut r, DeoptReason::IntOverflow) >= 1, "{s:?}");
    // And with leaf copies, the same outcome.
    calls_directly_like_the_executor(src, false);
}

/// The entries a direct call flushed under its arguments (fib's first result, under the
/// second call) are taken back after it when the AL's top still holds them; a callee that
/// changed them makes its caller leave, and the recompile leaves them on the AL.
#[test]
fn entries_under_a_direct_call_are_taken_back_unless_the_callee_changed_them() {
    let src = format!("{FIB} 16 >fib");
    let mut r = calls_directly_like_the_executor(&src, false);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.retaken_entries >= 1, "{s:?}");
    assert_eq!(deopt_count(&mut r, DeoptReason::AlChangedByCall), 0);
    // The leaves run `_.f`, an argument (unknown when compiled), which replaces the entry
    // under the leaf's own with 7: at a level's second call, the first call's result. The
    // callee still returns directly; its caller finds the AL changed and leaves, and the
    // executor adds the 7.
    let src = "{ !_.n !_.f _. _.n 2 >< { !_. 5 >_.f } { !_. _.f _.n 1 >- >r  _.f _.n 2 >- >r >+ } >choose !_.go >_.go } !r \
               0 { >swap >drop 7 >swap } 9 >r";
    let mut r = calls_directly_like_the_executor(src, true);
    assert!(deopt_count(&mut r, DeoptReason::AlChangedByCall) >= 1);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.respecialized >= 1, "recompiled with the feedback: {s:?}");
    let (o, _) = run_on(ALL_OPTIMIZED, src, true);
    assert_eq!(o.al, "[7, 33]");
}

/// A direct call takes its result as a small Int: as the integer itself when the callee
/// knew it as one, else tested once at the call. A result of another kind makes the caller
/// leave, and the recompile takes results as they come.
#[test]
fn a_direct_call_that_returns_no_small_int_makes_its_caller_leave_once() {
    let src = "{ !_.n _. _.n 2 >< { !_. (leaf) } { !_. _.n 1 >- >s  _.n 2 >- >s >drop } >choose !_.go >_.go } !s 12 >s";
    let mut r = calls_directly_like_the_executor(src, true);
    assert!(deopt_count(&mut r, DeoptReason::CallResultNotSmallInt) >= 1);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.respecialized >= 1, "recompiled with the feedback: {s:?}");
    let (o, mut r) = run_on(ALL_OPTIMIZED, src, true);
    assert_eq!(o.al, "[(leaf)]");
    // The recompile's calls take the strings without leaving: a handful of deopts, not one
    // per call.
    let deopts = deopt_count(&mut r, DeoptReason::CallResultNotSmallInt);
    assert!((1..=8).contains(&deopts), "{deopts}");
}

/// Code that stores nothing in its shadow slots but at its exits leaves them to the exits
/// (docs/jit.md, "Slots reserved by the exits"): an exit stores the names where the entry
/// found the top, and `jit_exit` reserves the slots before anything collects. Run with the
/// collector at every safepoint: the string `_.s` holds, in a variable only, must survive the
/// exit's materialisation of the Register.
#[test]
fn exits_reserve_the_slots_of_code_that_stores_nothing_there() {
    // `_.n` is known as a small Int from its first use on, before the helper that may
    // collect (`concat`): no name needs a slot then.
    let src = "{ !_.n  _.n 1 >+ !_.k  (ab) (cd) >concat !_.s  _.n 140737488355000 >+ !_.m  _.s _.m _.k } !f  1000 >f";
    let (reference, _) = run_on(Tier::Executor, src, false);
    assert_eq!(reference.al, "[(abcd), 140737488356000, 1001]");
    let mut r = Runner::with_config(all_optimized_config());
    r.vm.heap().set_stress(true);
    let res = r.run_src(src);
    assert_eq!(r.outcome(res), reference);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.exit_reserved_slots >= 1, "{s:?}");
    assert!(deopt_count(&mut r, DeoptReason::IntOverflow) >= 1, "{s:?}");
    assert_eq!(r.vm.shadow_depth(), 0);
    // Under code that does reserve its slots at entry (`_.s`, a string made at run time,
    // lives across the call of `_.f`, a Block it is given): the exits of `_.f`'s code
    // reserve its slots above the caller's and release only those, so the caller's
    // string stays rooted for the collections that follow.
    let src = "{ !_.n  _.n 140737488355000 >+ } !inner \
               { !_.f  (ab) (cd) >concat !_.s  1000 >_.f !_.m  (ef) (gh) >concat !_.t  _.s _.t >concat _.m } !outer \
               inner >outer";
    let (reference, _) = run_on(Tier::Executor, src, false);
    assert_eq!(reference.al, "[(abcdefgh), 140737488356000]");
    let mut r = Runner::with_config(all_optimized_config());
    r.vm.heap().set_stress(true);
    let res = r.run_src(src);
    assert_eq!(r.outcome(res), reference);
    assert_eq!(r.vm.shadow_depth(), 0);
    assert!(soma_jit::stats(&mut r.vm).unwrap().exit_reserved_slots >= 1);
    // fib's names are small Ints: its slots are reserved by its exits too, and a deep
    // recursion whose leaves overflow leaves through them at every level.
    let src = "{ !_.n _. _.n 2 >< { !_. 140737488355000 } { !_. _.n 1 >- >p 100 >+ } >choose !_.go >_.go } !p 40 >p";
    let mut r = calls_directly_like_the_executor(src, false);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.exit_reserved_slots >= 1, "{s:?}");
}

#[test]
fn the_stdlib_fib_calls_itself_directly() {
    let src = "{ !_.n  _.  _.n 2 ><  { !_. _.n }  { !_. _.n 1 >- >fib  _.n 2 >- >fib >+ } \
               >choose >^ } !fib  18 >fib";
    calls_directly_like_the_executor(src, true);
}

#[test]
fn two_arguments_pass_in_order() {
    // Subtraction is not commutative: swapped arguments would show.
    // 100 - 10 - 9 - ... - 1.
    let src = "{ !_.a !_.b  _. _.a 1 >< { !_. _.b } { !_. _.b _.a >- _.a 1 >- >f } >choose !_.go >_.go } !f \
               100 10 >f";
    let (o, _) = run_on(ALL_OPTIMIZED, src, false);
    assert_eq!(o.al, "[45]");
    calls_directly_like_the_executor(src, false);
}

#[test]
fn a_callee_that_overflows_deep_inside_returns_its_bigint_through_the_al() {
    // At n = 1 the constant plus 100 per level overflows the small-Int range: that callee
    // deoptimises, the executor finishes it and leaves the BigInt on the AL, and each caller
    // takes its result from there (and deoptimises at its own `+`).
    let src = "{ !_.n _. _.n 2 >< { !_. 140737488355000 } { !_. _.n 1 >- >p 100 >+ } >choose !_.go >_.go } !p 12 >p";
    let mut r = calls_directly_like_the_executor(src, false);
    assert!(deopt_count(&mut r, DeoptReason::IntOverflow) >= 1);
}

#[test]
fn a_callee_that_leaves_nothing_makes_its_caller_take_the_al_or_leave() {
    // The base case pushes nothing. With something under the call on the AL the caller takes
    // it as the call's result (the executor's AL is the same either way); with the AL empty
    // it leaves, and the executor runs on after the call.
    let q = "{ !_.n _. _.n 1 >< { !_. } { !_. _.n 1 >- >q } >choose !_.go >_.go } !q ";
    let mut r = calls_directly_like_the_executor(&format!("{q} 6 >q"), false);
    assert!(deopt_count(&mut r, DeoptReason::NoCallResult) >= 1);
    let mut r = calls_directly_like_the_executor(&format!("{q} 7 6 >q"), false);
    assert_eq!(deopt_count(&mut r, DeoptReason::NoCallResult), 0);
}

#[test]
fn a_callee_that_leaves_two_results_returns_the_top_one_and_pushes_the_other() {
    let src = "{ !_.n _. _.n 1 >< { !_. 5 6 } { !_. _.n 1 >- >t >+ 1 } >choose !_.go >_.go } !t 4 >t";
    calls_directly_like_the_executor(src, false);
}

#[test]
fn a_callee_that_validated_again_after_a_write_makes_its_caller_check_too() {
    // The leaves call `bump`, which writes `k` four calls down (`bump` -> `bump.once` -> `w1`
    // -> `w2`): deeper than the look that allows direct calls (the code writes nothing, nor
    // do its callees three levels down), within the one that makes the check after the call
    // validate again, refill the table and go on. So a callee returns its result directly
    // with the write counter moved, and its caller, which read `k` before the call, must
    // still check after it (and read `k` anew) rather than trust the direct return: a caller
    // that skipped the check would add a stale `k`. (With the stdlib, for `drop`.)
    let src = "0 !k  { k 1 >+ !k } !w2  { >w2 } !w1  { >w1 Nil } !bump.once \
               { bump.once >chain >drop } !bump \
               { !_.n _. _.n 2 >< { !_. >bump k } { !_. k _.n 1 >- >r  _.n 2 >- >r >+ k >+ >+ } \
               >choose !_.go >_.go } !r  12 >r k";
    let mut r = calls_directly_like_the_executor(src, true);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.revalidated >= 1, "{s:?}");
    let (o, _) = run_on(ALL_OPTIMIZED, src, true);
    assert_eq!(o.al, "[80897, 233]");
}

#[test]
fn a_callee_whose_check_after_a_call_fails_returns_through_the_al_and_its_caller_checks() {
    // The leaves run `_.f`, a Block passed as an argument (unknown when compiled), which
    // writes `k`: the leaf's check after that call leaves, so it returns its result through
    // the AL, and each caller, which holds `k` from before, checks and leaves too.
    let src = "0 !k  { k 1 >+ !k } !bump \
               { !_.n !_.f _. _.n 2 >< { !_. >_.f k } \
               { !_. k  _.f _.n 1 >- >r  _.f _.n 2 >- >r >+ k >+ >+ } >choose !_.go >_.go } !r \
               bump 12 >r k";
    let mut r = calls_directly_like_the_executor(src, false);
    assert!(deopt_count(&mut r, DeoptReason::StoreChangedByCall) >= 1);
}

#[test]
fn recursion_past_the_depth_limit_is_the_executors_error() {
    on_big_stack(|| {
        // The caller's check before the call, or the callee's check of its inlined frames,
        // fails at the limit: the executor raises the error where it belongs.
        calls_directly_like_the_executor("{ !_.n _.n 1 >- >inf 1 >+ } !inf 5 >inf", false);
        let src = "{ !_.n _. _.n 0 >< { !_. 0 } { !_. _.n 1 >- >deep 1 >+ } >choose !_.go >_.go } !deep 20000 >deep";
        calls_directly_like_the_executor(src, false);
        // `==` inlines three levels deep: the callee's check of its deepest inlined frame
        // fails while its caller's check passed, and its arguments go back on the AL for the
        // executor.
        let src = "{ !_.n _. _.n 0 >== { !_. 0 } { !_. _.n 1 >- >deep 1 >+ } >ifelse } !deep 20000 >deep";
        let mut r = calls_directly_like_the_executor(src, true);
        assert!(deopt_count(&mut r, DeoptReason::EntryCheck) >= 1);
    });
}

#[test]
fn deep_direct_recursion_grows_the_frame_stack_and_takes_the_poll() {
    // 3000 levels need more frames than the frame stack starts with, and more than 4,096
    // entries reach the poll's turn: both take the slow path (`jit_exec`, arguments pushed).
    on_big_stack(|| {
        let src = "{ !_.n _. _.n 1 >< { !_. 0 } { !_. _.n 1 >- >s _.n >+ } >choose !_.go >_.go } !s 3000 >s  3000 >s";
        let (o, _) = run_on(ALL_OPTIMIZED, src, false);
        assert_eq!(o.al, "[4501500, 4501500]");
        calls_directly_like_the_executor(src, false);
    });
}

#[test]
fn a_full_shadow_stack_in_a_direct_callee_runs_it_in_the_executor() {
    // 20 names a level, holding strings made at run time, which the slots keep alive across
    // the calls (so the entry reserves them): past about 3,300 levels the shadow stack is
    // full, and the direct callee that finds it so pushes its arguments and runs in the
    // executor.
    on_big_stack(|| {
        let names: String = (0..19).map(|i| format!("(v) ({i}) >concat !_.v{i} ")).collect();
        let src = format!(
            "{{ !_.n {names} _. _.n 1 >< {{ !_. 0 }} {{ !_. _.n 1 >- >r 1 >+ }} >choose !_.go >_.go }} !r 4000 >r"
        );
        let mut r = calls_directly_like_the_executor(&src, false);
        assert!(deopt_count(&mut r, DeoptReason::ShadowStackFull) >= 1);
        assert_eq!(r.outcome(Ok(())).al, "[4000]");
    });
}

#[test]
fn the_recursive_block_rebound_mid_recursion_is_called_anew() {
    // `w` (an argument, unknown at compile time) rebinds `rb` at n = 2: the direct callee there
    // leaves after that call, and every caller after its own call (the write counter moved);
    // the executor runs the new `rb` from then on.
    let src = "{ !_.k _.k 3 >< { { !_.a !_.b 100 } !rb } { } >choose !_.g >_.g } !w \
               { !_.w !_.n  _. _.n 1 >< { !_. 0 } { !_. _.n >_.w  _.n 1 >- _.w >rb 1 >+ } >choose !_.go >_.go } !rb \
               6 w >rb";
    let mut r = calls_directly_like_the_executor(src, false);
    assert!(deopt_count(&mut r, DeoptReason::StoreChangedByCall) >= 1);
}

#[test]
fn a_block_that_writes_the_store_calls_itself_the_ordinary_way() {
    // Its own writes would make the validation table stale for a direct callee.
    let src = "0 !c { !_.n c 1 >+ !c _. _.n 1 >< { !_. 0 } { !_. _.n 1 >- >wr } >choose !_.go >_.go } !wr 50 >wr c";
    let (reference, _) = run_on(Tier::Executor, src, false);
    let (o, mut r) = run_on(ALL_OPTIMIZED, src, false);
    assert_eq!(o, reference);
    assert_eq!(o.al, "[0, 51]");
    assert_eq!(soma_jit::stats(&mut r.vm).unwrap().direct_call_sites, 0);
    diff(src, false);
}
