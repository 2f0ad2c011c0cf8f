//! Speculative code (the optimizing tier, docs/jit.md "Speculative code"): every assumption it
//! makes once per entry, and every check it makes instead of a slow path, is broken here on
//! purpose. Each case must give the executor's outcome (AL, output, error with its position),
//! and must have run speculative code that then deoptimized.

mod common;
use common::{diff, on_big_stack, run_on, Runner, Tier};
use soma_jit::deopt::DeoptReason;
use soma_jit::compiler::DEOPTS_BEFORE_RECOMPILE;

/// All optimized at once, so the loop Blocks are speculative from their first run.
const ALL_OPTIMIZED: Tier = Tier::Optimizing(0, 0);

/// Run `src` on the executor and all-optimized; assert the same outcome, that some code was
/// speculative and that it deoptimized at least `deopts` times, at least once for `reason`
/// (the check the case is about). Returns the JIT's Runner.
fn deopts_like_the_executor(src: &str, deopts: u64, reason: DeoptReason) -> Runner {
    let (reference, _) = run_on(Tier::Executor, src, true);
    let (o, mut r) = run_on(ALL_OPTIMIZED, src, true);
    assert_eq!(o, reference, "source:\n{src}");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.speculative >= 1, "nothing speculative: {s:?}");
    assert!(s.deopts >= deopts, "expected {deopts} deopts: {s:?}");
    assert!(s.deopt_reasons[reason as usize] >= 1, "no deopt for {reason:?}: {:?}", s.deopts_by_reason());
    assert_eq!(r.vm.shadow_depth(), 0);
    assert_eq!(r.vm.depth(), 0);
    // And every other tier too.
    diff(src, true);
    r
}

/// `src` runs speculative code that never leaves, to `al`, and agrees with every tier.
fn speculates_without_deopts(src: &str, al: &str) {
    let (o, mut r) = run_on(ALL_OPTIMIZED, src, true);
    assert_eq!(o.al, al);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.speculative >= 1, "{s:?}");
    assert_eq!(s.deopts, 0, "{s:?}");
    diff(src, true);
}

#[test]
fn a_counting_loop_is_speculative_and_exact() {
    let src = "0 !n { n 1 >+ !n  n 50000 >< >block Nil >choose } >chain >drop n";
    let (o, mut r) = run_on(ALL_OPTIMIZED, src, true);
    assert_eq!(o.al, "[50000]");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.speculative, s.deopts), (1, 0), "{s:?}");
}

#[test]
fn a_builtin_rebound_between_runs_fails_the_preheader_guard() {
    // `+` becomes a Block adding through the saved builtin: same sums, another identity.
    let src = "+ !plus  0 !i  { i 1 >+ !i  i 100 >< >block Nil >choose } !step \
               >step >chain >drop  { >plus } !+  0 !i  >step >chain >drop  i";
    deopts_like_the_executor(src, 1, DeoptReason::EntryCheck);
}

#[test]
fn a_bigint_where_a_small_int_was_assumed_fails_the_preheader_and_widens_that_path() {
    // Compiled while `n` and `lim` are small; run again from BigInts (2^47 and above are
    // BigInts). The entry exits name the cell whose small-Int check failed, so the recompile
    // stops assuming it (and, after the next exits, the other) and still speculates.
    let src = "{ n 1 >+ !n  n lim >< >block Nil >choose } !step \
               0 !n 10 !lim  >step >chain >drop \
               1000000000000000 !n  1000000000000020 !lim  >step >chain >drop  n";
    let mut r = deopts_like_the_executor(src, 4, DeoptReason::EntryCheck);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.recompiles >= 1, "{s:?}");
    assert!(s.respecialized >= 1, "{s:?}");
    assert!(loop_compiles(&s).iter().all(|&spec| spec), "{s:?}");
}

#[test]
fn an_overflow_mid_round_deopts_at_the_builtin_and_continues_with_bigints() {
    // 2^47 - 4: the fourth increment overflows the small-int range inside a round; the
    // rounds after it find a BigInt in `n` at entry.
    let src = "140737488355324 !n  0 !k \
               { n 1 >+ !n  k 1 >+ !k  k 12 >< >block Nil >choose } >chain >drop  n";
    let mut r = deopts_like_the_executor(src, 1, DeoptReason::IntOverflow);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.deopt_reasons[DeoptReason::EntryCheck as usize] >= 1, "{s:?}");
}

#[test]
fn a_register_holding_a_choice_is_the_arms_block_in_that_arm_and_at_its_exits() {
    // `pick` keeps its choice in `_.go` and hands its Register to the arm, which reads
    // `_.go` into a Store cell. In the last round of `then.b` an increment overflows the
    // small-int range before that read: the exit there materialises `_.go` as the arm's
    // Block (known in the arm, no longer selected), and the executor, which goes on from the
    // exit, must find that Block in it. (Blocks print by the shape of their bodies, and the
    // two arms have different shapes.)
    let src = "{ !_. n 1 >+ !n  _.go !t.seen } !then.b \
               { !_. _.go !e.seen } !else.b \
               { >choose !_.go _. >_.go } !pick \
               140737488355288 !n  {} !t.seen  {} !e.seen  0 !k \
               { k 2 >% 0 >== then.b else.b >pick  k 1 >+ !k  k 80 >< >block Nil >choose } \
               >chain >drop \
               t.seen >print  then.b >print  e.seen >print  else.b >print  n k";
    let mut r = deopts_like_the_executor(src, 1, DeoptReason::IntOverflow);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.known_choices >= 2, "{s:?}");
    let (o, _) = run_on(ALL_OPTIMIZED, src, true);
    assert_eq!(o.al, "[140737488355328, 80]");
    let lines = &o.out;
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], lines[1], "then.b's `_.go`");
    assert_eq!(lines[2], lines[3], "else.b's `_.go`");
    assert_ne!(lines[0], lines[2]);
}

#[test]
fn quotients_and_remainders_by_constants_at_the_edge_of_the_small_int_range() {
    // By 2, 7 and -7 the results always fit (no check); by -1 the smallest small Int
    // overflows into a BigInt, which the check catches.
    let src = "-140737488355328 !x  0 !i  0 !h 0 !m 0 !m2 0 !d 0 !q \
               { x 2 >/ !h  x 7 >% !m  x -7 >% !m2  x -7 >/ !d  x -1 >/ !q \
                 i 1 >+ !i  i 3 >< >block Nil >choose } >chain >drop  h m m2 d q";
    let (o, _) = run_on(Tier::Executor, src, true);
    assert_eq!(o.al, "[-70368744177664, 3, -4, 20105355479332, 140737488355328]");
    deopts_like_the_executor(src, 1, DeoptReason::IntOverflow);
}

#[test]
fn multiplying_by_a_constant_overflows_at_either_end_of_the_range() {
    // A small factor (3, -3, 2^15) is multiplied without the i64 overflow check, and the
    // product checked against the small-Int range only, from either end of it; a large one
    // (2^16 + 1, 2^20) keeps both checks: 2^46 * 2^20 leaves the i64 range, where only the
    // first check sees it (a wrapped product would fit). Each leaves the range within the
    // 40 rounds.
    for (start, factor) in [
        ("3", "3"),
        ("-3", "3"),
        ("3", "-3"),
        ("1", "32768"),
        ("140737488355327", "32768"),
        ("-140737488355328", "32768"),
        ("1", "65537"),
        ("-1", "65537"),
        ("70368744177664", "1048576"),
    ] {
        let src = format!(
            "{start} !n  0 !k {{ n {factor} >* !n  k 1 >+ !k  k 40 >< >block Nil >choose }} >chain >drop  n k"
        );
        deopts_like_the_executor(&src, 1, DeoptReason::IntOverflow);
    }
}

