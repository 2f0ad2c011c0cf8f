//! The SOMA runtime: NaN-boxed values, the native cell graph, memory management and the
//! C-ABI helpers (`soma_rt_*`) that JIT code calls.
//!
//! Module map (one concern each):
//! * `object` — the header every heap object starts with
//! * `value` — the NaN-boxed `Value` and its bit layout
//! * `int` — Int arithmetic (inline fast paths, BigInt slow paths, Python semantics)
//! * `heap` — heap objects (but cells) and the mark-sweep collector; `Value`'s typed accessors
//! * `builtin_id` — which builtin a builtin object is; the core builtins' Store names
//! * `sym` — interned child names and the `Name` trait
//! * `cell`, `graph` — cells (their layout), the Store/Register path semantics, the epoch
//! * `opcodes`, `format`, `decode`, `encode` — the bytecode contract (the opcode enum and the
//!   format constants are generated from the tables Python reads: `build.rs`)
//! * `error`, `render` — the error catalogue and Python-exact text conversions
//! * `vm` — the VM state and its GC roots
//! * `limits` — step budget, time limit, interrupt flag, poll interval, default memory limit
//! * `stack` — the native stack guard
//! * `abi` — status codes and the compiled-Block signature shared by executors and the C ABI
//! * `builtins`, `ops` — the semantics of builtins and path operations
//! * `debug` — the narrated and graph-printing `debug.*` builtins
//! * `exec` — the native reference executor (calls the `Vm` operations directly)
//! * `ffi` — the `soma_rt_*` C ABI over those semantics, for compiled code and hosts
//!
//! The modules form a DAG (no import cycle; `tests/test_import_graph.py` checks it), in
//! layers from the bottom: `error`, `format`, `opcodes`, `sym`, `object`, `limits`, `stack`,
//! `builtin_id`; `value`; `cell`; `heap`, `int`, `render`, `graph`, `decode`, `encode`; `vm`;
//! `abi`; `builtins`, `ops`, `exec`, `debug`; `ffi`.

pub mod abi;
pub mod builtin_id;
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
pub mod object;
pub mod opcodes;
pub mod ops;
pub mod render;
pub mod stack;
pub mod store_cache;
pub mod sym;
pub mod value;
pub mod vm;

pub use cell::CellPtr;
pub use error::{ErrorClass, SomaError};
pub use heap::Heap;
pub use sym::Sym;
pub use value::Value;
pub use vm::Vm;
