//! Differential tests: the reference executor and the JIT (thresholds 0 and 1) must leave the
//! same AL, output and error (class, message, line, col).

mod common;
use common::{diff, run_on, Tier};
use soma_jit::deopt::DeoptReason;

const FIB: &str = "{ !_.n _.n _.n 2 >< { } { !_.m _.m 1 >- >fib _.m 2 >- >fib >+ } >choose >chain } !fib";

#[test]
fn literals_and_arith() {
    let o = diff("1 (two) 3 7 2 >- -7 2 >/ -7 2 >% 7 -2 >% 7 -2 >/ 1 2 >< 2 1 >< (a) (b) ><", false);
    assert_eq!(o.al, "[1, (two), 3, 5, -4, 1, -1, -4, True, False, True]");
    diff("True False Nil Void { 1 } + _.", false);
}

#[test]
fn fib() {
    let o = diff(&format!("{FIB}\n15 >fib"), false);
    assert_eq!(o.al, "[610]");
}

#[test]
fn chain_counting_loop() {
    let src = "0 !acc 10000 !i\n{ acc i >+ !acc  i 1 >- !i  0 i >< >block Nil >choose } >chain\nacc";
    let o = diff(src, false);
    assert_eq!(o.al, "[Nil, 50005000]");
    diff("5 >chain", false);
    diff("1 2 + >chain", false);
    diff("{ 1 } { 2 } >chain >chain", false);
}

#[test]
fn cell_ref_write_through() {
    diff("42 !x  x. !r  7 !r  x", false);
    diff("42 !data.x  data. !ref  ref.x  99 !ref.y  data.y", false);
    diff("1 !t  t. !a  5 !a.  t a", false);
    diff("1 !a.b  2 !a.  a", false);
    diff("1 !a.b  2 !a.  a.b", false);
    diff("1 !a  Void !a.  a", false);
    diff("1 !a.b.c  a.b >isVoid", false);
    // Cached cells must notice structural changes between executions of the same code.
    diff("{ x.y } !get  1 !x.y >get  2 !x.y >get  Void !x. 3 !x.y >get  Void !x. >get", false);
    diff("{ 5 !p.q p.q } !f 1 !o.q o. !p >f  o.q  Void !p.  >f", false);
}

/// `_.t.f` below a Register name holding a CellRef: the compiled leaf lookup
/// (`jit_child_cell`) for nodes whose fields stay inline (up to four) and for spilled ones,
/// and the helper's errors where it finds nothing.
#[test]
fn record_reads_below_a_register_cell_ref() {
    for k in 1..=6 {
        let fill: Vec<String> = (0..k).rev().map(|i| format!("!_.n.f{i}")).collect();
        let values: Vec<String> = (0..k).map(|i| (10 * i + 1).to_string()).collect();
        let reads: Vec<String> = (0..k).map(|i| format!("_.t.f{i}")).collect();
        let src = format!(
            "{{ {} _.n. }} !mk  {} >mk !rec  {{ !_.t {} }} !rd  rec >rd rec >rd",
            fill.join(" "),
            values.join(" "),
            reads.join(" ")
        );
        let o = diff(&src, false);
        for tier in [Tier::Jit(0), Tier::Optimizing(0, 0)] {
            let (_, mut r) = run_on(tier, &src, false);
            let stats = soma_jit::stats(&mut r.vm).expect("installed");
            assert!(stats.child_read_sites >= k, "{tier:?} compiled the reads as lookups: {stats:?}");
        }
        let one: Vec<String> = (0..k).map(|i| (10 * i + 1).to_string()).collect();
        assert_eq!(o.al, format!("[{}, {}]", one.join(", "), one.join(", ")), "{src}");
        assert!(o.err.is_none(), "{src}");
        // A field the node lacks, and a Register name that holds no CellRef: the same error.
        let o = diff(&format!("{src}  {{ !_.t _.t.f7 }} !miss  rec >miss"), false);
        assert!(o.err.is_some(), "{src}: a missing field reads as an error");
        let o = diff(&format!("{src}  5 >rd"), false);
        assert!(o.err.is_some(), "{src}: a read below an Int is an error");
    }
    // An auto-vivified field reads Void; a field holding a CellRef is read, not followed.
    let o = diff("{ !_.n.a 7 !_.n.b.deep _.n. !_.n.c _.n. } !mk  1 >mk !rec  { !_.t _.t.b _.t.c _.t.a } !rd  rec >rd rec >rd", false);
    assert!(o.err.is_none());
    assert!(o.al.starts_with("[Void, "), "{}", o.al);
    assert!(o.al.ends_with(", 1]"), "{}", o.al);
}

/// The record sites a tier compiled for `src` (`JitStats::record_sites`) and how many
/// deopts it took to write through a CellRef.
fn record_stats(tier: Tier, src: &str, stdlib: bool) -> (u64, u64) {
    let (_, mut r) = run_on(tier, src, stdlib);
    let stats = soma_jit::stats(&mut r.vm).expect("installed");
    let through = DeoptReason::RegisterWriteThrough.name();
    let deopts = stats.deopts_by_reason().iter().find(|(n, _)| *n == through).map_or(0, |p| p.1);
    (stats.record_sites, deopts)
}

