//! Code generation off the main thread: the compile queue and its worker.
//!
//! Tier-up is split in three steps (docs/jit.md, "Background compilation"):
//!
//! 1. **Translate** (main thread, at a safepoint): `translate/` reads what it needs of the VM
//!    (the Code, the Store values guarded sites specialise on, inlined Codes) and builds an
//!    `ir::Function`. That is the only step that looks at VM state.
//! 2. **Generate** (worker thread): Cranelift turns the function into machine code, about
//!    1 µs per CLIF instruction, the bulk of a compile. [`generate`] is the one code path for
//!    this, used by the worker and by synchronous compiles alike.
//! 3. **Install** (main thread, at the next safepoint after the code is ready): the bytes go
//!    into the `JITModule` and the Block gets its native entry (`compiler.rs`).
//!
//! # What crosses between the threads, and why it is safe
//! * To the worker: a [`Job`]: its owner (one per JIT, so one per VM), a job number, its heat,
//!   the `ir::Function` (plain owned data), its tier's target ISA (`Arc<dyn TargetIsa>`,
//!   immutable and `Sync`) and the sending end of its owner's result channel. The process's
//!   addresses (helpers) are immediates in the IR, the VM's (cache lines, paths, constants)
//!   VM constants, relocations the install fills in (`translate::vm_const`); the worker never
//!   dereferences either. No `Value`, cell, Block or other collectable memory is reachable
//!   from a job, so the collector and the worker never meet.
//! * Back to the owner: a [`Done`]: the job number, the function (moved back: its external
//!   names resolve relocations) and the machine code or the error, with timings. Only the
//!   owner's thread receives it, at its safepoints.
//! * The quiet trampolines' machine code (`quiet_calls.rs`): the worker generates it as it
//!   starts, into a process-wide `OnceLock`; after that it is immutable bytes that any JIT's
//!   install copies into its module (a thread that asks while the worker is still generating
//!   waits for it). No VM state is involved: the helper it calls is the process's.
//! * The process's code cache (`code_cache.rs`): the worker puts the code it generated there,
//!   with a copy of the function as translated; main threads look it up before queueing. An
//!   entry is owned data under the cache's own lock.
//! * The queue is a `Mutex` + `Condvar` (jobs, heat updates, an owner's jobs withdrawn).
//! * The owner's *signal*, an `Arc<AtomicUsize>` its VM loads at every safepoint instead of
//!   calling the install hook: in the background mode the worker adds 1 *before* it sends a
//!   result, and the owner takes 1 off per result received, so the count never underflows
//!   and is nonzero whenever a result may be waiting; in lockstep mode the owner adds 1 per
//!   job it submits (it must wait for each at the next safepoint). Only a count crosses.
//!
//! Everything the compiled code will point at (cache lines, exit descriptions) stays with the
//! main thread in `compiler.rs` until the code is installed or dropped.
//!
//! # Life cycle
//! One compile thread serves every VM of the process (as HotSpot's compiler threads serve
//! every method): a program that makes many short-lived VMs (`soma test` makes one per test)
//! does not start a thread for each. It starts on the first background compile (a process
//! that never tiers up, or runs at `SOMA_JIT_THRESHOLD=0`, which compiles synchronously, has
//! none) and lives as long as the process, waiting on the queue when it is empty. When a JIT
//! is dropped with its VM, its queued jobs are withdrawn; a job of it in progress finishes and
//! its result is thrown away (the channel is closed). A panic inside Cranelift is caught on
//! the worker and reported as that job's error: the Block stays interpreted.

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir;
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_codegen::Context;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

pub use crate::code_cache::MachineCode;

/// Run Cranelift's code generation on `ctx.func`.
pub fn generate(ctx: &mut Context, isa: &dyn TargetIsa, disasm: bool) -> Result<MachineCode, String> {
    ctx.set_disasm(disasm);
    crate::cold::spread_coldness(&mut ctx.func);
    crate::cold::sink_into_cold(&mut ctx.func);
    let compiled = ctx
        .compile(isa, &mut ControlPlane::default())
        .map_err(|e| format!("{:?}", e.inner))?;
    let srclocs: Vec<(u32, ir::SourceLoc)> = compiled.buffer.get_srclocs_sorted().iter().map(|l| (l.start, l.loc)).collect();
    Ok(MachineCode {
        bytes: compiled.code_buffer().to_vec(),
        alignment: compiled.buffer.alignment as u64,
        relocs: compiled.buffer.relocs().to_vec(),
        vcode: compiled.vcode.clone(),
        loop_head: crate::loop_align::header_offset(&srclocs, &compiled.bb_starts),
    })
}

