//! Induction ranges: the overflow checks a loop's own bound makes unnecessary.
//!
//! A chained loop such as `{ n 1 >+ !n  n 1000000 >< >block Nil >choose } >chain` steps a
//! counter and tests it against a bound. In speculative code the step is an `iadd` followed
//! by a check that the sum still fits a small Int (an exit when it does not), and the test
//! is a compare that decides whether the round goes back to the loop's header. Every round
//! after the first starts from a value that passed the test (`n < 1000000`), so its step
//! cannot overflow; only the first round's could, whose value came from the Store. The check
//! is a compare and a branch per round, and branches are what such a loop is bound by: the
//! counting loop's round went from 0.68 to 0.41 ns without it (docs/jit.md, "Induction
//! ranges").
//!
//! [`bound_inductions`] works on the finished function, with the loop's header and the
//! pre-header's branch into it (the translator makes that a branch on a placeholder, with an
//! exit on its other side, for this pass to fill in):
//!
//! 1. Every value a back edge passes to a header parameter gets a range from the conditions
//!    that decided the way to that back edge (a `brif` on an `icmp` of the value, or of the
//!    value it was stepped from, against a constant); the parameter's range is the hull of
//!    them.
//! 2. Every branch in the loop to a cold block (an exit) whose condition that range decides,
//!    such as the small-Int check of `p + k`, becomes a jump to the other side.
//! 3. Blocks nothing reaches any more go, and so do header parameters only the back edges
//!    carry round (a dirty flag that only a dropped check's exit read).
//! 4. The pre-header's branch becomes the guard that the loop's entry value lies in the
//!    range (only the sides the decisions used). Where it does not, the code leaves before
//!    the first round, at instruction 0 (`DeoptReason::InductionRange`), and the executor runs
//!    that round; type feedback then compiles the Code again without the guard.
//!
//! The ranges hold within one round: a condition's latest evaluation is this round's when no
//! block between the header and the back edges can run twice in a round. A loop whose body
//! has a cycle of its own, or that is entered anywhere but through the guard, is left alone
//! (the guard then becomes a plain jump).

use cranelift_codegen::cursor::{Cursor, FuncCursor};
use cranelift_codegen::dominator_tree::DominatorTree;
use cranelift_codegen::flowgraph::ControlFlowGraph;
use cranelift_codegen::ir::condcodes::{CondCode, IntCC};
use cranelift_codegen::ir::{self, types::I64, InstBuilder};
use std::collections::{HashMap, HashSet};

/// Where the translator left a loop's entry guard.
#[derive(Clone, Copy, Debug)]
pub struct EntryGuard {
    /// The loop's header: the body's first block, where every back edge goes.
    pub header: ir::Block,
    /// `brif placeholder, header(args), leave`: the pre-header's one way into the loop.
    pub branch: ir::Inst,
}

/// The values an `i64` may take, both ends included; `i64::MIN` / `i64::MAX` stand for no
/// bound on that side (a small Int is far inside them, so no step makes it wrap).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Range {
    lo: i64,
    hi: i64,
}

impl Range {
    const ALL: Range = Range { lo: i64::MIN, hi: i64::MAX };

    fn meet(self, o: Range) -> Range {
        Range { lo: self.lo.max(o.lo), hi: self.hi.min(o.hi) }
    }

    fn hull(self, o: Range) -> Range {
        Range { lo: self.lo.min(o.lo), hi: self.hi.max(o.hi) }
    }

    fn contains(self, o: Range) -> bool {
        self.lo <= o.lo && o.hi <= self.hi
    }

    /// `x + k` for every `x` in the range; an unbounded side stays unbounded.
    fn shift(self, k: i64) -> Range {
        let side = |v: i64, unbounded: i64| if v == unbounded { unbounded } else { v.checked_add(k).unwrap_or(unbounded) };
        Range { lo: side(self.lo, i64::MIN), hi: side(self.hi, i64::MAX) }
    }

    /// Only the upper side of the range, or only the lower.
    fn upper(self) -> Range {
        Range { lo: i64::MIN, hi: self.hi }
    }

    fn lower(self) -> Range {
        Range { lo: self.lo, hi: i64::MAX }
    }
}

/// `v`, or what it aliases.
fn resolve(func: &ir::Function, v: ir::Value) -> ir::Value {
    func.dfg.resolve_aliases(v)
}

