//! Cold code: blocks reached only through cold blocks are cold too, and what only cold blocks
//! use is computed there.
//!
//! Cranelift emits the blocks in the reverse post-order of a depth-first walk, then moves the
//! cold ones (`set_cold_block`) to the end. The translator marks the start of every slow path
//! (an exit, a helper's failure, a host poll), but such a path often continues in blocks made
//! along the way (a push's own slow path, a return's bookkeeping) that nobody marked: they
//! then stay between the hot blocks, and the hot path jumps over them (four taken branches
//! per round of a chained counting loop, where one, the back edge, is enough).
//!
//! [`spread_coldness`] walks the blocks reachable from the entry without passing through a
//! cold block; every other block is reached only through cold code and is marked cold (a
//! loop inside a slow path included). Placement only: no instruction changes, so no
//! semantics can.
//!
//! [`sink_into_cold`] then moves into the cold blocks the pure instructions only they use
//! (and gives them their own copy of a mask the hot path only tests against zero).
//! An exit materialises what the executor needs (a boxed Int, the value a `choose` picked, a
//! depth, an address), and the translator computes those where the exit's condition is
//! tested, on the hot path: Cranelift neither sinks nor removes them, so every round of a
//! loop paid for values only its exits read, and the registers they held.

use cranelift_codegen::cursor::{Cursor, FuncCursor};
use cranelift_codegen::dominator_tree::DominatorTree;
use cranelift_codegen::flowgraph::ControlFlowGraph;
use cranelift_codegen::ir::InstBuilder;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir;
use cranelift_codegen::entity::{packed_option::PackedOption, SecondaryMap};

/// Mark cold every block that the entry reaches only through cold blocks.
pub fn spread_coldness(func: &mut ir::Function) {
    let Some(entry) = func.layout.entry_block() else { return };
    let cfg = ControlFlowGraph::with_function(func);
    let mut hot = std::collections::HashSet::new();
    let mut work = vec![entry];
    hot.insert(entry);
    while let Some(block) = work.pop() {
        for succ in cfg.succ_iter(block) {
            if !func.is_effectively_cold(succ) && hot.insert(succ) {
                work.push(succ);
            }
        }
    }
    let blocks: Vec<ir::Block> = func.layout.blocks().collect();
    for block in blocks {
        if !hot.contains(&block) {
            func.layout.set_cold(block);
        }
    }
}

/// The most cold blocks one instruction is copied into: past it, the copies would make the
/// code larger by more than the hot path saves.
const MAX_SINK_COPIES: usize = 4;

/// Whether `inst` computes its one result from its operands alone: no memory, no trap, no
/// other effect, and nothing that depends on where it runs (the stack pointer).
fn is_sinkable(func: &ir::Function, inst: ir::Inst) -> bool {
    let op = func.dfg.insts[inst].opcode();
    func.dfg.inst_results(inst).len() == 1
        && !op.can_load()
        && !op.can_store()
        && !op.is_call()
        && !op.is_branch()
        && !op.is_terminator()
        && !op.is_return()
        && !op.can_trap()
        && !op.other_side_effects()
        && !matches!(
            op,
            ir::Opcode::GetStackPointer | ir::Opcode::GetFramePointer | ir::Opcode::GetReturnAddress | ir::Opcode::GetPinnedReg
        )
}

/// Where a value is used: how many uses hot blocks make, and the cold blocks that use it
/// (up to [`MAX_SINK_COPIES`]; more make it `spread`).
#[derive(Clone, Default)]
struct Uses {
    hot: u32,
    cold: [PackedOption<ir::Block>; MAX_SINK_COPIES],
    spread: bool,
}

impl Uses {
    fn add(&mut self, block: ir::Block, cold: bool) {
        if !cold {
            self.hot += 1;
            return;
        }
        if self.cold.iter().any(|b| b.expand() == Some(block)) {
            return;
        }
        match self.cold.iter_mut().find(|b| b.is_none()) {
            Some(slot) => *slot = block.into(),
            None => self.spread = true,
        }
    }