#[test]
fn adding_or_subtracting_a_constant_overflows_at_either_end_of_the_range() {
    // A known step is checked against one end of the small-Int range only: below the
    // smallest by `1 >-` and `-1 >+`, above the largest by `1 >+` and `-1 >-` and `1 n >+`.
    for (start, step) in [
        ("-140737488355325", "1 >-"),
        ("-140737488355325", "-1 >+"),
        ("140737488355324", "1 >+"),
        ("140737488355324", "-1 >-"),
        ("140737488355324", "!_.t 1 _.t >+"),
    ] {
        let src = format!(
            "{start} !n  0 !k {{ n {step} !n  k 1 >+ !k  k 8 >< >block Nil >choose }} >chain >drop  n"
        );
        deopts_like_the_executor(&src, 1, DeoptReason::IntOverflow);
    }
}

#[test]
fn a_constant_operand_that_is_no_small_int_is_left_to_generic_code() {
    // The bound is a BigInt constant: speculating on it would deopt every round, so the loop
    // is compiled without speculation from the start.
    let src = "140737488355324 !n \
               { n 1 >+ !n  n 140737488355340 >< >block Nil >choose } >chain >drop  n";
    let (reference, _) = run_on(Tier::Executor, src, true);
    let (o, mut r) = run_on(ALL_OPTIMIZED, src, true);
    assert_eq!(o, reference);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.speculative, s.deopts), (0, 0), "{s:?}");
    assert!(s.retranslations >= 1, "the speculative translation gave up: {s:?}");
}

#[test]
fn a_missing_cell_fails_the_preheader_and_the_executor_reports_it() {
    // `q` is unlinked between runs: the pre-header cannot resolve it, and the executor raises
    // `Undefined Store path` at the read's position.
    let src = "5 !q  { n 1 >+ !n  n q >< >block Nil >choose } !step \
               0 !n step >chain >drop  Void !q.  0 !n step >chain >drop";
    deopts_like_the_executor(src, 1, DeoptReason::EntryCheck);
}

#[test]
fn two_paths_sharing_a_cell_through_a_cellref_fail_the_alias_check() {
    // `a` holds a CellRef to `t`, so `a.v` and `t.v` are one cell: the loop writes it through
    // one path and reads it through the other. Kept in two variables it would never stop.
    let src = "0 !t.v  t. !a  \
               { a.v 1 >+ !a.v  t.v 10 >< >block Nil >choose } >chain >drop  t.v";
    deopts_like_the_executor(src, 1, DeoptReason::EntryCheck);
}

#[test]
fn a_written_path_that_holds_a_cellref_at_entry_fails_the_preheader() {
    // The loop writes `x`, which held a Str when it was compiled; the second run finds a
    // CellRef to `t` in `x`, so every write must go through to `t`: left to the executor.
    let src = "{ i !x  i 1 >+ !i  i 5 >< >block Nil >choose } !step \
               (s) !x 0 !i >step >chain >drop  0 !t  t. !x  0 !i >step >chain >drop  t";
    let (o, _) = run_on(Tier::Executor, src, true);
    assert_eq!(o.al, "[4]");
    deopts_like_the_executor(src, 1, DeoptReason::EntryCheck);
}

#[test]
fn a_string_written_where_a_small_int_was_assumed_deopts_at_the_write() {
    let src = "0 !i 0 !x \
               { i 1 >+ !i  i 3 >== {(three)} {i} >ifelse !x  i 5 >< >block Nil >choose } \
               >chain >drop  x i";
    deopts_like_the_executor(src, 1, DeoptReason::NotSmallInt);
}

#[test]
fn a_cellref_written_into_a_cell_deopts_at_the_write() {
    // Writing a CellRef replaces the reference: a change of the Store's shape, left to the
    // executor.
    let src = "1 !t  t. !r  (s) !x  0 !i \
               { i 1 >+ !i  i 3 >== {r} {(s)} >ifelse !x  i 5 >< >block Nil >choose } \
               >chain >drop  i";
    deopts_like_the_executor(src, 1, DeoptReason::CellRefStored);
}

/// `mk` builds a node in its Register and returns a CellRef to it; the loops below keep the
/// list they build in the Store path `s`.
const MK: &str = "{ !_.c.n !_.c.v  _.c. } !mk  ";

#[test]
fn a_loop_replacing_the_cellref_it_holds_stays_speculative() {
    // `s` holds a CellRef when the loop is compiled, and every round replaces it with another:
    // no write-through, no walk through `s`, so the plain stores stand and nothing deopts.
    let src = format!("{MK} 0 !i  0 Nil >mk !s \
                       {{ i s >mk !s  i 1 >+ !i  i 2000 >< >block Nil >choose }} >chain >drop  s.v s.n.v");
    speculates_without_deopts(&src, "[1999, 1998]");
}

#[test]
fn a_value_that_is_no_cellref_written_where_one_is_held_deopts_and_writes_through() {
    // The loop alternates `s` between CellRefs to `a` and `b`; round 500 writes 7 into `s`
    // instead: the executor writes it through, into `b` (`s` keeps its CellRef), and the loop
    // goes on from there.
    let src = "0 !a 0 !b  a. !s  0 !i \
               { i 500 >== { 7 } { i 2 >% 0 >== { a. } { b. } >ifelse } >ifelse !s \
                 i 1 >+ !i  i 1000 >< >block Nil >choose } >chain >drop  a b";
    let (o, _) = run_on(Tier::Executor, src, true);
    assert_eq!(o.al, "[0, 7]");
    deopts_like_the_executor(src, 1, DeoptReason::RefCellWrite);
}

#[test]
fn a_lookup_through_the_held_cellref_makes_the_next_replacement_deopt() {
    // Round 500 runs `peek`, which reads `s.v` (and writes nothing): that walk goes through
    // the CellRef in `s`, so replacing it must move the epoch, which plain stores cannot do:
    // the next write leaves.
    let src = format!("{MK} {{ s.v >drop  Nil }} !peek  0 !i  0 Nil >mk !s \
                       {{ i 500 >== {{ peek >chain >drop }} {{ }} >ifelse  i s >mk !s  i 1 >+ !i  i 1000 >< >block Nil >choose }} \
                       >chain >drop  s.v s.n.v");
    deopts_like_the_executor(&src, 1, DeoptReason::RefCellWrite);
}

#[test]
fn a_loop_reading_below_the_cellref_it_replaces_is_left_generic_and_exact() {
    // `s.v` resolves through the CellRef the loop replaces: a hoisted cell for it would go
    // stale at the first write, so the translation does not speculate on it.
    let src = format!("{MK} 0 !t  0 !i  0 Nil >mk !s \
                       {{ s.v t >+ !t  i s >mk !s  i 1 >+ !i  i 300 >< >block Nil >choose }} >chain >drop  t");
    diff(&src, true);
    let (o, _) = run_on(Tier::Executor, &src, true);
    assert_eq!(o.al, "[44551]");
}

