//! The SOMA runtime: NaN-boxed values, the native cell graph, memory management and the
//! C-ABI helpers (`soma_rt_*`) that JIT code calls.

pub mod builtins;
pub mod cell;
pub mod decode;
pub mod encode;
pub mod graph;
pub mod heap;
pub mod int;
pub mod opcodes;
pub mod value;

pub use cell::CellPtr;
pub use heap::Heap;
pub use value::Value;
pub mod vm;