/// Record names (`translate/record.rs`): a Register name written only below itself and
/// handed out as `_.n.` is the cell compiled code makes, with every constructor shape the
/// stdlib has (fields first, the reference first, a field written twice, a field holding a
/// CellRef), in a loop with a fresh record per round, on every tier.
#[test]
fn record_names_are_cells_the_code_makes() {
    for k in 1..=6u64 {
        let fill: Vec<String> = (0..k).rev().map(|i| format!("!_.n.f{i}")).collect();
        let values: Vec<String> = (0..k).map(|i| (10 * i + 1).to_string()).collect();
        let reads: Vec<String> = (0..k).map(|i| format!("rec.f{i}")).collect();
        let src = format!("{{ {} _.n. }} !mk  {} >mk !rec  {}", fill.join(" "), values.join(" "), reads.join(" "));
        let o = diff(&src, false);
        assert_eq!(o.al, format!("[{}]", values.join(", ")), "{src}");
        for tier in [Tier::Jit(0), Tier::Optimizing(0, 0)] {
            let (sites, _) = record_stats(tier, &src, false);
            assert!(sites > k, "{tier:?} compiled the constructor's writes and its `_.n.`: {sites}");
        }
    }
    // The reference first (the cell is made without a field), then fields; a field written
    // twice; a field holding a CellRef (to another record, to the record itself).
    let o = diff(">{ _.n. !keep  1 !_.n.a  2 !_.n.b  2 !_.n.a  _.n.a }  keep.a keep.b", false);
    assert_eq!(o.al, "[2, 2, 2]");
    let o = diff("{ !_.m.x  _.m. !_.n.link  _.n. !_.n.me  _.n. } !mk  5 >mk !r  r.link.x  r.me.me.link.x", false);
    assert_eq!(o.al, "[5, 5]");
    // A list built in a chained loop: a new record every round (`list.cons`'s shape).
    let src = "Nil !l 0 !i { l !_.c.next i !_.c.value _.c. !l  i 1 >+ !i  i 50 >< >block Nil >choose } >chain \
               0 !s { s l.value >+ !s  l.next !l.  l >isNil Nil >block >choose } >chain s";
    let o = diff(src, false);
    assert_eq!(o.al, "[Nil, Nil, 1225]");
    let src = "{ !_.c.next !_.c.value _.c. } !cons  Nil !l  0 !i \
               { i l >cons !l  i 1 >+ !i  i 300 >< >block Nil >choose } >chain  l.next.next.value";
    let o = diff(src, false);
    assert_eq!(o.al, "[Nil, 297]");
    // A field read before the record exists, and a missing field: the executor's errors.
    let o = diff(">{ _.n.a  1 !_.n.a }", false);
    assert!(o.err.is_some());
    let o = diff(">{ 1 !_.n.a  _.n. !r  _.n.zz }", false);
    assert!(o.err.is_some());
}

/// A fresh record's run of field writes is made by one call (`record.rs`) when the values
/// are the code's own virtual entries: every run length up to past the most made at once
/// (eight), a field written twice in the run, values partly from the real AL (the caller's
/// pushes, not the inlined constructor's); the record's graph (`debug.graph.dump`) as the
/// executor makes it, on every tier.
#[test]
fn a_fresh_records_fields_are_made_at_once() {
    let batches = |tier: Tier, src: &str| {
        let (_, mut r) = run_on(tier, src, false);
        soma_jit::stats(&mut r.vm).expect("installed").record_batches
    };
    for k in 2..=10u64 {
        let fill: Vec<String> = (0..k).rev().map(|i| format!("!_.n.f{i}")).collect();
        let values: Vec<String> = (0..k).map(|i| (10 * i + 1).to_string()).collect();
        let reads: Vec<String> = (0..k).map(|i| format!("rec.f{i}")).collect();
        // The values pushed by the Block that calls (and inlines) the constructor.
        let src = format!(
            "{{ {} _.n. }} !mk  {{ {} >mk }} !call  >call !rec  {}  rec. >debug.graph.dump",
            fill.join(" "),
            values.join(" "),
            reads.join(" ")
        );
        let o = diff(&src, false);
        assert_eq!(o.al, format!("[{}]", values.join(", ")), "{src}");
        for tier in [Tier::Jit(0), Tier::Optimizing(0, 0)] {
            assert!(batches(tier, &src) >= 1, "{tier:?} made the record's fields at once: {src}");
        }
    }
    // A field written twice: the run stops before the second write, which writes the child.
    let src = "{ !_.n.c !_.n.b !_.n.b !_.n.a _.n. } !mk  { 1 2 3 4 >mk } !call  >call !r  r.a r.b r.c                r. >debug.graph.dump";
    let o = diff(src, false);
    assert_eq!(o.al, "[1, 2, 4]");
    assert!(batches(Tier::Optimizing(0, 0), src) >= 1);
    // Two values the caller pushed on the real AL, two the constructor's caller pushed: the
    // first two writes are made at once, the others one by one.
    let src = "{ !_.n.d !_.n.c !_.n.b !_.n.a _.n. } !mk  { 3 4 >mk } !call  { 1 2 >call } !outer                >outer !r  r.a r.b r.c r.d  r. >debug.graph.dump";
    let o = diff(src, false);
    assert_eq!(o.al, "[1, 2, 3, 4]");
    // Values from the real AL only: nothing made at once, the same record.
    let src = "{ !_.n.b !_.n.a _.n. } !mk  1 2 >mk !r  r.a r.b";
    let o = diff(src, false);
    assert_eq!(o.al, "[1, 2]");
}

