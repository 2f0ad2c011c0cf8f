//! Code generation off the main thread: the compile queue and its worker.
//!
//! Tier-up is split in three steps (docs/jit.md, "Background compilation"):
//!
//! 1. **Translate** (main thread, at a safepoint): `translate.rs` reads what it needs of the VM
//!    (the Code, the Store values guarded sites specialise on, inlined Codes) and builds an
//!    `ir::Function`. That is the only step that looks at VM state.
//! 2. **Generate** (worker thread): Cranelift turns the function into machine code, about
//!    1 µs per CLIF instruction, the bulk of a compile. [`generate`] is the one code path for
//!    this, used by the worker and by synchronous compiles alike.
//! 3. **Install** (main thread, at the next safepoint after the code is ready): the bytes go
//!    into the `JITModule` and the Block gets its native entry (`compiler.rs`).
//!
//! # What crosses between the threads, and why it is safe
//! * To the worker: a [`Job`]: a job number, its heat, and the `ir::Function`, plain owned
//!   data. Runtime addresses (helpers, cache lines, constants) are immediates in the IR; the
//!   worker copies them into machine code and never dereferences one. No `Value`, cell, Block
//!   or other collectable memory is reachable from a job, so the collector and the worker
//!   never meet.
//! * With each job, shared: its tier's target ISA (`Arc<dyn TargetIsa>`, immutable and `Sync`).
//! * Back to the main thread: a [`Done`]: the job number, the function (moved back: its
//!   external names resolve relocations) and the machine code or the error, with timings.
//! * The queue is a `Mutex` + `Condvar` (jobs, heat updates, shutdown); results come back on an
//!   `mpsc` channel that only the main thread reads, at safepoints.
//!
//! Everything the compiled code will point at (cache lines, exit descriptions) stays with the
//! main thread in `compiler.rs` until the code is installed or dropped.
//!
//! # Life cycle
//! The thread starts on the first background compile (so a VM that never tiers up, or one at
//! `SOMA_JIT_THRESHOLD=0`, which compiles synchronously, has none) and is told to stop when
//! the JIT is dropped with its VM: queued jobs are discarded, a job in progress finishes on
//! the detached thread (one compile, a few milliseconds at most) and its result is thrown
//! away. A panic inside Cranelift is caught on the worker and reported as that job's error:
//! the Block stays interpreted.

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir;
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_codegen::{Context, FinalizedMachReloc};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Machine code of one function, ready to be installed.
pub struct MachineCode {
    pub bytes: Vec<u8>,
    pub alignment: u64,
    pub relocs: Vec<FinalizedMachReloc>,
    /// Cranelift's VCode listing, when asked for (`SOMA_JIT_DUMP=asm`).
    pub vcode: Option<String>,
}

/// Run Cranelift's code generation on `ctx.func`.
pub fn generate(ctx: &mut Context, isa: &dyn TargetIsa, disasm: bool) -> Result<MachineCode, String> {
    ctx.set_disasm(disasm);
    let compiled = ctx
        .compile(isa, &mut ControlPlane::default())
        .map_err(|e| format!("{:?}", e.inner))?;
    Ok(MachineCode {
        bytes: compiled.code_buffer().to_vec(),
        alignment: compiled.buffer.alignment as u64,
        relocs: compiled.buffer.relocs().to_vec(),
        vcode: compiled.vcode.clone(),
    })
}

/// A function to generate code for.
pub struct Job {
    pub id: u64,
    /// Jobs with more heat go first (ties: the older job).
    heat: u64,
    func: ir::Function,
    /// The tier's target ISA (baseline or optimizing settings).
    isa: Option<OwnedTargetIsa>,
    disasm: bool,
    /// Panic instead of generating code (tests of the failure path).
    inject_panic: bool,
    queued_at: Instant,
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
    shutdown: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

/// The compile thread, from the main thread's side.
pub struct Worker {
    shared: Arc<Shared>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    /// Jobs sent and not yet received back.
    in_flight: usize,
}

fn lock(shared: &Shared) -> MutexGuard<'_, Queue> {
    // A poisoned lock means a panic while it was held; the queue holds plain data that every
    // step leaves consistent, so go on with it.
    shared.queue.lock().unwrap_or_else(|p| p.into_inner())
}

