//! Differential harness: run the same source on the reference executor and under the JIT,
//! with captured I/O, and compare AL, output and error.
#![allow(dead_code)]

use soma_jit::{Background, JitConfig};
use soma_runtime::decode::Module;
use soma_runtime::encode::assemble;
use soma_runtime::render::al_form;
use soma_runtime::vm::HostIo;
use soma_runtime::Vm;
use std::cell::RefCell;
use std::rc::Rc;

pub const STDLIB: &[u8] = include_bytes!("../../../../benches/bytecode/stdlib.bc");

/// Every test case of tests/soma that compiles, as bytecode (`fixtures/make_corpus.py` writes
/// the file: per case a u16 name length, the name, a u8 uses-stdlib flag, a u32 module length
/// and the module; little-endian).
const CORPUS: &[u8] = include_bytes!("../fixtures/corpus.bin");

pub struct CorpusCase {
    pub name: String,
    pub stdlib: bool,
    pub module: Vec<u8>,
}

pub fn corpus_cases() -> Vec<CorpusCase> {
    cases_from(CORPUS)
}

/// Cases in the corpus file format (above).
pub fn cases_from(bytes: &[u8]) -> Vec<CorpusCase> {
    let mut out = Vec::new();
    let mut p = 0;
    let take = |p: &mut usize, n: usize| {
        let s = &bytes[*p..*p + n];
        *p += n;
        s
    };
    while p < bytes.len() {
        let n = u16::from_le_bytes(take(&mut p, 2).try_into().unwrap()) as usize;
        let name = String::from_utf8(take(&mut p, n).to_vec()).unwrap();
        let stdlib = take(&mut p, 1)[0] == 1;
        let len = u32::from_le_bytes(take(&mut p, 4).try_into().unwrap()) as usize;
        let module = take(&mut p, len).to_vec();
        out.push(CorpusCase { name, stdlib, module });
    }
    out
}

#[derive(Clone, Default)]
pub struct Capture {
    pub out: Rc<RefCell<Vec<String>>>,
}

impl HostIo for Capture {
    fn write_line(&mut self, line: &str) {
        self.out.borrow_mut().push(line.to_string());
    }
    fn read_line(&mut self) -> Option<String> {
        None
    }
}

/// Everything observable about a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub al: String,
    pub out: Vec<String>,
    /// (class, message, line, col)
    pub err: Option<(String, String, u32, u32)>,
    /// The source name of the module the error was positioned in (`Vm::take_error_source`).
    pub err_source: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    Executor,
    /// JIT with this threshold.
    Jit(u64),
    /// JIT with this threshold and this optimizing-tier threshold (0: everything optimized).
    Optimizing(u64, u64),
    /// Everything optimized at once without leaf copies, so that direct recursion is unrolled
    /// instead (the translation leaf copies fall back to; docs/jit.md, "Leaf copies").
    Unrolled,
}

/// All optimized at once, so that loop Blocks are speculative from their first run.
pub const ALL_OPTIMIZED: Tier = Tier::Optimizing(0, 0);

/// The largest small Int.
pub const SMALL_INT_MAX: i64 = (1 << 47) - 1;

/// Run `src` (with the stdlib) all-optimized: its AL is `al`, the executor and every other
/// tier agree. Returns the all-optimized run's statistics.
pub fn run_all_optimized(src: &str, al: &str) -> soma_jit::statistics::JitStats {
    let (reference, _) = run_on(Tier::Executor, src, true);
    let (o, mut r) = run_on(ALL_OPTIMIZED, src, true);
    assert_eq!(o, reference, "source:\n{src}");
    assert_eq!(o.al, al, "source:\n{src}");
    diff(src, true);
    soma_jit::stats(&mut r.vm).unwrap()
}

pub struct Runner {
    pub vm: Box<Vm>,
    pub io: Capture,
    pub tier: Tier,
}

