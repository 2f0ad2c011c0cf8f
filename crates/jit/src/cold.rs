//! Block placement: code reached only through cold blocks is cold too.
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

use cranelift_codegen::flowgraph::ControlFlowGraph;
use cranelift_codegen::ir;

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

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::ir::{types::I64, AbiParam, InstBuilder, Signature, UserFuncName};
    use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

    /// entry -> (hot | slow), slow -> slow2 -> join, hot -> join, and a loop inside the slow path.
    #[test]
    fn blocks_reached_only_from_cold_blocks_become_cold() {
        let mut sig = Signature::new(CallConv::SystemV);
        sig.params.push(AbiParam::new(I64));
        sig.returns.push(AbiParam::new(I64));
        let mut func = ir::Function::with_name_signature(UserFuncName::default(), sig);
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
        b.finalize(TargetFrontendConfig {
            default_call_conv: CallConv::SystemV,
            pointer_width: target_lexicon::PointerWidth::U64,
            page_size_align_log2: 12,
        });

        spread_coldness(&mut func);
        let cold = |bl| func.layout.is_cold(bl);
        assert!(cold(slow) && cold(slow2), "the slow path's blocks");
        assert!(!cold(entry) && !cold(hot), "the hot path");
        assert!(!cold(join), "a block with a hot predecessor");
    }
}
