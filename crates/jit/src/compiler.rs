//! The per-VM JIT: owns the `JITModule`, compiles Blocks on tier-up, keeps stats, prints
//! dumps and writes the perf map.

use crate::translate::{self, CodeEnv, Translated};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{isa::OwnedTargetIsa, Context};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};
use soma_runtime::error::{RtResult, SomaError};
use soma_runtime::ffi::SOMA_OK;
use soma_runtime::heap::NativeEntry;
use soma_runtime::opcodes::Opcode;
use soma_runtime::{Value, Vm};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

/// What `SOMA_JIT_DUMP` asks for (a comma-separated list of `clif`, `asm`, `stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpFlags {
    pub clif: bool,
    pub asm: bool,
    pub stats: bool,
}

impl DumpFlags {
    pub fn parse(s: &str) -> DumpFlags {
        let mut d = DumpFlags::default();
        for part in s.split(',').map(str::trim) {
            match part {
                "clif" => d.clif = true,
                "asm" => d.asm = true,
                "stats" => d.stats = true,
                "all" => {
                    d.clif = true;
                    d.asm = true;
                    d.stats = true;
                }
                _ => {}
            }
        }
        d
    }
}

/// JIT configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JitConfig {
    /// Executions a Block runs interpreted before it is compiled (0: before the first run);
    /// `None`: never compile (`SOMA_JIT_THRESHOLD=off`).
    pub threshold: Option<u64>,
    pub dump: DumpFlags,
    /// Append `ADDR SIZE NAME` lines to `/tmp/perf-PID.map` (`SOMA_JIT_PERFMAP=1`).
    pub perf_map: bool,
    /// Run the Cranelift verifier on every function before compiling it.
    pub verify: bool,
    /// Keep dump text for [`take_dumps`] instead of printing it to stderr.
    pub capture_dumps: bool,
    /// Account wall time in compiled code (`JitStats::native_ns`): two clock reads per
    /// outermost native call. On with `SOMA_JIT_DUMP=stats` or `SOMA_JIT_TIME=1`.
    pub time_native: bool,
}

/// Default tier-up threshold when `SOMA_JIT_THRESHOLD` is unset. Chosen by measurement
/// (docs/jit.md, "Choosing the default threshold"): long-running programs take the same time
/// anywhere from 0 to 1,000, while short programs pay for compiling blocks that run only a
/// few times; from about 50 up that cost is gone. 100 interpreted runs of a block cost about
/// what compiling it does (~200 µs).
pub const DEFAULT_THRESHOLD: u64 = 100;

impl Default for JitConfig {
    fn default() -> JitConfig {
        JitConfig {
            threshold: Some(DEFAULT_THRESHOLD),
            dump: DumpFlags::default(),
            perf_map: false,
            verify: cfg!(debug_assertions),
            capture_dumps: false,
            time_native: false,
        }
    }
}

impl JitConfig {
    /// `SOMA_JIT_THRESHOLD` (N or `off`), `SOMA_JIT_DUMP`, `SOMA_JIT_PERFMAP=1`.
    pub fn from_env() -> JitConfig {
        let mut c = JitConfig::default();
        if let Ok(t) = std::env::var("SOMA_JIT_THRESHOLD") {
            c.threshold = parse_threshold(&t).unwrap_or(c.threshold);
        }
        if let Ok(d) = std::env::var("SOMA_JIT_DUMP") {
            c.dump = DumpFlags::parse(&d);
        }
        c.perf_map = std::env::var("SOMA_JIT_PERFMAP").is_ok_and(|v| v == "1");
        c.time_native = c.dump.stats || std::env::var("SOMA_JIT_TIME").is_ok_and(|v| v == "1");
        c
    }
}

/// `"off"` → `Some(None)`, `"N"` → `Some(Some(N))`, anything else → `None` (ignored).
pub fn parse_threshold(s: &str) -> Option<Option<u64>> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") {
        Some(None)
    } else {
        s.parse().ok().map(Some)
    }
}

/// Per-block compile record.
#[derive(Clone, Debug)]
pub struct BlockStat {
    pub name: String,
    pub module: u32,
    pub code: u32,
    pub instrs: usize,
    pub compile_us: u64,
    pub code_size: usize,
}

