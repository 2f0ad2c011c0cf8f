//! The per-VM JIT: owns the `JITModule`, compiles Blocks on tier-up, keeps stats, prints
//! dumps and writes the perf map.
//!
//! Beside it: its configuration (`config.rs`) and Cranelift flags (`isa.rs`), the stats it
//! keeps (`statistics.rs`), how it names code (`naming.rs`) and what tier-up reads of how a
//! Block runs (`hotness.rs`).

use crate::background::{self, Codegen, MachineCode, Worker};
use crate::config::{Background, JitConfig};
use crate::deopt::DeoptReason;
use crate::code_cache::{self, CacheKey, Imports};
use crate::hotness::{heat_weight, is_loop_body, is_recursing};
use crate::isa::{baseline_isa, host_isa, optimizing_flags};
use crate::naming::{describe_block, sanitize, write_perf_map};
use crate::statistics::{BlockStat, JitStats};
use crate::translate::{self, CodeEnv, Translated};
use cranelift_codegen::ir;
use cranelift_codegen::{isa::OwnedTargetIsa, Context};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module, ModuleReloc, ModuleRelocTarget};
use soma_runtime::error::{RtResult, SomaError};
use soma_runtime::abi::NativeEntry;
use soma_runtime::opcodes::Opcode;
use soma_runtime::{Value, Vm};
use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// A Code whose baseline code ran this fraction (1/N) of the optimizing tier's threshold in a
/// VM is taken to the optimizing tier early in the process's later VMs
/// (`Jit::note_warm_codes`).
pub const WARM_FOR_NEXT_VM: u64 = 4;

/// The JIT state kept in `Vm::jit_state`.
pub struct Jit {
    /// Where installed code lives (created on the first install).
    module: Option<JITModule>,
    /// The quiet trampoline to `jit_poll_ahead` in `module` (`quiet_calls.rs`).
    quiet_poll_ahead: QuietCall,
    /// Functions done with, cleared, their storage kept for translations to build into.
    spare_funcs: Vec<ir::Function>,
    isa: OwnedTargetIsa,
    // Boxed: the contexts are kilobytes, and a `Jit` is built and moved into the VM once per
    // VM (a `soma test` file makes one per test).
    ctx: Box<Context>,
    fctx: Box<FunctionBuilderContext>,
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
    /// Boxed: speculative code counts its revalidations here (`JitStats::revalidated`).
    revalidated: Box<std::cell::Cell<u64>>,
    /// Deopts per Block since it was last compiled, and recompiles per Block.
    deopt_counts: HashMap<(u32, u32), u32>,
    recompiles: HashMap<(u32, u32), u32>,
    /// Blocks recompiled without the virtual Register (their deopts were write-through).
    no_virtual_register: HashSet<(u32, u32)>,
    /// Blocks recompiled without inlining (their deopts came from inlined bodies).
    no_inline: HashSet<(u32, u32)>,
    /// Blocks recompiled without speculation (their speculative code kept deoptimizing).
    no_speculate: HashSet<(u32, u32)>,
    /// Polls (routine exits and polls taken early) of each Block's current speculative code
    /// that calls itself directly, and the Blocks whose translations unroll their recursion
    /// from now on.
    polls_of_code: HashMap<(u32, u32), u32>,
    unrolls: HashSet<(u32, u32)>,
    /// Type feedback from deopts (`feedback.rs`), read by every translation.
    feedback: crate::feedback::TypeFeedback,
    /// Blocks whose deopts taught the feedback something since their code was compiled: their
    /// recompile speculates again, with it.
    learnt: HashSet<(u32, u32)>,
    /// The compile thread (started on the first background compile), or why it could not be.
    worker: Option<Result<Worker, String>>,
    /// Blocks translated and waiting for their machine code, by job number.
    pending: HashMap<u64, Translation>,
    /// The job number of each Block waiting and the heat one execution of it is worth
    /// ([`heat_weight`]), by (module, code).
    queued: HashMap<(u32, u32), (u64, u64)>,
    /// Background compiles of a Block dropped as stale so far (see [`MAX_STALE_DROPS`]).
    stale_drops: HashMap<(u32, u32), u32>,
    /// The optimizing tier's ISA (Cranelift's optimizer and register allocator), made on
    /// first use.
    opt_isa: Option<OwnedTargetIsa>,
    /// The code installed for each Block: its index in `code_data`, and its tier.
    current: HashMap<(u32, u32), (usize, u8)>,
    /// When the JIT was created: the budget grows with the time since (the other side is the
    /// main thread's time in background tier-up, `background_translate_ns` plus
    /// `background_install_ns`).
    started: Instant,
    /// Codes of this VM that were compiled in an earlier VM of the process, with the tier
    /// they reached there (see `tier_up_known`).
    known_tier: HashMap<(u32, u32), u8>,
    /// The questions of the translation in progress (`replay.rs`), kept for its storage.
    query_log: std::cell::RefCell<crate::replay::QueryLog>,
    /// Codes inlined into this VM's optimized code (`note_warm_codes`).
    inlined_in_optimized: HashSet<(u32, u32)>,
    /// Images of this VM's Codes that templates and replays used (modules never change).
    code_images: rustc_hash::FxHashMap<(u32, u32), std::sync::Arc<[u8]>>,
}

/// What the compiler decided of a Block's translation, before translating it: with the Code
/// and the tier, all a translation depends on besides the questions it asks (`replay.rs`).
#[derive(Clone, Copy)]
struct EnvSettings {
    key: (u32, u32),
    hot_at: Option<u64>,
    quiet_poll_ahead: Option<u32>,
    virtual_register: bool,
    inline: bool,
    speculate: bool,
    unroll: bool,
    leaf_inline: bool,
}

/// A Block ready to install, or to generate machine code for (`Jit::prepare`). Lives for one
/// tier-up, on the stack: the size of its larger variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Prepared {
    /// Machine code at hand: replayed, or the code cache's for the function translated.
    Ready { t: Translation, code: std::sync::Arc<MachineCode>, how: Ready },
    /// Translated into `Jit::ctx`; the machine code is still to be generated (and kept in the
    /// code cache under `key`).
    Generate { t: Translation, key: Option<CacheKey> },
}

/// Where ready machine code came from, with what installing it links against.
enum Ready {
    /// The code cache's, for this function just translated (boxed: a function is about a
    /// kilobyte, a template's handle one pointer).
    Cached(Box<ir::Function>),
    /// A replay of this template (no function was built).
    Replayed(std::sync::Arc<crate::replay::Template>),
}

/// A Block translated to CLIF: what the install step needs besides the machine code.
struct Translation {
    block: Value,
    key: (u32, u32),
    /// The function's name (perf map, dumps) and its unique symbol in the module.
    name: String,
    symbol: String,
    instrs: usize,
    data: Translated,
    translate: Duration,
    /// 1 (baseline) or 2 (optimizing).
    tier: u8,
    /// Translations abandoned before this one (`JitStats::retranslations`).
    given_up: usize,
    /// What other VMs need to use this translation (`replay.rs`), kept with the machine code
    /// once it is installed.
    template: Option<Box<crate::replay::Template>>,
    /// The Block's native entry when it was translated (the code this one replaces): it is
    /// stale if the entry changed meanwhile.
    replaces: Option<NativeEntry>,
}

/// A Block whose background compiles were dropped as stale this many times is compiled on the
/// main thread the next time it tiers up (its Store keeps changing under the compile thread).
pub const MAX_STALE_DROPS: u32 = 3;

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

