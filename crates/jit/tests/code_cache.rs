//! The process's code cache (`code_cache.rs`): a VM that translates a function equal to one
//! another VM of the process generated installs that machine code, with its own VM constants.
//! These tests check that the second VM's code works on the second VM's state: its Store
//! cells, its Blocks, its guards. Most second VMs replay the first one's translations
//! (`replay.rs`): they build no IR, and their side tables are rebuilt from the template; the
//! runners check every replay against the translation it stands for.

mod common;
use common::{run_on, Runner, Tier};
use soma_jit::{Background, JitConfig, JitStats};

/// A VM whose JIT compiles at the third execution (baseline code) and optimizes at the
/// tenth, each install at the next safepoint; every replay is checked.
fn runner() -> Runner {
    Runner::with_config(config())
}

fn config() -> JitConfig {
    JitConfig {
        threshold: Some(2),
        opt_threshold: Some(10),
        verify: true,
        check_replay: true,
        background: Background::Lockstep,
        ..JitConfig::default()
    }
}

/// Machine code the VM did not generate: replayed, or found in the cache after translating.
fn served(s: &JitStats) -> u64 {
    s.code_cache_hits + s.replayed
}

/// Run the steps in turn on `r` (up to the first error); the outcome after the last one.
fn run_all(r: &mut Runner, steps: &[&str]) -> common::Outcome {
    let mut res = Ok(());
    for s in steps {
        res = r.run_src(s);
        if res.is_err() {
            break;
        }
    }
    r.outcome(res)
}

/// The steps on a fresh VM with the JIT: the outcome and the JIT's statistics.
fn run_steps(steps: &[&str]) -> (common::Outcome, JitStats) {
    let mut r = runner();
    let o = run_all(&mut r, steps);
    (o, soma_jit::stats(&mut r.vm).expect("stats"))
}

/// The same steps on the executor (which must run them without an error).
fn reference(steps: &[&str]) -> common::Outcome {
    let o = run_all(&mut Runner::new(Tier::Executor), steps);
    assert_eq!(o.err, None, "{steps:?}");
    o
}

/// A loop over Store cells, a Block it calls, and a guarded builtin; `tag` keeps this
/// test's functions apart from other tests' (they share the process's cache).
fn looping(tag: u32) -> String {
    format!(
        "{{ >+ }} !op{tag}  0 !acc{tag}  0 !i{tag}
         {{ acc{tag} i{tag} >op{tag} !acc{tag}  i{tag} 1 >+ !i{tag}  i{tag} 40 >< >block Nil >choose }} !body{tag}
         body{tag} >chain !left{tag} acc{tag}"
    )
}

#[test]
fn a_second_vm_installs_the_code_of_the_first() {
    let src = looping(1);
    let want = reference(&[&src]);
    let (first, s1) = run_steps(&[&src]);
    assert_eq!(first, want);
    assert!(s1.blocks_compiled > 0 && s1.optimized > 0, "{s1:?}");
    let (second, s2) = run_steps(&[&src]);
    assert_eq!(second, want);
    // Every compile of the second VM found its code, and its code leaves no more often than
    // the first VM's: a guard comparing against the first VM's objects would fail every time.
    // (Installed at once rather than at the next safepoint, the code can make other Blocks
    // run less: the second VM may compile fewer.) Its Store answers the translations'
    // questions as the first VM's did, so it translates nothing.
    assert!(s2.replayed > 0 && served(&s2) == s2.blocks_compiled, "{s2:?}");
    assert_eq!((s2.deopts, s2.background_queued), (s1.deopts, 0), "{s1:?}\n{s2:?}");
}

#[test]
fn reused_code_reads_and_writes_its_own_vms_store() {
    // The same program on two VMs whose Stores hold other objects: the second VM's loop must
    // read and write its own cells (through its own cache lines).
    let src = looping(2);
    let first_steps = ["1000 !acc2 0 !base2", &src];
    let (first, _) = run_steps(&first_steps);
    assert_eq!(first, reference(&first_steps));
    // Another VM, another order of allocation: none of its objects sits where the first
    // VM's did. The first VM is gone by now.
    let second_steps = ["(pad) !x2 (more) !y2 7 !acc2", &src, "acc2 i2"];
    let (second, s2) = run_steps(&second_steps);
    assert_eq!(second, reference(&second_steps));
    assert!(s2.replayed > 0, "{s2:?}");
}

#[test]
fn a_guard_of_reused_code_leaves_when_its_own_vm_rebinds_the_path() {
    // The loop's code comes from the cache; then this VM rebinds the Block it calls: the
    // guard (against this VM's Block) must fail, and the loop must run the new Block.
    let src = looping(3);
    let _ = run_steps(&[&src]);
    let steps = [src.as_str(), "{ >* } !op3  1 !acc3  1 !i3  body3 >chain !left3 acc3"];
    let (o, s) = run_steps(&steps);
    assert_eq!(o, reference(&steps));
    assert!(s.replayed > 0, "{s:?}");
    assert!(s.deopts > 0, "the rebound Block is seen through a deopt: {s:?}");
}