/// A field write the code does not do itself, on every tier: one that goes through a CellRef
/// the field holds (deoptimised: the executor writes through, into the Store cell here), and
/// one that moves the graph's counters (the field is a cell a cached Store lookup went
/// through). And names used both ways: as a record in one level and a plain name in the
/// level aliasing it (`!_.`), which the translation gives up on and compiles again plainly.
#[test]
fn record_field_writes_the_executor_does() {
    let src = "{ x. !_.n.link  9 !_.n.link  _.n. } !mk  1 !x  >mk !r  x  r.link";
    let o = diff(src, false);
    assert_eq!(o.al, "[9, CellRef]");
    for tier in [Tier::Jit(0), Tier::Optimizing(0, 0)] {
        let (sites, through) = record_stats(tier, src, false);
        assert!(sites >= 3 && through >= 1, "{tier:?}: {sites} sites, {through} deopts writing through");
    }
    // `cur.f.x` (a Block the code calls, not knowing which) goes through the field `f` (the
    // lookup marks it); writing a CellRef into `f` afterwards moves the epoch, and
    // speculative code leaves after that write.
    let src = "{ !_.rd !_.pub  _.m. !_.n.f  7 !_.m.x  _.n. >_.pub  >_.rd  _.k. !_.n.f  3 !_.k.x  >_.rd } !go \
               { !cur } { cur.f.x } >go  { !cur } { cur.f.x } >go";
    let o = diff(src, false);
    assert_eq!(o.al, "[7, 3, 7, 3]");
    let (_, mut r) = run_on(Tier::Optimizing(0, 0), src, false);
    let stats = soma_jit::stats(&mut r.vm).expect("installed");
    let seen = DeoptReason::RecordFieldSeen as usize;
    assert!(stats.deopt_reasons[seen] >= 1, "the field write left speculative code: {stats:?}");
    // Plain in the caller, a record in the callee through `!_.` (and the other way round).
    let o = diff(">{ 1 !_.x  _. >{ !_. 7 !_.x.f }  _.x }", false);
    assert!(o.err.is_none(), "{o:?}");
    let o = diff(">{ 1 !_.x.f  _. >{ !_. 7 !_.x }  _.x.f }", false);
    assert!(o.err.is_none(), "{o:?}");
    // A Code using one name both ways keeps a heap Register.
    let o = diff(">{ 1 !_.n.a  2 !_.n  _.n _.n.a }", false);
    assert_eq!(o.al, "[2, 1]");
}

/// A deopt inside a Block with a record name: the exit attaches the record's cell to the
/// Register it materialises, and the executor goes on with it (more fields, `_.n.`).
#[test]
fn a_deopt_hands_the_record_cell_to_the_executor() {
    let src = "{ !_.n.a  _.n.a 9223372036854775807 >+ !_.n.b  _.n. } !mk \
               { !_.i  _.i >mk !r  r.b  _.i 1 >+ } !step  1 >step >step >step >step >step >step \
               { !_.i  _.i >mk !r  r.b } !last  -9223372036854775807 >last  1 >last";
    let o = diff(src, false);
    assert!(o.err.is_none(), "{o:?}");
    assert!(o.al.contains("9223372036854775808"), "{}", o.al);
}

/// `a.b.` through a cache line (`gen_ref_store`): the cell made on the first miss, the line's
/// hit afterwards, a new cell after the old one was deleted, and a path through a CellRef
/// that is then pointed elsewhere (the epoch invalidates the line).
#[test]
fn store_references_through_a_cache_line() {
    let o = diff("{ a.b. } !r  >r !x  5 !x  a.b  >r !y  6 !y  a.b", false);
    assert_eq!(o.al, "[5, 6]");
    let o = diff("{ q.w. } !rq  >rq !h  7 !h  Void !q.  >rq !h2  8 !h2  q.w  h", false);
    assert_eq!(o.al, "[8, CellRef]");
    let o = diff("t. !s  { s.k. } !rk  >rk !m  3 !m  t.k  u. !s.  >rk !m2  4 !m2  u.k t.k", false);
    assert_eq!(o.al, "[3, 4, 3]");
    // In a loop (speculative code): the same cell every round.
    let o = diff("0 !i { c.n. !p  i !p  i 1 >+ !i  i 100 >< >block Nil >choose } >chain  c.n", false);
    assert_eq!(o.al, "[Nil, 99]");
}

/// A `choose` whose arm is itself a `choose` of Blocks (bst's three-way walk), executed
/// through a Register name: compiled as branches to the three Blocks, each inlined or called;
/// either arm may be the nested one, and a Block leaf that is not a Block (a Str) keeps the
/// generic execution (and its error).
#[test]
fn nested_choices_of_blocks_branch_three_ways() {
    let three_way = [
        "{ !_.x  _.x 3 ><  { (lt) }  3 _.x ><  { (gt) }  { (eq) }  >choose  >choose  !_.go >_.go } !cmp3",
        "{ !_.x  _.x 3 ><  3 _.x >< { (gt) } { (eq) } >choose  { (lt) }  >choose  !_.go >_.go } !cmp3",
    ];
    for def in three_way {
        let src = format!("{def}  2 >cmp3 3 >cmp3 4 >cmp3  {{ !_.n _.n >cmp3 }} !w  1 >w 3 >w 9 >w");
        let o = diff(&src, false);
        assert_eq!(o.al.matches("(lt)").count() + o.al.matches("(gt)").count() + o.al.matches("(eq)").count(), 6, "{}", o.al);
        let (_, mut r) = run_on(Tier::Optimizing(0, 0), &src, false);
        let stats = soma_jit::stats(&mut r.vm).expect("installed");
        assert!(stats.nested_choices >= 1, "compiled as branches: {stats:?}");
    }
    // A leaf that is not a Block: no branches, the generic execution and the executor's error
    // when the Str is the one selected.
    let o = diff("{ !_.x  _.x 3 ><  { (lt) }  3 _.x ><  (gt)  { (eq) }  >choose  >choose  !_.go >_.go } !cmp3  2 >cmp3 3 >cmp3 4 >cmp3", false);
    assert!(o.err.is_some(), "executing a Str is an error: {o:?}");
}

#[test]
fn register_aliasing() {
    let src = "{ !_. 5 !_.v  _.w 1 >+ !_.w } !setv\n10 !_.w  _. >setv  _.v _.w";
    let o = diff(src, false);
    assert_eq!(o.al, "[5, 11]");
    diff("1 !_.x { _.x } >chain", false);
    diff("_", false);
    diff("3 !_.a _. >{ !_. _.a 4 >+ !_.a } _.a", false);
}