    /// Nothing uses the value.
    fn is_unused(&self) -> bool {
        self.hot == 0 && !self.spread && self.cold[0].is_none()
    }

    /// The cold blocks the value's definition can move to: every use is in one of them.
    fn sink_targets(&self) -> Option<impl Iterator<Item = ir::Block> + '_> {
        let any = self.cold[0].is_some();
        (self.hot == 0 && !self.spread && any).then(|| self.cold.iter().filter_map(|b| b.expand()))
    }
}

/// Move each pure instruction of a hot block whose result only cold blocks use into those
/// blocks (a copy at the top of each, at most [`MAX_SINK_COPIES`]), after
/// [`spread_coldness`]; remove those whose result nothing uses; then [`rebase_on_steps`].
/// Later blocks go first, and a block's instructions last to first, so that a chain of them
/// (an Int's boxing: two masks and an or) goes down, or away, together.
///
/// Why it is the same program: the instruction has no effect and reads only its operands,
/// which are SSA values. A block that uses the result is dominated by the instruction's block
/// (SSA), so the operands, defined before the instruction, are defined wherever the copy
/// goes, with the same values; the copy computes what the original would have. A result
/// nobody uses changes nothing when it is not computed.
pub fn sink_into_cold(func: &mut ir::Function) {
    func.dfg.resolve_all_aliases();
    let blocks: Vec<ir::Block> = func.layout.blocks().collect();
    let mut uses: SecondaryMap<ir::Value, Uses> = SecondaryMap::with_capacity(func.dfg.num_values());
    for &block in &blocks {
        let cold = func.layout.is_cold(block);
        for inst in func.layout.block_insts(block) {
            for v in func.dfg.inst_values(inst) {
                uses[v].add(block, cold);
            }
        }
    }
    let mut steps = Vec::new();
    for &block in blocks.iter().rev() {
        if func.layout.is_cold(block) {
            continue;
        }
        let mut next = func.layout.last_inst(block);
        while let Some(inst) = next {
            next = func.layout.prev_inst(inst);
            if !is_sinkable(func, inst) {
                continue;
            }
            let result = func.dfg.first_result(inst);
            let unused = uses[result].is_unused();
            let targets: Option<Vec<ir::Block>> = uses[result].sink_targets().map(Iterator::collect);
            let targets = match targets {
                Some(targets) => targets,
                None if unused => Vec::new(),
                None if only_tested_hot(func, &blocks, inst, &uses[result]) => {
                    copy_into_cold(func, &mut uses, inst);
                    continue;
                }
                None => {
                    if let Some(step) = constant_step(func, inst) {
                        steps.push(fold_steps(func, &mut uses, step));
                    }
                    continue;
                }
            };
            copy_into(func, &mut uses, inst, &targets);
            for v in func.dfg.inst_values(inst) {
                uses[v].hot -= 1;
            }
            func.layout.remove_inst(inst);
        }
    }
    rebase_on_steps(func, &uses, &steps);
}

/// Whether `inst` is a mask `band x, c` (a constant `c`) that hot blocks only compare with
/// zero, and cold blocks use too (at most [`MAX_SINK_COPIES`] of them). Instruction
/// selection makes each such compare one `test` of `x` and `c`, so the hot path needs the mask
/// only because the cold blocks do: collatz's parity, which its exits hand to the executor,
/// was computed in a register every round beside the `test` that branches on it.
fn only_tested_hot(func: &ir::Function, blocks: &[ir::Block], inst: ir::Inst, uses: &Uses) -> bool {
    if uses.hot == 0 || uses.spread || uses.cold[0].is_none() || func.dfg.insts[inst].opcode() != ir::Opcode::Band {
        return false;
    }
    let konst = |v| crate::clif::iconst_value(&func.dfg, v);
    let &[a, b] = func.dfg.inst_args(inst) else { return false };
    if konst(a).is_none() == konst(b).is_none() {
        return false;
    }
    let result = func.dfg.first_result(inst);
    let mut tests = 0;
    for &block in blocks.iter().filter(|&&b| !func.layout.is_cold(b)) {
        for user in func.layout.block_insts(block) {
            if !func.dfg.inst_values(user).any(|v| v == result) {
                continue;
            }
            match func.dfg.insts[user] {
                ir::InstructionData::IntCompare { cond: IntCC::Equal | IntCC::NotEqual, args: [x, y], .. }
                    if (x == result && konst(y) == Some(0)) || (y == result && konst(x) == Some(0)) =>
                {
                    tests += 1
                }
                _ => return false,
            }
        }
    }
    tests == uses.hot
}

