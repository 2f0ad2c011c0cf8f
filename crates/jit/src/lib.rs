//! The SOMA JIT: lowers decoded SOMA bytecode to Cranelift IR and compiles it.
//!
//! Module map:
//! * `vstack` — translation state: the virtual AL kept in SSA values
//! * `translate` — the lowering, one `gen_*` per opcode
//! * `helpers` — the JIT's own C-ABI slow paths (next to the runtime's `soma_rt_*`)
//! * `helper_table` — every helper compiled code calls: address, signature, flush needs
//! * `quiet_calls` — trampolines that let a loop's slow path call a helper clobbering nothing
//! * `compiler` — the per-VM `JITModule`, tier-up hook, install, dumps
//! * `code_memory` — the process's code memory: chunks the modules fill densely and give back
//! * `config` — `JitConfig`: dumps, background mode, thresholds, budget, from `SOMA_JIT_*`
//! * `budget` — the main thread's tier-up budget applied: within it, exemption, postponing
//! * `isa` — Cranelift's flags for each tier and the host ISA made from them
//! * `statistics` — `JitStats` and `BlockStat`: what the JIT compiled, deopts, timings
//! * `naming` — how dumps and the perf map name a Block; the perf map's lines
//! * `hotness` — what tier-up reads of how a Block runs: loop body, recursion, queue heat
//! * `background` — the compile thread: code generation off the main thread, its queue
//! * `clif` — questions about finished CLIF the translator and the passes share (a leaf)
//! * `cold` — block placement: slow paths' blocks go after the hot code
//! * `induction` — overflow checks a loop's own bound makes unnecessary, and the entry guard
//! * `cross` — compiling the same IR for another ISA (aarch64 check)
//! * `deopt` — why compiled code deoptimised: the reasons an exit site carries
//! * `feedback` — type feedback learnt from those deopts (wide sites and paths)
//! * `queries` — what a translation asks its VM and the feedback, in VM-independent answers
//! * `replay` — translations other VMs of the process made, used again without building IR
//!
//! Using it:
//! ```no_run
//! let mut vm = soma_runtime::Vm::new();
//! soma_jit::install(&mut vm);                   // config from SOMA_JIT_THRESHOLD / SOMA_JIT_DUMP
//! let id = vm.load_module_bytes(&[]).unwrap();
//! soma_jit::run_module(&mut vm, id).unwrap();   // top-level code compiled too at threshold 0
//! let stats = soma_jit::stats(&mut vm);
//! ```

pub mod background;
pub mod budget;
pub mod clif;
pub mod code_cache;
pub mod code_memory;
pub mod cold;
pub mod compiler;
pub mod config;
pub mod cross;
pub mod deopt;
pub mod feedback;
pub mod helper_table;
pub mod helpers;
pub mod hotness;
pub mod induction;
pub mod isa;
pub mod loop_align;
pub mod naming;
pub mod queries;
pub mod quiet_calls;
pub mod replay;
pub mod statistics;
pub mod translate;
pub mod vstack;

pub use compiler::{compile_block, install, install_with, run_module, set_threshold, stats, take_dumps, wait_for_background};
pub use config::{Background, DumpFlags, JitConfig};
pub use statistics::{BlockStat, JitStats};
