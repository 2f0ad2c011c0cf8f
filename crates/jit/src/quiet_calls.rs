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
//! The trampolines do not depend on any VM (the VM is their argument), so each is compiled
//! once per process, on first use, into a module of its own that lives as long as the
//! process. Where one cannot be made, callers fall back to what they did without it.

use cranelift_codegen::ir::{self, types::I64, AbiParam, InstBuilder, Signature, UserFuncName};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use std::sync::OnceLock;

/// The signature of a quiet call site: `(vm)`, nothing returned, nothing clobbered.
pub fn site_signature() -> Signature {
    let mut sig = Signature::new(CallConv::PreserveAll);
    sig.params.push(AbiParam::new(I64));
    sig
}

/// The trampoline to `jit_poll_ahead` (`Helper::PollAhead`; the helper leaves the re-armed countdown in the VM, or
/// the countdown as it was), or `None` where none could be made.
pub fn poll_ahead() -> Option<u64> {
    static TRAMPOLINE: OnceLock<Option<u64>> = OnceLock::new();
    *TRAMPOLINE.get_or_init(|| {
        // The table's row: its signature is checked against the function by rustc.
        let helper = crate::helper_table::Helper::PollAhead.entry().addr as u64;
        make_trampoline("soma_quiet_poll_ahead", helper).ok()
    })
}

/// Cranelift's defaults, without the verifier (a three-instruction function made here).
fn trampoline_flags() -> settings::Flags {
    let mut b = settings::builder();
    b.set("enable_verifier", "false").expect("a Cranelift flag");
    settings::Flags::new(b)
}

/// Compile `preserve_all fn(vm) { helper(vm) }` for a C-ABI `helper(vm) -> u32` (its result
/// dropped) and return its address.
fn make_trampoline(name: &str, helper: u64) -> Result<u64, String> {
    let isa = cranelift_native::builder()
        .map_err(|e| e.to_string())?
        .finish(trampoline_flags())
        .map_err(|e| e.to_string())?;
    let call_conv = isa.default_call_conv();
    let frontend = isa.frontend_config();
    let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
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
    b.finalize(frontend);

    module.define_function(id, &mut ctx).map_err(|e| format!("{e:?}"))?;
    module.finalize_definitions().map_err(|e| e.to_string())?;
    let addr = module.get_finalized_function(id) as u64;
    // The code must stay mapped for the rest of the process: every VM's compiled code may
    // call it. One small module per trampoline, never freed.
    std::mem::forget(module);
    Ok(addr)
}