impl Jit {
    pub fn new(config: JitConfig) -> Result<Jit, String> {
        let isa = baseline_isa(config.verify)?;
        // Compiled code reports hot Blocks and deopts through these.
        crate::helpers::set_compiler_hooks(crate::helpers::CompilerHooks { note_hot, note_deopt, note_early_poll });
        Ok(Jit {
            // Made on the first install: a VM that never compiles (most short programs, every
            // test of a `soma test` file) does not pay for it.
            module: None,
            quiet_poll_ahead: QuietCall::NotLooked,
            spare_funcs: Vec::new(),
            isa,
            ctx: Box::new(Context::new()),
            fctx: Box::new(FunctionBuilderContext::new()),
            code_data: Vec::new(),
            failed: HashSet::new(),
            config,
            stats: JitStats::default(),
            next_id: 0,
            dumps: Vec::new(),
            clock: Box::default(),
            revalidated: Box::default(),
            deopt_counts: HashMap::new(),
            recompiles: HashMap::new(),
            no_virtual_register: HashSet::new(),
            no_inline: HashSet::new(),
            no_speculate: HashSet::new(),
            polls_of_code: HashMap::new(),
            unrolls: HashSet::new(),
            feedback: Default::default(),
            learnt: HashSet::new(),
            worker: None,
            pending: HashMap::new(),
            queued: HashMap::new(),
            stale_drops: HashMap::new(),
            opt_isa: None,
            current: HashMap::new(),
            started: Instant::now(),
            known_tier: HashMap::new(),
            query_log: Default::default(),
            inlined_in_optimized: HashSet::new(),
            code_images: Default::default(),
        })
    }

    fn dump(&mut self, text: String) {
        if self.config.capture_dumps {
            self.dumps.push(text);
        } else {
            eprintln!("{text}");
        }
    }

    /// Compile `block` now, on this thread (if not yet compiled), and install its native entry.
    pub fn compile(&mut self, vm: &mut Vm, block: Value) -> Result<NativeEntry, String> {
        let b = vm.block_obj(block).ok_or("not a Block")?;
        if let Some(e) = b.native_entry.get() {
            return Ok(e);
        }
        let tier = self.first_tier(vm, block);
        self.compile_now(vm, block, tier)
    }

    /// The tier a Block's first compile uses: the optimizing one at once when
    /// `opt_threshold` is 0, and for a loop body (a Block that runs `>block`: it pushes itself
    /// for the next round of a `chain`) whenever that tier is on. A loop that reached the
    /// tier-up threshold runs most of its rounds in whatever code it gets next: a baseline
    /// compile first would only delay the optimized one (the loop body is small, and its
    /// code is generated off the main thread either way). The same holds for a recursive
    /// Block that reached the threshold while recursing: recursion is its loop, and the
    /// calls still to come are mostly its own.
    fn first_tier(&self, vm: &Vm, block: Value) -> u8 {
        let known_optimized = || {
            vm.block_obj(block).is_some_and(|b| self.known_tier.get(&(b.module, b.code)) == Some(&2))
        };
        match self.config.opt_threshold {
            Some(0) => 2,
            Some(_) if is_loop_body(vm, block) || is_recursing(vm, block) || known_optimized() => 2,
            _ => 1,
        }
    }

    /// Let the Blocks of `module` whose Code an earlier VM of the process compiled tier up
    /// after [`code_cache::EARLY_TIER_UP`] more executions rather than at the threshold (their
    /// tier-up is shifted that early; their execution counts stay what they ran), at the tier
    /// they reached there. They grew
    /// hot there and likely will here (a test file's helpers, a benchmark's repeats), and
    /// their machine code is likely in the code cache: the threshold's interpreted runs
    /// would be spent waiting for code that is ready.
    fn tier_up_known(&mut self, vm: &mut Vm, module: u32) {
        let Some(threshold) = self.config.threshold else { return };
        if !(self.config.code_cache && self.config.early_tier_up) || threshold <= code_cache::EARLY_TIER_UP {
            return;
        }
        let Some(m) = vm.module(module) else { return };
        for (i, code) in m.module.codes.iter().enumerate().skip(1) {
            let Some(tier) = code_cache::compiled_tier(code) else { continue };
            let Some(b) = m.blocks.get(i).and_then(|&block| vm.block_obj(block)) else { continue };
            let due = b.exec_count.get() + code_cache::EARLY_TIER_UP;
            if due < b.tier_up_due(threshold) && b.native_entry.get().is_none() {
                b.tier_up_shift.set(due as i64 - threshold as i64);
                self.known_tier.insert((module, i as u32), tier);
                self.stats.known_hot += 1;
            }
        }
    }

    /// After a module ran: remember as optimized, for the VMs still to come in the process,
    /// the Codes whose baseline code ran at least [`WARM_FOR_NEXT_VM`] of the optimizing
    /// tier's threshold here (see `tier_up_known`). The threshold is a bet made within one
    /// VM; a Code that came this close in one run of a program will likely pass it in the
    /// next, and there its optimized code, usually replayed (`replay.rs`), costs less than the
    /// baseline runs it replaces. dict_workload's removals (`dict.#del` and its helpers) run
    /// 2,000-9,000 times per run: below the threshold in every VM before this.
    fn note_warm_codes(&mut self, vm: &Vm) {
        let Some(opt) = self.config.opt_threshold.filter(|&n| n > 0) else { return };
        if !(self.config.code_cache && self.config.early_tier_up) {
            return;
        }
        let warm = opt / WARM_FOR_NEXT_VM;
        for (&(m, c), &(_, tier)) in &self.current {
            // A Code that optimized code inlines runs mostly inside it: its count (which the
            // inlined bodies raise too) says little of its own calls.
            if tier != 1 || self.inlined_in_optimized.contains(&(m, c)) {
                continue;
            }
            let Some(module) = vm.module(m) else { continue };
            let Some(b) = module.blocks.get(c as usize).and_then(|&v| vm.block_obj(v)) else { continue };
            if b.exec_count.get() >= warm {
                if let Some(code) = module.module.codes.get(c as usize) {
                    code_cache::note_compiled(code, 2);
                }
            }
        }
    }

    /// The ISA a tier generates code with.
    fn isa_for(&mut self, tier: u8) -> Result<OwnedTargetIsa, String> {
        if tier < 2 {
            return Ok(self.isa.clone());
        }
        if self.opt_isa.is_none() {
            self.opt_isa = Some(host_isa(optimizing_flags(self.config.verify))?);
        }
        Ok(self.opt_isa.clone().expect("just made"))
    }

    /// Translate `block` for `tier`, generate its code on this thread and install it (replacing
    /// the code it has, if any).
    fn compile_now(&mut self, vm: &mut Vm, block: Value, tier: u8) -> Result<NativeEntry, String> {
        let b = vm.block_obj(block).ok_or("not a Block")?;
        let key = (b.module, b.code);
        if self.failed.contains(&key) {
            return Err("block is marked not compilable".into());
        }
        let r = self.isa_for(tier).and_then(|isa| match self.prepare(vm, block, tier, &isa)? {
            Prepared::Ready { t, code, how } => self.install_at_hand(vm, t, &code, how),
            Prepared::Generate { t, key } => {
                let t0 = Instant::now();
                let (code, _panicked) =
                    background::generate_and_keep(&mut self.ctx, &*isa, self.config.dump.asm, key);
                let func = self.take_translated();
                let installed = code.and_then(|code| self.install(vm, t, Imports::of(&func), &code, t0.elapsed(), None));
                self.recycle(func);
                installed
            }
        });
        r.map_err(|e| self.note_failure(key, e))
    }