#[test]
fn a_zero_divisor_mid_loop_is_the_executors_error_at_its_position() {
    let src = "0 !n 0 !q { n 1 >+ !n  10 n 5 >- >/ !q  n 9 >< >block Nil >choose } >chain";
    let (reference, _) = run_on(Tier::Executor, src, true);
    assert!(reference.err.is_some(), "{reference:?}");
    deopts_like_the_executor(src, 1, DeoptReason::ZeroDivisor);
}

#[test]
fn a_compare_of_a_string_mid_loop_deopts_and_the_executor_raises_its_type_error() {
    let src = "0 !n { n 1 >+ !n  n 3 >== {(x)} {n} >ifelse 5 >< >drop  n 9 >< >block Nil >choose } \
               >chain";
    deopts_like_the_executor(src, 1, DeoptReason::NotSmallInt);
}

#[test]
fn a_step_budget_stops_a_speculative_loop_at_the_same_round() {
    // The poll countdown still counts every round (and every inlined body) exactly.
    let src = "0 !n { n 1 >+ !n  n 1000000 >< >block Nil >choose } >chain >drop n";
    let run = |tier: Tier| {
        let mut r = Runner::new(tier);
        r.load_stdlib();
        r.vm.begin_budget(Some(12_345), None);
        let res = r.run_src(src);
        let o = r.outcome(res);
        let n = r.vm.read_store_path(&["n"]).and_then(|v| v.as_small_int());
        (o, n)
    };
    let reference = run(Tier::Executor);
    assert!(reference.0.err.is_some(), "the budget stops the loop: {:?}", reference.0);
    assert_eq!(run(ALL_OPTIMIZED), reference);
}

#[test]
fn a_step_budget_ending_inside_inlined_bodies_stops_at_the_same_statement() {
    // Speculative code checks the poll countdown once per run of inlined bodies (a poll
    // region, translate/polls.rs), against the most entries any path makes: here arms that
    // enter one body and three, and a body after them. Every budget from 1 to 200 ends
    // somewhere else in a round; each must stop where the executor stops, with the same Store,
    // which needs the region's bound to follow the longer arm.
    for (i, src) in [
        "0 !n 0 !k { n 3 >% 0 >== { k 1 >+ !k } { k n >== { } { } >ifelse } >ifelse \
         n 1 >+ !n  n 1000 >< >block Nil >choose } >chain >drop n k",
        "{ >choose !_.go >_.go } !if2  0 !n 0 !k \
         { n 3 >% 1 >< { k 1 >+ !k } { >{ >{ k 2 >+ !k } } } >if2  >{ n 1 >+ !n } \
           n 1000 >< >block Nil >choose } >chain >drop n k",
        // A call between two inlined bodies takes steps of its own: the region ends there.
        "{ k 1 >+ !k Nil } !bump  0 !n 0 !k \
         { >{ n 1 >+ !n }  bump >chain !_.j  >{ k 1 >+ !k }  n 1000 >< >block Nil >choose } >chain >drop n k",
    ]
    .into_iter()
    .enumerate()
    {
        let in_region = stops_where_the_executor_stops(src);
        // The last two end their rounds in a region (the second one's opens after the call):
        // the round's own entry is one more of its entries, with no test of its own
        // (`emit_reenter_spec`). The first one does not keep its region to the round's end.
        if i > 0 {
            assert!(in_region > 0, "no round re-entered inside its region: {src}");
        }
    }
}

/// Returns how many compiles re-entered their rounds inside a poll region.
fn stops_where_the_executor_stops(src: &str) -> u64 {
    let run = |tier: Tier, budget: u64| {
        let mut r = Runner::new(tier);
        r.load_stdlib();
        r.vm.begin_budget(Some(budget), None);
        let res = r.run_src(src);
        let o = r.outcome(res);
        let n = r.vm.read_store_path(&["n"]).and_then(|v| v.as_small_int());
        let k = r.vm.read_store_path(&["k"]).and_then(|v| v.as_small_int());
        let s = soma_jit::stats(&mut r.vm);
        ((o, n, k), s)
    };
    let mut near = 0;
    let mut in_region = 0;
    // And budgets that end after several polls.
    for budget in (1..=200).chain([4_321, 9_999, 12_345, 20_011]) {
        let (reference, _) = run(Tier::Executor, budget);
        let (o, s) = run(ALL_OPTIMIZED, budget);
        assert_eq!(o, reference, "budget {budget}, source:\n{src}");
        let s = s.expect("installed");
        near += s.poll_exits;
        in_region += s.region_reentries;
    }
    assert!(near > 0, "no region's test ever failed: {src}");
    in_region
}

/// A loop whose rounds are mostly inlined bodies (`ifelse`, an arm, `==` with what it inlines):
/// the poll due every 4,096 entries usually falls inside a poll region.
const POLL_HEAVY_LOOP: &str =
    "0 !n { n 2 >% 0 >== { } { } >ifelse  n 1 >+ !n  n 60000 >< >block Nil >choose } >chain >drop n";

#[test]
fn polls_falling_due_inside_inlined_bodies_are_taken_early_and_recompile_nothing() {
    // Each time a region's test finds the countdown below the region's entries, the due poll
    // can stop nothing (no step budget, deadline or interrupt), so `jit_poll_ahead` takes it
    // there and the loop stays in compiled code.
    let (o, mut r) = run_on(ALL_OPTIMIZED, POLL_HEAVY_LOOP, true);
    assert_eq!(o.al, "[60000]");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.early_polls > DEOPTS_BEFORE_RECOMPILE as u64, "{s:?}");
    assert_eq!((s.poll_exits, s.deopts, s.recompiles), (0, 0, 0), "{s:?}");
    diff(POLL_HEAVY_LOOP, true);
}

#[test]
fn code_generated_on_the_compile_thread_takes_polls_early_through_the_trampoline_it_made() {
    // Tier-up through the compile thread (threshold 1, lockstep): the trampoline's bytes are
    // generated there and defined in the module when the loop's code is installed, on the
    // main thread. The early polls show the installed code called it. Where no thread can be
    // started (scripts/aarch64.sh runs the tests under qemu with thread creation refused),
    // tier-up is synchronous and the bytes are made on the main thread: the polls still show.
    let threads = std::thread::Builder::new().spawn(|| ()).is_ok_and(|h| h.join().is_ok());
    let (o, mut r) = run_on(Tier::Optimizing(1, 0), POLL_HEAVY_LOOP, true);
    assert_eq!(o.al, "[60000]");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!(s.background_installed > 0, threads, "{s:?}");
    assert!(s.early_polls > 0, "{s:?}");
    assert_eq!(s.compile_failures, 0, "{s:?}");
}