#[test]
fn turned_off_it_generates_every_function_again() {
    let src = looping(4);
    let _ = run_steps(&[&src]);
    let mut r = Runner::with_config(JitConfig {
        threshold: Some(2),
        opt_threshold: Some(10),
        background: Background::Lockstep,
        code_cache: false,
        ..JitConfig::default()
    });
    let res = r.run_src(&src);
    assert_eq!(r.outcome(res), reference(&[&src]));
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!(served(&s), 0);
    assert_eq!(s.background_queued, s.blocks_compiled, "{s:?}");
}

#[test]
fn a_vm_whose_store_answers_otherwise_translates_again() {
    // Both VMs load the same Block `{ >+ }` as code 1 of their first module, and the same
    // loop as their second; the first VM's `op7` holds that Block, the second VM's the
    // builtin `+`. The loop's translation asks what `op7` holds and gets another answer: the
    // second VM cannot replay the first one's translation (which inlines the Block), and
    // translates its own.
    let lp = looping(7).replace("{ >+ } !op7", "");
    let first = ["{ >+ } !op7", lp.as_str()];
    let (o, s1) = run_steps(&first);
    assert_eq!(o, reference(&first));
    assert!(s1.optimized > 0, "{s1:?}");
    let second = ["{ >+ } !op7  + !op7", lp.as_str()];
    let (o, s2) = run_steps(&second);
    assert_eq!(o, reference(&second));
    assert!(s2.optimized > 0, "{s2:?}");
    assert_eq!(s2.replayed, 0, "{s2:?}");
    // Its own translations replay in the next VM of the same shape.
    let (o, s3) = run_steps(&second);
    assert_eq!(o, reference(&second));
    assert!(s3.replayed > 0, "{s3:?}");
}

#[test]
fn replay_turned_off_translates_and_takes_the_code_from_the_cache() {
    let src = looping(8);
    let _ = run_steps(&[&src]);
    let mut r = Runner::with_config(JitConfig { replay: false, ..config() });
    let res = r.run_src(&src);
    assert_eq!(r.outcome(res), reference(&[&src]));
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!(s.replayed, 0, "{s:?}");
    assert!(s.code_cache_hits > 0 && s.code_cache_hits == s.blocks_compiled, "{s:?}");
}

#[test]
fn a_replayed_loop_deopts_on_an_overflow_with_the_state_of_its_own_vm() {
    // A loop whose Int sum overflows past 2^47 in its 60th round: the first VM's translation speculates
    // on small Ints, the second VM replays it; the overflow must leave the replayed code
    // through its own exit tables, with this VM's Store cells and the executor's sum.
    let src = "2345624805923 !big9 0 !acc9 0 !i9
        { acc9 big9 >+ !acc9  i9 1 >+ !i9  i9 80 >< >block Nil >choose } !body9
        body9 >chain !left9 acc9 i9";
    let steps = [src];
    let want = reference(&steps);
    let (first, s1) = run_steps(&steps);
    assert_eq!(first, want);
    assert!(s1.deopts > 0, "{s1:?}");
    let (second, s2) = run_steps(&steps);
    assert_eq!(second, want);
    assert!(s2.replayed > 0 && s2.deopts > 0, "{s2:?}");
}

#[test]
fn programs_that_differ_only_in_a_constant_share_no_code() {
    // The stencils differ in an immediate: the second program must print its own number.
    let (a, _) = run_on(Tier::Jit(0), "{ 11 !_.x _.x 1 >+ } !f5 >f5 >f5 >f5", false);
    let (b, _) = run_on(Tier::Jit(0), "{ 12 !_.x _.x 1 >+ } !f5 >f5 >f5 >f5", false);
    assert_eq!((a.al.as_str(), b.al.as_str()), ("[12, 12, 12]", "[13, 13, 13]"));
}

#[test]
fn a_loop_optimized_in_one_vm_tiers_up_early_in_the_next() {
    // Threshold 50: the first VM interprets 50 rounds before the loop body is compiled (by
    // the optimizing tier, as a loop body). The second VM loads the same program, finds the
    // body's Code compiled before, and compiles it after two rounds, from the cache.
    let src = "0 !n6 { n6 1 >+ !n6  n6 300 >< >block Nil >choose } !body6  body6 >chain !left6 n6";
    let run = || {
        let mut r = Runner::with_config(JitConfig {
            threshold: Some(50),
            verify: true,
            background: Background::Lockstep,
            ..JitConfig::default()
        });
        let res = r.run_src(src);
        let o = r.outcome(res);
        (o, soma_jit::stats(&mut r.vm).expect("stats"))
    };
    let (first, s1) = run();
    assert_eq!(first, reference(&[src]));
    assert!(s1.optimized > 0, "{s1:?}");
    let (second, s2) = run();
    assert_eq!(second, reference(&[src]));
    assert!(s2.known_hot > 0 && s2.replayed > 0, "{s2:?}");
    assert_eq!(s2.background_queued, 0, "{s2:?}");
    // A VM that only defines the body: its Block is known (due two executions from now), and
    // its execution count is still what it ran, none (`Code.count` reports it).
    let mut r = Runner::with_config(JitConfig { threshold: Some(50), ..JitConfig::default() });
    r.run_src("{ n6 1 >+ !n6  n6 300 >< >block Nil >choose } !body6").unwrap();
    let body = r.vm.read_store_path(&["body6"]).unwrap();
    let b = r.vm.block_obj(body).unwrap();
    assert_eq!((b.exec_count.get(), b.tier_up_due(50)), (0, 2));
}