/// JIT statistics the bridge can expose.
#[derive(Clone, Debug, Default)]
pub struct JitStats {
    pub blocks_compiled: u64,
    pub compile_failures: u64,
    pub total_compile_ns: u64,
    pub total_code_bytes: u64,
    /// Wall time in compiled code, counted from the outermost compiled frame (so including
    /// the helpers and interpreted blocks it calls). Measured when `JitConfig::time_native`
    /// was on when the code was compiled; 0 otherwise.
    pub native_ns: u64,
    /// Deoptimisation exits taken (a guarded builtin site found its path rebound, or a
    /// virtual Register name needed write-through).
    pub deopts: u64,
    /// Blocks recompiled after repeated deopts.
    pub recompiles: u64,
    /// Block executions inlined into compiled code (counted per compile).
    pub inlined: u64,
    /// Translations retried with less ambition (see `translate_with_fallbacks`).
    pub retranslations: u64,
    pub blocks: Vec<BlockStat>,
}

impl JitStats {
    /// Median compile time per block in µs (0 when nothing was compiled).
    pub fn median_compile_us(&self) -> u64 {
        let mut v: Vec<u64> = self.blocks.iter().map(|b| b.compile_us).collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    }
}

/// The JIT state kept in `Vm::jit_state`.
pub struct Jit {
    module: Option<JITModule>,
    isa: OwnedTargetIsa,
    ctx: Context,
    fctx: FunctionBuilderContext,
    /// Memory compiled code refers to: cache lines and deoptimisation resume points (boxed:
    /// their addresses never move).
    code_data: Vec<Translated>,
    failed: HashSet<(u32, u32)>,
    pub config: JitConfig,
    pub stats: JitStats,
    next_id: u64,
    dumps: Vec<String>,
    /// Boxed: compiled code holds its address.
    clock: Box<crate::helpers::NativeClock>,
    /// Deopts per Block since it was last compiled, and recompiles per Block.
    deopt_counts: HashMap<(u32, u32), u32>,
    recompiles: HashMap<(u32, u32), u32>,
    /// Blocks recompiled without the virtual Register (their deopts were write-through).
    no_virtual_register: HashSet<(u32, u32)>,
    /// Blocks recompiled without inlining (their deopts came from inlined bodies).
    no_inline: HashSet<(u32, u32)>,
}

/// Deopts of one compiled Block before it is recompiled against the current Store.
pub const DEOPTS_BEFORE_RECOMPILE: u32 = 4;
/// Recompiles per Block at most (then it keeps its last code and deopt exits).
pub const MAX_RECOMPILES: u32 = 3;

impl Drop for Jit {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the Jit is dropped with its VM; no compiled function of this module can
            // run afterwards (their entries live on Blocks of the same VM, which is being
            // dropped, and nothing else holds them).
            unsafe { m.free_memory() };
        }
    }
}

/// Cranelift optimisation level (see docs/jit.md for the measurements behind it).
pub const DEFAULT_OPT_LEVEL: &str = "none";
/// Cranelift register allocator.
pub const DEFAULT_REGALLOC: &str = "single_pass";

/// Cranelift flags shared by the host JIT and cross-compilation.
pub fn flags(verify: bool) -> settings::Flags {
    let mut fb = settings::builder();
    // `SOMA_JIT_OPT` / `SOMA_JIT_REGALLOC` override the defaults for experiments.
    let opt = std::env::var("SOMA_JIT_OPT").unwrap_or_else(|_| DEFAULT_OPT_LEVEL.into());
    if fb.set("opt_level", &opt).is_err() {
        fb.set("opt_level", DEFAULT_OPT_LEVEL).expect("opt_level");
    }
    let ra = std::env::var("SOMA_JIT_REGALLOC").unwrap_or_else(|_| DEFAULT_REGALLOC.into());
    if fb.set("regalloc_algorithm", &ra).is_err() {
        fb.set("regalloc_algorithm", DEFAULT_REGALLOC).expect("regalloc");
    }
    fb.set("use_colocated_libcalls", "false").expect("colocated");
    fb.set("is_pic", "false").expect("is_pic");
    fb.set("enable_verifier", if verify { "true" } else { "false" })
        .expect("verifier");
    settings::Flags::new(fb)
}

