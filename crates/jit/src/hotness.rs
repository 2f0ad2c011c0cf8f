//! What tier-up reads of how a Block runs, from its Code and the VM's stack: whether it is a
//! loop body or recursing, and the heat one execution of it adds to its compile job.

use crate::translate;
use soma_runtime::opcodes::Opcode;
use soma_runtime::{Value, Vm};

/// Whether `block`'s Code executes the Store path `block` (the `>block` of a `chain` loop body).
pub(crate) fn is_loop_body(vm: &Vm, block: Value) -> bool {
    let Some(b) = vm.block_obj(block) else { return false };
    let Some(m) = vm.module(b.module) else { return false };
    m.module.codes.get(b.code as usize).is_some_and(translate::continues_a_chain)
}

/// Whether `block`, about to run, is recursing: it calls itself by a Store path (in its own
/// Code or a Block literal nested in it), and an execution of it is running in one of the
/// innermost [`RECURSION_LOOKBACK`] frames. Both, so that neither a combinator that is merely
/// re-entered (`ifelse` inside an arm of an outer `ifelse`) nor a Block whose call of itself
/// sits on a path not taken counts.
pub(crate) fn is_recursing(vm: &Vm, block: Value) -> bool {
    let Some(b) = vm.block_obj(block) else { return false };
    vm.is_running(block, RECURSION_LOOKBACK) && calls_itself(vm, block, b.module, b.code, NESTED_LITERAL_DEPTH)
}

/// Levels of nested Block literals searched for a call of the Block itself.
const NESTED_LITERAL_DEPTH: usize = 3;

/// Whether Code `code` of `module`, or a Block literal nested in it (down to `depth` levels),
/// executes a Store path that holds `block` now.
fn calls_itself(vm: &Vm, block: Value, module: u32, code: u32, depth: usize) -> bool {
    let Some(m) = vm.module(module) else { return false };
    let Some(c) = m.module.codes.get(code as usize) else { return false };
    c.instrs.iter().any(|ins| match ins.op {
        Opcode::ExecStore => {
            let comps: Vec<&str> = c.paths[ins.operand as usize].components.iter().map(|c| &**c).collect();
            vm.read_store_path(&comps).is_some_and(|v| v == block)
        }
        Opcode::Const => match c.consts.get(ins.operand as usize) {
            Some(&soma_runtime::decode::Const::Block(inner)) if depth > 0 => calls_itself(vm, block, module, inner, depth - 1),
            _ => false,
        },
        _ => false,
    })
}

/// Frames searched for an outer execution of a Block reaching the tier-up threshold (see
/// [`is_recursing`]): recursion through a few helper Blocks is found, and a deep stack
/// costs no more than this.
const RECURSION_LOOKBACK: usize = 16;

/// How much heat a round of a chained loop's body is worth in the compile queue, against one
/// execution of any other Block.
const LOOP_ROUND_WEIGHT: u64 = 16;

/// The heat one execution of `block` adds to its job for `tier`. A loop body's optimizing
/// compile goes ahead of the baseline compiles of the Blocks its rounds call: the loop takes
/// its code at its next round, and that code inlines those Blocks, so their own code, compiled
/// first, would mostly serve rounds the loop's code would have run.
pub(crate) fn heat_weight(vm: &Vm, block: Value, tier: u8) -> u64 {
    if tier >= 2 && is_loop_body(vm, block) {
        LOOP_ROUND_WEIGHT
    } else {
        1
    }
}