#[test]
fn bigint_overflow() {
    let o = diff("9223372036854775807 1 >+", false);
    assert_eq!(o.al, "[9223372036854775808]");
    let o = diff("10 20 >* !e 1 { 10 >* } !t 100000000000000000000 3 >*", false);
    assert_eq!(o.al, "[1, 300000000000000000000]");
    diff("140737488355327 1 >+ 1 >- -140737488355328 1 >- 140737488355327 2 >* -140737488355328 -1 >/", false);
    diff("-140737488355328 -1 >% 70000000 70000000 >* 100000000000000000000 7 >/ -100000000000000000000 7 >%", false);
    diff("99999999999999999999 100000000000000000000 >< 1 100000000000000000000 ><", false);
}

#[test]
fn floor_div_mod_of_negatives() {
    for (a, b) in [(-7, 2), (7, -2), (-7, -2), (7, 2), (-6, 3), (6, -3), (0, -5), (-1, 5)] {
        diff(&format!("{a} {b} >/ {a} {b} >%"), false);
    }
}

#[test]
fn every_error_kind() {
    for src in [
        "nope",
        "1 2 nope.x",
        "1 _.nope",
        "!x",
        "!x.",
        "!_.y",
        "1 2 (s) >+",
        "1 (a) >-",
        "1 2 >+ (a) 3 >*",
        "5 0 >/",
        "5 0 >%",
        "1 (a) ><",
        "Nil Nil ><",
        "1 >concat",
        "1 2 >concat",
        "(x) >toString",
        "5 >toInt",
        ">block",
        "(boom) >debug.error",
        ">debug.error",
        "5 >use",
        "(zzz) >use",
        "5 !f >f",
        "(str) !g 1 >g",
        ">+",
        "1 >+",
        ">choose",
        "1 2 >choose",
        ">chain",
        "{ 1 (a) >+ } >chain",
        "{ 1 (a) >+ } !h 1 2 >h",
        "{ { 7 0 >% } >chain } !k >k",
        "1 2 { 3 } >_.nothere",
        "1 !_.q >_.q",
        ">readLine",
    ] {
        let o = diff(src, false);
        assert!(o.err.is_some(), "{src} should fail");
    }
}

#[test]
fn error_does_not_roll_back() {
    diff("1 2 !a 3 4 (x) >+ 5", false);
    diff("{ 1 2 3 (x) >* } !f 9 >f", false);
}

fn big_stack<F: FnOnce() + Send + 'static>(f: F) {
    common::on_big_stack(f)
}

#[test]
fn deep_recursion() {
    big_stack(|| {
        // Runaway recursion hits the depth limit in both tiers.
        let o = diff("{ 1 >f } !f >f", false);
        assert_eq!(
            o.err.as_ref().unwrap().1,
            "recursion too deep (limit 10000 nested block executions)"
        );
        // Just below the limit works.
        let o = diff(
            "{ !_.n _.n 0 _.n >< { !_.m _.m 1 >- >d 1 >+ } { } >choose >chain } !d 3000 >d",
            false,
        );
        assert_eq!(o.al, "[3000]", "{o:?}");
    });
}

#[test]
fn runaway_recursion_on_a_small_stack_is_an_error_not_a_crash() {
    common::on_stack(512 * 1024, || {
        let (o, _) = run_on(Tier::Jit(0), "{ 1 >f } !f >f", false);
        let (class, msg, _, _) = o.err.expect("error");
        assert_eq!(class, "RuntimeError");
        assert!(msg.starts_with("recursion too deep"), "{msg}");
    });
}

#[test]
fn rebinding_plus_mid_program() {
    let o = diff("{ 1 2 >+ } !three >three { >- } !+ >three 5 3 >+", false);
    assert_eq!(o.al, "[3, -1, 2]");
    diff("{ >+ } !add 1 2 >add { >* } !+ 3 4 >add 5 6 >+", false);
    diff("{ !_.x _.x _.x >< } !lt 1 >lt 3 !< 1 >lt", false);
    diff("{ 1 2 3 >choose } !c >c { 9 } !choose >c", false);
    diff("{ { 1 } >chain } !c >c { 7 } !chain >c", false);
    diff("{ >block } !b >b 5 !block >b", false);
    // Rebinding through the structural path: delete and recreate.
    diff("{ 1 2 >+ } !p >p Void !+. >p", false);
}

#[test]
fn output_and_print() {
    diff("1 >print (hi) >print { 2 >print } >chain + >print 7 >toString >print", false);
}

#[test]
fn stdlib_loads_and_runs() {
    diff("1 2 >swap 3 >dup >drop 5 >inc 2 >dec", true);
    diff("3 4 >max 3 4 >min -5 >abs True False >and True >not", true);
}

#[test]
fn stdlib_dict_workload() {
    let src = "\
        >dict.new !d\n\
        0 !i { i i i >* d >dict.put !d  i 1 >+ !i  i 40 >< >block Nil >choose } >chain >drop\n\
        d >dict.size\n\
        7 d >dict.get\n\
        39 d >dict.has 40 d >dict.has\n\
        5 d >dict.remove !d d >dict.size\n\
        d >dict.keys >list.length";
    let o = diff(src, true);
    assert!(o.err.is_none(), "{o:?}");
    assert_eq!(o.al, "[40, 49, True, False, 39, 39]");
}

#[test]
fn stdlib_lists() {
    diff(
        "1 2 3 4 5 Void >list.from_al !l l >list.length l { 2 >* } >list.map >list.to_al",
        true,
    );
}

#[test]
fn tier_up_by_threshold() {
    // Blocks compile on their threshold-th execution; the program keeps being correct.
    for t in [1, 2, 5, 50] {
        let src = format!("{FIB}\n18 >fib");
        let (reference, _) = run_on(Tier::Executor, &src, false);
        let (o, mut r) = run_on(Tier::Jit(t), &src, false);
        assert_eq!(o, reference);
        let s = soma_jit::stats(&mut r.vm).unwrap();
        assert!(s.blocks_compiled >= 2, "threshold {t}: {s:?}");
    }
    // `off`: nothing is compiled.
    let mut r = common::Runner::new(Tier::Jit(0));
    soma_jit::set_threshold(&mut r.vm, None);
    let res = r.run_src(&format!("{FIB}\n10 >fib"));
    let o = r.outcome(res);
    assert_eq!(o.al, "[55]");
    assert_eq!(soma_jit::stats(&mut r.vm).unwrap().blocks_compiled, 0);
}