/// Give every cold block that uses `inst`'s result a copy of `inst` of its own, and leave
/// `inst` to the hot uses. Why it is the same program: as for a sunk instruction (see
/// [`sink_into_cold`]).
fn copy_into_cold(func: &mut ir::Function, uses: &mut SecondaryMap<ir::Value, Uses>, inst: ir::Inst) {
    let result = func.dfg.first_result(inst);
    let targets: Vec<ir::Block> = uses[result].cold.iter().filter_map(|b| b.expand()).collect();
    copy_into(func, uses, inst, &targets);
    uses[result].cold = Default::default();
}

/// Put a copy of the pure `inst` at the top of each of `targets` and make that block's uses
/// of `inst`'s result use the copy; its operands are now used there too.
fn copy_into(func: &mut ir::Function, uses: &mut SecondaryMap<ir::Value, Uses>, inst: ir::Inst, targets: &[ir::Block]) {
    let result = func.dfg.first_result(inst);
    let operands: Vec<ir::Value> = func.dfg.inst_values(inst).collect();
    for &target in targets {
        let copy = func.dfg.clone_inst(inst);
        let copied = func.dfg.first_result(copy);
        let users: Vec<ir::Inst> = func.layout.block_insts(target).collect();
        func.layout.insert_inst(copy, users[0]);
        for &user in &users {
            func.dfg.map_inst_values(user, |v| if v == result { copied } else { v });
        }
        for &v in &operands {
            uses[v].add(target, true);
        }
    }
}

/// A step of the hot path: `s = x + k` for a constant `k` (see [`constant_step`]).
pub(crate) struct Step {
    pub inst: ir::Inst,
    pub x: ir::Value,
    /// Sign-extended from the step's width, as `iconst` takes it.
    pub k: i64,
}

/// `inst` as a [`Step`] when it is `s = iadd x, k` (either operand order) or `s = isub x,
/// -k` with `k` a constant (sign-extended from the type's width): then `x == s - k` in
/// wrapping arithmetic, whatever the values.
pub(crate) fn constant_step(func: &ir::Function, inst: ir::Inst) -> Option<Step> {
    let konst = |v| crate::clif::iconst_value(&func.dfg, v);
    let &[a, b] = func.dfg.inst_args(inst) else { return None };
    let (x, k) = match func.dfg.insts[inst].opcode() {
        ir::Opcode::Iadd => match (konst(a), konst(b)) {
            (None, Some(k)) => (a, k),
            (Some(k), None) => (b, k),
            _ => return None,
        },
        ir::Opcode::Isub => (a, konst(b)?.wrapping_neg()),
        _ => return None,
    };
    let ty = func.dfg.value_type(x);
    (ty.is_int() && ty.bits() <= 64).then(|| Step { inst, x, k: sign_extend(k, ty) })
}

