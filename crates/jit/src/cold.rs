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
//! [`sink_into_cold`] then moves into the cold blocks the pure instructions only they use.
//! An exit materialises what the executor needs (a boxed Int, the value a `choose` picked, a
//! depth, an address), and the translator computes those where the exit's condition is
//! tested, on the hot path: Cranelift neither sinks nor removes them, so every round of a
//! loop paid for values only its exits read, and the registers they held.

use cranelift_codegen::flowgraph::ControlFlowGraph;
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

    /// The cold blocks the value's definition can move to: every use is in one of them.
    fn sink_targets(&self) -> Option<impl Iterator<Item = ir::Block> + '_> {
        let any = self.cold[0].is_some();
        (self.hot == 0 && !self.spread && any).then(|| self.cold.iter().filter_map(|b| b.expand()))
    }
}

/// Move each pure instruction of a hot block whose result only cold blocks use into those
/// blocks (a copy at the top of each, at most [`MAX_SINK_COPIES`]), after
/// [`spread_coldness`]. Later blocks go first, and a block's instructions last to first, so
/// that a chain of them (an Int's boxing: two masks and an or) goes down together.
///
/// Why it is the same program: the instruction has no effect and reads only its operands,
/// which are SSA values. A block that uses the result is dominated by the instruction's block
/// (SSA), so the operands, defined before the instruction, are defined wherever the copy
/// goes, with the same values; the copy computes what the original would have.
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
    let mut operands = Vec::new();
    let mut users = Vec::new();
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
            let Some(targets) = uses[result].sink_targets() else { continue };
            let targets: Vec<ir::Block> = targets.collect();
            operands.clear();
            operands.extend(func.dfg.inst_values(inst));
            for target in targets {
                let copy = func.dfg.clone_inst(inst);
                let copied = func.dfg.first_result(copy);
                users.clear();
                users.extend(func.layout.block_insts(target));
                func.layout.insert_inst(copy, users[0]);
                for &user in &users {
                    func.dfg.map_inst_values(user, |v| if v == result { copied } else { v });
                }
                for &v in &operands {
                    uses[v].add(target, true);
                }
            }
            for &v in &operands {
                uses[v].hot -= 1;
            }
            func.layout.remove_inst(inst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::ir::{types::I64, AbiParam, InstBuilder, Signature, UserFuncName};
    use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

    /// An empty `fn(i64) -> i64`.
    fn function_of_one_i64() -> ir::Function {
        let mut sig = Signature::new(CallConv::SystemV);
        sig.params.push(AbiParam::new(I64));
        sig.returns.push(AbiParam::new(I64));
        ir::Function::with_name_signature(UserFuncName::default(), sig)
    }

    /// entry -> (hot | slow), slow -> slow2 -> join, hot -> join, and a loop inside the slow path.
    #[test]
    fn blocks_reached_only_from_cold_blocks_become_cold() {
        let mut func = function_of_one_i64();
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

    fn finish(b: FunctionBuilder) {
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
        let mut func = function_of_one_i64();
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
        let y = b.ins().iadd_imm(x, 1);
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

        spread_coldness(&mut func);
        sink_into_cold(&mut func);
        cranelift_codegen::verify_function(&func, &cranelift_codegen::settings::Flags::new(cranelift_codegen::settings::builder()))
            .unwrap_or_else(|e| panic!("{e:?}\n{}", func.display()));
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
}