    /// Tier `block` up: compile it now ([`Background::Off`], or when the compile thread cannot
    /// run), or translate it now and hand the code generation to the compile thread.
    fn tier_up(&mut self, vm: &mut Vm, block: Value) {
        let Some(b) = vm.block_obj(block) else { return };
        let key = (b.module, b.code);
        if b.native_entry.get().is_some() || self.failed.contains(&key) {
            return;
        }
        if let Some(&(id, weight)) = self.queued.get(&key) {
            // Called again while it waits (compiled callers ask at every call): it is hot. The
            // heat reaches the queue in steps (each is a lock and a search of the queue).
            if b.exec_count.get() % WARM_STEP == 0 {
                if let Some(Ok(w)) = &self.worker {
                    w.warm(id, WARM_STEP.saturating_mul(weight));
                }
            }
            return;
        }
        // A Block postponed for the budget waits until its count reaches the new due count,
        // whoever asks: compiled callers ask at every call, and each ask would otherwise cost
        // a budget check and count as one more postponement.
        if b.tier_up_shift.get() > 0 && b.exec_count.get() < b.tier_up_due(self.config.threshold.unwrap_or(0)) {
            return;
        }
        // Threshold 0 means "everything compiled before it first runs": synchronous, so the
        // all-compiled test tier runs compiled code deterministically.
        let synchronous = self.config.background == Background::Off
            || self.config.threshold == Some(0)
            || self.stale_drops.get(&key).is_some_and(|&n| n >= MAX_STALE_DROPS);
        if synchronous || !self.worker_ready() {
            let _ = self.compile(vm, block);
            return;
        }
        let tier = self.first_tier(vm, block);
        // A baseline compile asked for while an optimizing one is in flight waits: the one
        // compile thread generates the optimized code first, and that code usually inlines
        // the Blocks that grew hot meanwhile (fib's arms and `^`, collatz's `ifelse` and
        // compares), which then stop running and never come due again. Their translations
        // were main-thread time spent on code that landed too late to run.
        if tier == 1 && self.pending.values().any(|t| t.tier == 2) {
            crate::budget::postpone(b, self.config.threshold);
            self.stats.deferred += 1;
            return;
        }
        if !self.within_budget() && !crate::budget::exempt(&self.config, b, self.elapsed_ns()) {
            crate::budget::postpone(b, self.config.threshold);
            self.stats.postponed += 1;
            return;
        }
        self.queue(vm, block, tier);
    }

    /// The baseline code of `block` reached the optimizing tier's threshold: compile it again
    /// with the optimizer, in the background (or now, as tier-up would). The baseline code
    /// keeps running until the optimized code is installed; a chained loop running in it
    /// moves over at its next round (`Translated::superseded`).
    fn optimize(&mut self, vm: &mut Vm, block: Value) {
        let Some(b) = vm.block_obj(block) else { return };
        let key = (b.module, b.code);
        let baseline = matches!(self.current.get(&key), Some(&(_, 1)));
        if !baseline || self.failed.contains(&key) || self.queued.contains_key(&key) {
            return;
        }
        if self.config.background == Background::Off || !self.worker_ready() {
            // A failure keeps the baseline code (and marks the Block: no further attempts).
            let _ = self.compile_now(vm, block, 2);
            return;
        }
        self.queue(vm, block, 2);
    }

    /// Whether every optimizing compile unrolls recursion: `unroll_after` 0, or everything
    /// optimized at once (`opt_threshold` 0: the all-optimized test tier tests all of that
    /// tier's code) while unrolling is on.
    fn unrolls_at_once(&self) -> bool {
        match self.config.unroll_after {
            Some(0) => true,
            Some(_) => self.config.opt_threshold == Some(0),
            None => false,
        }
    }

    /// A routine exit (a poll) of `block`'s code: speculative code that calls itself directly
    /// and keeps running (`JitConfig::unroll_after` polls, one per 4,096 block entries) is
    /// compiled again with its recursion unrolled one level, in the background and within
    /// the main thread's budget (a later poll asks again when it is spent). The running code
    /// goes on meanwhile; once the new code is installed, the old code's direct self-calls go
    /// to it (they find their `Translated::self_entry` at 0), so a deep recursion moves over
    /// at its next call rather than when it returns.
    ///
    /// Polls taken early count too (`count_poll`, from `jit_poll_ahead`, where nothing may be
    /// compiled or installed): since directly recursive code takes its polls early, its routine
    /// exits are the host hook's turns (every ninth poll) and polls near a limit.
    fn consider_unrolling(&mut self, vm: &mut Vm, block: Value) {
        let Some(key) = self.count_poll(vm, block) else { return };
        let Some(after) = self.config.unroll_after else { return };
        if self.polls_of_code[&key] < after || !self.within_budget() {
            return;
        }
        self.unrolls.insert(key);
        if self.config.dump.stats {
            let name = describe_block(vm, block);
            self.dump(format!("jit: unrolling the recursion of {name} after {after} polls in its code"));
        }
        if self.config.background == Background::Off || !self.worker_ready() {
            // A failure keeps the code it has (and marks the Block: no further attempts).
            let _ = self.compile_now(vm, block, 2);
            return;
        }
        self.queue(vm, block, 2);
    }

    /// A poll of `block`'s code: when that code is one whose recursion may be unrolled
    /// (`consider_unrolling`), count it and return the Block's key.
    fn count_poll(&mut self, vm: &Vm, block: Value) -> Option<(u32, u32)> {
        self.config.unroll_after?;
        let b = vm.block_obj(block)?;
        let key = (b.module, b.code);
        let &(i, 2) = self.current.get(&key)? else { return None };
        let d = &self.code_data[i];
        if !d.speculative
            || d.direct_call_sites == 0
            || d.unrolled
            || self.unrolls.contains(&key)
            || self.queued.contains_key(&key)
            || self.failed.contains(&key)
        {
            return None;
        }
        *self.polls_of_code.entry(key).or_insert(0) += 1;
        Some(key)
    }

    /// Translate `block` for `tier` now and hand its code generation to the compile thread.
    fn queue(&mut self, vm: &mut Vm, block: Value, tier: u8) {
        let Some(b) = vm.block_obj(block) else { return };
        let key = (b.module, b.code);
        let weight = heat_weight(vm, block, tier);
        let heat = b.exec_count.get().saturating_mul(weight);
        let isa = match self.isa_for(tier) {
            Ok(isa) => isa,
            Err(e) => {
                self.note_failure(key, e);
                return;
            }
        };
        match self.prepare(vm, block, tier, &isa) {
            Ok(Prepared::Ready { t, code, how }) => {
                let t0 = Instant::now();
                self.stats.background_translate_ns += t.translate.as_nanos() as u64;
                let installed = self.install_at_hand(vm, t, &code, how);
                self.stats.background_install_ns += t0.elapsed().as_nanos() as u64;
                match installed {
                    Ok(_) => self.optimize_if_past(vm, block, tier),
                    Err(e) => {
                        self.note_failure(key, e);
                    }
                }
            }
            Ok(Prepared::Generate { t, key: cache }) => {
                let func = self.take_translated();
                self.next_id += 1;
                let id = self.next_id;
                self.stats.background_queued += 1;
                self.stats.background_translate_ns += t.translate.as_nanos() as u64;
                self.queued.insert(key, (id, weight));
                self.pending.insert(id, t);
                if let Some(Ok(w)) = &mut self.worker {
                    w.submit(id, heat, func, Codegen { isa, disasm: self.config.dump.asm, inject_panic: self.config.inject_worker_panic }, cache);
                    vm.set_install_hook(Some((install_ready, w.signal())));
                }
            }
            Err(e) => {
                self.note_failure(key, e);
            }
        }
    }

    /// Whether the main thread may spend more time on background tier-up now.
    fn within_budget(&self) -> bool {
        if self.config.background != Background::On {
            return true;
        }
        let spent = self.stats.background_translate_ns + self.stats.background_install_ns;
        crate::budget::within(&self.config, self.elapsed_ns(), spent)
    }