/// [`generate`], with a panic inside Cranelift caught: it becomes the error, and `ctx` is
/// made afresh (its state may be half way through a function). The flag says it panicked.
pub fn generate_caught(ctx: &mut Context, isa: &dyn TargetIsa, disasm: bool) -> (Result<MachineCode, String>, bool) {
    match catch_unwind(AssertUnwindSafe(|| generate(ctx, isa, disasm))) {
        Ok(code) => (code, false),
        Err(_) => {
            *ctx = Context::new();
            (Err("panic during code generation".to_string()), true)
        }
    }
}

/// [`generate_caught`], and the code kept in the process's code cache under `cache` when it
/// is given and the generation succeeded (`code_cache.rs`). Every compile, on the worker or
/// synchronous, goes through here.
pub fn generate_and_keep(
    ctx: &mut Context,
    isa: &dyn TargetIsa,
    disasm: bool,
    cache: Option<crate::code_cache::CacheKey>,
) -> (Result<MachineCode, String>, bool) {
    // The stencil as translated: code generation rewrites the function (block placement),
    // and lookups compare against functions as translated.
    let translated = cache.map(|_| ctx.func.clone());
    let (code, panicked) = generate_caught(ctx, isa, disasm);
    if let (Some(key), Some(func), Ok(code)) = (cache, translated, &code) {
        crate::code_cache::insert(key, func, code);
    }
    (code, panicked)
}

/// A function to generate code for.
pub struct Job {
    /// The JIT that queued it (its VM's `Worker` handle).
    owner: u64,
    pub id: u64,
    /// Jobs with more heat go first (ties: the older job).
    heat: u64,
    func: ir::Function,
    /// The tier's target ISA (baseline or optimizing settings).
    isa: Option<OwnedTargetIsa>,
    disasm: bool,
    /// Panic instead of generating code (tests of the failure path).
    inject_panic: bool,
    /// Where the code goes in the process's code cache (`None`: not kept).
    cache: Option<crate::code_cache::CacheKey>,
    queued_at: Instant,
    /// Where the result goes (the owner's channel).
    reply: Option<Sender<Done>>,
    /// The owner's signal, counted up before the result is sent (background mode only).
    signal: Option<Arc<AtomicUsize>>,
}

/// How a job's machine code is made: the tier's target ISA (baseline or optimizing settings)
/// and the debugging switches.
pub struct Codegen {
    pub isa: OwnedTargetIsa,
    /// Keep the disassembly (`SOMA_JIT_DUMP=asm`).
    pub disasm: bool,
    /// Panic instead of generating code (tests of the failure path).
    pub inject_panic: bool,
}

/// A finished job.
pub struct Done {
    pub id: u64,
    /// The function, moved back (relocations name its external functions).
    pub func: ir::Function,
    pub code: Result<MachineCode, String>,
    /// Whether the error was a panic caught on the worker.
    pub panicked: bool,
    /// From queueing to the worker taking the job.
    pub queue_wait: Duration,
    /// Cranelift's time on the worker.
    pub generate: Duration,
}

struct Queue {
    jobs: Vec<Job>,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

/// The process's compile thread (its queue), started on first use; `Err` when the system could
/// not start a thread.
fn compile_thread() -> Result<&'static Shared, String> {
    static THREAD: OnceLock<Result<&'static Shared, String>> = OnceLock::new();
    THREAD
        .get_or_init(|| {
            // Leaked on purpose: the thread lives as long as the process and holds it.
            let shared: &'static Shared = Box::leak(Box::new(Shared {
                queue: Mutex::new(Queue { jobs: Vec::new() }),
                wake: Condvar::new(),
            }));
            std::thread::Builder::new()
                .name("soma-jit-compile".into())
                .spawn(move || worker_loop(shared))
                .map(|_| shared)
                .map_err(|e| format!("cannot start the compile thread: {e}"))
        })
        .clone()
}

/// One JIT's handle on the compile thread: it queues that JIT's jobs and receives their
/// results.
pub struct Worker {
    shared: &'static Shared,
    owner: u64,
    reply: Sender<Done>,
    done: Receiver<Done>,
    /// Jobs sent and not yet received back.
    in_flight: usize,
    /// Nonzero while the owner should look for results (see the module docs).
    signal: Arc<AtomicUsize>,
    /// Lockstep: the signal counts jobs in flight (each is waited for at the next safepoint)
    /// rather than results sent.
    lockstep: bool,
}