#[test]
fn virtual_register_write_through_deopts() {
    let o = diff("{ a. !_.x 7 !_.x _.x } !f 5 !a >f a", false);
    assert_eq!(o.al, "[CellRef, 7]");
    diff("{ a. !_.x b. !_.x 9 !_.x } !f 1 !a 2 !b >f a b", false);
    diff("{ !_.x 3 !_.x _.x } !f 1 !a a. >f a", false);
    // Virtual names holding heap values across calls (run also under SOMA_GC_STRESS=1).
    diff(
        "{ (x) (y) >concat } !mk { !_.s >mk !_.t _.s _.t >concat >mk >concat } !g (a) >g (b) >g",
        false,
    );
    diff("{ !_.n 100000000000000000000 !_.b _.b _.n >* !_.c { 1 } >chain _.c } !h 3 >h", false);
    // Undefined virtual name, and underflow of `!_.x`.
    diff("{ 1 _.nope } !f >f", false);
    diff("{ !_.x } !f >f", false);
    let (_, mut r) = run_on(Tier::Jit(0), "{ a. !_.x 7 !_.x } !f 5 !a >f >f", false);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!(s.deopts, 2);
    assert_eq!(s.deopts_by_reason(), [(DeoptReason::RegisterWriteThrough.name(), 2)]);
}

#[test]
fn deopt_counts_rebinding() {
    let (o, mut r) = run_on(Tier::Jit(0), "{ 1 2 >+ } !p >p { >- } !+ >p >p", false);
    assert_eq!(o.al, "[3, -1, -1]");
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!(s.deopts, 2);
    assert_eq!(s.deopts_by_reason(), [(DeoptReason::GuardedPathRebound.name(), 2)]);
}

#[test]
fn reinstalling_keeps_compiled_code_valid() {
    let mut r = common::Runner::new(Tier::Jit(0));
    r.run_src(&format!("{FIB}\n10 >fib")).unwrap();
    soma_jit::install_with(
        &mut r.vm,
        soma_jit::JitConfig {
            threshold: Some(3),
            ..soma_jit::JitConfig::default()
        },
    )
    .unwrap();
    r.run_src("12 >fib").unwrap();
    assert_eq!(r.outcome(Ok(())).al, "[55, 144]");
    assert_eq!(soma_jit::stats(&mut r.vm).unwrap().compile_failures, 0);
}

#[test]
fn shadow_stack_exhaustion_falls_back_to_heap_registers() {
    // 20 Register names per level × 4000 levels is more than the 65,536 shadow slots:
    // frames past that run interpreted (deopt at instruction 0) instead of failing.
    big_stack(|| {
        let names: String = (0..19).map(|i| format!("{i} !_.v{i} ")).collect();
        let src = format!(
            "{{ !_.n {names} _.n 0 _.n >< {{ !_.m _.m 1 >- >r }} {{ }} >choose >chain }} !r 4000 >r"
        );
        let src = src.as_str();
        let o = diff(src, false);
        assert_eq!(o.al, "[0]", "{o:?}");
        let (_, mut r) = run_on(Tier::Jit(0), src, false);
        let s = soma_jit::stats(&mut r.vm).unwrap();
        assert!(s.deopt_reasons[DeoptReason::ShadowStackFull as usize] > 0, "the fallback was taken: {s:?}");
    });
}

#[test]
fn depth_limit_recursion_fits_an_8_mib_stack() {
    // 4990 levels = 9980 nested blocks: the executor needs no native stack for them; compiled
    // code does, and must still reach the same result on a main-thread-sized stack.
    common::on_stack(8 << 20, || {
        let src = "{ !_.n _.n 0 _.n >< { !_.m _.m 1 >- >d 1 >+ } { } >choose >chain } !d 4990 >d";
        let (o, _) = run_on(Tier::Jit(0), src, false);
        assert_eq!(o.al, "[4990]", "{o:?}");
    });
}

#[test]
fn repeated_deopts_recompile_the_block() {
    // `+` rebound: the guard fails at every call until the block is recompiled against the
    // new binding (a plain call), after which no exit is taken.
    let calls = ">p ".repeat(12);
    let src = format!("{{ 1 2 >+ }} !p >p {{ >- }} !+ {calls}");
    let o = diff(&src, false);
    assert_eq!(o.al, format!("[3{}]", ", -1".repeat(12)));
    let (_, mut r) = run_on(Tier::Jit(0), &src, false);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!(s.deopts, soma_jit::compiler::DEOPTS_BEFORE_RECOMPILE as u64);
    assert_eq!(s.recompiles, 1);
    // Register write-through at every call: recompiled with heap Registers, exits stop.
    let calls = ">f ".repeat(10);
    let src = format!("{{ a. !_.x 7 !_.x _.x >drop_ }} !f {{ !_.z }} !drop_ 5 !a {calls} a");
    let o = diff(&src, false);
    assert_eq!(o.al, "[7]");
    let (_, mut r) = run_on(Tier::Jit(0), &src, false);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert_eq!((s.deopts, s.recompiles), (4, 1));
}

#[test]
fn error_source_is_the_module_of_the_failing_code() {
    // The error is raised inside a stdlib word: its source is the stdlib module.
    let o = diff("(k) >dict.new >dict.get", true);
    let src = o.err_source.clone().expect("noted");
    assert!(src.contains("stdlib"), "{o:?}");
    // And in the program itself.
    let o = diff("1 (a) >+", true);
    assert_eq!(o.err_source.as_deref(), Some(""), "{o:?}");
}