    /// Nanoseconds since the JIT was created (what the budget is a share of).
    fn elapsed_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Whether the compile thread runs (starting it on first use).
    fn worker_ready(&mut self) -> bool {
        if self.worker.is_none() {
            self.worker = Some(Worker::start(self.config.background == Background::Lockstep));
        }
        matches!(self.worker, Some(Ok(_)))
    }

    /// Install the background compiles that are done. `wait_all`: wait for every job in
    /// flight, also those queued again here. In lockstep mode this waits for the jobs queued
    /// before this safepoint, and only those: a job queued here (a stale compile redone) is
    /// installed at the next one, as it would be if the compile thread were slow. When none
    /// is left in flight the VM stops calling this.
    fn install_ready(&mut self, vm: &mut Vm, wait_all: bool) {
        if self.config.hold_installs && !wait_all {
            return;
        }
        let lockstep = self.config.background == Background::Lockstep;
        let mut due = match &self.worker {
            Some(Ok(w)) => w.in_flight(),
            _ => 0,
        };
        loop {
            if lockstep && !wait_all && due == 0 {
                break;
            }
            let Some(Ok(w)) = &mut self.worker else { break };
            let Some(done) = w.next_done(wait_all || lockstep) else { break };
            due = due.saturating_sub(1);
            let Some(t) = self.pending.remove(&done.id) else { continue };
            self.queued.remove(&t.key);
            self.stats.queue_wait_ns += done.queue_wait.as_nanos() as u64;
            self.stats.background_generate_ns += done.generate.as_nanos() as u64;
            if done.panicked {
                self.stats.worker_panics += 1;
            }
            let key = t.key;
            let code = match done.code {
                Ok(code) => code,
                Err(e) => {
                    self.note_failure(key, e);
                    continue;
                }
            };
            if let Some(why) = stale(vm, &t) {
                self.stats.dropped_stale += 1;
                *self.stale_drops.entry(key).or_insert(0) += 1;
                if self.config.dump.stats {
                    self.dump(format!("jit: dropped the background compile of {}: {why}", t.name));
                }
                // Compile it again against the Store as it is now (on the main thread once
                // it has been dropped `MAX_STALE_DROPS` times).
                match t.tier {
                    2 => self.optimize(vm, t.block),
                    _ => self.tier_up(vm, t.block),
                }
                continue;
            }
            let queue_wait = done.queue_wait;
            let t0 = Instant::now();
            let (block, tier) = (t.block, t.tier);
            let installed = self.install(vm, t, Imports::of(&done.func), &code, done.generate, Some(queue_wait));
            self.recycle(done.func);
            self.stats.background_install_ns += t0.elapsed().as_nanos() as u64;
            match installed {
                Ok(_) => {
                    self.stats.background_installed += 1;
                    self.optimize_if_past(vm, block, tier);
                }
                Err(e) => {
                    self.note_failure(key, e);
                }
            }
        }
        if !matches!(&self.worker, Some(Ok(w)) if w.in_flight() > 0) {
            vm.set_install_hook(None);
        }
    }

    /// Baseline code asks for the optimizing tier when its count reaches the threshold, on
    /// that one entry: a Block that ran past the threshold while its baseline code was being
    /// made asks when the code is installed, or it never would.
    fn optimize_if_past(&mut self, vm: &mut Vm, block: Value, tier: u8) {
        let past = vm
            .block_obj(block)
            .is_some_and(|b| self.config.opt_threshold.is_some_and(|n| b.exec_count.get() >= n));
        if tier == 1 && past {
            self.optimize(vm, block);
        }
    }

    /// Whether compiles use the process's code cache: not when turned off, nor when a dump of
    /// the machine code is wanted (the cache keeps none), nor in tests of the compile thread's
    /// failures (which must reach the compile thread).
    fn caches(&self) -> bool {
        let c = &self.config;
        c.code_cache && !c.dump.asm && !c.inject_worker_panic
    }

    /// Whether tier-ups replay translations (`replay.rs`): with the code cache, and not when
    /// the IR is to be dumped (a replay builds none).
    fn replays(&self) -> bool {
        self.caches() && self.config.replay && !self.config.dump.clif
    }

    /// `block` for `tier`, ready to install or to generate: a translation made before in the
    /// process and replayed here, or a translation made now, whose machine code the process's
    /// code cache may have (then it is ready too).
    fn prepare(&mut self, vm: &mut Vm, block: Value, tier: u8, isa: &OwnedTargetIsa) -> Result<Prepared, String> {
        let isa_fp = self.caches().then(|| code_cache::isa_fingerprint(&**isa));
        let settings = self.env_settings(vm, block, tier)?;
        let replay_key = isa_fp.filter(|_| self.replays()).and_then(|fp| self.replay_key(vm, &settings, tier, fp));
        if let Some(key) = replay_key {
            let t0 = Instant::now();
            if let Some(r) = self.replay(vm, &key) {
                let (code, template) = (r.code_arc(), r.template);
                let mut t = self.translation_of(vm, block, tier, &settings, r.data, template.given_up)?;
                t.translate = t0.elapsed();
                self.stats.replayed += 1;
                self.stats.retranslations += template.given_up as u64;
                if self.config.check_replay {
                    self.check_replay(vm, block, tier, settings, key, &template, isa_fp.unwrap_or(0));
                }
                return Ok(Prepared::Ready { t, code, how: Ready::Replayed(template) });
            }
        }
        let mut t = self.translate_block(vm, block, tier, settings, replay_key.is_some())?;
        let Some(isa_fp) = isa_fp else {
            return Ok(Prepared::Generate { t, key: None });
        };
        let t0 = Instant::now();
        let key = CacheKey::of(isa_fp, &self.ctx.func);
        if let Some(rk) = replay_key {
            self.keep_template(vm, &mut t, rk, key.stencil());
        }
        t.translate += t0.elapsed();
        match code_cache::lookup(key, &self.ctx.func) {
            Some(code) => {
                self.stats.code_cache_hits += 1;
                let func = self.take_translated();
                Ok(Prepared::Ready { t, code, how: Ready::Cached(Box::new(func)) })
            }
            None => Ok(Prepared::Generate { t, key: Some(key) }),
        }
    }

    /// Give `t` (just translated, with its questions in `query_log`) its template, or say in
    /// the dump why it has none.
    fn keep_template(&mut self, vm: &Vm, t: &mut Translation, key: crate::replay::ReplayKey, stencil: u64) {
        let addrs = self.env_addrs(vm);
        let log = self.query_log.borrow();
        let made = crate::replay::capture(vm, key, &log, addrs, &t.data, &self.ctx.func, stencil, t.given_up, &mut self.code_images);
        drop(log);
        match made {
            Ok(tpl) => t.template = Some(Box::new(tpl)),
            Err(why) if self.config.dump.stats => {
                let name = t.name.clone();
                self.dump(format!("jit:   {name} cannot be replayed in another VM: {why}"));
            }
            Err(_) => {}
        }
    }

    /// A translation kept under `key` that this VM answers alike, rebuilt for it.
    fn replay(&mut self, vm: &Vm, key: &crate::replay::ReplayKey) -> Option<crate::replay::Replayed> {
        let addrs = self.env_addrs(vm);
        let mut answers = crate::replay::Answers {
            vm,
            feedback: &self.feedback,
            addrs,
            images: &mut self.code_images,
        };
        crate::replay::replay(key, &mut answers)
    }