fn lock(shared: &Shared) -> MutexGuard<'_, Queue> {
    // A poisoned lock means a panic while it was held; the queue holds plain data that every
    // step leaves consistent, so go on with it.
    shared.queue.lock().unwrap_or_else(|p| p.into_inner())
}

impl Worker {
    /// A handle on the compile thread (starting it if this is the first). `Err` when the
    /// system cannot start a thread (the caller then compiles synchronously). `lockstep`: every
    /// job is waited for at the owner's next safepoint.
    pub fn start(lockstep: bool) -> Result<Worker, String> {
        static OWNERS: AtomicU64 = AtomicU64::new(0);
        let shared = compile_thread()?;
        let (reply, done) = mpsc::channel();
        Ok(Worker {
            shared,
            owner: OWNERS.fetch_add(1, Ordering::Relaxed),
            reply,
            done,
            in_flight: 0,
            signal: Arc::new(AtomicUsize::new(0)),
            lockstep,
        })
    }

    /// What the owner's VM loads at safepoints: nonzero when `next_done` may have something.
    pub fn signal(&self) -> Arc<AtomicUsize> {
        self.signal.clone()
    }

    /// Queue `func` for code generation.
    pub fn submit(&mut self, id: u64, heat: u64, func: ir::Function, codegen: Codegen, cache: Option<crate::code_cache::CacheKey>) {
        let Codegen { isa, disasm, inject_panic } = codegen;
        let job = Job {
            owner: self.owner,
            id,
            heat,
            func,
            isa: Some(isa),
            disasm,
            inject_panic,
            cache,
            queued_at: Instant::now(),
            reply: Some(self.reply.clone()),
            signal: (!self.lockstep).then(|| self.signal.clone()),
        };
        if self.lockstep {
            self.signal.fetch_add(1, Ordering::Release);
        }
        lock(self.shared).jobs.push(job);
        self.shared.wake.notify_one();
        self.in_flight += 1;
    }

