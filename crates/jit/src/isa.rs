//! Cranelift's settings for each tier (optimisation level, register allocator, verifier) and
//! the host ISA made from them.

use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};

/// Cranelift optimisation level (see docs/jit.md for the measurements behind it).
pub const DEFAULT_OPT_LEVEL: &str = "none";
/// Cranelift register allocator.
pub const DEFAULT_REGALLOC: &str = "single_pass";

/// Cranelift flags of the optimizing tier: the backtracking register allocator, without
/// Cranelift's e-graph optimizer. The translator already does what the optimizer found here
/// (constants folded, loop-invariant values hoisted into the pre-header, Store values in
/// registers); measured with callgrind on fib (sync compiles), `opt_level=speed` cost 11% more
/// compile (18.0 M instructions against 16.1 M) for run code within 0.4% of this.
pub fn optimizing_flags(verify: bool) -> settings::Flags {
    flags_with("none", "backtracking", verify, true)
}

/// Cranelift flags of the baseline tier, shared by the host JIT and cross-compilation.
pub fn flags(verify: bool) -> settings::Flags {
    let (opt, ra) = flag_settings();
    flags_with(&opt, &ra, verify, false)
}

/// `SOMA_JIT_OPT` / `SOMA_JIT_REGALLOC`, which override the defaults for experiments.
fn flag_settings() -> (String, String) {
    let opt = std::env::var("SOMA_JIT_OPT").unwrap_or_else(|_| DEFAULT_OPT_LEVEL.into());
    let ra = std::env::var("SOMA_JIT_REGALLOC").unwrap_or_else(|_| DEFAULT_REGALLOC.into());
    (opt, ra)
}

/// The host ISA with the baseline tier's flags, made once per process and setting. Making
/// one detects the CPU's features and builds every flag (about 7,000 instructions), which
/// a `soma test` file paid again for every test's VM. An ISA is immutable and `Send +
/// Sync`: VMs and the compile thread share it.
pub(crate) fn baseline_isa(verify: bool) -> Result<OwnedTargetIsa, String> {
    type Made = Vec<((String, String, bool), OwnedTargetIsa)>;
    static MADE: std::sync::Mutex<Made> = std::sync::Mutex::new(Vec::new());
    let (opt, ra) = flag_settings();
    let key = (opt, ra, verify);
    // A panic while the lock was held left the list as it was (a push is the only write).
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, isa)) = made.iter().find(|(k, _)| *k == key) {
        return Ok(isa.clone());
    }
    let isa = host_isa(flags_with(&key.0, &key.1, verify, false))?;
    made.push((key, isa.clone()));
    Ok(isa)
}

/// Flags with this optimisation level and register allocator (an unknown name falls back to
/// the baseline's) and the settings every tier shares.
/// `loop_offsets`: record machine block offsets, which the optimizing tier's chained loops
/// need to find their header (`loop_align.rs`); baseline code has no marked header.
fn flags_with(opt: &str, regalloc: &str, verify: bool, loop_offsets: bool) -> settings::Flags {
    let mut fb = settings::builder();
    if fb.set("opt_level", opt).is_err() {
        fb.set("opt_level", DEFAULT_OPT_LEVEL).expect("opt_level");
    }
    if fb.set("regalloc_algorithm", regalloc).is_err() {
        fb.set("regalloc_algorithm", DEFAULT_REGALLOC).expect("regalloc");
    }
    fb.set("use_colocated_libcalls", "false").expect("colocated");
    fb.set("is_pic", "false").expect("is_pic");
    fb.set("machine_code_cfg_info", if loop_offsets { "true" } else { "false" })
        .expect("machine_code_cfg_info");
    fb.set("enable_verifier", if verify { "true" } else { "false" })
        .expect("verifier");
    settings::Flags::new(fb)
}

/// The host's ISA with these flags.
pub(crate) fn host_isa(flags: settings::Flags) -> Result<OwnedTargetIsa, String> {
    cranelift_native::builder()
        .map_err(|e| format!("host ISA: {e}"))?
        .finish(flags)
        .map_err(|e| format!("host ISA: {e}"))
}
