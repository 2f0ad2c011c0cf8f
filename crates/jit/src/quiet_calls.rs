//! Calls from compiled code that clobber no register: for slow paths inside hot loops.
//!
//! A helper call on a loop's cold path still costs the hot path: a call under the C ABI
//! clobbers the caller-saved registers, so the register allocator keeps every value live
//! across it in callee-saved registers or stack slots, and a loop that carries more values
//! than there are callee-saved registers spills and reloads some of them every round. (A poll
//! region's early poll, once per 4,096 entries, made collatz's step loop store five stack
//! slots and reload three per round.)
//!
//! A *quiet* call goes through a trampoline that Cranelift compiles with its `preserve_all`
//! convention: the trampoline saves whatever the C helper it calls may clobber, so at the call
//! site nothing is clobbered and the allocator has nothing to move. The convention has no
//! return values: a quiet helper reports through VM memory.
//!
//! A trampoline is compiled into the module of the JIT whose code calls it, the first time a
//! translation needs it, and is freed with that module: the code that calls it lives in the
//! same module. Where one cannot be made, callers fall back to what they did without it.

use cranelift_codegen::ir::{self, types::I64, AbiParam, InstBuilder, Signature, UserFuncName};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::{Linkage, Module};

/// The signature of a quiet call site: `(vm)`, nothing returned, nothing clobbered.
pub fn site_signature() -> Signature {
    let mut sig = Signature::new(CallConv::PreserveAll);
    sig.params.push(AbiParam::new(I64));
    sig
}

/// Define the trampoline to `jit_poll_ahead` (`Helper::PollAhead`; the helper leaves the
/// re-armed countdown in the VM, or the countdown as it was) in `module`, and return its
/// address: valid as long as the module's memory is.
pub fn define_poll_ahead(module: &mut JITModule) -> Result<u64, String> {
    // The table's row: its signature is checked against the function by rustc.
    let helper = crate::helper_table::Helper::PollAhead.entry().addr as u64;
    define_trampoline(module, "soma_quiet_poll_ahead", helper)
}

/// Define `preserve_all fn(vm) { helper(vm) }` for a C-ABI `helper(vm) -> u32` (its result
/// dropped) in `module`, finalize it and return its address.
fn define_trampoline(module: &mut JITModule, name: &str, helper: u64) -> Result<u64, String> {
    let call_conv = module.isa().default_call_conv();
    let sig = site_signature();
    let id = module.declare_function(name, Linkage::Local, &sig).map_err(|e| e.to_string())?;

    let mut ctx = Context::new();
    ctx.func = ir::Function::with_name_signature(UserFuncName::user(0, id.as_u32()), sig);
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let vm = b.block_params(entry)[0];
    let mut helper_sig = Signature::new(call_conv);
    helper_sig.params.push(AbiParam::new(I64));
    helper_sig.returns.push(AbiParam::new(ir::types::I32));
    let helper_sig = b.import_signature(helper_sig);
    let callee = b.ins().iconst(I64, helper as i64);
    b.ins().call_indirect(helper_sig, callee, &[vm]);
    b.ins().return_(&[]);
    b.finalize(module.isa().frontend_config());

    module.define_function(id, &mut ctx).map_err(|e| format!("{e:?}"))?;
    module.finalize_definitions().map_err(|e| e.to_string())?;
    Ok(module.get_finalized_function(id) as u64)
}