    /// Translate `block` as the replay stands for, and abort the process if its template is
    /// not the replayed one (`JitConfig::check_replay`).
    #[allow(clippy::too_many_arguments)]
    fn check_replay(
        &mut self,
        vm: &mut Vm,
        block: Value,
        tier: u8,
        settings: EnvSettings,
        key: crate::replay::ReplayKey,
        replayed: &crate::replay::Template,
        isa_fp: u64,
    ) {
        let retranslations = self.stats.retranslations;
        let fresh = self.translate_block(vm, block, tier, settings, true);
        self.stats.retranslations = retranslations;
        let why = match fresh {
            Err(e) => format!("the translation failed: {e}"),
            Ok(t) => {
                let stencil = CacheKey::of(isa_fp, &self.ctx.func).stencil();
                let addrs = self.env_addrs(vm);
                let log = self.query_log.borrow();
                let made = crate::replay::capture(vm, key, &log, addrs, &t.data, &self.ctx.func, stencil, t.given_up, &mut self.code_images);
                drop(log);
                match made {
                    Err(e) => format!("the translation has no template: {e}"),
                    Ok(tpl) => match tpl.difference(replayed) {
                        None => return,
                        Some(d) => d,
                    },
                }
            }
        };
        eprintln!(
            "soma-jit: a replayed translation of {} is not the translation it stands for ({why})",
            describe_block(vm, block)
        );
        std::process::abort();
    }

    /// The addresses of this VM and JIT that translations refer to directly.
    fn env_addrs(&mut self, vm: &Vm) -> crate::replay::EnvAddrs {
        crate::replay::EnvAddrs {
            epoch: vm.graph_ref().epoch_ptr() as u64,
            writes: vm.graph_ref().writes_ptr() as u64,
            revalidated: Some(&*self.revalidated as *const std::cell::Cell<u64> as u64),
            clock: self.config.time_native.then_some(&mut *self.clock as *mut crate::helpers::NativeClock as u64),
        }
    }

    /// The replay key of `block`'s translation with these settings, for the ISA with
    /// fingerprint `isa`.
    fn replay_key(&self, vm: &Vm, s: &EnvSettings, tier: u8, isa: u64) -> Option<crate::replay::ReplayKey> {
        let (module, code) = s.key;
        let c = vm.module(module)?.module.codes.get(code as usize)?;
        let flags = [
            s.virtual_register,
            s.inline,
            s.speculate,
            self.config.verify,
            s.unroll,
            self.config.sink_always,
            s.leaf_inline,
            self.config.time_native,
        ]
        .iter()
        .enumerate()
        .fold(0u16, |f, (i, &on)| f | (u16::from(on) << i));
        Some(crate::replay::ReplayKey {
            module,
            code,
            fingerprint: code_cache::code_fingerprint(c),
            tier,
            flags,
            hot_at: s.hot_at,
            quiet_poll_ahead: s.quiet_poll_ahead,
            isa,
        })
    }

    /// Install `t` with machine code at hand (replayed or from the code cache).
    fn install_at_hand(&mut self, vm: &mut Vm, t: Translation, code: &MachineCode, how: Ready) -> Result<NativeEntry, String> {
        let installed = match &how {
            Ready::Cached(func) => self.install(vm, t, Imports::of(func), code, Duration::ZERO, None),
            Ready::Replayed(template) => self.install(vm, t, template.imports(), code, Duration::ZERO, None),
        };
        if self.config.dump.stats && installed.is_ok() {
            self.dump(match how {
                Ready::Cached(_) => "jit:   its machine code came from the process's code cache".to_string(),
                Ready::Replayed(_) => "jit:   replayed: its translation and machine code were made before in the process".to_string(),
            });
        }
        if let Ready::Cached(func) = how {
            self.recycle(*func);
        }
        installed
    }

    /// Remember that a Block cannot be compiled (it stays interpreted); returns the reason.
    fn note_failure(&mut self, key: (u32, u32), e: String) -> String {
        self.failed.insert(key);
        self.stats.compile_failures += 1;
        if self.config.dump.stats {
            self.dump(format!("jit: cannot compile module {} code {}: {e}", key.0, key.1));
        }
        e
    }

