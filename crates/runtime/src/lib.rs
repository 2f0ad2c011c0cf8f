//! The SOMA runtime: NaN-boxed values, the native cell graph, memory management and the
//! C-ABI helpers (`soma_rt_*`) that JIT code calls.
//!
//! Module map (one concern each):
//! * `value` — the NaN-boxed `Value` and its bit layout
//! * `int` — Int arithmetic (inline fast paths, BigInt slow paths, Python semantics)
//! * `heap` — heap objects and the mark-sweep collector
//! * `sym` — interned child names
//! * `cell`, `graph` — cells, the Store/Register path semantics, the structural epoch
//! * `opcodes`, `format`, `decode`, `encode` — the bytecode contract (the opcode enum and the
//!   format constants are generated from the tables Python reads: `build.rs`)
//! * `error`, `render` — the error catalogue and Python-exact text conversions
//! * `vm` — the VM state and its GC roots
//! * `limits` — step budget, time limit, interrupt flag, the default memory limit
//! * `builtins`, `ops` — the semantics of builtins and path operations
//! * `debug` — the narrated and graph-printing `debug.*` builtins
//! * `ffi` — the `soma_rt_*` C ABI over those semantics
//! * `exec` — the native reference executor

pub mod builtins;
pub mod cell;
pub mod debug;
pub mod decode;
pub mod encode;
pub mod error;
pub mod exec;
pub mod ffi;
pub mod format;
pub mod graph;
pub mod heap;
pub mod int;
pub mod limits;
pub mod opcodes;
pub mod ops;
pub mod render;
pub mod sym;
pub mod value;
pub mod vm;

pub use cell::CellPtr;
pub use error::{ErrorClass, SomaError};
pub use heap::Heap;
pub use sym::Sym;
pub use value::Value;
pub use vm::Vm;