impl Worker {
    /// Start the compile thread. `Err` when the system cannot start a thread (the caller then
    /// compiles synchronously).
    pub fn start() -> Result<Worker, String> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: Vec::new(),
                shutdown: false,
            }),
            wake: Condvar::new(),
        });
        let (tx, rx) = mpsc::channel();
        let worker_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("soma-jit-compile".into())
            .spawn(move || worker_loop(&worker_shared, &tx))
            .map_err(|e| format!("cannot start the compile thread: {e}"))?;
        Ok(Worker {
            shared,
            done: rx,
            thread: Some(thread),
            in_flight: 0,
        })
    }

    /// Queue `func` for code generation.
    pub fn submit(
        &mut self,
        id: u64,
        heat: u64,
        func: ir::Function,
        isa: OwnedTargetIsa,
        disasm: bool,
        inject_panic: bool,
    ) {
        let job = Job {
            id,
            heat,
            func,
            isa: Some(isa),
            disasm,
            inject_panic,
            queued_at: Instant::now(),
        };
        lock(&self.shared).jobs.push(job);
        self.shared.wake.notify_one();
        self.in_flight += 1;
    }

    /// Add `by` to the heat of job `id` if it is still waiting.
    pub fn warm(&self, id: u64, by: u64) {
        warm(&mut lock(&self.shared), id, by);
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
        }
        d
    }
}

impl Drop for Worker {
    /// Stop the worker without waiting for it: it finishes the job it holds (if any), finds
    /// the queue shut down (or the result channel closed) and exits. Not joining keeps a
    /// compile in progress from delaying the VM's drop, or the exit of a short program. The
    /// detached thread owns everything it touches (its job, its `Context`, an `Arc` of the
    /// queue and of the ISA), so nothing it uses goes away under it.
    fn drop(&mut self) {
        {
            let mut q = lock(&self.shared);
            q.shutdown = true;
            q.jobs.clear();
        }
        self.shared.wake.notify_all();
        drop(self.thread.take());
    }
}

fn warm(q: &mut Queue, id: u64, by: u64) {
    if let Some(j) = q.jobs.iter_mut().find(|j| j.id == id) {
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

fn worker_loop(shared: &Shared, done: &Sender<Done>) {
    let mut ctx = Context::new();
    loop {
        let job = {
            let mut q = lock(shared);
            loop {
                if q.shutdown {
                    return;
                }
                if let Some(j) = take_hottest(&mut q) {
                    break j;
                }
                q = shared.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        let queue_wait = job.queued_at.elapsed();
        let t0 = Instant::now();
        ctx.clear();
        ctx.func = job.func;
        let (disasm, inject_panic) = (job.disasm, job.inject_panic);
        let isa = job.isa.expect("submitted with its ISA");
        let r = catch_unwind(AssertUnwindSafe(|| {
            if inject_panic {
                panic!("injected panic on the compile thread");
            }
            generate(&mut ctx, &*isa, disasm)
        }));
        let generate_time = t0.elapsed();
        let (code, panicked) = match r {
            Ok(code) => (code, false),
            Err(_) => {
                // Cranelift's state may be half way through a function: start afresh.
                ctx = Context::new();
                (Err("panic during code generation".to_string()), true)
            }
        };
        let func = std::mem::replace(&mut ctx.func, ir::Function::new());
        let sent = done.send(Done {
            id: job.id,
            func,
            code,
            panicked,
            queue_wait,
            generate: generate_time,
        });
        if sent.is_err() {
            return; // The main thread's side is gone.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64, heat: u64, age_ms: u64) -> Job {
        Job {
            id,
            heat,
            func: ir::Function::new(),
            isa: None,
            disasm: false,
            inject_panic: false,
            queued_at: Instant::now() - Duration::from_millis(age_ms),
        }
    }

    #[test]
    fn the_hottest_job_goes_first_then_the_oldest() {
        let mut q = Queue {
            jobs: vec![job(1, 100, 5), job(2, 300, 1), job(3, 100, 9), job(4, 300, 3)],
            shutdown: false,
        };
        let order: Vec<u64> = std::iter::from_fn(|| take_hottest(&mut q).map(|j| j.id)).collect();
        assert_eq!(order, vec![4, 2, 3, 1]);
    }

    #[test]
    fn warming_a_waiting_job_moves_it_forward() {
        let mut q = Queue {
            jobs: vec![job(1, 100, 2), job(2, 100, 1)],
            shutdown: false,
        };
        warm(&mut q, 2, 5);
        warm(&mut q, 7, 5); // not waiting (any more): nothing happens
        assert_eq!(take_hottest(&mut q).map(|j| j.id), Some(2));
    }
}