impl Runner {
    pub fn new(tier: Tier) -> Runner {
        let mut vm = Vm::new();
        let io = Capture::default();
        vm.set_io(Box::new(io.clone()));
        let jit = match tier {
            Tier::Executor => None,
            Tier::Jit(t) => Some((t, None)),
            Tier::Optimizing(t, opt) => Some((t, Some(opt))),
            Tier::Unrolled => Some((0, Some(0))),
        };
        if let Some((t, opt)) = jit {
            let config = JitConfig {
                threshold: Some(t),
                verify: true,
                // Exercise the native-time accounting on one of the two JIT runs.
                time_native: t == 1,
                // Above 0, tier-up runs the background path (compile thread, install at the
                // next safepoint) with deterministic install points.
                background: Background::Lockstep,
                opt_threshold: opt,
                // Tiers and counts some tests assert must not depend on what other tests of
                // the process compiled (tests/code_cache.rs tests this).
                early_tier_up: false,
                leaf_inline: !matches!(tier, Tier::Unrolled),
                ..JitConfig::default()
            };
            soma_jit::install_with(&mut vm, config).expect("JIT installs");
        }
        Runner { vm, io, tier }
    }

    /// A VM with the JIT installed with `config`: for tests that need settings no tier names.
    pub fn with_config(config: JitConfig) -> Runner {
        let mut r = Runner::new(Tier::Executor);
        let threshold = config.threshold.unwrap_or(0);
        soma_jit::install_with(&mut r.vm, config).expect("JIT installs");
        r.tier = Tier::Jit(threshold);
        r
    }

    pub fn run_module(&mut self, m: Module) -> Result<(), soma_runtime::SomaError> {
        let id = self.vm.load_module(m);
        self.run_id(id)
    }

    pub fn run_id(&mut self, id: u32) -> Result<(), soma_runtime::SomaError> {
        match self.tier {
            Tier::Executor => soma_runtime::exec::run_module(&mut self.vm, id),
            Tier::Jit(_) | Tier::Optimizing(..) | Tier::Unrolled => soma_jit::run_module(&mut self.vm, id),
        }
    }

    pub fn load_stdlib(&mut self) {
        let id = self.vm.load_module_bytes(STDLIB).expect("stdlib decodes");
        self.run_id(id).expect("stdlib runs");
    }

    pub fn run_src(&mut self, src: &str) -> Result<(), soma_runtime::SomaError> {
        self.run_module(assemble(src).unwrap_or_else(|e| panic!("assemble {src:?}: {e}")))
    }

    pub fn outcome(&mut self, r: Result<(), soma_runtime::SomaError>) -> Outcome {
        let err_source = if r.is_err() { self.vm.take_error_source() } else { None };
        let items: Vec<String> = self.vm.al().iter().map(|&v| al_form(v)).collect();
        Outcome {
            al: format!("[{}]", items.join(", ")),
            out: self.io.out.borrow().clone(),
            err: r
                .err()
                .map(|e| (e.class.name().to_string(), e.message.clone(), e.line, e.col)),
            err_source,
        }
    }
}

/// Run `src` (after the stdlib if `stdlib`) under `tier`.
pub fn run_on(tier: Tier, src: &str, stdlib: bool) -> (Outcome, Runner) {
    let mut r = Runner::new(tier);
    if stdlib {
        r.load_stdlib();
    }
    let res = r.run_src(src);
    let o = r.outcome(res);
    (o, r)
}