/// `s = (x + k1) + k2` as `s = x + (k1 + k2)` (a poll countdown that a region and then a
/// call decrement): instruction selection made the pair one `lea` from `x` with `k2`
/// materialised in a register of its own; now it is one `lea` with one displacement. `x` is
/// read at `s` either way (that `lea` read it), so no value lives longer; an inner step with
/// no other use is left unused, and Cranelift does not emit it. Returns the step as it now
/// is. Same program: wrapping addition is associative.
fn fold_steps(func: &mut ir::Function, uses: &mut SecondaryMap<ir::Value, Uses>, outer: Step) -> Step {
    let ir::ValueDef::Result(def, _) = func.dfg.value_def(outer.x) else { return outer };
    let Some(inner) = constant_step(func, def) else { return outer };
    let ty = func.dfg.value_type(outer.x);
    let k = sign_extend(inner.k.wrapping_add(outer.k), ty);
    // The instruction stays what it was: an `isub` subtracts its constant.
    let operand = match func.dfg.insts[outer.inst].opcode() {
        ir::Opcode::Isub => sign_extend(k.wrapping_neg(), ty),
        _ => k,
    };
    let mut pos = FuncCursor::new(func).at_inst(outer.inst);
    let sum = pos.ins().iconst(ty, operand);
    func.dfg.inst_args_mut(outer.inst).copy_from_slice(&[inner.x, sum]);
    let block = func.layout.inst_block(outer.inst).expect("a hot instruction in the layout");
    uses[outer.x].hot -= 1;
    uses[inner.x].add(block, false);
    Step { inst: outer.inst, x: inner.x, k }
}

/// `k` as a constant of type `ty` (sign-extended from its width, what `iconst` takes).
fn sign_extend(k: i64, ty: ir::Type) -> i64 {
    (k << (64 - ty.bits())) >> (64 - ty.bits())
}

