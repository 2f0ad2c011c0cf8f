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
//! A trampoline's machine code depends on no VM (the helper it calls is the process's), so it
//! is generated once per process and kept as bytes; each JIT declares the trampoline in its
//! own module when a translation first needs it, defines the bytes there when it installs the
//! first code that calls it, and frees them with it. Compiled code calls the trampoline by
//! name (a relocation the module resolves when it installs the code), so a VM pays for
//! neither a Cranelift compile nor a finalize of its own for it. The bytes are generated on
//! the compile thread as it starts ([`prepare`]): that is a whole Cranelift compile, and on
//! the main thread the first one in a process also pays for faulting in Cranelift's code
//! generator (measured: the first translation of chain_loop's body took 0.35-0.40 ms there,
//! later ones 0.08-0.12 ms). Only a synchronous tier-up (no compile thread) generates them on
//! the main thread. Where they cannot be made, callers fall back to what they did without
//! them.

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{self, types::I64, AbiParam, InstBuilder, Signature, UserFuncName};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::{Linkage, Module};
use std::sync::OnceLock;

/// The signature of a quiet call site: `(vm)`, nothing returned, nothing clobbered.
pub fn site_signature() -> Signature {
    let mut sig = Signature::new(CallConv::PreserveAll);
    sig.params.push(AbiParam::new(I64));
    sig
}

/// The namespace of a trampoline's name in the functions that call it (the translator's
/// helpers and VM constants have their own).
const NAMESPACE: u32 = 0;

/// A call of the trampoline whose function index in the module is `index` (what
/// [`declare_poll_ahead`] returned), made in `func`: the callee to `call` with `(vm)`.
pub fn import(func: &mut ir::Function, index: u32) -> ir::FuncRef {
    let signature = func.import_signature(site_signature());
    let name = func.declare_imported_user_function(ir::UserExternalName::new(NAMESPACE, index));
    func.import_function(ir::ExtFuncData {
        name: ir::ExternalName::User(name),
        signature,
        // Modules place functions anywhere: an absolute address, not a near call.
        colocated: false,
        patchable: false,
    })
}

/// Whether `inst` of `func` is a call of a trampoline ([`import`]).
pub fn is_quiet_call(func: &ir::Function, inst: ir::Inst) -> bool {
    let ir::InstructionData::Call { func_ref, .. } = func.dfg.insts[inst] else { return false };
    let ir::ExternalName::User(name) = func.dfg.ext_funcs[func_ref].name else { return false };
    func.params.user_named_funcs()[name].namespace == NAMESPACE
}

/// The machine code of the trampoline to `jit_poll_ahead` (`Helper::PollAhead`; the helper
/// leaves the re-armed countdown in the VM, or the countdown as it was), generated on first
/// use. A thread that asks while another generates it waits for that one.
fn poll_ahead_code() -> &'static Result<MachineCode, String> {
    POLL_AHEAD_CODE.get_or_init(|| {
        // The table's row: its signature is checked against the function by rustc.
        let helper = crate::helper_table::Helper::PollAhead.entry().addr as u64;
        trampoline_code(helper)
    })
}

static POLL_AHEAD_CODE: OnceLock<Result<MachineCode, String>> = OnceLock::new();

/// Generate the trampolines' machine code now, if not yet done (the compile thread does as
/// it starts, so that the main thread never runs this Cranelift compile in background mode).
pub fn prepare() {
    let _ = poll_ahead_code();
}

/// Declare the trampoline to `jit_poll_ahead` in `module` and return its function index there
/// (for [`import`]); [`define_poll_ahead`] must give it its bytes before code that calls it is
/// finalized. `Err` when its code is known not to be available (it was tried and failed).
pub fn declare_poll_ahead(module: &mut JITModule) -> Result<u32, String> {
    if let Some(Err(why)) = POLL_AHEAD_CODE.get() {
        return Err(why.clone());
    }
    let id = module
        .declare_function("soma_quiet_poll_ahead", Linkage::Local, &site_signature())
        .map_err(|e| e.to_string())?;
    Ok(id.as_u32())
}

/// Give the trampoline declared as function `index` of `module` ([`declare_poll_ahead`]) its
/// machine code (generated now if no thread did yet). It is finalized with the code being
/// installed.
pub fn define_poll_ahead(module: &mut JITModule, index: u32) -> Result<(), String> {
    let code = poll_ahead_code().as_ref().map_err(Clone::clone)?;
    module
        .define_function_bytes(cranelift_module::FuncId::from_u32(index), code.alignment, &code.bytes, &[])
        .map_err(|e| format!("{e:?}"))
}

/// A trampoline's machine code for this host.
struct MachineCode {
    bytes: Vec<u8>,
    alignment: u64,
}

/// The machine code of `preserve_all fn(vm) { helper(vm) }` for a C-ABI `helper(vm) -> u32`
/// (its result dropped). It has no relocations: the helper's address is an immediate.
fn trampoline_code(helper: u64) -> Result<MachineCode, String> {
    let mut flags = settings::builder();
    flags.set("enable_verifier", "false").map_err(|e| e.to_string())?;
    let isa = cranelift_native::builder()
        .map_err(|e| e.to_string())?
        .finish(settings::Flags::new(flags))
        .map_err(|e| e.to_string())?;
    let mut ctx = Context::new();
    ctx.func = ir::Function::with_name_signature(UserFuncName::user(0, 0), site_signature());
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let vm = b.block_params(entry)[0];
    let mut helper_sig = Signature::new(isa.default_call_conv());
    helper_sig.params.push(AbiParam::new(I64));
    helper_sig.returns.push(AbiParam::new(ir::types::I32));
    let helper_sig = b.import_signature(helper_sig);
    let callee = b.ins().iconst(I64, helper as i64);
    b.ins().call_indirect(helper_sig, callee, &[vm]);
    b.ins().return_(&[]);
    b.finalize(isa.frontend_config());
    let compiled = ctx
        .compile(&*isa, &mut ControlPlane::default())
        .map_err(|e| format!("{:?}", e.inner))?;
    if !compiled.buffer.relocs().is_empty() {
        return Err("the trampoline's code has relocations".into());
    }
    Ok(MachineCode { bytes: compiled.code_buffer().to_vec(), alignment: compiled.buffer.alignment as u64 })
}
