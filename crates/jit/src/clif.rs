//! Questions about finished CLIF that the translator and the passes over its functions
//! (`cold.rs`, `induction.rs`) share. A leaf: it names no other module of the crate, so the
//! passes need not name the translator.

use cranelift_codegen::ir;

/// The value `v` has when it is an `iconst` (after aliases are resolved): bits as the
/// instruction holds them, not sign-extended from a narrower type.
pub(crate) fn iconst_value(dfg: &ir::DataFlowGraph, v: ir::Value) -> Option<i64> {
    let ir::ValueDef::Result(inst, 0) = dfg.value_def(dfg.resolve_aliases(v)) else { return None };
    match dfg.insts[inst] {
        ir::InstructionData::UnaryImm { opcode: ir::Opcode::Iconst, imm } => Some(imm.bits()),
        _ => None,
    }
}

/// Make the `brif` `inst` a jump to its destination `side` (0: then, 1: else), arguments
/// and all: the branch was decided. False, changing nothing, when `inst` is no `brif`. The
/// block left out may be unreachable now; Cranelift drops such blocks before lowering.
pub(crate) fn take_branch(dfg: &mut ir::DataFlowGraph, inst: ir::Inst, side: usize) -> bool {
    let ir::InstructionData::Brif { blocks, .. } = dfg.insts[inst] else { return false };
    dfg.insts[inst] = ir::InstructionData::Jump { opcode: ir::Opcode::Jump, destination: blocks[side] };
    true
}
