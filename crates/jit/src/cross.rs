//! Compile the IR of SOMA Codes for another ISA (named by a target-lexicon triple) without
//! running it: the check that the lowering is portable (aarch64 in the tests).
//!
//! The IR embeds this process's addresses (helpers, paths, cache lines), so the machine code
//! produced is only good for inspection; running it needs a JIT on the target (docs/jit.md).

use crate::compiler::translate_with_fallbacks;
use crate::isa::flags;
use crate::translate::{self, CodeEnv};
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::isa::{self, OwnedTargetIsa};
use cranelift_codegen::Context;
use cranelift_frontend::FunctionBuilderContext;
use soma_runtime::Vm;
use std::str::FromStr;
use target_lexicon::Triple;

/// A Cranelift ISA for `triple` (e.g. `aarch64-unknown-linux-gnu`).
pub fn isa_for(triple: &str) -> Result<OwnedTargetIsa, String> {
    let t = Triple::from_str(triple).map_err(|e| format!("bad triple {triple}: {e}"))?;
    let builder = isa::lookup(t).map_err(|e| format!("no ISA for {triple}: {e}"))?;
    builder.finish(flags(true)).map_err(|e| e.to_string())
}

/// What compiling one Code produced.
#[derive(Debug, Clone)]
pub struct CrossCompiled {
    pub code: usize,
    /// Compiled as the optimizing tier's speculative code (asked for every Code but the
    /// program; a translation that cannot speculate falls back to generic optimized code).
    pub speculative: bool,
    pub name: String,
    pub code_size: usize,
    pub clif: String,
}

/// Lower every Code of loaded module `module`, run the Cranelift verifier on the IR and
/// compile it for `isa`: as baseline code, and (but the program) as the optimizing tier's
/// speculative code. Returns one record per compile, or the first failure.
pub fn compile_module_for(vm: &mut Vm, module: u32, isa: &dyn isa::TargetIsa) -> Result<Vec<CrossCompiled>, String> {
    let m = vm.module(module).cloned().ok_or("unknown module")?;
    let mut ctx = Context::new();
    let mut fctx = FunctionBuilderContext::new();
    let mut out = Vec::new();
    let codes = m.module.codes.iter().enumerate();
    for ((i, code), speculate) in codes.flat_map(|c| [(c, false), (c, true)]) {
        if speculate && i == 0 {
            continue;
        }
        let epoch_ptr = vm.graph().epoch_ptr();
        let writes_ptr = vm.graph().writes_ptr();
        let mut env = CodeEnv {
            vm: &*vm,
            block: m.blocks[i],
            epoch_ptr,
            writes_ptr,
            clock: None,
            revalidated: None,
            virtual_register: true,
            inline: true,
            // Baseline code with the optimizing tier's hot check (the most IR).
            hot_at: (!speculate).then_some(crate::config::DEFAULT_OPT_THRESHOLD),
            speculate,
            feedback: None,
            check_invariants: true,
            // Any function index: the code is compiled, never linked (the call's lowering is
            // checked).
            quiet_poll_ahead: translate::continues_a_chain(code).then_some(0),
            // Recursion unrolled where it can be (the most IR).
            unroll: speculate,
            leaf_inline: false,
            // Every flush point's stores (the most IR).
            sink_always: true,
            log: None,
        };
        // The cache lines and resume points live until the end of this iteration: the code
        // is compiled, never run.
        let (data, _) = translate_with_fallbacks(&mut ctx, &mut fctx, &mut env, isa.frontend_config())
            .map_err(|e| format!("code {i} ({}): {e}", code.name))?;
        let clif = ctx.func.display().to_string();
        ctx.verify(isa)
            .map_err(|e| format!("verifier, code {i} ({}): {e}\n{clif}", code.name))?;
        let compiled = ctx
            .compile(isa, &mut ControlPlane::default())
            .map_err(|e| format!("compile, code {i} ({}): {:?}", code.name, e.inner))?;
        out.push(CrossCompiled {
            code: i,
            speculative: data.speculative,
            name: code.name.clone(),
            code_size: compiled.code_info().total_size as usize,
            clif,
        });
    }
    Ok(out)
}