impl Jit {
    pub fn new(config: JitConfig) -> Result<Jit, String> {
        let isa_builder = cranelift_native::builder().map_err(|e| format!("host ISA: {e}"))?;
        let isa = isa_builder
            .finish(flags(config.verify))
            .map_err(|e| format!("host ISA: {e}"))?;
        let module = JITModule::new(JITBuilder::with_isa(isa.clone(), default_libcall_names()));
        Ok(Jit {
            module: Some(module),
            isa,
            ctx: Context::new(),
            fctx: FunctionBuilderContext::new(),
            code_data: Vec::new(),
            failed: HashSet::new(),
            config,
            stats: JitStats::default(),
            next_id: 0,
            dumps: Vec::new(),
            clock: Box::default(),
            deopt_counts: HashMap::new(),
            recompiles: HashMap::new(),
            no_virtual_register: HashSet::new(),
            no_inline: HashSet::new(),
        })
    }

    fn dump(&mut self, text: String) {
        if self.config.capture_dumps {
            self.dumps.push(text);
        } else {
            eprintln!("{text}");
        }
    }

    /// Compile `block` (if not yet compiled) and install its native entry.
    pub fn compile(&mut self, vm: &mut Vm, block: Value) -> Result<NativeEntry, String> {
        let b = vm.block_obj(block).ok_or("not a Block")?;
        if let Some(e) = b.native_entry.get() {
            return Ok(e);
        }
        let key = (b.module, b.code);
        if self.failed.contains(&key) {
            return Err("block is marked not compilable".into());
        }
        let t0 = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| self.compile_inner(vm, block))).unwrap_or_else(|_| {
            // The builder contexts may be half way through a function: start afresh.
            self.ctx.clear();
            self.fctx = FunctionBuilderContext::new();
            Err("panic during compilation".into())
        });
        match r {
            Ok((entry, stat)) => {
                let ns = t0.elapsed().as_nanos() as u64;
                let stat = BlockStat {
                    compile_us: ns / 1000,
                    ..stat
                };
                if self.config.dump.stats {
                    self.dump(format!(
                        "jit: compiled {} ({} instrs) in {} us, {} bytes",
                        stat.name, stat.instrs, stat.compile_us, stat.code_size
                    ));
                }
                self.stats.blocks_compiled += 1;
                self.stats.total_compile_ns += ns;
                self.stats.total_code_bytes += stat.code_size as u64;
                self.stats.blocks.push(stat);
                b.native_entry.set(Some(entry));
                Ok(entry)
            }
            Err(e) => {
                self.failed.insert(key);
                self.stats.compile_failures += 1;
                if self.config.dump.stats {
                    self.dump(format!("jit: cannot compile module {} code {}: {e}", key.0, key.1));
                }
                Err(e)
            }
        }
    }

    fn compile_inner(&mut self, vm: &mut Vm, block: Value) -> Result<(NativeEntry, BlockStat), String> {
        let b = vm.block_obj(block).ok_or("not a Block")?;
        let (mid, cid) = (b.module, b.code);
        let m = vm.module(mid).cloned().ok_or("unknown module")?;
        let code = m.module.codes.get(cid as usize).ok_or("unknown code")?;
        let epoch_ptr = vm.graph().epoch_ptr();
        let clock = self
            .config
            .time_native
            .then_some(&mut *self.clock as *mut crate::helpers::NativeClock);
        let mut env = CodeEnv {
            vm: &*vm,
            block,
            epoch_ptr,
            clock,
            virtual_register: !self.no_virtual_register.contains(&(mid, cid)),
            inline: !self.no_inline.contains(&(mid, cid)),
        };
        let (data, retries) =
            translate_with_fallbacks(&mut self.ctx, &mut self.fctx, &mut env, self.isa.frontend_config())?;
        self.stats.retranslations += retries;
        self.ctx.set_disasm(self.config.dump.asm);
        self.next_id += 1;
        let name = format!("soma_m{mid}_c{cid}_{}", sanitize(&code.name));
        let sym = format!("{name}_{}", self.next_id);
        if self.config.dump.clif {
            let text = format!("; jit: CLIF of {name}\n{}", self.ctx.func.display());
            self.dump(text);
        }
        let sig = self.ctx.func.signature.clone();
        let module = self.module.as_mut().ok_or("no module")?;
        let id = module
            .declare_function(&sym, Linkage::Local, &sig)
            .map_err(|e| e.to_string())?;
        module
            .define_function(id, &mut self.ctx)
            .map_err(|e| format!("{e:?}"))?;
        let compiled = self.ctx.compiled_code().ok_or("no compiled code")?;
        let size = compiled.code_info().total_size as usize;
        let asm = compiled.vcode.clone();
        module.finalize_definitions().map_err(|e| e.to_string())?;
        let ptr = module.get_finalized_function(id);
        if self.config.dump.asm {
            if let Some(vcode) = asm {
                self.dump(format!("; jit: machine code of {name}\n{vcode}"));
            }
        }
        if self.config.perf_map {
            write_perf_map(ptr as usize, size, &name);
        }
        self.stats.inlined += data.inlined as u64;
        self.code_data.push(data);
        // SAFETY: `ptr` is the finalized code of a function built with `entry_signature`
        // (`extern "C" fn(*mut Vm, u32) -> i32` in the ISA's default call convention, which is the
        // C convention of this host).
        let entry: NativeEntry = unsafe { std::mem::transmute::<*const u8, NativeEntry>(ptr) };
        let stat = BlockStat {
            name,
            module: mid,
            code: cid,
            instrs: code.instrs.len(),
            compile_us: 0,
            code_size: size,
        };
        Ok((entry, stat))
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn write_perf_map(addr: usize, size: usize, name: &str) {
    let path = format!("/tmp/perf-{}.map", std::process::id());
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{addr:x} {size:x} soma:{name}");
    }
}