#[test]
fn code_that_calls_itself_directly_takes_polls_early_and_other_code_leaves_where_one_falls_due() {
    // An exit costs the rest of one call in the executor: with leaf copies, fib left about
    // once in about 830 calls, 8% of its run. Code that calls itself directly takes due polls
    // early as chained loop bodies do.
    let src = "{ !_.n _. _.n 2 >< { !_. _.n } { !_. _.n 1 >- >fib _.n 2 >- >fib >+ } >choose >^ } !fib 20 >fib";
    let (o, mut r) = run_on(ALL_OPTIMIZED, src, true);
    assert_eq!(o.al, "[6765]");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.early_polls > 0, "{s:?}");
    assert_eq!((s.poll_exits, s.deopts, s.recompiles), (0, 0, 0), "{s:?}");
    // A recursion that writes a Store cell makes no direct call, and its polls stay exits
    // (3,000 calls, three entries each: two polls fall due).
    on_big_stack(|| {
        let src = "0 !c { !_.n c 1 >+ !c _. _.n 1 >< { !_. 0 } { !_. _.n 1 >- >wr } >choose !_.go >_.go } !wr \
                   3000 >wr c";
        let (reference, _) = run_on(Tier::Executor, src, false);
        let (o, mut r) = run_on(ALL_OPTIMIZED, src, false);
        assert_eq!(o, reference);
        let s = soma_jit::stats(&mut r.vm).unwrap();
        assert_eq!((s.direct_call_sites, s.early_polls), (0, 0), "{s:?}");
        assert!(s.poll_exits > 0, "{s:?}");
    });
}

#[test]
fn early_polls_leave_the_host_hook_its_turn() {
    // Early polls do not run the host hook (compiled code may hold unrooted values there), so
    // a loop whose polls all fell due inside inlined bodies would never run it (the bridge's
    // hook is where other Python threads get the GIL). After a few early polls in a row the
    // next is declined and the executor's exact poll runs it.
    fn count(_: &mut soma_runtime::Vm, user: *mut std::ffi::c_void) -> soma_runtime::error::RtResult<()> {
        // SAFETY: `user` is the `u32` counter below, alive for the whole run.
        unsafe { *(user as *mut u32) += 1 };
        Ok(())
    }
    // Twenty inlined bodies a round besides the round's own entry: most polls fall due
    // inside (without the limit on early polls in a row, the hook ran for 5 of 102 polls).
    let src = "{ } !e 0 !n { >e >e >e >e >e >e >e >e >e >e >e >e >e >e >e >e >e >e >e >e \
               n 1 >+ !n  n 20000 >< >block Nil >choose } >chain >drop n";
    let mut r = Runner::new(ALL_OPTIMIZED);
    r.load_stdlib();
    let mut calls = 0u32;
    r.vm.set_poll(Some(count), &mut calls as *mut u32 as *mut std::ffi::c_void);
    let res = r.run_src(src);
    let o = r.outcome(res);
    r.vm.set_poll(None, std::ptr::null_mut());
    assert_eq!(o.al, "[20000]");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    // 420,000 entries: 102 polls fall due.
    let polls = 420_000 / u64::from(soma_runtime::vm::POLL_INTERVAL);
    assert!(s.early_polls > 0 && s.poll_exits > 0, "{s:?}");
    let at_least = polls / u64::from(soma_runtime::vm::MAX_EARLY_POLLS_IN_A_ROW + 1);
    assert!(u64::from(calls) >= at_least, "the hook ran {calls} times for {polls} polls: {s:?}");
    assert_eq!((s.deopts, s.recompiles), (0, 0), "{s:?}");
}

#[test]
fn a_poll_that_would_stop_the_run_is_left_to_the_executor_at_its_exact_entry() {
    // A passed deadline (and likewise an interrupt) must stop the run at the poll that falls
    // due, not a few entries early: `jit_poll_ahead` declines, the code leaves for the
    // executor (a routine exit, nothing recompiled), and the run stops where the executor
    // alone stops it, the Store as it left it.
    let run = |tier: Tier| {
        let mut r = Runner::new(tier);
        r.load_stdlib();
        r.vm.begin_budget(None, Some(std::time::Duration::ZERO));
        let res = r.run_src(POLL_HEAVY_LOOP);
        let o = r.outcome(res);
        let n = r.vm.read_store_path(&["n"]).and_then(|v| v.as_small_int());
        ((o, n), soma_jit::stats(&mut r.vm))
    };
    let (reference, _) = run(Tier::Executor);
    let err = reference.0.err.clone().expect("the deadline stops the loop");
    assert_eq!(err.1, "Time limit exceeded", "{err:?}");
    let (o, s) = run(ALL_OPTIMIZED);
    assert_eq!(o, reference);
    let s = s.expect("installed");
    // (The executor may meet the poll in the compiled code of a body it calls: more exits.)
    assert!(s.poll_exits >= 1, "{s:?}");
    assert_eq!((s.early_polls, s.recompiles), (0, 0), "{s:?}");
}

#[test]
fn inlined_frames_past_the_depth_limit_leave_from_the_preheader_for_the_executors_error() {
    // Speculative code checks its inlined frames' depth once, in the pre-header, for the
    // deepest (`==` inlines `=!`, which inlines `or`). With the limit between the loop's own
    // frame and that deepest one, the check fails before the first round: the executor runs
    // the loop and raises the recursion error in the frame that overflows, as it does alone.
    // With room for every frame, the loop never leaves.
    let src = "0 !n { n 7 >== { } { } >ifelse  n 1 >+ !n  n 100 >< >block Nil >choose } >chain >drop n";
    let run = |tier: Tier, max_depth: usize| {
        let mut r = Runner::new(tier);
        r.load_stdlib();
        r.vm.set_max_depth(max_depth);
        let res = r.run_src(src);
        let o = r.outcome(res);
        let s = soma_jit::stats(&mut r.vm);
        (o, s)
    };
    let (reference, _) = run(Tier::Executor, 3);
    assert!(reference.err.is_some(), "the limit is inside the inlined frames: {reference:?}");
    let (o, s) = run(ALL_OPTIMIZED, 3);
    assert_eq!(o, reference);
    let s = s.expect("installed");
    assert!(s.speculative >= 1, "{s:?}");
    assert!(s.deopt_reasons[DeoptReason::EntryCheck as usize] >= 1, "{:?}", s.deopts_by_reason());
    let (o, s) = run(ALL_OPTIMIZED, 1000);
    assert_eq!(o.al, "[100]");
    assert_eq!(s.expect("installed").deopts, 0);
}

#[test]
fn a_call_that_writes_nothing_keeps_the_code_speculating() {
    // A host builtin and a Block called from the loop write no cell: the check after each
    // call passes and the loop never leaves its speculative code.
    let src = "{ !_.x } !sink  0 !n \
               { n >toString >sink  n 1 >+ !n  n 1000 >< >block Nil >choose } >chain >drop n";
    speculates_without_deopts(src, "[1000]");
}

#[test]
fn a_called_block_reads_the_value_the_loop_keeps_in_a_register() {
    // The loop keeps `n` in a register across rounds: `check`, called every round through
    // `chain`, reads `n` from the Store and compares it with the value the loop hands it on
    // the AL. A write the loop kept only in its register would show it the previous round's.
    let src = "{ n >== { } { (stale n) >debug.error } >ifelse Nil } !check  0 !n \
               { n 1 >+ !n  n check >chain >drop  n 1000 >< >block Nil >choose } >chain >drop n";
    speculates_without_deopts(src, "[1000]");
}