/// Run under the executor and the JIT (threshold 0 and 1, the optimizing tier only, and
/// baseline code optimized after 2 runs) and assert equal outcomes. Returns the reference
/// outcome.
pub fn diff(src: &str, stdlib: bool) -> Outcome {
    let (reference, _) = run_on(Tier::Executor, src, stdlib);
    for tier in [Tier::Jit(0), Tier::Jit(1), Tier::Optimizing(0, 0), Tier::Optimizing(1, 2), Tier::Unrolled] {
        let t = match tier {
            Tier::Jit(t) | Tier::Optimizing(t, _) => t,
            Tier::Unrolled => 0,
            Tier::Executor => unreachable!(),
        };
        let (jit, mut r) = run_on(tier, src, stdlib);
        assert_eq!(jit, reference, "{tier:?}, source:\n{src}");
        assert_eq!(r.vm.shadow_depth(), 0, "shadow slots leaked, source:\n{src}");
        assert_eq!(r.vm.depth(), 0, "frames leaked, source:\n{src}");
        if t == 0 {
            let stats = soma_jit::stats(&mut r.vm).expect("installed");
            assert_eq!(stats.compile_failures, 0, "{stats:?}");
            assert!(stats.blocks_compiled >= 1, "the program itself is compiled at threshold 0");
            if let Tier::Optimizing(_, 0) | Tier::Unrolled = tier {
                assert_eq!(stats.optimized, stats.blocks_compiled, "all optimized: {stats:?}");
            }
        }
    }
    reference
}

/// Run `case` under `tier`: the stdlib's definitions first when the case uses it (on the
/// executor in both tiers: its words tier up when the case uses them), then the case's module.
/// Returns the outcome, the Runner (its VM holds the compiled code and the counters) and the
/// ids of the stdlib module (when loaded) and of the case's module.
pub fn run_case(tier: Tier, case: &CorpusCase) -> (Outcome, Runner, Option<u32>, u32) {
    let mut r = Runner::new(tier);
    let stdlib = case.stdlib.then(|| {
        let id = r.vm.load_module_bytes(STDLIB).expect("stdlib decodes");
        soma_runtime::exec::run_module(&mut r.vm, id).expect("stdlib runs");
        id
    });
    let module = soma_runtime::decode::decode_module(&case.module)
        .unwrap_or_else(|e| panic!("{}: bytecode does not decode: {e}", case.name));
    let id = r.vm.load_module(module);
    let res = r.run_id(id);
    let o = r.outcome(res);
    (o, r, stdlib, id)
}

/// What a finished run left behind that it should not have: block frames or shadow slots.
pub fn leftovers(vm: &Vm) -> Option<String> {
    match (vm.depth(), vm.shadow_depth()) {
        (0, 0) => None,
        (frames, slots) => Some(format!("{frames} frames and {slots} shadow slots left behind")),
    }
}

/// Run `f` on a thread with a 1 GiB stack (deep recursion in compiled code needs native
/// stack; the executor's does not). See `on_stack`.
pub fn on_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    on_stack(1 << 30, f)
}

/// Run `f` on a thread with a `bytes` stack. Where thread creation is refused with `EAGAIN`
/// (under qemu-user, where threads hang, scripts/aarch64.sh makes it so) `f` runs on the
/// calling thread instead, which must be a main thread whose stack limit (`ulimit -s`, which
/// sizes it) is exactly `bytes`: the script sets it. Otherwise this panics, so that a test about
/// a stack size never passes on another size.
pub fn on_stack<T: Send + 'static>(bytes: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    // The closure is parked here so it is still ours to run when the spawn is refused.
    let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(f)));
    let theirs = std::sync::Arc::clone(&slot);
    let spawned = std::thread::Builder::new().stack_size(bytes).spawn(move || {
        let f = theirs.lock().unwrap().take().expect("runs once");
        f()
    });
    match spawned {
        Ok(handle) => handle.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            let limit = main_stack_limit();
            assert_eq!(
                limit,
                Some(bytes as u64),
                "no thread can start here, and this main thread's stack limit is not {bytes} bytes: \
                 run this test alone with a stack rlimit of {} KiB",
                bytes / 1024
            );
            let f = slot.lock().unwrap().take().expect("runs once");
            f()
        }
        Err(e) => panic!("cannot start a thread: {e}"),
    }
}

/// The soft `RLIMIT_STACK` (what sizes the main thread's stack), if finite.
fn main_stack_limit() -> Option<u64> {
    let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes only the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut rl) } == 0;
    (ok && rl.rlim_cur != libc::RLIM_INFINITY).then_some(rl.rlim_cur as u64)
}