/// Translate `env.block` into `ctx.func`, with less ambition each time a translation bails
/// out: first as configured, then without inlining, then without virtual Registers either
/// (which always succeeds: every instruction has a helper form).
pub(crate) fn translate_with_fallbacks(
    ctx: &mut Context,
    fctx: &mut FunctionBuilderContext,
    env: &mut CodeEnv,
    frontend: cranelift_codegen::isa::TargetFrontendConfig,
) -> Result<(Translated, u64), String> {
    let mut retries = 0;
    loop {
        ctx.clear();
        let r = translate::translate(&mut ctx.func, fctx, env, frontend);
        if r.is_err() {
            // The abandoned builder left its SSA state behind (only `finalize` resets it).
            *fctx = FunctionBuilderContext::new();
        }
        match r {
            Ok(data) => return Ok((data, retries)),
            Err(_) if env.inline => env.inline = false,
            Err(_) if env.virtual_register => env.virtual_register = false,
            Err(translate::Bail(why)) => return Err(format!("cannot translate: {why}")),
        }
        retries += 1;
    }
}

// ----- the API the bridge uses -----

fn with_jit<R>(vm: &mut Vm, f: impl FnOnce(&mut Jit, &mut Vm) -> R) -> Option<R> {
    let mut st = vm.jit_state().take()?;
    let r = st.downcast_mut::<Jit>().map(|jit| f(jit, vm));
    *vm.jit_state() = Some(st);
    r
}

/// The tier-up hook installed on the VM.
fn tier_up(vm: &mut Vm, block: Value) {
    with_jit(vm, |jit, vm| {
        // A failure marks the block not compilable; the executor keeps interpreting it.
        let _ = jit.compile(vm, block);
    });
}

/// Count a deoptimisation exit of `block` at instruction `pc` (called by the `jit_resume`
/// helper, a rare path; `inlined` when the exit was taken inside a body inlined into the
/// Block). After [`DEOPTS_BEFORE_RECOMPILE`] of them the Block is recompiled: its guards then
/// see the Store as it is now (a rebound `+` becomes a plain call); when the exits were
/// Register write-throughs the new code keeps the Register in heap cells, and when they came
/// from inlined bodies it inlines nothing. The running code finishes through its exit; it
/// stays allocated until the VM is dropped.
pub(crate) fn note_deopt(vm: &mut Vm, block: Value, pc: usize, inlined: bool) {
    with_jit(vm, |jit, vm| {
        jit.stats.deopts += 1;
        let Some(b) = vm.block_obj(block) else { return };
        let key = (b.module, b.code);
        let n = jit.deopt_counts.entry(key).or_insert(0);
        *n += 1;
        if *n < DEOPTS_BEFORE_RECOMPILE {
            return;
        }
        *n = 0;
        let r = jit.recompiles.entry(key).or_insert(0);
        if *r >= MAX_RECOMPILES {
            return;
        }
        *r += 1;
        let at_set_reg = vm
            .module(key.0)
            .and_then(|m| m.module.codes.get(key.1 as usize).map(|c| c.instrs.get(pc).map(|i| i.op)))
            .flatten()
            == Some(Opcode::SetReg);
        if inlined {
            jit.no_inline.insert(key);
        } else if at_set_reg {
            jit.no_virtual_register.insert(key);
        }
        b.native_entry.set(None);
        jit.stats.recompiles += 1;
        // A failure leaves the Block interpreted (and marked), as at tier-up.
        let _ = jit.compile(vm, block);
    });
}

