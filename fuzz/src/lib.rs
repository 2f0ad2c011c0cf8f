//! Shared harness of the SOMA fuzz targets (docs/fuzzing.md).
//!
//! The `jit` and `execute` targets run a decoded module twice, each time on a fresh VM:
//!
//! 1. **Reference run**: the native reference executor (`soma_runtime::exec`), no JIT, under
//!    deterministic limits that make every input terminate quickly:
//!    * a *step budget* of [`STEP_BUDGET`] block executions (the runtime's own limit,
//!      `Vm::begin_budget`; docs/semantics.md "Limits"): the block entry past it fails with
//!      the `Step limit exceeded` LimitError. (Infinite loops need unboundedly many block
//!      entries: `chain` only repeats while the AL top is executable, and no builtin leaves
//!      one there without running a Block.) The JIT run has the same budget, and every tier
//!      counts steps identically, so a run the budget stops is compared in full: the limit
//!      trips inside compiled loops, inlined bodies and helpers, at the same statement.
//!    * a *size guard* on the two operations that grow values geometrically: `*` and
//!      `concat` are rebound to host builtins that refuse results over [`MAX_INT_BITS`] bits
//!      or [`MAX_STR_BYTES`] bytes, and otherwise call the real builtin.
//! 2. **JIT run**: only when the size guard did not fire, the same module on a VM with the
//!    JIT installed and the *real* builtins, so that the JIT's inline arithmetic, `chain` loop
//!    and guards are what runs. Blocks are compiled before the run
//!    (threshold 0, every Block compiled with `soma_jit::compile_block`, by the baseline tier
//!    or by the optimizing tier's speculative lowering) or tiered up during it (threshold 1 or
//!    2: deoptimisation and mixed interpreted/compiled frames).
//!
//! The two [`Outcome`]s (AL rendering, error class/message/position, printed lines, frame and
//! shadow-stack depth afterwards) must be equal; any difference panics (a crash for libFuzzer).
//! When a guard fired, every Block is still compiled (the JIT must accept every module the
//! decoder accepts) but not run.
//!
//! Both VMs get the same deterministic environment: `readLine` sees end of input, `print`
//! is captured, and `debug.id` / `debug.al.dump` (which show heap addresses, different in two
//! VMs) are rebound to Nil.

use soma_runtime::builtins::BuiltinId;
use soma_runtime::decode::Module;
use soma_runtime::error::SomaError;
use soma_runtime::ffi::{SOMA_ERROR, SOMA_OK};
use soma_runtime::vm::HostIo;
use soma_runtime::{Value, Vm};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Depth limit of both runs.
pub const MAX_DEPTH: usize = 24;
/// Block executions both runs may make (the runtime's step budget).
pub const STEP_BUDGET: u64 = 2_000;
/// Largest Int product the reference run computes.
pub const MAX_INT_BITS: u64 = 1 << 16;
/// Longest string `concat` builds in the reference run.
pub const MAX_STR_BYTES: usize = 1 << 16;
/// Printed lines kept (the rest are counted).
const MAX_LINES: usize = 10_000;

const HOST_MUL: u32 = 1;
const HOST_CONCAT: u32 = 2;

thread_local! {
    static TRIPPED: Cell<Option<&'static str>> = const { Cell::new(None) };
}

fn trip(why: &'static str) {
    TRIPPED.with(|t| {
        if t.get().is_none() {
            t.set(Some(why));
        }
    });
}

/// `print` goes to a shared buffer; `readLine` always sees end of input.
struct CaptureIo(Rc<RefCell<Vec<String>>>);

impl HostIo for CaptureIo {
    fn write_line(&mut self, line: &str) {
        let mut v = self.0.borrow_mut();
        if v.len() < MAX_LINES {
            v.push(line.to_string());
        }
    }
    fn read_line(&mut self) -> Option<String> {
        None
    }
}

/// Everything observable about a finished run.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub al: Vec<String>,
    /// Class name, message, line, col.
    pub error: Option<(String, String, u32, u32)>,
    pub printed: Vec<String>,
    pub depth: usize,
    pub shadow_depth: usize,
}