#[test]
fn a_call_that_writes_only_its_own_register_keeps_the_code_speculating() {
    // `mk` builds a node in its Register and returns a CellRef to it: real cell writes, each
    // through a helper the loop checks after. None of them is a cell the loop holds (only
    // cells a pre-header resolved count in the write counter), so the loop never leaves.
    let src = "{ !_.c.v  _.c. } !mk  0 !n \
               { n >mk >drop  n 1 >+ !n  n 1000 >< >block Nil >choose } >chain >drop n";
    speculates_without_deopts(src, "[1000]");
}

#[test]
fn a_register_write_through_a_cellref_into_a_cell_the_loop_holds_deopts_after_the_call() {
    // In round 5, `wr` stores a CellRef to `n` in its Register and writes 99 through it: the
    // Register write lands in `n`, which the loop keeps in a register. `n` is watched (the
    // loop's pre-header resolved it), so the write counter moves and the loop leaves after
    // the call; the executor goes on from 99.
    let src = "{ !_.r  99 !_.r  Nil } !wr  0 !n \
               { n 5 >== { n. wr >chain >drop } { } >ifelse  n 1 >+ !n  n 1000 >< >block Nil >choose } \
               >chain >drop n";
    deopts_like_the_executor(src, 1, DeoptReason::StoreChangedByCall);
}

#[test]
fn a_called_block_that_writes_a_cell_the_loop_holds_is_validated_again_and_the_loop_goes_on() {
    // A Block run by `chain` (a call: `chain` runs what it pops) writes `n`, which the loop
    // keeps in a register: the write counter differs after every call. The Block is known to
    // write cells, so instead of leaving, the code checks its assumptions again (`n` still a
    // small Int, the builtins the same) and reloads `n`: 91 rounds of +10 +1, no deopt. (A
    // small Block executed directly would be inlined, and its write would be the loop's own.)
    let src = "0 !n \
               { { n 10 >+ !n  Nil } >chain >drop  n 1 >+ !n  n 1000 >< >block Nil >choose } \
               >chain >drop n";
    speculates_without_deopts(src, "[1001]");
    let (_, mut r) = run_on(ALL_OPTIMIZED, src, true);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!(s.revalidated, 91, "{s:?}");
}

#[test]
fn a_called_block_that_replaces_a_held_cell_is_validated_again_from_the_path() {
    // In round 500 (and no other: the counters move only then) the chained Block unlinks
    // `c.n` (`!c.` drops `c`'s children, which moves the structural epoch) and creates it
    // again with the same value. Checked again after the
    // call, `c.n` must be resolved anew: only values can be checked against the cells of the
    // last validation while the epoch stays the same. Read or written through the old cell,
    // the loop would count on in a cell no path reaches and leave `c.n` at 500.
    let src = "0 !c.n \
               { { c.n 500 >== { c.n Nil !c. !c.n } { } >ifelse  Nil } >chain >drop \
                 c.n 1 >+ !c.n  c.n 1000 >< >block Nil >choose } >chain >drop c.n";
    speculates_without_deopts(src, "[1000]");
    let (_, mut r) = run_on(ALL_OPTIMIZED, src, true);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!(s.revalidated, 1, "{s:?}");
}

#[test]
fn a_called_block_that_rebinds_true_deopts_after_the_call() {
    // The stdlib's `or` is `_.lhs True _.rhs >choose`: speculative code reads `True` as a
    // constant (guarded like an executed path) to keep the comparison's truth. In round 50 a
    // called Block makes `True` Nil; from round 61 on `or` gives that Nil, so rounds 61-100
    // do not count and `k` ends at 2 (rounds 1 and 2), not 42.
    let src = "0 !n 0 !k \
               { n 1 >+ !n  60 n >< n 3 >< >or { k 1 >+ !k } { } >ifelse \
                 n 50 >== { { Nil !True Nil } >chain >drop } { } >ifelse \
                 n 100 >< >block Nil >choose } >chain >drop k";
    deopts_like_the_executor(src, 1, DeoptReason::StoreChangedByCall);
    assert_eq!(run_on(ALL_OPTIMIZED, src, true).0.al, "[2]");
}

#[test]
fn a_baseline_store_into_a_guarded_cell_moves_the_epoch() {
    // Everything compiled at once, the loop optimized after a few rounds: the arm that runs
    // `w` (rounds 20 and 30) stays baseline code, which inlines `w` and stores `f` inline,
    // the second time through a warm cache line: `f` again in round 20, `g` in round 30. The
    // cell is guarded, so the store takes the helper, which moves the epoch.
    let src = "{ 1 } !f  { 2 } !g  f !nf  0 !n  0 !k  { n 1 >+ !n  nf !f  g !nf  Nil } !w \
               { k >f >+ !k  n 1 >+ !n  n 20 >== n 30 >== >or { >w >chain >drop } { } >ifelse \
                 n 60 >< >block Nil >choose } >chain >drop k";
    let (reference, _) = run_on(Tier::Executor, src, true);
    let (o, mut r) = run_on(Tier::Optimizing(0, 4), src, true);
    assert_eq!(o, reference);
    // 29 rounds of 1 (`w` makes `n` skip 21), then 29 of 2 (it skips 31).
    assert_eq!(o.al, "[87]");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.speculative >= 1, "{s:?}");
    assert!(s.deopt_reasons[DeoptReason::StoreChangedByCall as usize] >= 1, "{:?}", s.deopts_by_reason());
    diff(src, true);
}

#[test]
fn a_speculative_loop_never_stores_inline_into_a_cell_another_code_guards() {
    // `w` runs a loop of its own that writes `f` (three rounds): validating its written
    // paths, its pre-header finds `f` guarded by the outer loop and leaves for the executor,
    // whose write moves the epoch. Stored inline, the outer loop would go on with the old `f`.
    let src = "{ 1 } !f  { 2 } !g  0 !n  0 !k  0 !wi \
               { 0 !wi { n 1 >+ !n  g !f  wi 1 >+ !wi  wi 3 >< >block Nil >choose } >chain >drop Nil } !w \
               { k >f >+ !k  n 1 >+ !n  n 30 >== { >w >chain >drop } { } >ifelse \
                 n 60 >< >block Nil >choose } >chain >drop k";
    deopts_like_the_executor(src, 1, DeoptReason::EntryCheck);
    // 30 rounds of 1, then `n` from 34 to 60 (`w` counts three): 27 rounds of 2.
    assert_eq!(run_on(ALL_OPTIMIZED, src, true).0.al, "[84]");
}

#[test]
fn a_loop_holding_many_unguarded_paths_re_checks_them_in_a_loop_over_the_table() {
    // Ten counters (more than the re-check tests one after the other), and a chained Block
    // that writes the first of them every round: after each call the code re-checks the
    // table in its loop form, takes the new value of `c0` and goes on.
    let names: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    let init: String = names.iter().map(|n| format!("0 !{n} ")).collect();
    let steps: String = names.iter().map(|n| format!("{n} 1 >+ !{n} ")).collect();
    let sum: String = names.iter().skip(1).map(|n| format!("{n} >+ ")).collect();
    let src = format!(
        "{init} 0 !i {{ {steps} {{ c0 10 >+ !c0 Nil }} >chain >drop  i 1 >+ !i  i 100 >< >block Nil >choose }} \
         >chain >drop c0 {sum}"
    );
    // c0: 100 rounds of 11; c1..c9: 100 each.
    speculates_without_deopts(&src, "[2000]");
    let (_, mut r) = run_on(ALL_OPTIMIZED, &src, true);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.revalidated >= 99, "{s:?}");
}