/// `v = x + k` (either operand order) or `v = x - k` for a constant `k`, on `i64`
/// (`cold::constant_step`).
fn step_of(func: &ir::Function, v: ir::Value) -> Option<(ir::Value, i64)> {
    let ir::ValueDef::Result(inst, 0) = func.dfg.value_def(resolve(func, v)) else { return None };
    let step = crate::cold::constant_step(func, inst)?;
    (func.dfg.value_type(step.x) == I64).then(|| (resolve(func, step.x), step.k))
}

/// A compare of one `i64` value with a constant: `(cc, v, c)` for `v cc c`.
fn compare_with_constant(func: &ir::Function, cond: ir::Value) -> Option<(IntCC, ir::Value, i64)> {
    let ir::ValueDef::Result(inst, 0) = func.dfg.value_def(resolve(func, cond)) else { return None };
    let konst = |v| crate::clif::iconst_value(&func.dfg, v);
    let (cc, v, c) = match func.dfg.insts[inst] {
        ir::InstructionData::IntCompare { cond, args: [a, b], .. } => match (konst(a), konst(b)) {
            (None, Some(c)) => (cond, a, c),
            (Some(c), None) => (cond.swap_args(), b, c),
            _ => return None,
        },
        _ => return None,
    };
    (func.dfg.value_type(v) == I64).then(|| (cc, resolve(func, v), c))
}

/// The values `v cc c` admits (signed compares and equality; the others say nothing here).
fn admitted(cc: IntCC, c: i64) -> Option<Range> {
    match cc {
        IntCC::SignedLessThan => Some(Range { lo: i64::MIN, hi: c.checked_sub(1)? }),
        IntCC::SignedLessThanOrEqual => Some(Range { lo: i64::MIN, hi: c }),
        IntCC::SignedGreaterThan => Some(Range { lo: c.checked_add(1)?, hi: i64::MAX }),
        IntCC::SignedGreaterThanOrEqual => Some(Range { lo: c, hi: i64::MAX }),
        IntCC::Equal => Some(Range { lo: c, hi: c }),
        _ => None,
    }
}

/// What `cond` having been `holds` says of `v`: the range when `cond` compares `v` with a
/// constant.
fn fact(func: &ir::Function, cond: ir::Value, holds: bool, v: ir::Value) -> Option<Range> {
    let (cc, x, c) = compare_with_constant(func, cond)?;
    if x != v {
        return None;
    }
    admitted(if holds { cc } else { cc.complement() }, c)
}

/// The targets of a `brif`: `(condition, then, else)`.
fn brif_parts(func: &ir::Function, inst: ir::Inst) -> Option<(ir::Value, ir::BlockCall, ir::BlockCall)> {
    match func.dfg.insts[inst] {
        ir::InstructionData::Brif { arg, blocks: [t, e], .. } => Some((arg, t, e)),
        _ => None,
    }
}