/// A VM with the environment both runs share.
fn fresh_vm() -> (Box<Vm>, Rc<RefCell<Vec<String>>>) {
    let mut vm = Vm::new();
    let out = Rc::new(RefCell::new(Vec::new()));
    vm.set_io(Box::new(CaptureIo(out.clone())));
    vm.set_max_depth(MAX_DEPTH);
    vm.write_store_path(&["debug", "id"], Value::NIL);
    vm.write_store_path(&["debug", "al", "dump"], Value::NIL);
    vm.begin_budget(Some(STEP_BUDGET), None);
    (vm, out)
}

fn int_bits(v: Value) -> Option<u64> {
    soma_runtime::int::to_bigint(v).map(|b| b.bits())
}

/// Host builtins of the reference run: the size-guarded `*` and `concat`.
unsafe extern "C" fn guarded_builtin(_user: *mut std::ffi::c_void, vm: *mut Vm, id: u32) -> i32 {
    // SAFETY: called by the VM with itself, live and boxed.
    let vm = unsafe { &mut *vm };
    let al = vm.al();
    let (real, too_big) = match id {
        HOST_MUL => {
            let big = match al {
                [.., a, b] => match (int_bits(*a), int_bits(*b)) {
                    (Some(x), Some(y)) => x + y > MAX_INT_BITS,
                    _ => false,
                },
                _ => false,
            };
            (BuiltinId::Mul, big)
        }
        HOST_CONCAT => {
            let big = match al {
                [.., a, b] => match (a.as_str(), b.as_str()) {
                    (Some(x), Some(y)) => x.len() + y.len() > MAX_STR_BYTES,
                    _ => false,
                },
                _ => false,
            };
            (BuiltinId::Concat, big)
        }
        _ => unreachable!("unknown host builtin {id}"),
    };
    if too_big {
        trip("size guard");
        vm.set_error(SomaError::runtime("fuzz harness: value size guard"));
        return SOMA_ERROR;
    }
    match vm.call_builtin(real) {
        Ok(()) => SOMA_OK,
        Err(e) => {
            vm.set_error(e);
            SOMA_ERROR
        }
    }
}

fn outcome(vm: &mut Vm, r: Result<(), SomaError>, out: &Rc<RefCell<Vec<String>>>) -> Outcome {
    // Every error must leave the VM consistent: collect now (a dangling root or a stale
    // frame shows up as a crash here or in the next run).
    vm.collect();
    Outcome {
        al: vm.al().iter().map(|&v| soma_runtime::render::al_form(v)).collect(),
        error: r
            .err()
            .map(|e| (e.class.name().to_string(), e.message, e.line, e.col)),
        printed: out.borrow().clone(),
        depth: vm.depth(),
        shadow_depth: vm.shadow_depth(),
    }
}

/// The reference run. `None` when a guard fired (the outcome is then not comparable).
pub fn reference_run(module: &Module) -> Option<Outcome> {
    TRIPPED.with(|t| t.set(None));
    let (mut vm, out) = fresh_vm();
    vm.set_host_call(Some(guarded_builtin), std::ptr::null_mut());
    vm.define_host_builtin("*", HOST_MUL);
    vm.define_host_builtin("concat", HOST_CONCAT);
    let id = vm.load_module(module.clone());
    let r = soma_runtime::exec::run_module(&mut vm, id);
    let o = outcome(&mut vm, r, &out);
    if TRIPPED.with(|t| t.get()).is_some() {
        None
    } else {
        Some(o)
    }
}

/// How the JIT run compiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JitMode {
    /// Threshold 0 and every Block compiled before the run.
    Precompile,
    /// The same, by the optimizing tier: speculative code wherever a Block can speculate
    /// (docs/jit.md, "Speculative code"), and its deoptimisation exits.
    Optimized,
    /// Tier-up after this many interpreted executions.
    Threshold(u64),
}

impl JitMode {
    pub fn from_byte(b: u8) -> JitMode {
        match b % 4 {
            0 => JitMode::Precompile,
            1 => JitMode::Optimized,
            2 => JitMode::Threshold(1),
            _ => JitMode::Threshold(2),
        }
    }
}