/// Run `src` on a fresh VM that compiles at the 6th execution and optimizes at the 100th
/// (the tier-up threshold must leave room for an early tier-up): the outcome and stats.
fn run_opt_100(src: &str) -> (common::Outcome, JitStats) {
    let mut r = Runner::with_config(JitConfig { threshold: Some(5), opt_threshold: Some(100), ..config() });
    let res = r.run_src(src);
    let o = r.outcome(res);
    (o, soma_jit::stats(&mut r.vm).expect("stats"))
}

#[test]
fn a_block_warm_in_one_vm_is_optimized_early_in_the_next() {
    // `f11` runs 60 times from interpreted program code: baseline code from its sixth run,
    // never the 100 runs of the optimizing tier. Past a quarter of them, the process's next
    // VM takes it to the optimizing tier after two runs. `g11`, run 10 times, stays cold.
    let src = format!("{{ 1 >+ }} !f11  {{ 2 >+ }} !g11  0 {} {}", " >f11".repeat(60), " >g11".repeat(10));
    let (first, s1) = run_opt_100(&src);
    assert_eq!(first, reference(&[&src]));
    assert_eq!((s1.optimized, s1.known_hot), (0, 0), "{s1:?}");
    let (second, s2) = run_opt_100(&src);
    assert_eq!(second, reference(&[&src]));
    assert_eq!((s2.optimized, s2.known_hot), (1, 1), "only f11 is known: {s2:?}");
}

#[test]
fn codes_whose_fingerprints_collide_are_told_apart() {
    // `code_fingerprint` hashes two constants of i64::MIN as it hashes two zeros (its
    // multiply-add hash cancels the two flipped top bits): the fuzzer found a replay of the
    // one program's translation for the other, whose constants are heap BigInts. A replay
    // compares the Codes whole.
    let run = |src: &str| {
        let mut r = Runner::with_config(JitConfig { threshold: Some(0), ..config() });
        let res = r.run_src(src);
        let o = r.outcome(res);
        (o, soma_jit::stats(&mut r.vm).expect("stats"))
    };
    let zeros = "\n0\n0";
    let mins = "\n-9223372036854775808\n-9223372036854775808";
    let (a, _) = run(zeros);
    assert_eq!(a, reference(&[zeros]));
    let (b, s) = run(mins);
    assert_eq!(b, reference(&[mins]));
    assert_eq!(s.replayed, 0, "{s:?}");
    // The same program again replays.
    let (c, s) = run(mins);
    assert_eq!(c, reference(&[mins]));
    assert!(s.replayed > 0, "{s:?}");
}

#[test]
fn a_block_moved_in_its_source_replays_and_reports_its_own_positions() {
    // The same Blocks further down and to the right in another VM's source (a test file's
    // copy of a helper): compiled code names an error's instruction, not its `line:col`, so
    // the second VM replays the first one's translations, and the division by zero in its
    // compiled code reports the second source's position.
    let src = "{ !_.v  100 _.v >/ } !f7
               1 !i7
               { i7 20 >== 0 i7 >choose >f7 !r7  i7 1 >+ !i7  i7 40 >< >block Nil >choose } !body7
               body7 >chain";
    let moved = format!("\n\n   {}", src.replace('\n', "\n      "));
    let run = |src: &str| {
        // Everything compiled before it runs: the error is raised in compiled code.
        let mut r = Runner::with_config(JitConfig { threshold: Some(0), ..config() });
        let res = r.run_src(src);
        let o = r.outcome(res);
        (o, soma_jit::stats(&mut r.vm).expect("stats"))
    };
    let (first, s1) = run(src);
    assert_eq!(first, reference_err(src));
    assert!(s1.blocks_compiled > 0, "{s1:?}");
    let (second, s2) = run(&moved);
    let want = reference_err(&moved);
    assert_eq!(second, want);
    assert_ne!(want.err.as_ref().map(|e| (e.2, e.3)), first.err.as_ref().map(|e| (e.2, e.3)));
    assert!(s2.replayed > 0, "{s2:?}");
}

/// `src` on the executor, which must end in an error.
fn reference_err(src: &str) -> common::Outcome {
    let mut r = Runner::new(Tier::Executor);
    let res = r.run_src(src);
    let o = r.outcome(res);
    assert!(o.err.is_some(), "{src}");
    o
}