    /// Translate `block` into `self.ctx.func` (main thread: this reads the VM).
    fn translate_block(&mut self, vm: &mut Vm, block: Value, tier: u8, settings: EnvSettings, log: bool) -> Result<Translation, String> {
        let t0 = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| self.translate_inner(vm, block, tier, settings, log))).unwrap_or_else(|_| {
            // The builder contexts may be half way through a function: start afresh.
            self.ctx.clear();
            *self.fctx = FunctionBuilderContext::new();
            Err("panic during translation".into())
        });
        r.map(|t| Translation {
            translate: t0.elapsed(),
            ..t
        })
    }

    /// How `block` is translated for `tier` now: what the compiler decided of it (deopts it
    /// learnt from, the optimizing tier's threshold, the quiet call).
    fn env_settings(&mut self, vm: &Vm, block: Value, tier: u8) -> Result<EnvSettings, String> {
        let b = vm.block_obj(block).ok_or("not a Block")?;
        let (mid, cid) = (b.module, b.code);
        // Baseline code asks for the optimizing tier when its count reaches the threshold
        // (only a count still ahead of it: the check fires on equality).
        let hot_at = match (tier, self.config.opt_threshold) {
            (1, Some(n)) if n > b.exec_count.get() => Some(n),
            _ => None,
        };
        let code = vm.module(mid).and_then(|m| m.module.codes.get(cid as usize)).ok_or("unknown code")?;
        // Chained loop bodies take polls due in their poll regions early; so does optimized
        // code that may call itself directly (fib: otherwise about one exit to the executor
        // in about 830 calls, each running the rest of its call interpreted, 8% of the run).
        let recursive = || {
            let codes = &vm.module(mid).expect("looked up above").module.codes;
            let value_at = |p: &soma_runtime::decode::Path| {
                let comps: Vec<&str> = p.components.iter().map(|s| &**s).collect();
                vm.read_store_path(&comps)
            };
            translate::runs_block(&|c| codes.get(c as usize), &value_at, cid, block.to_bits(), translate::SPECULATIVE_INLINE_DEPTH)
        };
        let quiet_poll_ahead =
            if translate::continues_a_chain(code) || (tier == 2 && recursive()) { self.quiet_poll_ahead() } else { None };
        Ok(EnvSettings {
            key: (mid, cid),
            hot_at,
            quiet_poll_ahead,
            virtual_register: !self.no_virtual_register.contains(&(mid, cid)),
            inline: !self.no_inline.contains(&(mid, cid)),
            // The program runs once; a Block whose speculative code kept deoptimizing gets
            // the generic kind.
            speculate: tier == 2 && cid != 0 && !self.no_speculate.contains(&(mid, cid)),
            unroll: tier == 2 && (self.unrolls_at_once() || self.unrolls.contains(&(mid, cid))),
            leaf_inline: tier == 2 && self.config.leaf_inline,
        })
    }

    fn translate_inner(&mut self, vm: &mut Vm, block: Value, tier: u8, s: EnvSettings, log: bool) -> Result<Translation, String> {
        let epoch_ptr = vm.graph().epoch_ptr();
        let writes_ptr = vm.graph().writes_ptr();
        let clock = self
            .config
            .time_native
            .then_some(&mut *self.clock as *mut crate::helpers::NativeClock);
        self.query_log.borrow_mut().clear();
        let mut env = CodeEnv {
            vm: &*vm,
            block,
            epoch_ptr,
            writes_ptr,
            clock,
            revalidated: Some(&*self.revalidated as *const std::cell::Cell<u64>),
            virtual_register: s.virtual_register,
            inline: s.inline,
            hot_at: s.hot_at,
            speculate: s.speculate,
            feedback: Some(&self.feedback),
            check_invariants: self.config.verify,
            quiet_poll_ahead: s.quiet_poll_ahead,
            unroll: s.unroll,
            leaf_inline: s.leaf_inline,
            sink_always: self.config.sink_always,
            log: log.then_some(&self.query_log),
        };
        let (data, given_up) =
            translate_with_fallbacks(&mut self.ctx, &mut self.fctx, &mut env, self.isa.frontend_config())?;
        self.stats.retranslations += given_up.len() as u64;
        if self.config.dump.stats && !given_up.is_empty() {
            let label = describe_block(vm, block);
            for why in &given_up {
                self.dump(format!("jit:   {label} translated again, with less ambition: {why}"));
            }
        }
        let t = self.translation_of(vm, block, tier, &s, data, given_up.len())?;
        if self.config.dump.clif {
            let text = format!("; jit: CLIF of {}\n{}", t.name, self.ctx.func.display());
            self.dump(text);
        }
        Ok(t)
    }

    /// The install step's record of `block`'s translation `data` for `tier`.
    fn translation_of(&mut self, vm: &Vm, block: Value, tier: u8, s: &EnvSettings, data: Translated, given_up: usize) -> Result<Translation, String> {
        let (mid, cid) = s.key;
        let b = vm.block_obj(block).ok_or("not a Block")?;
        let code = vm.module(mid).and_then(|m| m.module.codes.get(cid as usize)).ok_or("unknown code")?;
        self.next_id += 1;
        let name = format!("soma_m{mid}_c{cid}_{}{}", sanitize(&code.name), if tier == 2 { "_opt" } else { "" });
        let symbol = format!("{name}_{}", self.next_id);
        Ok(Translation {
            block,
            key: (mid, cid),
            name,
            symbol,
            instrs: code.instrs.len(),
            data,
            translate: Duration::ZERO,
            tier,
            replaces: b.native_entry.get(),
            given_up,
            template: None,
        })
    }

    /// The function just translated, taken out of the context; a function returned to
    /// [`Self::recycle`] takes its place, so the next translation builds into storage that has
    /// grown already. (A fresh function grows each of its tables as instructions are added:
    /// on tests/soma/04_dict.soma with synchronous compiles, the translations took 39.7 M
    /// instructions from fresh functions and 37.3 M from recycled ones.)
    fn take_translated(&mut self) -> ir::Function {
        let spare = self.spare_funcs.pop().unwrap_or_else(ir::Function::new);
        std::mem::replace(&mut self.ctx.func, spare)
    }

    /// Keep `func` (done with: installed, or its result thrown away) for a later translation.
    fn recycle(&mut self, mut func: ir::Function) {
        if self.spare_funcs.len() < SPARE_FUNCTIONS {
            func.clear();
            self.spare_funcs.push(func);
        }
    }

    /// The module compiled code goes into, made on first use. Its memory comes from the
    /// process's code memory (`code_memory.rs`): functions packed into chunks that later VMs
    /// use again, rather than a page of its own per function and a reservation per VM (with
    /// the perf map on, none again: the map's addresses stay true).
    fn module(&mut self) -> &mut JITModule {
        let isa = &self.isa;
        let perf_map = self.config.perf_map;
        self.module.get_or_insert_with(|| {
            let mut builder = JITBuilder::with_isa(isa.clone(), default_libcall_names());
            builder.memory_provider(Box::new(crate::code_memory::CodeMemory::with_unique_addresses(perf_map)));
            JITModule::new(builder)
        })
    }

    /// The quiet trampoline to `jit_poll_ahead` in this JIT's module (its function index),
    /// declared on first use (its bytes are defined by the next install); `None` if it could
    /// not be made (then chained loops' poll regions leave as elsewhere).
    fn quiet_poll_ahead(&mut self) -> Option<u32> {
        if self.quiet_poll_ahead == QuietCall::NotLooked {
            self.quiet_poll_ahead = match crate::quiet_calls::declare_poll_ahead(self.module()) {
                Ok(index) => QuietCall::Declared(index),
                Err(why) => {
                    if self.config.dump.stats {
                        self.dump(format!("jit: no quiet call for early polls: {why}"));
                    }
                    QuietCall::Unavailable
                }
            };
        }
        match self.quiet_poll_ahead {
            QuietCall::Declared(index) | QuietCall::Defined(index) => Some(index),
            QuietCall::NotLooked | QuietCall::Unavailable => None,
        }
    }

    /// Give the trampoline declared for a translation its bytes, before the code that calls
    /// it is finalized (the first install after the declaration does it).
    fn define_quiet_calls(&mut self) -> Result<(), String> {
        let QuietCall::Declared(index) = self.quiet_poll_ahead else { return Ok(()) };
        match crate::quiet_calls::define_poll_ahead(self.module(), index) {
            Ok(()) => {
                self.quiet_poll_ahead = QuietCall::Defined(index);
                Ok(())
            }
            Err(why) => {
                // Later translations do without it; code already translated with it fails
                // to install and stays interpreted.
                self.quiet_poll_ahead = QuietCall::Unavailable;
                Err(format!("no quiet call for early polls: {why}"))
            }
        }
    }

    /// Put generated code into the module and give the Block its native entry. `func` is the
    /// function the code was generated from; `generate` the code generation's time.
    fn install(
        &mut self,
        vm: &mut Vm,
        t: Translation,
        imports: Imports,
        code: &MachineCode,
        generate: Duration,
        queue_wait: Option<Duration>,
    ) -> Result<NativeEntry, String> {
        self.define_quiet_calls()?;
        let label = (self.config.perf_map || self.config.dump.stats).then(|| describe_block(vm, t.block));
        // With the perf map on, the function's linkage name is its perf-map name too:
        // cranelift-jit writes its own line per function under `perf record` (which sets
        // PERF_BUILDID_DIR), and the two lines for one address then agree, where its line
        // named the function `soma_m0_c92_block_489_1_17` beside ours.
        let perf_map = self.config.perf_map;
        let module = self.module();
        let perf_name = label.as_ref().filter(|_| perf_map).map(|l| {
            let name = format!("soma:{l}{}", if t.tier == 2 { "/opt" } else { "" });
            // A recompile of the same Block at the same tier, in the same module.
            if module.get_name(&name).is_some() { format!("{name}#{}", t.symbol) } else { name }
        });
        let id = module
            .declare_function(perf_name.as_deref().unwrap_or(&t.symbol), Linkage::Local, imports.signature)
            .map_err(|e| e.to_string())?;
        let (bytes, relocs) = link_vm_consts(code, imports.names, id, &t.data.vm_consts)?;
        let (alignment, bytes, relocs, pad) = crate::loop_align::pad_entry(code.alignment, code.loop_head, bytes, relocs);
        module
            .define_function_bytes(id, alignment, &bytes, &relocs)
            .map_err(|e| format!("{e:?}"))?;
        module.finalize_definitions().map_err(|e| e.to_string())?;
        let mut t = t;
        if let Some(template) = t.template.take() {
            crate::replay::keep(*template, code);
        }
        // The entry is past the padding that aligns the loop.
        let ptr = module.get_finalized_function(id).wrapping_add(pad);
        t.data.self_entry.set(ptr as u64);
        let size = code.bytes.len();
        self.stats.aligned_loops += code.loop_head.is_some() as u64;
        if self.config.dump.asm {
            if let Some(vcode) = &code.vcode {
                self.dump(format!("; jit: machine code of {}\n{vcode}", t.name));
            }
        }
        if let Some(name) = &perf_name {
            write_perf_map(ptr as usize, size, name);
        }
        let compile = t.translate + generate;
        let tier = t.tier;
        let stat = BlockStat {
            name: t.name,
            module: t.key.0,
            code: t.key.1,
            instrs: t.instrs,
            compile_us: compile.as_micros() as u64,
            code_size: size,
            background: queue_wait.is_some(),
            tier,
            speculative: t.data.speculative,
            queue_wait_us: queue_wait.map_or(0, |d| d.as_micros() as u64),
        };
        if self.config.dump.stats {
            let wait = match queue_wait {
                Some(w) => format!(", in the background after {} us queued", w.as_micros()),
                None => String::new(),
            };
            let assumed = if t.data.hoisted.is_empty() {
                String::new()
            } else {
                let each: Vec<String> = t.data.hoisted.iter().map(|c| c.describe()).collect();
                format!("\njit:   assumes {}", each.join("; "))
            };
            self.dump(format!(
                "jit: compiled {} = {} ({} instrs, tier {}{}) in {} us, {} bytes{wait}{assumed}",
                stat.name,
                label.as_deref().unwrap_or("?"),
                stat.instrs,
                stat.tier,
                if t.data.speculative { ", speculative" } else { "" },
                stat.compile_us,
                stat.code_size
            ));
        }
        if self.config.code_cache && tier == 2 {
            if let Some(code) = vm.module(t.key.0).and_then(|m| m.module.codes.get(t.key.1 as usize)) {
                code_cache::note_compiled(code, tier);
            }
        }
        self.stats.blocks_compiled += 1;
        self.stats.total_compile_ns += compile.as_nanos() as u64;
        self.stats.total_code_bytes += size as u64;
        self.stats.blocks.push(stat);
        self.stats.inlined += t.data.inlined as u64;
        self.stats.direct_call_sites += t.data.direct_call_sites as u64;
        self.stats.folded_compares += t.data.folded_compares as u64;
        self.stats.child_read_sites += t.data.child_reads as u64;
        self.stats.record_sites += t.data.record_sites as u64;
        self.stats.record_batches += t.data.record_batches as u64;
        self.stats.singleton_tests += t.data.singleton_tests as u64;
        self.stats.sunk_cells += t.data.sunk_cells as u64;
        self.stats.region_reentries += t.data.region_reentries as u64;
        self.stats.bounded_checks += t.data.bounded_checks as u64;
        self.stats.fused_checks += t.data.fused_checks as u64;
        self.stats.nested_choices += t.data.nested_choices as u64;
        self.stats.realized_chains += t.data.realized_chains as u64;
        self.stats.known_chains += t.data.known_chains as u64;
        self.stats.retaken_entries += t.data.retaken_entries as u64;
        self.stats.exit_reserved_slots += t.data.exit_reserved_slots as u64;
        self.stats.known_choices += t.data.known_choices as u64;
        self.stats.partial_flushes += t.data.partial_flushes as u64;
        if tier == 2 {
            self.inlined_in_optimized.extend(t.data.inlined_codes.iter().copied());
            self.stats.optimized += 1;
            self.stats.speculative += t.data.speculative as u64;
            self.stats.unrolled += t.data.unrolled as u64;
            self.stats.leaf_copies += t.data.leaf_copies as u64;
        }
        // Code this replaces stays allocated (frames may still run it); a chained run of it
        // leaves its loop at the next round.
        if let Some((old, _)) = self.current.insert(t.key, (self.code_data.len(), tier)) {
            self.code_data[old].superseded.set(1);
            // Its direct self-calls check their entry: 0 sends them to this code.
            self.code_data[old].self_entry.set(0);
        }
        self.code_data.push(t.data);
        // SAFETY: `ptr` is the finalized code of a function built with `entry_signature`
        // (`extern "C" fn(*mut Vm, u32) -> i32` in the ISA's default call convention, which is
        // the C convention of this host).
        let entry: NativeEntry = unsafe { std::mem::transmute::<*const u8, NativeEntry>(ptr) };
        if let Some(b) = vm.block_obj(t.block) {
            b.native_entry.set(Some(entry));
        }
        Ok(entry)
    }
}