/// Enable the JIT on `vm` with the configuration from the environment.
pub fn install(vm: &mut Vm) -> Result<(), String> {
    install_with(vm, JitConfig::from_env())
}

/// Enable the JIT on `vm`. On a VM that already has it, only the configuration changes (the
/// compiled code stays: Blocks keep pointing into it).
pub fn install_with(vm: &mut Vm, config: JitConfig) -> Result<(), String> {
    let threshold = config.threshold;
    let mut cfg = Some(config);
    let existing = with_jit(vm, |jit, _| jit.config = cfg.take().expect("config")).is_some();
    if !existing {
        let jit = Jit::new(cfg.take().expect("config"))?;
        *vm.jit_state() = Some(Box::new(jit));
    }
    set_threshold(vm, threshold);
    Ok(())
}

/// Change the tier-up threshold (`None`: never compile). No effect without [`install`].
pub fn set_threshold(vm: &mut Vm, threshold: Option<u64>) {
    let installed = with_jit(vm, |jit, _| jit.config.threshold = threshold).is_some();
    if installed {
        match threshold {
            Some(t) => vm.set_tier_up(Some(tier_up), t),
            None => vm.set_tier_up(None, 0),
        }
    }
}

/// Dump text kept since the last call (with `JitConfig::capture_dumps`).
pub fn take_dumps(vm: &mut Vm) -> Vec<String> {
    with_jit(vm, |jit, _| std::mem::take(&mut jit.dumps)).unwrap_or_default()
}

/// A snapshot of the JIT's statistics (`None` without [`install`]).
pub fn stats(vm: &mut Vm) -> Option<JitStats> {
    with_jit(vm, |jit, _| JitStats {
        native_ns: jit.clock.total_ns,
        ..jit.stats.clone()
    })
}

/// Compile `block` now (whatever its count). Errors say why it is not compilable.
pub fn compile_block(vm: &mut Vm, block: Value) -> Result<(), String> {
    with_jit(vm, |jit, vm| jit.compile(vm, block).map(|_| ()))
        .unwrap_or_else(|| Err("JIT not installed".into()))
}

/// Run code 0 of a loaded module at top level. With threshold 0 the program itself is
/// compiled and run natively; otherwise (or if it cannot be compiled) the reference executor
/// runs it, tiering blocks up as they get hot.
pub fn run_module(vm: &mut Vm, module: u32) -> RtResult<()> {
    let program = vm
        .module(module)
        .ok_or_else(|| SomaError::runtime(format!("no module {module}")))?
        .blocks
        .first()
        .copied();
    let threshold = with_jit(vm, |jit, _| jit.config.threshold).flatten();
    if let (Some(program), Some(0)) = (program, threshold) {
        if let Some(Ok(entry)) = with_jit(vm, |jit, vm| jit.compile(vm, program)) {
            // As the executor's run_module: the program is profiled like a block, and run in
            // the top-level Register (an alias frame when a builtin runs it mid-block).
            if let Some(b) = vm.block_obj(program) {
                b.exec_count.set(b.exec_count.get() + 1);
            }
            let pushed = vm.enter_top_level();
            // SAFETY: `entry` was compiled for this VM from code 0, which runs at top level
            // (no frame of its own); `vm` is a live boxed VM.
            let status = unsafe { entry(vm as *mut Vm, 0) };
            vm.leave_top_level(pushed);
            return if status == SOMA_OK {
                Ok(())
            } else {
                Err(vm
                    .take_error()
                    .unwrap_or_else(|| SomaError::runtime("compiled program failed")))
            };
        }
    }
    soma_runtime::exec::run_module(vm, module)
}