    /// Add `by` to the heat of job `id` if it is still waiting.
    pub fn warm(&self, id: u64, by: u64) {
        warm(&mut lock(self.shared), self.owner, id, by);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// A finished job, if one is ready (`wait`: block until one is, while any is in flight).
    pub fn next_done(&mut self, wait: bool) -> Option<Done> {
        if self.in_flight == 0 {
            return None;
        }
        let d = if wait {
            self.done.recv().ok()
        } else {
            match self.done.try_recv() {
                Ok(d) => Some(d),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => None,
            }
        };
        if d.is_some() {
            self.in_flight -= 1;
            self.signal.fetch_sub(1, Ordering::AcqRel);
        }
        d
    }
}

impl Drop for Worker {
    /// Withdraw this JIT's queued jobs. A job of it in progress finishes on the compile thread,
    /// which then finds this handle's channel closed and throws the result away: nothing it
    /// uses belongs to the VM.
    fn drop(&mut self) {
        let owner = self.owner;
        lock(self.shared).jobs.retain(|j| j.owner != owner);
    }
}

fn warm(q: &mut Queue, owner: u64, id: u64, by: u64) {
    if let Some(j) = q.jobs.iter_mut().find(|j| j.owner == owner && j.id == id) {
        j.heat = j.heat.saturating_add(by);
    }
}

/// The hottest waiting job (ties: the oldest), removed from the queue.
fn take_hottest(q: &mut Queue) -> Option<Job> {
    let best = q
        .jobs
        .iter()
        .enumerate()
        .max_by(|(_, a), (_, b)| a.heat.cmp(&b.heat).then(b.queued_at.cmp(&a.queued_at)))
        .map(|(i, _)| i)?;
    Some(q.jobs.swap_remove(best))
}

fn worker_loop(shared: &Shared) {
    // Off the main thread: the trampolines' Cranelift compile (see `quiet_calls`).
    crate::quiet_calls::prepare();
    let mut ctx = Context::new();
    loop {
        let mut job = {
            let mut q = lock(shared);
            loop {
                if let Some(j) = take_hottest(&mut q) {
                    break j;
                }
                q = shared.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let queue_wait = job.queued_at.elapsed();
        let t0 = Instant::now();
        ctx.clear();
        ctx.func = std::mem::replace(&mut job.func, ir::Function::new());
        let (disasm, inject_panic) = (job.disasm, job.inject_panic);
        let isa = job.isa.take().expect("submitted with its ISA");
        let (code, panicked) = if inject_panic {
            let r = catch_unwind(|| panic!("injected panic on the compile thread"));
            (r.map_err(|_| "panic during code generation".to_string()), true)
        } else {
            generate_and_keep(&mut ctx, &*isa, disasm, job.cache)
        };
        let generate_time = t0.elapsed();
        let func = std::mem::replace(&mut ctx.func, ir::Function::new());
        if let Some(reply) = job.reply.take() {
            // Counted before it is sent, so the owner never takes off more than was added.
            if let Some(signal) = &job.signal {
                signal.fetch_add(1, Ordering::Release);
            }
            // A closed channel: the JIT was dropped meanwhile; the result is not wanted.
            let _ = reply.send(Done {
                id: job.id,
                func,
                code,
                panicked,
                queue_wait,
                generate: generate_time,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job queued `age_ms` before a fixed instant (one instant for every job of a test, so
    /// the order of ages does not depend on how long making the jobs takes: under valgrind
    /// it took milliseconds).
    fn job(id: u64, heat: u64, age_ms: u64) -> Job {
        static NOW: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let now = *NOW.get_or_init(Instant::now);
        Job {
            owner: 0,
            id,
            heat,
            func: ir::Function::new(),
            isa: None,
            disasm: false,
            inject_panic: false,
            cache: None,
            queued_at: now - Duration::from_millis(age_ms),
            reply: None,
            signal: None,
        }
    }

    #[test]
    fn the_hottest_job_goes_first_then_the_oldest() {
        let mut q = Queue {
            jobs: vec![job(1, 100, 5), job(2, 300, 1), job(3, 100, 9), job(4, 300, 3)],
        };
        let order: Vec<u64> = std::iter::from_fn(|| take_hottest(&mut q).map(|j| j.id)).collect();
        assert_eq!(order, vec![4, 2, 3, 1]);
    }

    #[test]
    fn warming_a_waiting_job_moves_it_forward() {
        let mut q = Queue {
            jobs: vec![job(1, 100, 2), job(2, 100, 1)],
        };
        warm(&mut q, 0, 2, 5);
        warm(&mut q, 0, 7, 5); // not waiting (any more): nothing happens
        warm(&mut q, 1, 1, 500); // another JIT's job 1: not this one
        assert_eq!(take_hottest(&mut q).map(|j| j.id), Some(2));
    }

    /// A function that returns at once, and the host ISA to compile it for.
    fn trivial_job() -> (ir::Function, OwnedTargetIsa) {
        use cranelift_codegen::settings;
        let isa = cranelift_native::builder()
            .expect("host ISA")
            .finish(settings::Flags::new(settings::builder()))
            .expect("host ISA");
        let mut func = ir::Function::new();
        let mut fctx = cranelift_frontend::FunctionBuilderContext::new();
        let mut b = cranelift_frontend::FunctionBuilder::new(&mut func, &mut fctx);
        let entry = b.create_block();
        b.switch_to_block(entry);
        b.seal_block(entry);
        cranelift_codegen::ir::InstBuilder::return_(b.ins(), &[]);
        b.finalize(isa.frontend_config());
        (func, isa)
    }

    /// Wait (without a time limit that could fail on a slow machine) until `signal` is `n`.
    fn until_signal_is(signal: &AtomicUsize, n: usize) {
        while signal.load(Ordering::Acquire) != n {
            std::thread::yield_now();
        }
    }

    #[test]
    fn the_signal_counts_a_result_before_it_is_sent_and_the_owner_takes_it_off() {
        let mut w = Worker::start(false).expect("compile thread");
        let signal = w.signal();
        assert_eq!(signal.load(Ordering::Acquire), 0);
        let (func, isa) = trivial_job();
        w.submit(1, 1, func, Codegen { isa, disasm: false, inject_panic: false }, None);
        // The worker counts the result before sending it: once counted, it arrives.
        until_signal_is(&signal, 1);
        let done = w.next_done(true).expect("the result");
        assert_eq!(done.id, 1);
        assert!(done.code.is_ok());
        assert_eq!(signal.load(Ordering::Acquire), 0, "taken off when received");
        assert!(w.next_done(false).is_none());
    }

    #[test]
    fn in_lockstep_the_signal_counts_jobs_in_flight() {
        let mut w = Worker::start(true).expect("compile thread");
        let signal = w.signal();
        let (func, isa) = trivial_job();
        w.submit(1, 1, func, Codegen { isa, disasm: false, inject_panic: false }, None);
        assert_eq!(signal.load(Ordering::Acquire), 1, "counted at submission");
        assert_eq!(w.next_done(true).map(|d| d.id), Some(1));
        assert_eq!(signal.load(Ordering::Acquire), 0);
    }
}