/// `code`'s bytes with the function's VM constants (`translate::vm_const`) and the addresses
/// of the helpers it calls (`translate::HELPER_NAMESPACE`) written in, and the relocations
/// left for the module (the quiet trampolines).
fn link_vm_consts(
    code: &MachineCode,
    names: &[ir::UserExternalName],
    id: cranelift_module::FuncId,
    vm_consts: &[u64],
) -> Result<(Vec<u8>, Vec<ModuleReloc>), String> {
    use cranelift_codegen::binemit::Reloc;
    use cranelift_codegen::FinalizedRelocTarget;
    let mut bytes = code.bytes.clone();
    let mut relocs = Vec::with_capacity(code.relocs.len());
    for r in &code.relocs {
        // What `ModuleReloc::from_mach_reloc` makes, from the names instead of a function;
        // VM constants and helpers' addresses are written into the bytes instead.
        let name = match &r.target {
            FinalizedRelocTarget::ExternalName(ir::ExternalName::User(name)) => {
                let name = names.get(name.as_u32() as usize).ok_or_else(|| format!("no external name {name}"))?;
                // A VM constant, or a helper's address (the code loads it, then calls it).
                let value = match name.namespace {
                    translate::VM_CONST_NAMESPACE => Some(
                        vm_consts
                            .get(name.index as usize)
                            .copied()
                            .ok_or_else(|| format!("VM constant {} not in the translation", name.index))?,
                    ),
                    translate::HELPER_NAMESPACE => Some(
                        crate::helper_table::Helper::ALL
                            .get(name.index as usize)
                            .map(|h| h.entry().addr as u64)
                            .ok_or_else(|| format!("no helper {}", name.index))?,
                    ),
                    _ => None,
                };
                if let Some(value) = value {
                    let at = r.offset as usize;
                    let slot = bytes
                        .get_mut(at..at + 8)
                        .filter(|_| r.kind == Reloc::Abs8)
                        .ok_or_else(|| format!("external {}:{} in a {:?} relocation at {at}", name.namespace, name.index, r.kind))?;
                    slot.copy_from_slice(&(value as i64).wrapping_add(r.addend).to_le_bytes());
                    continue;
                }
                ModuleRelocTarget::user(name.namespace, name.index)
            }
            FinalizedRelocTarget::Func(offset) => ModuleRelocTarget::FunctionOffset(id, *offset),
            FinalizedRelocTarget::ExternalName(ir::ExternalName::LibCall(libcall)) => ModuleRelocTarget::LibCall(*libcall),
            FinalizedRelocTarget::ExternalName(ir::ExternalName::KnownSymbol(ks)) => ModuleRelocTarget::KnownSymbol(*ks),
            FinalizedRelocTarget::ExternalName(other) => return Err(format!("unexpected relocation target {other:?}")),
        };
        relocs.push(ModuleReloc { offset: r.offset, kind: r.kind, name, addend: r.addend });
    }
    Ok((bytes, relocs))
}

/// Why code translated for `t` must not be installed now, if it must not: the Block's code is
/// no longer the code `t` was to replace (compiled meanwhile), or a Store path it speculates on
/// holds another value.
fn stale(vm: &Vm, t: &Translation) -> Option<String> {
    // Entries are compared by address: each installed function has memory of its own.
    let addr = |e: Option<NativeEntry>| e.map(|f| f as usize);
    if vm.block_obj(t.block).is_some_and(|b| addr(b.native_entry.get()) != addr(t.replaces)) {
        return Some("the Block's code changed meanwhile".into());
    }
    t.data.assumptions.iter().find_map(|(path, bits)| {
        let comps: Vec<&str> = path.iter().map(|c| c.as_str()).collect();
        let now = vm.read_store_path(&comps).map(|v| v.to_bits());
        (now != Some(*bits)).then(|| format!("`{}` was rebound", path.join(".")))
    })
}