/// Make the cold blocks that a step `s = x + k` dominates (a counter's, an induction
/// variable's) read `s - k` instead of `x`. Exits need the value from before the step (the
/// executor redoes the step that overflowed, or resumes before it), which kept `x` live past
/// the step: `x` and `s` then needed two registers, and a loop's back edge a move from one to
/// the other every round. With the exits reading `s - k`, `x` dies at the step and the
/// register allocator gives both one register (chain_loop's round: 11 -> 10 instructions).
///
/// Done only when the step is `x`'s one use left on the hot path and every cold block that
/// uses `x` (at most [`MAX_SINK_COPIES`]) is dominated by the step's block; otherwise `x`
/// stays live anyway. Why it is the same program: `s - k == x` in wrapping arithmetic for
/// every `x`, and `s` is defined wherever the new instructions go (the step's block
/// dominates them); they go first in the block, before any use of `x` there.
fn rebase_on_steps(func: &mut ir::Function, uses: &SecondaryMap<ir::Value, Uses>, steps: &[Step]) {
    let wanted = |st: &&Step| uses[st.x].hot == 1 && !uses[st.x].spread && uses[st.x].cold[0].is_some();
    if !steps.iter().any(|st| wanted(&st)) {
        return;
    }
    let cfg = ControlFlowGraph::with_function(func);
    let domtree = DominatorTree::with_function(func, &cfg);
    for step in steps.iter().filter(wanted) {
        let home = func.layout.inst_block(step.inst).expect("a hot instruction in the layout");
        let exits = uses[step.x].cold.iter().filter_map(|b| b.expand());
        if !exits.clone().all(|b| domtree.block_dominates(home, b)) {
            continue;
        }
        let s = func.dfg.first_result(step.inst);
        let ty = func.dfg.value_type(s);
        for block in exits {
            let first = func.layout.first_inst(block).expect("a block ends in a terminator");
            let mut pos = FuncCursor::new(func).at_inst(first);
            // An `isub`, not an `iadd` of `-k`: instruction selection folds `(x + k) + -k`
            // into one address computation from `x`, which would make `x` live again.
            let step_back = pos.ins().iconst(ty, step.k);
            let before = pos.ins().isub(s, step_back);
            let mut next = Some(first);
            while let Some(inst) = next {
                func.dfg.map_inst_values(inst, |v| if v == step.x { before } else { v });
                next = func.layout.next_inst(inst);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cranelift_codegen::ir::{types::I64, AbiParam, InstBuilder, Signature, UserFuncName};
    use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

    /// An empty `fn(ty) -> ty`.
    pub(crate) fn function_of_one(ty: ir::Type) -> ir::Function {
        let mut sig = Signature::new(CallConv::SystemV);
        sig.params.push(AbiParam::new(ty));
        sig.returns.push(AbiParam::new(ty));
        ir::Function::with_name_signature(UserFuncName::default(), sig)
    }

    /// entry -> (hot | slow), slow -> slow2 -> join, hot -> join, and a loop inside the slow path.
    #[test]
    fn blocks_reached_only_from_cold_blocks_become_cold() {
        let mut func = function_of_one(I64);
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let [entry, hot, slow, slow2, join] = [(); 5].map(|_| b.create_block());
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let x = b.block_params(entry)[0];
        b.ins().brif(x, slow, &[], hot, &[]);
        b.set_cold_block(slow);
        b.switch_to_block(hot);
        b.ins().jump(join, &[]);
        b.switch_to_block(slow);
        b.ins().jump(slow2, &[]);
        b.switch_to_block(slow2);
        // A loop of the slow path's own: its back edge comes from a cold block too.
        b.ins().brif(x, slow2, &[], join, &[]);
        b.switch_to_block(join);
        b.ins().return_(&[x]);
        b.seal_all_blocks();
        finish(b);

        spread_coldness(&mut func);
        let cold = |bl| func.layout.is_cold(bl);
        assert!(cold(slow) && cold(slow2), "the slow path's blocks");
        assert!(!cold(entry) && !cold(hot), "the hot path");
        assert!(!cold(join), "a block with a hot predecessor");
    }

    /// The passes as `background::generate` runs them, then Cranelift's verifier.
    pub(crate) fn tidy_and_verify(func: &mut ir::Function) {
        spread_coldness(func);
        sink_into_cold(func);
        cranelift_codegen::verify_function(&*func, &cranelift_codegen::settings::Flags::new(cranelift_codegen::settings::builder()))
            .unwrap_or_else(|e| panic!("{e:?}\n{}", func.display()));
    }

    pub(crate) fn finish(b: FunctionBuilder) {
        b.finalize(TargetFrontendConfig {
            default_call_conv: CallConv::SystemV,
            pointer_width: target_lexicon::PointerWidth::U64,
            page_size_align_log2: 12,
        });
    }

    fn block_of(func: &ir::Function, v: ir::Value) -> ir::Block {
        let ir::ValueDef::Result(inst, _) = func.dfg.value_def(v) else { panic!("{v} is no result") };
        func.layout.inst_block(inst).expect("in the layout")
    }

    /// What only cold blocks use goes down into them (a chain of three, copied into both
    /// exits); what a hot block uses, a load and the stack pointer stay; the function still
    /// verifies.
    #[test]
    fn pure_values_only_exits_use_move_into_the_exits() {
        let mut func = function_of_one(I64);
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let [entry, next, exit1, exit2, done] = [(); 5].map(|_| b.create_block());
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let x = b.block_params(entry)[0];
        // An Int's boxing, for the exits only.
        let mask = b.ins().iconst(I64, 0xffff_ffff_ffff);
        let masked = b.ins().band(x, mask);
        let tag = b.ins().iconst(I64, 0x7ff9_0000_0000_0000);
        let boxed = b.ins().bor(masked, tag);
        // Used on the hot path too.
        let y = b.ins().iadd_imm_s(x, 1);
        // Only the exits use these, but a load reads memory and the stack pointer depends on
        // where it is read.
        let loaded = b.ins().load(I64, ir::MemFlagsData::trusted(), x, 0);
        let sp = b.ins().get_stack_pointer(I64);
        b.ins().brif(y, exit1, &[], next, &[]);
        b.set_cold_block(exit1);
        b.switch_to_block(next);
        b.ins().brif(x, exit2, &[], done, &[]);
        b.set_cold_block(exit2);
        b.switch_to_block(exit1);
        let r = b.ins().iadd(boxed, loaded);
        b.ins().return_(&[r]);
        b.switch_to_block(exit2);
        let r = b.ins().iadd(boxed, sp);
        b.ins().return_(&[r]);
        b.switch_to_block(done);
        b.ins().return_(&[y]);
        b.seal_all_blocks();
        finish(b);

        tidy_and_verify(&mut func);
        let count = |op: ir::Opcode, block: ir::Block| {
            func.layout.block_insts(block).filter(|&i| func.dfg.insts[i].opcode() == op).count()
        };
        for exit in [exit1, exit2] {
            assert_eq!(
                (count(ir::Opcode::Band, exit), count(ir::Opcode::Iconst, exit), count(ir::Opcode::Bor, exit)),
                (1, 2, 1),
                "the boxing copied into {exit}:\n{}",
                func.display()
            );
        }
        for moved in [mask, masked, tag, boxed] {
            let ir::ValueDef::Result(inst, _) = func.dfg.value_def(moved) else { unreachable!() };
            assert_eq!(func.layout.inst_block(inst), None, "{moved} left the hot block:\n{}", func.display());
        }
        assert_eq!(block_of(&func, y), entry, "a hot block uses it");
        assert_eq!(block_of(&func, loaded), entry, "a load stays");
        assert_eq!(block_of(&func, sp), entry, "the stack pointer stays");
    }

    /// A counting loop: `s = x + 1` with two cold exits after it that read `x` (an overflow
    /// exit and a bound exit) and one before it. The exits after the step read `s - 1`, so
    /// that `x` dies at the step; the one before keeps `x` (the step does not dominate it),
    /// and then nothing is rebased for that step. A dead boxing of `x` goes away.
    #[test]
    fn exits_after_a_step_read_the_stepped_value_back() {
        for with_early_exit in [false, true] {
            let mut func = function_of_one(I64);
            let mut fctx = FunctionBuilderContext::new();
            let mut b = FunctionBuilder::new(&mut func, &mut fctx);
            let [entry, header, checked, back, overflow, bound] = [(); 6].map(|_| b.create_block());
            b.append_block_params_for_function_params(entry);
            let x = b.append_block_param(header, I64);
            b.switch_to_block(entry);
            let start = b.block_params(entry)[0];
            b.ins().jump(header, &[ir::BlockArg::Value(start)]);
            b.switch_to_block(header);
            // Dead: a boxing nobody reads (it would count as a hot use of `x`).
            let mask = b.ins().iconst(I64, 0xffff_ffff_ffff);
            let dead = b.ins().band(x, mask);
            if with_early_exit {
                let (early, rest) = (b.create_block(), b.create_block());
                b.ins().brif(x, early, &[], rest, &[]);
                b.set_cold_block(early);
                b.switch_to_block(early);
                b.ins().return_(&[x]);
                b.switch_to_block(rest);
            }
            let s = b.ins().iadd_imm_s(x, 1);
            let max = b.ins().iconst(I64, 0x7fff_ffff_ffff);
            let fits = b.ins().icmp(ir::condcodes::IntCC::SignedLessThanOrEqual, s, max);
            b.ins().brif(fits, checked, &[], overflow, &[]);
            b.set_cold_block(overflow);
            b.switch_to_block(checked);
            let limit = b.ins().iconst(I64, 1000);
            let more = b.ins().icmp(ir::condcodes::IntCC::SignedLessThan, s, limit);
            b.ins().brif(more, back, &[], bound, &[]);
            b.set_cold_block(bound);
            b.switch_to_block(back);
            b.ins().jump(header, &[ir::BlockArg::Value(s)]);
            for exit in [overflow, bound] {
                b.switch_to_block(exit);
                b.ins().return_(&[x]);
            }
            b.seal_all_blocks();
            finish(b);

            tidy_and_verify(&mut func);
            let ir::ValueDef::Result(dead_inst, _) = func.dfg.value_def(dead) else { unreachable!() };
            assert_eq!(func.layout.inst_block(dead_inst), None, "the dead boxing is gone:\n{}", func.display());
            let reads = |block: ir::Block, v: ir::Value| {
                func.layout.block_insts(block).any(|i| func.dfg.inst_values(i).any(|a| a == v))
            };
            for exit in [overflow, bound] {
                if with_early_exit {
                    assert!(reads(exit, x), "{exit} keeps x: the early exit keeps it live:\n{}", func.display());
                } else {
                    assert!(!reads(exit, x), "{exit} no longer reads x:\n{}", func.display());
                    let subs = func.layout.block_insts(exit).filter(|&i| func.dfg.insts[i].opcode() == ir::Opcode::Isub);
                    assert_eq!(subs.count(), 1, "{exit} steps back once:\n{}", func.display());
                }
            }
        }
    }

    /// A mask the hot path only tests against zero (`x & 1 == 0`), which an exit also reads:
    /// the exit gets a mask of its own, so that the hot one is used by the compare alone
    /// (instruction selection then makes it one `test`). A mask the hot path adds to stays
    /// shared.
    #[test]
    fn a_mask_only_tested_on_the_hot_path_is_copied_into_its_exit() {
        for hot_add in [false, true] {
            let mut func = function_of_one(I64);
            let mut fctx = FunctionBuilderContext::new();
            let mut b = FunctionBuilder::new(&mut func, &mut fctx);
            let [entry, hot, exit] = [(); 3].map(|_| b.create_block());
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            let x = b.block_params(entry)[0];
            let one = b.ins().iconst(I64, 1);
            let mask = b.ins().band(x, one);
            let zero = b.ins().iconst(I64, 0);
            let even = b.ins().icmp(IntCC::Equal, mask, zero);
            b.ins().brif(even, hot, &[], exit, &[]);
            b.set_cold_block(exit);
            b.switch_to_block(hot);
            let r = if hot_add { b.ins().iadd(x, mask) } else { x };
            b.ins().return_(&[r]);
            b.switch_to_block(exit);
            b.ins().return_(&[mask]);
            b.seal_all_blocks();
            finish(b);

            tidy_and_verify(&mut func);
            let masks = |block| func.layout.block_insts(block).filter(|&i| func.dfg.insts[i].opcode() == ir::Opcode::Band).count();
            assert_eq!(masks(entry), 1, "the hot mask stays for the compare:\n{}", func.display());
            let exit_reads_hot_mask = func.layout.block_insts(exit).any(|i| func.dfg.inst_values(i).any(|v| v == mask));
            if hot_add {
                assert_eq!(masks(exit), 0, "an add needs the mask anyway: shared\n{}", func.display());
                assert!(exit_reads_hot_mask, "{}", func.display());
            } else {
                assert_eq!(masks(exit), 1, "the exit's own mask:\n{}", func.display());
                assert!(!exit_reads_hot_mask, "{}", func.display());
            }
        }
    }

    /// Two constant steps in a row, in two blocks, the inner one also used apart, the outer
    /// an `isub`: the outer becomes one step from the start with the summed constant (in the
    /// step's width, still subtracted), the inner stays for its other use, and the function
    /// still verifies.
    #[test]
    fn a_step_of_a_step_adds_the_constants() {
        let mut func = function_of_one(ir::types::I32);
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let [entry, next, exit] = [(); 3].map(|_| b.create_block());
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let x = b.block_params(entry)[0];
        let inner = b.ins().iadd_imm_s(x, -2);
        b.ins().brif(inner, next, &[], exit, &[]);
        b.switch_to_block(next);
        let one = b.ins().iconst(ir::types::I32, 1);
        let outer = b.ins().isub(inner, one);
        b.ins().return_(&[outer]);
        b.switch_to_block(exit);
        b.ins().return_(&[inner]);
        b.seal_all_blocks();
        finish(b);

        tidy_and_verify(&mut func);
        let ir::ValueDef::Result(outer_inst, _) = func.dfg.value_def(outer) else { unreachable!() };
        let step = constant_step(&func, outer_inst).expect("still a constant step");
        assert_eq!((step.x, step.k), (x, -3), "{}", func.display());
        assert_eq!(func.dfg.insts[outer_inst].opcode(), ir::Opcode::Isub, "still subtracting");
        let ir::ValueDef::Result(c, _) = func.dfg.value_def(func.dfg.inst_args(outer_inst)[1]) else { unreachable!() };
        let ir::InstructionData::UnaryImm { imm, .. } = func.dfg.insts[c] else { panic!("a constant") };
        assert_eq!(imm.bits() as i32, 3, "x - 3:\n{}", func.display());
        assert_eq!(block_of(&func, inner), entry, "the inner step stays for the branch");
    }
}