/// The JIT run: compile (as `mode` says) and, when `run`, execute.
pub fn jit_run(module: &Module, mode: JitMode, run: bool) -> Option<Outcome> {
    let (mut vm, out) = fresh_vm();
    let threshold = match mode {
        JitMode::Precompile | JitMode::Optimized => 0,
        JitMode::Threshold(t) => t,
    };
    let config = soma_jit::JitConfig {
        threshold: Some(threshold),
        verify: true,
        // Tier-up through the compile thread, installed at deterministic points (the next
        // safepoint), so a crash reproduces.
        background: soma_jit::Background::Lockstep,
        opt_threshold: match mode {
            JitMode::Optimized => Some(0),
            _ => soma_jit::JitConfig::default().opt_threshold,
        },
        ..Default::default()
    };
    soma_jit::install_with(&mut vm, config).expect("JIT installs on the host ISA");
    let id = vm.load_module(module.clone());
    if matches!(mode, JitMode::Precompile | JitMode::Optimized) || !run {
        let blocks = vm.module(id).expect("just loaded").blocks.clone();
        for (code, &b) in blocks.iter().enumerate() {
            if let Err(e) = soma_jit::compile_block(&mut vm, b) {
                panic!("JIT rejected code {code} of a module the decoder accepted: {e}\n{module:#?}");
            }
        }
    }
    if !run {
        return None;
    }
    let r = soma_jit::run_module(&mut vm, id);
    let stats = soma_jit::stats(&mut vm).expect("installed");
    assert_eq!(
        stats.compile_failures, 0,
        "JIT failed to compile a block during tier-up (run with SOMA_JIT_DUMP=stats)"
    );
    Some(outcome(&mut vm, r, &out))
}

thread_local! {
    /// Inputs compared (finished or not), compared after the step budget stopped them,
    /// compile-only after the size guard.
    static COUNTS: Cell<[u64; 3]> = const { Cell::new([0; 3]) };
}

/// With `SOMA_FUZZ_STATS=1`, print how many inputs were compared and how many were
/// compile-only (every 10 000 inputs), to check that the guards do not starve the run path.
fn count(kind: usize) {
    let c = COUNTS.with(|c| {
        let mut v = c.get();
        v[kind] += 1;
        c.set(v);
        v
    });
    let total: u64 = c.iter().sum();
    if total % 10_000 == 0 && std::env::var_os("SOMA_FUZZ_STATS").is_some() {
        eprintln!(
            "soma-fuzz: {total} modules: {} run on both tiers and compared ({} of them stopped by the step budget), {} compile-only (size guard)",
            c[0] + c[1], c[1], c[2]
        );
    }
}

/// Reference run, then the JIT run, and compare.
pub fn differential(module: &Module, mode: JitMode) {
    let reference = reference_run(module);
    let stopped = |o: &Outcome| o.error.as_ref().is_some_and(|e| e.0 == "LimitError");
    count(match &reference {
        Some(o) if stopped(o) => 1,
        Some(_) => 0,
        None => 2,
    });
    match reference {
        Some(expected) => {
            let got = jit_run(module, mode, true).expect("ran");
            if got != expected {
                panic!(
                    "executor and JIT ({mode:?}) disagree\nexecutor: {expected:#?}\njit:      {got:#?}\nmodule: {module:#?}"
                );
            }
        }
        None => {
            jit_run(module, JitMode::Precompile, false);
        }
    }
}

pub mod gen;

/// Define `__asan_default_options` in a fuzz target binary (a no-op without ASan).
///
/// ASan's default `detect_stack_use_after_return=1` moves locals to heap-allocated "fake
/// stack" frames. The runtime's native-stack guard (`exec::stack_is_low`) takes the address of
/// a local as the stack pointer, so under fake stacks it sees a pointer outside the thread's
/// stack and reports spurious "recursion too deep" errors from compiled code (the first thing
/// the `jit` target found). Turning fake stacks off keeps the guard meaningful; every other
/// ASan check stays on. `ASAN_OPTIONS` set in the environment still overrides this.
#[macro_export]
macro_rules! asan_options {
    () => {
        #[no_mangle]
        pub extern "C" fn __asan_default_options() -> *const std::os::raw::c_char {
            c"detect_stack_use_after_return=0".as_ptr()
        }
    };
}