#[test]
fn chained_blocks_run_their_own_next_iteration() {
    // Self-continuing chain bodies, with the value on top found different ways; values left
    // below the top; a heap Register (a CellRef to it is taken) that must be fresh in every
    // iteration; a virtual one; an error in a late iteration; a body chained by a builtin.
    let counting = "0 !i { i 1 >+ !i  i 1000 >< >block Nil >choose } >chain i";
    assert_eq!(diff(counting, false).al, "[Nil, 1000]");
    diff("0 !i { i 1 >+ !i  i  i 5 >< loop Nil >choose } !loop >loop >chain", false);
    diff("0 !i { i 1 >+ !i  i 3 >< { } >block >choose >chain } >chain i", false);
    // `_.x.` creates `_.x` (Void) only in a fresh Register; the CellRef makes it a heap one.
    let fresh = "0 !i 0 !fresh\n{ _.x. !_.p  _.x >isVoid 1 0 >choose fresh >+ !fresh  1 !_.x\n  i 1 >+ !i  i 50 >< >block Nil >choose } >chain fresh";
    assert_eq!(diff(fresh, false).al, "[Nil, 50]");
    diff("0 !i { !_.v  i 1 >+ !i  i _.v >+  i 20 >< >block Nil >choose } 7 >chain", false);
    diff("0 !i { i 1 >+ !i  i 40 >== (x) 1 >choose 2 >+  >block } >chain", false);
    diff("0 !i { i 1 >+ !i  i 10 >< >block Nil >choose } !b { b >chain } >chain", false);

    // Every chained iteration counts as an execution of the Block, as the executor counts.
    for tier in [Tier::Executor, Tier::Jit(0)] {
        let (_, r) = run_on(tier, counting, false);
        let block = r.vm.module(0).expect("module").blocks[1];
        assert_eq!(r.vm.block_obj(block).expect("block").exec_count.get(), 1000, "{tier:?}");
    }
}

#[test]
fn chained_iterations_poll_the_host() {
    // The poll hook runs every POLL_INTERVAL block entries, chained iterations included, and
    // its error stops the loop at the `chain`, in both tiers alike.
    fn fail_on_third(_: &mut soma_runtime::Vm, user: *mut std::ffi::c_void) -> soma_runtime::error::RtResult<()> {
        // SAFETY: `user` points at the test's counter, alive for the whole run.
        let calls = unsafe { &mut *(user as *mut u32) };
        *calls += 1;
        if *calls == 3 {
            return Err(soma_runtime::SomaError::runtime("interrupted"));
        }
        Ok(())
    }
    let src = "0 !i\n  { i 1 >+ !i  i 100000 >< >block Nil >choose } >chain";
    let seen = poll_runs(src, fail_on_third);
    let reference = &seen[0];
    assert_eq!(reference.2, 3);
    assert_eq!(
        reference.0.err.as_ref().map(|e| (e.1.as_str(), e.2, e.3)),
        Some(("interrupted", 2, 49))
    );
    assert_eq!(reference.1.as_deref(), Some(&*format!("{}", 3 * soma_runtime::vm::POLL_INTERVAL - 1)));
    for s in &seen[1..] {
        assert_eq!(s, reference);
    }
    // Calls of a Block too big to inline (compiled code calls its entry directly) count
    // towards the poll too; the error is positioned at the call.
    let calls = "{ 1 >+ 0 >+ 0 >+ 0 >+ 0 >+ 0 >+ 0 >+ 0 >+ 0 >+ } !inc  0 !i\n\
                 { i >inc !i  i 100000 >< >block Nil >choose } >chain";
    let seen = poll_runs(calls, fail_on_third);
    assert_eq!(seen[0].0.err.as_ref().map(|e| (e.2, e.3)), Some((2, 5)), "{:?}", seen[0]);
    for s in &seen[1..] {
        assert_eq!(s, &seen[0]);
    }
}

type PollHook = fn(&mut soma_runtime::Vm, *mut std::ffi::c_void) -> soma_runtime::error::RtResult<()>;

/// Run `src` on the executor and the JIT with `hook` polling: (outcome, `i`, polls).
fn poll_runs(src: &str, hook: PollHook) -> Vec<(common::Outcome, Option<String>, u32)> {
    let mut seen = Vec::new();
    for tier in [Tier::Executor, Tier::Jit(0), Tier::Jit(2)] {
        let mut r = common::Runner::new(tier);
        let mut calls = 0u32;
        r.vm.set_poll(Some(hook), &mut calls as *mut u32 as *mut std::ffi::c_void);
        let res = r.run_src(src);
        let o = r.outcome(res);
        let i = r.vm.read_store_path(&["i"]).map(soma_runtime::render::al_form);
        r.vm.set_poll(None, std::ptr::null_mut());
        seen.push((o, i, calls));
    }
    seen
}

/// Context passing as the stdlib writes it: `_.` handed to a branch that does `!_.`.
const SIGN: &str = "{ !_.n _. _.n 0 ><\n  { !_. (neg) }\n  { !_. _. _.n 0 >>  { !_. (pos) } { !_. (zero) } >ifelse }\n  >ifelse } !sign";

#[test]
fn inlined_bodies_share_the_callers_virtual_register() {
    let o = diff(&format!("{SIGN}\n-3 >sign 0 >sign 8 >sign"), true);
    assert_eq!(o.al, "[(neg), (zero), (pos)]");
    let fib = "{ !_.n _. _.n 2 >< { !_. _.n } { !_. _.n 1 >- >fib _.n 2 >- >fib >+ } >choose >^ } !fib";
    let o = diff(&format!("{fib}\n20 >fib"), true);
    assert_eq!(o.al, "[6765]");
    // The inlined branches write names of the caller through the alias, and read them after.
    diff(
        "{ !_.n _. _.n 5 >< { !_. 1 !_.r } { !_. 2 !_.r _.n !_.m } >ifelse _.r } !f 3 >f 9 >f",
        true,
    );
    let (_, mut r) = run_on(Tier::Jit(0), &format!("{fib}\n10 >fib"), true);
    assert!(soma_jit::stats(&mut r.vm).unwrap().inlined > 0, "nothing was inlined");
}