/// The values a branch passes to `header` (every edge of `inst` to it).
fn args_to(func: &ir::Function, inst: ir::Inst, header: ir::Block) -> Option<Vec<Vec<ir::Value>>> {
    let pool = &func.dfg.value_lists;
    let dests = func.dfg.insts[inst].branch_destination(&func.dfg.jump_tables, &func.dfg.exception_tables);
    dests
        .iter()
        .filter(|d| d.block(pool) == header)
        .map(|d| {
            d.args(pool)
                .map(|a| match a {
                    ir::BlockArg::Value(v) => Some(resolve(func, v)),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
        })
        .collect()
}

/// The loop as this pass sees it.
struct Loop {
    /// The blocks from which a back edge is reached without passing the header, and the
    /// header itself.
    blocks: HashSet<ir::Block>,
    /// For each back edge, the values it passes to the header's parameters.
    back_args: Vec<(ir::Block, Vec<ir::Value>)>,
}

/// The loop of `guard`, when it is entered only through the guard and its rounds run no
/// block twice.
fn find_loop(func: &ir::Function, cfg: &ControlFlowGraph, domtree: &DominatorTree, guard: &EntryGuard) -> Option<Loop> {
    let header = guard.header;
    let mut back_args = Vec::new();
    for pred in cfg.pred_iter(header) {
        if pred.inst == guard.branch {
            continue;
        }
        if !domtree.block_dominates(header, pred.block) {
            return None; // another way into the loop
        }
        for args in args_to(func, pred.inst, header)? {
            back_args.push((pred.block, args));
        }
    }
    if back_args.is_empty() {
        return None;
    }
    let mut blocks = HashSet::from([header]);
    let mut work: Vec<ir::Block> = back_args.iter().map(|(b, _)| *b).collect();
    while let Some(b) = work.pop() {
        if !blocks.insert(b) {
            continue;
        }
        for pred in cfg.pred_iter(b) {
            if !domtree.block_dominates(header, pred.block) {
                return None; // entered in the middle
            }
            work.push(pred.block);
        }
    }
    // No cycle apart from the back edges (Kahn's algorithm over the loop's own edges).
    let mut indegree: HashMap<ir::Block, usize> = blocks.iter().map(|&b| (b, 0)).collect();
    for &b in &blocks {
        for s in cfg.succ_iter(b).filter(|s| *s != header && blocks.contains(s)) {
            *indegree.get_mut(&s).expect("in the loop") += 1;
        }
    }
    let mut ready: Vec<ir::Block> = indegree.iter().filter(|(_, &n)| n == 0).map(|(&b, _)| b).collect();
    let mut ordered = 0;
    while let Some(b) = ready.pop() {
        ordered += 1;
        for s in cfg.succ_iter(b).filter(|s| *s != header && blocks.contains(s)) {
            let n = indegree.get_mut(&s).expect("in the loop");
            *n -= 1;
            if *n == 0 {
                ready.push(s);
            }
        }
    }
    (ordered == blocks.len()).then_some(Loop { blocks, back_args })
}

/// The range of `v` at the end of block `at` (in the loop): what the conditions that decided
/// the way from the header to `at` say of it, or of the value it was stepped from.
fn range_at(func: &ir::Function, cfg: &ControlFlowGraph, domtree: &DominatorTree, lp: &Loop, header: ir::Block, at: ir::Block, v: ir::Value) -> Range {
    let step = step_of(func, v);
    let mut range = Range::ALL;
    let mut block = at;
    while block != header && lp.blocks.contains(&block) {
        let Some(dom) = domtree.idom(block) else { break };
        let mut preds = cfg.pred_iter(block);
        if let (Some(pred), None) = (preds.next(), preds.next()) {
            if let Some((cond, t, e)) = brif_parts(func, pred.inst) {
                let pool = &func.dfg.value_lists;
                let (t, e) = (t.block(pool), e.block(pool));
                if pred.block == dom && t != e {
                    let holds = t == block;
                    if let Some(r) = fact(func, cond, holds, v) {
                        range = range.meet(r);
                    }
                    if let Some((x, k)) = step {
                        if let Some(r) = fact(func, cond, holds, x) {
                            range = range.meet(r.shift(k));
                        }
                    }
                }
            }
        }
        block = dom;
    }
    range
}

/// A branch to an exit that the loop's ranges decide.
struct Decision {
    branch: ir::Inst,
    /// Which side is always taken (0: then, 1: else).
    side: usize,
    /// The header parameter the decision rests on, and the part of its range it used.
    param: usize,
    used: Range,
}

/// The exit branches the loop's ranges decide (None: a loop this pass leaves alone).
fn decide(func: &ir::Function, guard: &EntryGuard) -> Option<Vec<Decision>> {
    let (_, into, _) = brif_parts(func, guard.branch)?;
    if into.block(&func.dfg.value_lists) != guard.header {
        return None;
    }
    let cfg = ControlFlowGraph::with_function(func);
    let domtree = DominatorTree::with_function(func, &cfg);
    let lp = find_loop(func, &cfg, &domtree, guard)?;
    let params: Vec<ir::Value> = func.dfg.block_params(guard.header).to_vec();

    // Each parameter's range over the rounds after the first (None: unbounded or unchanged).
    let mut ranges: Vec<Option<Range>> = vec![None; params.len()];
    for (i, &p) in params.iter().enumerate() {
        if func.dfg.value_type(p) != I64 {
            continue;
        }
        let mut hull: Option<Range> = None;
        for (at, args) in &lp.back_args {
            let b = args[i];
            if b == p {
                continue; // unchanged by this edge
            }
            let r = range_at(func, &cfg, &domtree, &lp, guard.header, *at, b);
            hull = Some(hull.map_or(r, |h| h.hull(r)));
        }
        ranges[i] = hull.filter(|r| *r != Range::ALL);
    }

    let mut decisions = Vec::new();
    for &block in &lp.blocks {
        let Some(branch) = func.layout.last_inst(block) else { continue };
        let Some((cond, t, e)) = brif_parts(func, branch) else { continue };
        let pool = &func.dfg.value_lists;
        let (t, e) = (t.block(pool), e.block(pool));
        let Some((cc, s, c)) = compare_with_constant(func, cond) else { continue };
        let Some((x, k)) = (if params.contains(&s) { Some((s, 0)) } else { step_of(func, s) }) else { continue };
        let Some(param) = params.iter().position(|&p| p == x) else { continue };
        let Some(range) = ranges[param] else { continue };
        let (Some(yes), Some(no)) = (admitted(cc, c), admitted(cc.complement(), c)) else { continue };
        // The least of the range that decides: one side, else both.
        for used in [range.upper(), range.lower(), range] {
            let values = used.shift(k);
            let side = if yes.contains(values) {
                0
            } else if no.contains(values) {
                1
            } else {
                continue;
            };
            // Only checks whose failing side is an exit: that is what the guard pays for.
            let other = if side == 0 { e } else { t };
            if func.layout.is_cold(other) {
                decisions.push(Decision { branch, side, param, used });
            }
            break;
        }
    }
    Some(decisions)
}

/// Drop the loop's exit branches its induction ranges decide, and make the pre-header's
/// branch the guard of the entry values (see the module docs). Returns how many branches
/// were dropped; with none, the guard is a plain jump into the loop.
pub fn bound_inductions(func: &mut ir::Function, guard: &EntryGuard) -> usize {
    let decisions = decide(func, guard).unwrap_or_default();
    let Some((_, into, _)) = brif_parts(func, guard.branch) else { return 0 };
    let entry: Vec<Option<ir::Value>> = into
        .args(&func.dfg.value_lists)
        .map(|a| match a {
            ir::BlockArg::Value(v) => Some(resolve(func, v)),
            _ => None,
        })
        .collect();

    // What each guarded parameter's entry value must satisfy; a decision whose entry value is
    // a constant outside its range is dropped (the guard would always fail).
    let mut needed: HashMap<usize, Range> = HashMap::new();
    let mut kept = Vec::new();
    for d in decisions {
        let Some(Some(e)) = entry.get(d.param) else { continue };
        if let Some(c) = crate::clif::iconst_value(&func.dfg, *e) {
            if !d.used.contains(Range { lo: c, hi: c }) {
                continue;
            }
        } else {
            let r = needed.entry(d.param).or_insert(Range::ALL);
            *r = r.meet(d.used);
        }
        kept.push(d);
    }

    for d in &kept {
        crate::clif::take_branch(&mut func.dfg, d.branch, d.side);
    }

    let mut cur = FuncCursor::new(func).at_inst(guard.branch);
    let mut ok: Option<ir::Value> = None;
    let mut params: Vec<_> = needed.into_iter().collect();
    params.sort_by_key(|(p, _)| *p);
    for (param, r) in params {
        let e = entry[param].expect("a value");
        let mut conds = Vec::new();
        if r.lo != i64::MIN {
            conds.push(cur.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, e, r.lo));
        }
        if r.hi != i64::MAX {
            conds.push(cur.ins().icmp_imm_s(IntCC::SignedLessThanOrEqual, e, r.hi));
        }
        for c in conds {
            ok = Some(match ok {
                Some(o) => cur.ins().band(o, c),
                None => c,
            });
        }
    }
    match ok {
        Some(ok) => {
            let ir::InstructionData::Brif { arg, .. } = &mut cur.func.dfg.insts[guard.branch] else { unreachable!("a brif") };
            *arg = ok;
        }
        None => {
            crate::clif::take_branch(&mut cur.func.dfg, guard.branch, 0);
        }
    }
    if !kept.is_empty() {
        drop_unreachable_blocks(func);
        drop_dead_header_params(func, guard.header);
    }
    kept.len()
}

/// Remove the blocks the entry no longer reaches (the exits of the dropped checks), as
/// Cranelift would before lowering, so that what they read counts as unused here.
fn drop_unreachable_blocks(func: &mut ir::Function) {
    let Some(entry) = func.layout.entry_block() else { return };
    let mut reached = HashSet::from([entry]);
    let mut work = vec![entry];
    while let Some(block) = work.pop() {
        let Some(last) = func.layout.last_inst(block) else { continue };
        let pool = &func.dfg.value_lists;
        for dest in func.dfg.insts[last].branch_destination(&func.dfg.jump_tables, &func.dfg.exception_tables) {
            let succ = dest.block(pool);
            if reached.insert(succ) {
                work.push(succ);
            }
        }
    }
    let blocks: Vec<ir::Block> = func.layout.blocks().filter(|b| !reached.contains(b)).collect();
    for block in blocks {
        while let Some(inst) = func.layout.first_inst(block) {
            func.layout.remove_inst(inst);
        }
        func.layout.remove_block(block);
    }
}

/// Remove the header's parameters that nothing reads but the back edges carrying them round
/// (a sunk write's dirty flag that only a dropped check's exit read: without this, every
/// round still set it, `mov $1`). Cranelift keeps unused block parameters.
fn drop_dead_header_params(func: &mut ir::Function, header: ir::Block) {
    // A use through an alias is a use.
    func.dfg.resolve_all_aliases();
    loop {
        let params: Vec<ir::Value> = func.dfg.block_params(header).to_vec();
        let mut uses: HashMap<ir::Value, usize> = params.iter().map(|&p| (p, 0)).collect();
        let mut carried: HashMap<ir::Value, usize> = HashMap::new();
        let mut branches = Vec::new();
        for block in func.layout.blocks() {
            for inst in func.layout.block_insts(block) {
                for v in func.dfg.inst_values(inst) {
                    if let Some(n) = uses.get_mut(&v) {
                        *n += 1;
                    }
                }
                let pool = &func.dfg.value_lists;
                let dests = func.dfg.insts[inst].branch_destination(&func.dfg.jump_tables, &func.dfg.exception_tables);
                for (d, dest) in dests.iter().enumerate() {
                    if dest.block(pool) != header {
                        continue;
                    }
                    branches.push((inst, d));
                    for (i, arg) in dest.args(pool).enumerate() {
                        if arg == ir::BlockArg::Value(params[i]) {
                            *carried.entry(params[i]).or_insert(0) += 1;
                        }
                    }
                }
            }
        }
        let Some(i) = params.iter().position(|p| uses[p] == carried.get(p).copied().unwrap_or(0)) else { return };
        let dfg = &mut func.dfg;
        for (inst, d) in branches {
            match &mut dfg.insts[inst] {
                ir::InstructionData::Jump { destination, .. } => destination.remove(i, &mut dfg.value_lists),
                ir::InstructionData::Brif { blocks, .. } => blocks[d].remove(i, &mut dfg.value_lists),
                _ => unreachable!("only jumps and brifs go to the header"),
            }
        }
        func.dfg.remove_block_param(params[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cold::tests::{finish, function_of_one, tidy_and_verify};
    use cranelift_codegen::ir::BlockArg;
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

    const SMALL_MAX: i64 = 0x7fff_ffff_ffff;

    /// How the loop under test differs from a plain counting loop.
    #[derive(Clone, Copy, PartialEq)]
    enum Shape {
        /// `entry -> pre -(guard)-> header(p)`; `s = p + 1`, overflow check, `s < 1000`, back.
        Counting,
        /// The same with a block between the check and the bound that loops on itself.
        InnerCycle,
        /// The same with a second way into the header, besides the guard.
        SecondEntry,
        /// Stepping by 2 up to `s < SMALL_MAX`: the last round's `p` may be SMALL_MAX - 1.
        StepPastTheBound,
    }

    /// The loop of `shape`, the guard, and the overflow check's branch.
    fn counting_loop(shape: Shape) -> (ir::Function, EntryGuard, ir::Inst) {
        let mut func = function_of_one(I64);
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let [entry, pre, leave, header, checked, next, back, overflow, done] = [(); 9].map(|_| b.create_block());
        b.append_block_params_for_function_params(entry);
        let p = b.append_block_param(header, I64);
        // A sunk write's dirty flag: 0 on entry, 1 on the back edge, read by the overflow
        // exit alone.
        let flag = b.append_block_param(header, I64);
        b.switch_to_block(entry);
        let x = b.block_params(entry)[0];
        let zero = b.ins().iconst(I64, 0);
        if shape == Shape::SecondEntry {
            b.ins().brif(x, pre, &[], header, &[BlockArg::Value(x), BlockArg::Value(zero)]);
        } else {
            b.ins().jump(pre, &[]);
        }
        b.switch_to_block(pre);
        let placeholder = b.ins().iconst(ir::types::I8, 1);
        let branch = b.ins().brif(placeholder, header, &[BlockArg::Value(x), BlockArg::Value(zero)], leave, &[]);
        b.set_cold_block(leave);
        b.switch_to_block(leave);
        b.ins().return_(&[x]);
        b.switch_to_block(header);
        let k = if shape == Shape::StepPastTheBound { 2 } else { 1 };
        let s = b.ins().iadd_imm_s(p, k);
        let max = b.ins().iconst(I64, SMALL_MAX);
        let fits = b.ins().icmp(IntCC::SignedLessThanOrEqual, s, max);
        let check = b.ins().brif(fits, checked, &[], overflow, &[]);
        b.set_cold_block(overflow);
        b.switch_to_block(checked);
        if shape == Shape::InnerCycle {
            b.ins().brif(x, checked, &[], next, &[]);
        } else {
            b.ins().jump(next, &[]);
        }
        b.switch_to_block(next);
        let limit = b.ins().iconst(I64, if shape == Shape::StepPastTheBound { SMALL_MAX } else { 1000 });
        let more = b.ins().icmp(IntCC::SignedLessThan, s, limit);
        b.ins().brif(more, back, &[], done, &[]);
        b.switch_to_block(back);
        let one = b.ins().iconst(I64, 1);
        b.ins().jump(header, &[BlockArg::Value(s), BlockArg::Value(one)]);
        b.switch_to_block(overflow);
        let r = b.ins().iadd(p, flag);
        b.ins().return_(&[r]);
        b.switch_to_block(done);
        b.ins().return_(&[s]);
        b.seal_all_blocks();
        finish(b);
        (func, EntryGuard { header, branch }, check)
    }

    /// The pass, then the cold-code passes and Cranelift's verifier.
    fn bound_and_verify(func: &mut ir::Function, guard: &EntryGuard) -> usize {
        let n = bound_inductions(func, guard);
        tidy_and_verify(func);
        n
    }

    fn opcode(func: &ir::Function, inst: ir::Inst) -> ir::Opcode {
        func.dfg.insts[inst].opcode()
    }

    #[test]
    fn a_counting_loops_check_goes_and_its_entry_is_guarded_by_the_bound() {
        let (mut func, guard, check) = counting_loop(Shape::Counting);
        assert_eq!(bound_and_verify(&mut func, &guard), 1, "{}", func.display());
        assert_eq!(opcode(&func, check), ir::Opcode::Jump, "the overflow check:\n{}", func.display());
        assert_eq!(opcode(&func, guard.branch), ir::Opcode::Brif, "the guard:\n{}", func.display());
        let (cond, _, _) = brif_parts(&func, guard.branch).expect("a brif");
        let (cc, v, c) = compare_with_constant(&func, cond).expect("a compare");
        assert_eq!((cc, c), (IntCC::SignedLessThanOrEqual, 999), "entry <= 999:\n{}", func.display());
        assert_eq!(v, func.dfg.block_params(func.layout.entry_block().unwrap())[0]);
        assert_eq!(func.dfg.block_params(guard.header).len(), 1, "the flag only the exit read is gone:\n{}", func.display());
    }

    #[test]
    fn loops_the_pass_cannot_reason_about_keep_their_checks_and_enter_unguarded() {
        for shape in [Shape::InnerCycle, Shape::SecondEntry, Shape::StepPastTheBound] {
            let (mut func, guard, check) = counting_loop(shape);
            assert_eq!(bound_and_verify(&mut func, &guard), 0, "{}", func.display());
            assert_eq!(opcode(&func, check), ir::Opcode::Brif, "the overflow check stays:\n{}", func.display());
            assert_eq!(opcode(&func, guard.branch), ir::Opcode::Jump, "no guard:\n{}", func.display());
            assert_eq!(func.dfg.block_params(guard.header).len(), 2, "the exit still reads the flag:\n{}", func.display());
        }
    }

    #[test]
    fn ranges_meet_shift_and_keep_unbounded_sides() {
        let r = Range { lo: 1, hi: 10 };
        assert_eq!(r.shift(5), Range { lo: 6, hi: 15 });
        assert_eq!(r.upper().shift(-3), Range { lo: i64::MIN, hi: 7 }, "an unbounded side stays so");
        assert_eq!(r.meet(Range { lo: 5, hi: 20 }), Range { lo: 5, hi: 10 });
        assert_eq!(r.hull(Range { lo: 5, hi: 20 }), Range { lo: 1, hi: 20 });
        assert_eq!(admitted(IntCC::SignedLessThan, 0), Some(Range { lo: i64::MIN, hi: -1 }));
        assert_eq!(admitted(IntCC::SignedLessThan, i64::MIN), None, "nothing is below the least");
        assert_eq!(admitted(IntCC::UnsignedLessThan, 5), None, "unsigned compares say nothing here");
    }
}