#[test]
fn a_known_choose_whose_arm_cannot_be_inlined_calls_it_and_validates_again() {
    // collatz's shape: the `ifelse` arm that runs `c.step >chain` needs a real frame, so it
    // cannot be inlined under the loop's virtual ones; the other arm is empty. The `choose`
    // becomes a branch: the empty arm inlined, the other a direct call, after which (the arm
    // may write `c.n` and `c.steps` through `c.step`) the loop checks its assumptions again
    // and goes on. Both arms run (start 1 takes the empty one). The cells exist before the
    // loop is compiled (all at once here), so that it can speculate on them.
    let src = "{ c.n 2 >% 0 >==  { c.n 2 >/ }  { c.n 3 >* 1 >+ }  >ifelse !c.n \
                 c.steps 1 >+ !c.steps  c.n 1 >> >block Nil >choose } !c.step \
               { !c.n  0 !c.steps  c.n 1 >> { c.step >chain >drop } { } >ifelse  c.steps } !steps \
               0 !c.n  0 !c.steps  0 !total  1 !i \
               { i >steps total >+ !total  i 1 >+ !i  i 300 >< >block Nil >choose } >chain >drop total";
    let (reference, _) = run_on(Tier::Executor, src, true);
    let (o, mut r) = run_on(ALL_OPTIMIZED, src, true);
    assert_eq!(o, reference);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!(s.deopts, 0, "{s:?}");
    assert!(s.speculative >= 2 && s.revalidated >= 290, "{s:?}");
    diff(src, true);
}

#[test]
fn a_called_block_that_breaks_an_assumption_leaves_after_the_call() {
    // Past 500 the chained Block makes `n` a BigInt: checked again after the call, the
    // small-Int assumption fails, the code leaves at the next instruction (the executor goes
    // on with the BigInt) and type feedback learns that `n` is no longer one.
    let src = "0 !n \
               { { 500 n >< { n 99999999999999999999 >+ !n } { n 10 >+ !n } >ifelse  Nil } >chain >drop \
                 n 1 >+ !n  n 1000 >< >block Nil >choose } >chain >drop n";
    deopts_like_the_executor(src, 1, DeoptReason::StoreChangedByCall);
}

#[test]
fn a_called_block_that_rebinds_a_guarded_builtin_deopts_after_the_call() {
    // Round 5 rebinds `+` from inside a called Block (a Block adding through the saved
    // builtin, plus one): the loop's `+` sites must see it from the very next instruction.
    // The loop inlines the arm that calls `rebind`, which writes `+`, so the loop itself
    // cannot speculate on `+` (the arm's code does): its guarded `+` site leaves.
    let src = "+ !plus  { { >plus 1 >plus } !+ } !rebind  0 !n \
               { n 5 >== { >rebind } { } >ifelse  n 1 >+ !n  n 50 >< >block Nil >choose } \
               >chain >drop n";
    deopts_like_the_executor(src, 1, DeoptReason::GuardedPathRebound);
}

#[test]
fn recursion_is_speculative_and_a_rebinding_between_calls_fails_the_validation_cache() {
    // fib calls itself: each entry's pre-header finds the write counter and the epoch as the
    // last check left them and reuses it. Rebinding `-` between two runs changes the count:
    // the pre-header checks again, its guard fails, and the executor runs with the new `-`.
    let fib = "{ !_.n  _.  _.n 2 ><  { !_. _.n }  { !_. _.n 1 >- >fib  _.n 2 >- >fib >+ } \
               >choose >^ } !fib ";
    let src = format!("{fib} 15 >fib  - !minus  {{ >minus }} !-  15 >fib");
    let (o, mut r) = run_on(ALL_OPTIMIZED, &format!("{fib} 15 >fib"), true);
    assert_eq!(o.al, "[610]");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.speculative >= 1 && s.deopts == 0, "{s:?}");
    deopts_like_the_executor(&src, 1, DeoptReason::EntryCheck);
}

// ----- sunk writes (speculate.rs, "Sunk writes") -----
// The loop body's own Store writes stay in registers until something else could look. Each
// case below looks from somewhere else right after such a write, where the cell would still
// hold the previous round's value had the write not been stored first. The estimate that
// picks the loops worth it leaves out loops that call out, which are exactly those that
// reach most flush points, so these run with sinking forced (`JitConfig::sink_always`).

/// `src` all-optimized with sinking forced: the executor's outcome and Store values at
/// `paths`, some writes sunk; returns the statistics.
fn sinks_like_the_executor(src: &str, paths: &[&str]) -> soma_jit::JitStats {
    let run = |mut r: Runner| {
        r.load_stdlib();
        let res = r.run_src(src);
        let o = r.outcome(res);
        let values: Vec<_> = paths
            .iter()
            .map(|p| r.vm.read_store_path(&p.split('.').collect::<Vec<_>>()).map(|v| format!("{v:?}")))
            .collect();
        ((o, values), r)
    };
    let (reference, _) = run(Runner::new(Tier::Executor));
    let (got, mut r) = run(Runner::with_config(soma_jit::config::JitConfig {
        threshold: Some(0),
        opt_threshold: Some(0),
        verify: true,
        early_tier_up: false,
        sink_always: true,
        ..soma_jit::config::JitConfig::default()
    }));
    assert_eq!(got, reference, "source:\n{src}");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.speculative >= 1 && s.sunk_cells >= 1, "nothing sunk: {s:?}");
    s
}

#[test]
fn a_sunk_write_is_in_its_cell_when_an_overflow_leaves_the_round() {
    // From round 28 `n + BIG` overflows: the executor takes over at that `>+`, after the
    // round's `!n`, and compares the `n` the round pushed before it with the cell's.
    let src = "0 !n 0 !m { n 1 >+ !n  n  n 140737488355300 >+ !m  n >== { } { (stale n) >debug.error } >ifelse \
               n 100 >< >block Nil >choose } >chain >drop n m";
    let s = sinks_like_the_executor(src, &["n", "m"]);
    assert!(s.deopt_reasons[DeoptReason::IntOverflow as usize] >= 1, "{:?}", s.deopts_by_reason());
}

#[test]
fn a_sunk_cell_not_written_yet_keeps_its_value_when_the_first_round_leaves() {
    // One flag serves every sunk cell: the overflow after `!a` in the very first round
    // stores `b` too, which the round has not written yet: its variable holds the cell's own
    // value, so the store must leave it as it was (the executor then writes 2 into it). The
    // loop's bound is on `c`: one on `a` would let the loop's entry guard leave before the
    // round (`tests/induction.rs`).
    let src = "0 !b 0 !c 140737488355320 !a { a 1 >+ !a  a 100 >+ >drop  b 2 >+ !b  c 1 >+ !c \
               c 10 >< >block Nil >choose } >chain >drop a b c";
    let s = sinks_like_the_executor(src, &["a", "b", "c"]);
    assert!(s.sunk_cells >= 2, "{s:?}");
    assert!(s.deopt_reasons[DeoptReason::IntOverflow as usize] >= 1, "{:?}", s.deopts_by_reason());
}