#[test]
fn errors_inside_inlined_bodies_match_the_executor() {
    // Errors at every depth of inlining: position, module, the AL left behind (including a
    // CellRef to a Register that only existed virtually), no frame or shadow slot leaked.
    diff("{ !_.n _. _.n 0 >< { !_. _.n (x) >+ } { !_. _.q } >ifelse } !f 1 >f", true);
    diff("{ !_.n _. _.n 0 >< { !_. _.n (x) >+ } { !_. _.q } >ifelse } !f -1 >f", true);
    diff("{ !_.n _. (a) _.n 0 >< { !_. _.n 0 >/ } { !_. 1 } >ifelse } !f -4 >f", true);
    diff("{ _. { !_. 1 !_.x nope } >^ } !f >f", true);
    diff("{ !_.n _.  { !_. _.n } >^ } !f >f", true);
    // The depth limit is reached inside inlined frames exactly where the executor reaches it
    // (on a stack big enough that the native guard does not fire first).
    big_stack(|| {
        let deep = "{ !_.n _. _.n 1 >< { !_. 0 } { !_. _.n 1 >- >down } >ifelse } !down 6000 >down";
        let o = diff(deep, true);
        assert!(o.err.as_ref().is_some_and(|e| e.1.starts_with("recursion too deep")), "{o:?}");
    });
}

#[test]
fn deopts_inside_inlined_bodies_resume_every_level() {
    // `-` is rebound after the blocks are compiled with it inlined: the exits inside the
    // inlined branch hand the materialised Registers and frames to the executor.
    let src = format!(
        "{SIGN}\n{{ !_.n _. _.n 1 >< {{ !_. _.n }} {{ !_. _.n 1 >- !_.m _.m 2 >* }} >ifelse }} !g\n\
         5 >g -3 >sign  {{ >+ }} !-  5 >g 7 >g 9 >g 11 >g 13 >g 0 >sign 8 >sign"
    );
    let o = diff(&src, true);
    assert_eq!(o.al, "[8, (neg), 12, 16, 20, 24, 28, (zero), (pos)]");
    let (_, mut r) = run_on(Tier::Jit(0), &src, true);
    let s = soma_jit::stats(&mut r.vm).unwrap();
    assert!(s.deopts >= 4 && s.recompiles >= 1, "{s:?}");
    // Rebinding the Block an `>ifelse` site inlined.
    diff(
        "{ !_.n _.n 0 >< { (a) } { (b) } >ifelse } !f 1 >f  { >drop >drop >drop (c) } !ifelse 1 >f -1 >f",
        true,
    );
}

#[test]
fn reads_below_virtual_register_names() {
    // `_.h` lives in a slot; `_.h.key` reads below the cell its CellRef value names.
    assert_eq!(diff("{ !_.h _.h.key } !f 5 !n.key n. >f", false).al, "[5]");
    assert_eq!(diff("{ !_.h _.h.a.b } !f 7 !n.a.b n. >f", false).al, "[7]");
    // An intermediate cell holding a CellRef is followed, one hop, as every walk does.
    assert_eq!(diff("{ !_.h _.h.a.b } !f 1 !m.b  m. !n.a  n. >f", false).al, "[1]");
    assert_eq!(diff("{ !_.h >_.h.go } !f { 42 } !n.go n. >f", false).al, "[42]");
    // Undefined below a non-CellRef, a missing child, an unwritten name.
    diff("{ !_.h _.h.key } !f 5 >f", false);
    diff("{ !_.h _.h.nope } !f 1 !n.k n. >f", false);
    diff("{ 1 _.h.key } !f >f", false);
    diff("{ !_.h _.h.a.b } !f 1 !n.a n. >f", false);
}

#[test]
fn frames_of_inlined_bodies_are_real_when_observed() {
    // `block` run as an unknown value inside inlined bodies sees the innermost Block, as
    // in the executor (the virtual frames are pushed around the call).
    let o = diff("{ !_.g  _.g { !_.h >_.h } >^ } !f  block >f >debug.id  f >debug.id  >==", true);
    assert_eq!(o.al, "[False]", "{o:?}");
    // And an error raised by such a call unwinds every frame.
    diff("{ !_.g  _.g { !_.h >_.h } >^ } !f  (x) >f", true);
    diff("{ !_.g  _.g { !_.h 1 >_.h } >^ } !f  + >f", true);
}

#[test]
fn a_chain_inside_inlined_bodies_runs_with_their_frames_real() {
    // `{ >chain }` is inlined under `^` with a virtual frame; the chain runs `block`, which
    // must push `{ >chain }` itself (the innermost frame, made real for the chain), whose
    // next run finds Nil and ends. With the frame left virtual it would push `f`, which
    // would then run a second time.
    let o = diff("{ c.k 1 >+ !c.k  !_.g  _.g { >chain } >^ } !f  0 !c.k  Nil block >f  c.k", true);
    assert_eq!(o.al, "[Nil, 1]", "{o:?}");
    // A chain of a known looping Block there, and one whose Block fails mid-way (the error
    // unwinds every frame, virtual or made real, with the executor's position).
    let step = "{ c.n 1 >- !c.n  0 c.n >< >block Nil >choose } !step";
    let o = diff(&format!("{step}  {{ !c.n  c.n 0 >> {{ step >chain >drop }} {{ }} >ifelse  c.n }} !f  5 >f 3 >f"), true);
    assert_eq!(o.al, "[0, 0]", "{o:?}");
    diff(&format!("{step}  {{ !c.n  c.n 0 >> {{ step >chain >drop }} {{ }} >ifelse }} !f  (x) >f"), true);
    diff("{ !_.g  _.g { >chain } >^ } !f  { 1 (a) >+ } >f", true);
}