/// Where a JIT stands with a quiet trampoline (`quiet_calls.rs`): translations use its
/// function index once it is declared; the first install after that defines its bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum QuietCall {
    NotLooked,
    /// It cannot be made (in this process, or its bytes failed to go into the module).
    Unavailable,
    Declared(u32),
    Defined(u32),
}

/// Functions kept for reuse by translations (see [`Jit::take_translated`]): one in the
/// context, the rest in flight or spare.
const SPARE_FUNCTIONS: usize = 4;

/// Executions of a queued Block between two increases of its job's heat.
const WARM_STEP: u64 = 32;

/// Translate `env.block` into `ctx.func`, with less ambition each time a translation bails
/// out: first as configured, then without inlining, then without virtual Registers either
/// (which always succeeds: every instruction has a helper form).
pub(crate) fn translate_with_fallbacks(
    ctx: &mut Context,
    fctx: &mut FunctionBuilderContext,
    env: &mut CodeEnv,
    frontend: cranelift_codegen::isa::TargetFrontendConfig,
) -> Result<(Translated, Vec<&'static str>), String> {
    // Why each abandoned attempt was abandoned (for `SOMA_JIT_DUMP=stats`).
    let mut given_up = Vec::new();
    loop {
        ctx.clear();
        let r = translate::translate(&mut ctx.func, fctx, env, frontend);
        if r.is_err() {
            // The abandoned builder left its SSA state behind (only `finalize` resets it).
            *fctx = FunctionBuilderContext::new();
        }
        let bail = match r {
            Ok(data) => return Ok((data, given_up)),
            Err(bail) => bail,
        };
        let why = bail.why;
        if env.leaf_inline && bail.leaf_copies {
            env.leaf_inline = false;
        } else if env.unroll {
            env.unroll = false;
        } else if env.speculate {
            env.speculate = false;
        } else if env.inline {
            env.inline = false;
        } else if env.virtual_register {
            env.virtual_register = false;
        } else {
            return Err(format!("cannot translate: {why}"));
        }
        given_up.push(why);
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
    // A failure marks the block not compilable; the executor keeps interpreting it.
    with_jit(vm, |jit, vm| jit.tier_up(vm, block));
}

/// Called by baseline code whose Block reached the optimizing tier's threshold
/// (`jit_note_hot`).
fn note_hot(vm: &mut Vm, block: Value) {
    with_jit(vm, |jit, vm| jit.optimize(vm, block));
}

/// The install hook the VM calls at safepoints while background compiles are in flight.
fn install_ready(vm: &mut Vm) {
    with_jit(vm, |jit, vm| jit.install_ready(vm, false));
}

/// Count a deoptimisation exit of `block` at instruction `pc` (called by the `jit_resume`
/// helper, a rare path; `inlined` when the exit was taken inside a body inlined into the
/// Block). After [`DEOPTS_BEFORE_RECOMPILE`] of them the Block is recompiled: its guards then
/// see the Store as it is now (a rebound `+` becomes a plain call); when the exits were
/// Register write-throughs the new code keeps the Register in heap cells, and when they came
/// from inlined bodies it inlines nothing. The running code finishes through its exit; it
/// stays allocated until the VM is dropped.
///
/// Deopts of speculative code also teach the type feedback, from the innermost level's
/// instruction `(site_block, site_pc)`: the recompile of a Block whose deopts taught something
/// speculates again, with the feedback.
fn note_early_poll(vm: &mut Vm) {
    with_jit(vm, |jit, vm| {
        jit.stats.early_polls += 1;
        // Inlined bodies have no frame: the innermost is the polling code's own.
        if let Some(block) = vm.current_block() {
            jit.count_poll(vm, block);
        }
    });
}

fn note_deopt(vm: &mut Vm, event: crate::helpers::DeoptEvent) {
    let crate::helpers::DeoptEvent { block, pc, site: (site_block, site_pc), inlined, reason, detail } = event;
    with_jit(vm, |jit, vm| {
        if reason.is_routine() {
            jit.stats.poll_exits += 1;
            jit.consider_unrolling(vm, block);
            return;
        }
        jit.stats.deopts += 1;
        jit.stats.deopt_reasons[reason as usize] += 1;
        let Some(b) = vm.block_obj(block) else { return };
        let key = (b.module, b.code);
        let code = jit.current.get(&key).map(|&(i, _)| &jit.code_data[i]);
        let speculative = code.is_some_and(|c| c.speculative);
        if let Some(code) = code.filter(|c| c.speculative) {
            let learnt = match (reason, detail) {
                // The small-Int check of hoisted cell `detail - 1` failed at entry (or when
                // validating again after a call).
                (DeoptReason::EntryCheck | DeoptReason::StoreChangedByCall, d) if d > 0 => {
                    let path = code.hoisted.get(d - 1).map(|c| c.comps.clone());
                    path.is_some_and(|p| jit.feedback.widen_path(p))
                }
                _ => jit.feedback.learn(vm, site_block, site_pc, reason),
            };
            if learnt {
                jit.learnt.insert(key);
            }
        }
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
        let without = if speculative && jit.learnt.remove(&key) {
            // The wider types where the deopts were: speculating again, with the feedback.
            jit.stats.respecialized += 1;
            "the speculation the feedback widened"
        } else if speculative {
            // The wider types everywhere: speculation off, inlining and virtual Registers kept.
            jit.no_speculate.insert(key);
            "speculation"
        } else if inlined {
            jit.no_inline.insert(key);
            "inlining"
        } else if at_set_reg {
            jit.no_virtual_register.insert(key);
            "virtual Registers"
        } else {
            "any change (the Store as it is now)"
        };
        if jit.config.dump.stats {
            let name = describe_block(vm, block);
            jit.dump(format!(
                "jit: recompiling {name} after {DEOPTS_BEFORE_RECOMPILE} deopts (the last at instruction {pc}: {}), without {without}",
                reason.name()
            ));
        }
        b.native_entry.set(None);
        jit.stats.recompiles += 1;
        // Same tier as the code it replaces. A failure leaves the Block interpreted (and
        // marked), as at tier-up. With the compile thread, the Block runs interpreted until
        // the new code is installed: a recompile (optimized code, often) never stalls the
        // main thread.
        let tier = jit.current.get(&key).map_or(1, |&(_, tier)| tier);
        if jit.config.background != Background::Off && jit.worker_ready() {
            jit.queue(vm, block, tier);
        } else {
            let _ = jit.compile_now(vm, block, tier);
        }
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
        revalidated: jit.revalidated.get(),
        loops_moved: jit.code_data.iter().filter(|d| d.superseded.get() == 2).count() as u64,
        calls_moved: jit.code_data.iter().filter(|d| d.superseded.get() == 3).count() as u64,
        ..jit.stats.clone()
    })
}

/// Wait for every background compile in flight and install what is still valid (tests,
/// benchmarks; a program never needs to: code is installed at safepoints as it is ready).
pub fn wait_for_background(vm: &mut Vm) {
    with_jit(vm, |jit, vm| jit.install_ready(vm, true));
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
    let threshold = with_jit(vm, |jit, vm| {
        jit.tier_up_known(vm, module);
        jit.config.threshold
    })
    .flatten();
    let compiled = match (program, threshold) {
        (Some(program), Some(0)) => with_jit(vm, |jit, vm| jit.compile(vm, program)).and_then(Result::ok),
        _ => None,
    };
    let r = match compiled {
        Some(entry) => soma_runtime::exec::run_program(vm, module, Some(entry)),
        None => soma_runtime::exec::run_module(vm, module),
    };
    with_jit(vm, |jit, vm| jit.note_warm_codes(vm));
    r
}