#[test]
fn a_sunk_write_is_in_its_cell_when_an_error_ends_the_run() {
    // The error of round 50 stops the run after the round's `!n` and `!k`: the Store shows
    // both, as the executor leaves it.
    let src = "0 !n 0 !k { n 1 >+ !n  k 2 >+ !k  n 50 >== { (boom) >debug.error } { } >ifelse \
               n 100 >< >block Nil >choose } >chain >drop";
    sinks_like_the_executor(src, &["n", "k"]);
}

#[test]
fn a_record_read_through_a_cellref_sees_the_sunk_write_to_that_field() {
    // `x.f` is written, then read back as a record field below a CellRef to `x` (a leaf
    // helper's read of the graph): it must be this round's value.
    let src = "0 !x.f 0 !n { x.f 1 >+ !x.f  x. !_.t  _.t.f !n  n 50 >< >block Nil >choose } >chain >drop n x.f";
    let s = sinks_like_the_executor(src, &["n", "x.f"]);
    assert!(s.child_read_sites >= 1, "{s:?}");
}

#[test]
fn a_called_block_reads_the_sunk_write_of_the_round() {
    // `check`, run through `chain` every round, reads `n` from the Store and compares it with
    // the value the round hands it on the AL.
    let src = "{ n >== { } { (stale n) >debug.error } >ifelse Nil } !check  0 !n \
               { n 1 >+ !n  n check >chain >drop  n 1000 >< >block Nil >choose } >chain >drop n";
    sinks_like_the_executor(src, &["n"]);
}

#[test]
fn writes_are_sunk_in_loops_that_call_nothing_and_only_there() {
    let sunk = |src: &str| {
        let (_, mut r) = run_on(ALL_OPTIMIZED, src, true);
        soma_jit::stats(&mut r.vm).unwrap().sunk_cells
    };
    assert_eq!(sunk("0 !n { n 1 >+ !n  n 1000 >< >block Nil >choose } >chain >drop n"), 1);
    // A Block literal run by `ifelse`, which calls nothing either (its `!k` is an inlined
    // body's, stored at once: only the loop's own `!n` is sunk).
    assert_eq!(sunk("0 !n 0 !k { n 2 >% 0 >== { k 1 >+ !k } { } >ifelse  n 1 >+ !n  n 1000 >< >block Nil >choose } >chain >drop n"), 1);
    // A host builtin, a Block run through `chain`, a record read: each calls out every round.
    assert_eq!(sunk("0 !n { n >toString >drop  n 1 >+ !n  n 1000 >< >block Nil >choose } >chain >drop n"), 0);
    assert_eq!(sunk("{ Nil } !f 0 !n { f >chain >drop  n 1 >+ !n  n 1000 >< >block Nil >choose } >chain >drop n"), 0);
    assert_eq!(sunk("0 !x.f 0 !n { x. !_.t  _.t.f >drop  n 1 >+ !n  n 1000 >< >block Nil >choose } >chain >drop n"), 0);
}

#[test]
fn an_entry_after_the_caller_wrote_a_bigint_into_a_small_int_path_leaves() {
    // `st` is entered a hundred times with `c.n` and `c.k` just written by the caller (same
    // epoch, new values): its pre-header re-checks the values inline and takes new small
    // Ints. In round 60 `c.n` holds a BigInt: the inline re-check must not take it, the
    // full check fails, and the executor runs that entry.
    let src = "{ c.n 1 >+ !c.n  c.k 1 >+ !c.k  c.k 3 >< >block Nil >choose } !st \
               0 !c.n 0 !c.k 0 !total 0 !i \
               { i 60 >== { 99999999999999999999 } { i } >ifelse !c.n  0 !c.k  st >chain >drop \
                 c.n total >+ !total  i 1 >+ !i  i 100 >< >block Nil >choose } >chain >drop total";
    deopts_like_the_executor(src, 1, DeoptReason::EntryCheck);
}

#[test]
fn an_entry_after_the_caller_wrote_a_cellref_into_a_written_path_leaves() {
    // `st` writes `x` (Strs, so not a small-Int path): the code may keep `x` only while it
    // holds no CellRef. In round 60 the caller makes `x` a CellRef to `y`; the inline
    // re-check of the entry must leave that to the full check, which fails, and the
    // executor does the write as it does it.
    let src = "{ (s) !x  c.k 1 >+ !c.k  c.k 3 >< >block Nil >choose } !st \
               0 !c.k (a) !x 5 !y 0 !i \
               { i 60 >== { y. } { (b) } >ifelse !x  0 !c.k  st >chain >drop \
                 i 1 >+ !i  i 100 >< >block Nil >choose } >chain >drop  x y";
    deopts_like_the_executor(src, 1, DeoptReason::EntryCheck);
}

#[test]
fn writes_by_called_code_are_never_lost_to_a_validation_cache() {
    // `inc` (speculative) writes `c`; `z` (speculative) runs it twice through `chain` (a call).
    // After the first call `z` leaves (the write counter moved); had any code stored its own
    // idea of the count back, `inc`'s second entry would find its validation cache current
    // and add to the stale `c` it cached.
    for src in [
        "0 !c  { c 1 >+ !c Nil } !inc  { inc >chain >drop inc >chain >drop } !z  >z c",
        "0 !c  { c 1 >+ !c } !inc  { inc times.#step >chain >drop } !z  4 >z c",
        "0 !c  3 { 4 { c 1 >+ !c } >times } >times  c",
    ] {
        let (reference, _) = run_on(Tier::Executor, src, true);
        let (o, _) = run_on(ALL_OPTIMIZED, src, true);
        assert_eq!(o, reference, "source:\n{src}");
        diff(src, true);
    }
}

#[test]
fn a_call_inside_an_inlined_frame_is_checked_after_the_frame_is_left() {
    // `ifelse` is inlined with a real frame here (the arm calls a host builtin, so the arm is
    // called, not inlined); leaving that frame is a helper call between the arm's call and
    // the check after it, and must not hide the arm's write of `c.steps` from the check.
    for src in [
        "0 !c.steps { 0 !c.steps  True { 7 !c.steps 1 >toString !_.x } { } >ifelse  c.steps } !g >g",
        "{ c.n 1 >- !c.n  c.steps 1 >+ !c.steps  c.n 1 >> >block Nil >choose } !st \
         { !c.n  0 !c.steps  True { st >chain !_.x } { } >ifelse  c.steps } !col \
         0 !c.n 0 !c.steps 0 !total  2 !i \
         { i >col !_.r _.r total >+ !total  i 1 >+ !i  i 4 >< >block Nil >choose } >chain >drop total",
    ] {
        let (reference, _) = run_on(Tier::Executor, src, true);
        let (o, _) = run_on(ALL_OPTIMIZED, src, true);
        assert_eq!(o, reference, "source:\n{src}");
        diff(src, true);
    }
}

#[test]
fn a_site_that_sees_bigints_is_widened_by_type_feedback_and_the_rest_keeps_speculating() {
    // `big` holds a BigInt from the start: the `+` on it deopts (not a small Int) until the
    // recompile, which lowers that one site as a call of `+` and still speculates on `k`.
    let src = "100000000000000000000 !big  0 !k \
               { big 1 >+ !big  k 1 >+ !k  k 2000 >< >block Nil >choose } >chain >drop  big k";
    let mut r = deopts_like_the_executor(src, 1, DeoptReason::NotSmallInt);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.respecialized, s.recompiles), (1, 1), "{s:?}");
    assert_eq!(loop_compiles(&s), [true, true], "the loop compiled speculative twice: {s:?}");
    // The second code takes no exit: every deopt was the first code's.
    assert_eq!(s.deopts, soma_jit::compiler::DEOPTS_BEFORE_RECOMPILE as u64, "{s:?}");
}