#[test]
fn a_chain_of_a_known_block_calls_its_code_directly() {
    // `step >chain` with `step` guarded: its compiled code is called directly, chained, and
    // runs its rounds itself; what it leaves decides whether the chain goes on. (Speculative
    // code guards `step`: `f` optimized after its first run, with type feedback.)
    let known_chains = |src: &str| {
        let (_, mut r) = run_on(Tier::Optimizing(1, 2), src, false);
        soma_jit::stats(&mut r.vm).expect("installed").known_chains
    };
    let step = "{ c.n 1 >- !c.n  0 c.n >< >block Nil >choose } !step";
    let looping = format!("{step}  {{ !c.n  step >chain  c.n }} !f  5 >f 3 >f 0 >f");
    assert_eq!(diff(&looping, false).al, "[Nil, 0, Nil, 0, Nil, -1]");
    assert!(known_chains(&looping) >= 1, "the chain of `step` is not a direct call");
    // A round that leaves another Block on top: the loop of `jit_chain_step` takes over
    // after the call (a, b, a, b, ... until c.n runs out).
    let a = "{ c.n 1 >- !c.n  0 c.n >< b Nil >choose } !a  { c.k 1 >+ !c.k  a } !b";
    let o = diff(&format!("{a}  {{ !c.n 0 !c.k  a >chain !c.end  c.k }} !f  7 >f 4 >f 5 >f 2 >f"), false);
    assert_eq!(o.al, "[6, 3, 4, 1]", "{o:?}");
    // Rounds that leave no executable value: nothing (the chain ends on an empty AL), a
    // value below nothing executable (it stays), a value and a Block under it (the Block
    // is not on top, so it is not run).
    assert_eq!(diff("{ } !e  { e >chain 1 } !f >f >f", false).al, "[1, 1]");
    assert_eq!(diff("{ 5 } !e  { e >chain 1 } !f >f", false).al, "[5, 1]");
    assert_eq!(diff("{ { 9 } 5 } !e  { e >chain } !f >f", false).al, "[Block, 5]");
    // A round that chains to a builtin.
    assert_eq!(diff("{ 2 3 + } !e  { e >chain } !f >f", false).al, "[5]");
    // An error in a later round, in the first, and the depth limit at the chained Block's
    // entry (the error of the `chain`, with the executor's position).
    diff(&format!("{step}  {{ !c.n  step >chain  c.n }} !f  3 >f (x) >f"), false);
    diff("{ 1 (a) >+ } !e  { e >chain } !f  >f", false);
    // (On a big stack: compiled code recurses natively, and on a test thread's stack the
    // native stack check would fail before the depth limit, at another position.)
    common::on_big_stack(|| {
        diff("{ { >f } !g  g >chain } !f  >f", false);
    });
    // `step` rebound by its own round (the callee's deopt, then the caller's guard on its
    // next chain), and the chained Block rebound between two calls.
    let rebinding = "{ c.n 1 >- !c.n  c.n 2 >== { { Nil } !step } { } >ifelse  0 c.n >< >block Nil >choose } !step \
                     { !c.n  step >chain  c.n } !f  5 >f 5 >f";
    diff(rebinding, false);
    diff(&format!("{step}  {{ !c.n  step >chain  c.n }} !f  3 >f  {{ 7 }} !step  3 >f"), false);
}

#[test]
fn frames_made_real_for_a_chain_grow_the_frame_stack_when_it_is_full() {
    // The chain of the test above at every level of a 3,000-deep recursion: at the level
    // where the frame stack is full, its frames are pushed by `jit_frames_enter` (which grows
    // it) instead of inline; `f` runs once a level either way.
    common::on_big_stack(|| {
        let src = "{ c.k 1 >+ !c.k  !_.g  _.g { >chain } >^ } !f \
                   { !_.n  Nil block >f >drop  _.n 1 >-  _.n 0 >>  r drop >choose !_.go >_.go } !r \
                   0 !c.k  3000 >r  c.k";
        assert_eq!(diff(src, true).al, "[3001]");
        let (o, _) = run_on(common::ALL_OPTIMIZED, src, true);
        assert_eq!(o.al, "[3001]");
    });
}

#[test]
fn a_virtual_register_root_escaping_its_inlined_block_falls_back() {
    // `_.` of an inlined Block left behind for its caller: the translation gives up on
    // inlining (it must not fail), and the result is the executor's.
    for src in [
        ">{ _. } !_. 5",
        "{ >{ _. } !_. 5 !_.x _.x } !f >f",
        "{ >{ 3 !_.y _. } !_. _.y } !f >f",
        "{ >{ _. } >{ !_. 1 } } !f >f",
    ] {
        diff(src, false);
        let (_, mut r) = run_on(Tier::Jit(0), src, false);
        let s = soma_jit::stats(&mut r.vm).unwrap();
        assert_eq!(s.compile_failures, 0, "{src}: {s:?}");
    }
}

#[test]
fn native_code_compiles_its_callees_on_first_call() {
    // `f` is compiled by hand; `g` (too big to inline) has never run when `f`'s native code
    // calls it, far below the threshold: it is compiled on that first call.
    let mut r = common::Runner::new(Tier::Jit(1000));
    let g_body = "0 >+ ".repeat(9);
    r.run_src(&format!("{{ 7 {g_body} }} !g  {{ >g 1 >+ }} !f")).unwrap();
    let entry = |r: &mut common::Runner, name: &str| {
        let v = r.vm.read_store_path(&[name]).unwrap();
        r.vm.block_obj(v).unwrap().native_entry.get().is_some()
    };
    let f = r.vm.read_store_path(&["f"]).unwrap();
    soma_jit::compile_block(&mut r.vm, f).unwrap();
    assert!(entry(&mut r, "f") && !entry(&mut r, "g"));
    let res = r.run_src(">f");
    assert_eq!(r.outcome(res).al, "[8]");
    assert!(entry(&mut r, "g"), "g compiled on its first call from native code");
    assert_eq!(soma_jit::stats(&mut r.vm).unwrap().blocks_compiled, 2);
}