/// Whether each compile of the module's first block (the loop) was speculative, in order.
fn loop_compiles(s: &soma_jit::JitStats) -> Vec<bool> {
    s.blocks.iter().filter(|b| (b.module, b.code) == (1, 1)).map(|b| b.speculative).collect()
}

#[test]
fn a_path_written_a_string_is_no_longer_assumed_a_small_int_after_feedback() {
    // `x` holds a small Int at compile time and gets a Str every other round: the write
    // deopts until the recompile stops assuming `x` is a small Int.
    let src = "0 !i 0 !x \
               { i 1 >+ !i  i 2 >% 0 >== {(even)} {i} >ifelse !x  i 400 >< >block Nil >choose } \
               >chain >drop  x i";
    let mut r = deopts_like_the_executor(src, 1, DeoptReason::NotSmallInt);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!(s.respecialized, 1, "{s:?}");
    assert_eq!(loop_compiles(&s), [true, true], "{s:?}");
    assert_eq!(s.deopts, soma_jit::compiler::DEOPTS_BEFORE_RECOMPILE as u64, "{s:?}");
}

#[test]
fn deopts_that_teach_nothing_recompile_without_speculation() {
    // A guarded builtin rebound between runs fails the entry check with nothing to widen:
    // the recompiled code is generic.
    let src = "+ !plus  0 !i  { i 1 >+ !i  i 100 >< >block Nil >choose } !step \
               step >chain >drop  { >plus } !+  0 !i  step >chain >drop \
               0 !i  step >chain >drop  0 !i  step >chain >drop  0 !i  step >chain >drop  i";
    let mut r = deopts_like_the_executor(src, 4, DeoptReason::EntryCheck);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!(s.respecialized, 0, "{s:?}");
    assert_eq!(loop_compiles(&s), [true, false], "{s:?}");
}

#[test]
fn truth_values_of_compares_between_two_ints_fold_and_stay_exact() {
    // `==`, `=!`, `=<`, `=>`, `not`, `and`, `or` (stdlib Blocks over `<` and `choose`) of
    // compares between the same two Ints fold into one compare (`Rel`); compares of other pairs
    // stay apart. Every pair of -1, 0, 1, each result weighted by its own bit.
    let src = "0 !a 0 !b 0 !s 0 !k \
        { k 3 >% 1 >- !a  k 3 >/ 3 >% 1 >- !b \
          a b >==  1 0 >choose s >+ !s \
          a b >=!  2 0 >choose s >+ !s \
          a b >=<  4 0 >choose s >+ !s \
          a b >=>  8 0 >choose s >+ !s \
          a b >< >not  16 0 >choose s >+ !s \
          a b >< b a >< >and  32 0 >choose s >+ !s \
          a b >< a b >== >or  64 0 >choose s >+ !s \
          a 0 >== b 0 >== >and  128 0 >choose s >+ !s \
          0 a >< a b >< >or >not  256 0 >choose s >+ !s \
          a b >< b a >< >or >not  512 0 >choose s >+ !s \
          1 a >=<  1024 0 >choose s >+ !s \
          k 1 >+ !k  k 900 >< >block Nil >choose } >chain >drop s";
    // The same sums in Python: see the weights above.
    speculates_without_deopts(src, "[607100]");
}

/// `>isNil` and `>isVoid` are lowered inline (`ops.rs`, `gen_is_singleton`): on every kind
/// of value, known at compile time or not, a virtual `_.`, the real AL's top, and an empty AL
/// (the builtin's own underflow error), on every tier.
#[test]
fn is_nil_and_is_void_answer_inline_for_every_kind() {
    for word in ["isNil", "isVoid"] {
        let src = format!(
            "{{ !_.x  _.x >{word}  Nil >{word}  Void >{word}  7 >{word}  (s) >{word}  True >{word} \
             {{ }} >{word}  _.x. >{word}  _. >{word} }} !probe  \
             Nil >probe  Void >probe  5 >probe  (t) >probe  probe >probe  9223372036854775807 >probe"
        );
        let o = diff(&src, true);
        assert!(o.err.is_none(), "{o:?}");
        // The real AL's top, when the code holds nothing virtual.
        let o = diff(&format!("{{ >{word} }} !top  Nil >top  Void >top  0 >top"), true);
        assert!(o.err.is_none(), "{o:?}");
        // An empty AL: the builtin's error at the builtin's position.
        let o = diff(&format!("{{ >{word} }} !top  >top"), true);
        assert!(o.err.is_some(), "{o:?}");
    }
    // In a loop the answer is a branch: `list.fold`'s rounds end on `_.rest >isNil`.
    speculates_without_deopts(
        "Nil !l  0 !i { i 1 >+ !i  i l >list.cons !l  i 100 >< >block Nil >choose } >chain >drop \
         { >+ } 0 l >list.fold",
        "[5050]",
    );
}

/// `isNil` rebound to a Block mid-loop, from inside the loop: the guarded site leaves for the
/// executor, which runs the Block (here negating the answer), and later entries check again.
#[test]
fn is_nil_rebound_mid_loop_deopts_at_the_site() {
    let src = "isNil !nil0  { >nil0 >not } !negated  0 !i  0 !hits \
               { i Nil 5 i >< >choose >isNil { hits 1 >+ !hits } { } >ifelse \
                 i 7 >== { negated !isNil } { } >ifelse \
                 i 1 >+ !i  i 20 >< >block Nil >choose } >chain >drop  nil0 !isNil  i hits";
    deopts_like_the_executor(src, 1, DeoptReason::GuardedPathRebound);
}

#[test]
fn a_loop_body_called_outside_a_chain_leaves_at_entry_until_the_recompile_asks_every_round() {
    // The loop's speculative code loops its rounds without asking whether a `chain` runs it
    // (the pre-header checked). Called as an ordinary Block, each run must end after one
    // round with the Block on top: the first code leaves at its entry for the executor, and
    // after those exits the recompile asks at the end of every round again (and still loops
    // when chained).
    let src = "0 !i  { i 1 >+ !i  i 100 >< >block Nil >choose } !step \
               step >chain >drop  i \
               0 !i  >step >drop >step >drop >step >drop >step >drop >step >drop  i \
               >step >chain >drop  i";
    let mut r = deopts_like_the_executor(src, 4, DeoptReason::NotChained);
    let (o, _) = run_on(ALL_OPTIMIZED, src, true);
    assert_eq!(o.al, "[100, 5, 100]");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!(s.deopt_reasons[DeoptReason::NotChained as usize], DEOPTS_BEFORE_RECOMPILE as u64, "{s:?}");
    assert_eq!(s.deopts, DEOPTS_BEFORE_RECOMPILE as u64, "only the first code left: {s:?}");
    let step: Vec<bool> = s.blocks.iter().filter(|b| (b.module, b.code) == (1, 1)).map(|b| b.speculative).collect();
    assert_eq!(step, [true, true], "speculative again after the exits: {s:?}");
    assert_eq!(s.respecialized, 1, "{s:?}");
}
