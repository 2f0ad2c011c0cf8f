//! The one table of every Rust function compiled code calls.
//!
//! Each row names a helper and gives, once: the Rust function (so its address), its C
//! signature, and what the call asks of the code around it: whether it may **collect**
//! (a safepoint: every live value must be in a root first) and how it uses the **AL**. The
//! signature is checked by rustc against the function's definition (a `const` of that
//! function-pointer type per row), and the Cranelift signature is derived from it, so a
//! helper whose parameters change cannot be called with the old ones. The translator calls
//! helpers only through [`Helper`] (`Translator::call_helper` and its two siblings), and the
//! flush a row asks for is done (or, where the code cannot flush, checked) there, not left
//! to each call site.
//!
//! Adding a helper: write it (runtime `ffi.rs` or `helpers.rs`, docs/README.md "Adding a
//! helper"), add its row here, call it through its `Helper` variant.

use crate::helpers::{self, ExitDesc, HoistedCheck, NativeClock, ResumePoint};
use cranelift_codegen::ir::{self, types};
use soma_runtime::decode::Path;
use soma_runtime::ffi;
use soma_runtime::heap::CellObj;
use soma_runtime::store_cache::StoreCacheLine;
use soma_runtime::Vm;

/// How a helper uses the AL, and so what the caller's virtual AL entries must be first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlUse {
    /// Never reads or writes the AL: virtual entries stay virtual across the call.
    Untouched,
    /// Reads or writes the real AL: virtual entries go onto it before the call.
    Real,
    /// Takes the values to put on the AL as arguments (the flush itself, the exits): nothing
    /// is flushed before it.
    Passed,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct HelperEntry {
    /// The Rust function's name, for dumps and panics.
    pub name: &'static str,
    /// Its address.
    pub addr: usize,
    /// Its parameters' Cranelift types (derived from the Rust signature).
    pub params: &'static [ir::Type],
    /// Its result's Cranelift type, `None` for `()`.
    pub ret: Option<ir::Type>,
    /// May collect garbage (a safepoint).
    pub collects: bool,
    pub al: AlUse,
    /// A leaf: touches no VM field compiled code keeps in registers (the AL, the frames,
    /// the depth, the poll countdown) and no Register slot, never collects, never reenters,
    /// and reports a failure in its result (the graph reads and the record writes). The
    /// code around the call keeps its VM fields and Register slots in registers: nothing is
    /// synced before it or reloaded after it.
    pub leaf: bool,
}

impl HelperEntry {
    /// The virtual AL must be on the real AL before the call: the helper observes it, or may
    /// collect (the virtual entries are in no root) and is not handed them.
    pub fn needs_flushed_al(&self) -> bool {
        self.al == AlUse::Real || (self.collects && self.al != AlUse::Passed)
    }
}

/// The Cranelift type a C-ABI parameter or result of a helper is passed as. Every target
/// the JIT supports (x86_64, aarch64) has 64-bit pointers and `usize`.
pub trait ClifType {
    const TY: ir::Type;
}

macro_rules! clif_types {
    ($($t:ty => $ty:expr;)*) => {$(
        impl ClifType for $t {
            const TY: ir::Type = $ty;
        }
    )*};
}

clif_types! {
    u64 => types::I64;
    usize => types::I64;
    u32 => types::I32;
    i32 => types::I32;
}

impl<T> ClifType for *mut T {
    const TY: ir::Type = types::I64;
}

impl<T> ClifType for *const T {
    const TY: ir::Type = types::I64;
}

/// `Some(type)` of a result type, `None` for a helper returning nothing.
macro_rules! ret_type {
    () => {
        None
    };
    ($t:ty) => {
        Some(<$t as ClifType>::TY)
    };
}

macro_rules! helper_table {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident = $f:path, fn($($arg:ty),*) $(-> $ret:ty)?, collects: $collects:literal, al: $al:ident $(, leaf: $leaf:literal)?;
    )*) => {
        /// A helper compiled code may call (see the module doc for what a row says).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Helper {
            $($(#[doc = $doc])* $name,)*
        }

        impl Helper {
            /// Every helper, in table order.
            pub const ALL: &'static [Helper] = &[$(Helper::$name),*];

            /// This helper's row.
            pub fn entry(self) -> HelperEntry {
                match self {
                    $(Helper::$name => {
                        // The row's signature is the function's: a mismatch does not compile.
                        const F: unsafe extern "C" fn($($arg),*) $(-> $ret)? = $f;
                        const PARAMS: &[ir::Type] = &[$(<$arg as ClifType>::TY),*];
                        HelperEntry {
                            name: stringify!($f),
                            addr: F as *const () as usize,
                            params: PARAMS,
                            ret: ret_type!($($ret)?),
                            collects: $collects,
                            al: AlUse::$al,
                            leaf: false $(|| $leaf)?,
                        }
                    })*
                }
            }
        }
    };
}

helper_table! {
    // ----- the virtual AL and Registers -----
    /// Push `n` values onto the AL: the virtual stack's flush.
    PushN = helpers::jit_push_n, fn(*mut Vm, *const u64, usize) -> i32, collects: false, al: Passed;
    /// `_.a` in value form.
    ReadReg = helpers::jit_read_reg, fn(*mut Vm, *const Path, *mut u64) -> i32, collects: false, al: Untouched;
    /// `_.x.rest` below a value held by compiled code.
    ReadBelow = helpers::jit_read_below, fn(*mut Vm, u64, *const Path, *mut u64) -> i32, collects: false, al: Untouched;
    /// The cell of the child (symbol) of the cell a CellRef refers to, or 0.
    ChildCell = helpers::jit_child_cell, fn(u64, u32) -> u64, collects: false, al: Untouched, leaf: true;
    /// A record name's cell (`_.n.` or its first `!_.n.f`), or 0 (an internal error).
    NewRecord = helpers::jit_new_record, fn(*mut Vm, u32, u64) -> u64, collects: false, al: Untouched, leaf: true;
    /// A record name's cell with its first fields (consecutive `!_.n.f` of a fresh record), or
    /// 0 (an internal error).
    NewRecordFields = helpers::jit_new_record_fields, fn(*mut Vm, *const u64, usize) -> u64, collects: false, al: Untouched, leaf: true;
    /// `!_.n.f` into a record name's cell.
    WriteField = helpers::jit_write_field, fn(*mut Vm, u64, u32, u64) -> u32, collects: false, al: Untouched, leaf: true;
    /// Pop the value a `!_.x` writes (its underflow error).
    PopForStore = helpers::jit_pop_for_store, fn(*mut Vm, *const Path, *mut u64) -> i32, collects: false, al: Real;
    /// `Undefined Register path` for a virtual name never written.
    UndefinedReg = helpers::jit_undefined_reg, fn(*mut Vm, *const Path) -> i32, collects: false, al: Untouched;
    /// `!_.a` from the AL into the current (heap) Register.
    SetReg = ffi::soma_rt_set_reg, fn(*mut Vm, *const Path) -> i32, collects: true, al: Real;
    /// `_.a.`: push a CellRef into the current Register.
    RefReg = ffi::soma_rt_ref_reg, fn(*mut Vm, *const Path) -> i32, collects: true, al: Real;
    /// `!_.a.` from the AL.
    SetRefReg = ffi::soma_rt_setref_reg, fn(*mut Vm, *const Path) -> i32, collects: true, al: Real;
    /// `>_.a`: read from the Register and execute.
    ExecReg = ffi::soma_rt_exec_reg, fn(*mut Vm, *const Path) -> i32, collects: true, al: Real;

    // ----- the Store -----
    /// `a.b` in value form, no cache line (run-once program code).
    ReadStore = helpers::jit_read_store, fn(*mut Vm, *const Path, *mut u64) -> i32, collects: false, al: Untouched;
    /// A cache line's miss: resolve the path and refill the line (null: never created).
    ResolveStore = helpers::jit_resolve_store, fn(*mut Vm, *const Path, *const StoreCacheLine) -> *mut CellObj, collects: false, al: Untouched;
    /// `a.b.`'s cell on a cache line's miss (created if needed), or null (an internal error).
    RefStoreCell = helpers::jit_ref_store_cell, fn(*mut Vm, *const Path, *const StoreCacheLine) -> *mut CellObj, collects: false, al: Untouched;
    /// `!a.b` from the AL through a cache line.
    SetStore = helpers::jit_set_store, fn(*mut Vm, *const Path, *const StoreCacheLine) -> i32, collects: true, al: Real;
    /// `!a.b` of a value held by compiled code, through a cache line.
    SetStoreValue = helpers::jit_set_store_value, fn(*mut Vm, *const Path, *const StoreCacheLine, u64) -> i32, collects: false, al: Untouched;
    /// `a.b.`: push a CellRef, creating the cells.
    RefStore = ffi::soma_rt_ref_store, fn(*mut Vm, *const Path) -> i32, collects: true, al: Real;
    /// `!a.b.` from the AL.
    SetRefStore = ffi::soma_rt_setref_store, fn(*mut Vm, *const Path) -> i32, collects: true, al: Real;
    /// A speculative pre-header's checks, out of line.
    Validate = helpers::jit_validate, fn(*mut Vm, *const HoistedCheck, u64, *mut u64, u64, u64) -> u64, collects: false, al: Untouched;

    // ----- builtins: AL forms and value forms -----
    /// `>+` on the AL.
    Add = ffi::soma_rt_add, fn(*mut Vm) -> i32, collects: true, al: Real;
    /// `>-` on the AL.
    Sub = ffi::soma_rt_sub, fn(*mut Vm) -> i32, collects: true, al: Real;
    /// `>*` on the AL.
    Mul = ffi::soma_rt_mul, fn(*mut Vm) -> i32, collects: true, al: Real;
    /// `>/` on the AL.
    Div = ffi::soma_rt_div, fn(*mut Vm) -> i32, collects: true, al: Real;
    /// `>%` on the AL.
    Mod = ffi::soma_rt_mod, fn(*mut Vm) -> i32, collects: true, al: Real;
    /// `><` on the AL.
    Lt = ffi::soma_rt_lt, fn(*mut Vm) -> i32, collects: false, al: Real;
    /// `>choose` on the AL.
    Choose = ffi::soma_rt_choose, fn(*mut Vm) -> i32, collects: false, al: Real;
    /// `>block` on the AL.
    Block = ffi::soma_rt_block, fn(*mut Vm) -> i32, collects: false, al: Real;
    /// `>isNil` on the AL (its underflow error).
    IsNil = ffi::soma_rt_is_nil, fn(*mut Vm) -> i32, collects: false, al: Real;
    /// `>isVoid` on the AL (its underflow error).
    IsVoid = ffi::soma_rt_is_void, fn(*mut Vm) -> i32, collects: false, al: Real;
    /// An Int operation's slow path in value form (`ArithOp` as `u32`).
    IntArith = ffi::soma_rt_int_arith, fn(*mut Vm, u32, u64, u64, *mut u64) -> i32, collects: false, al: Untouched;
    /// `<` in value form.
    LtValues = ffi::soma_rt_lt_values, fn(*mut Vm, u64, u64, *mut u64) -> i32, collects: false, al: Untouched;

    // ----- running code -----
    /// Execute a value (a Block runs to completion, compiled or interpreted).
    Exec = helpers::jit_exec, fn(*mut Vm, u64) -> i32, collects: true, al: Real;
    /// `>chain`'s first step: pop the AL top.
    ChainStart = ffi::soma_rt_chain_start, fn(*mut Vm, *mut u64) -> i32, collects: false, al: Real;
    /// One `>chain` iteration.
    ChainStep = helpers::jit_chain_step, fn(*mut Vm, u64, *mut u64) -> i32, collects: true, al: Real;
    /// One `>chain` iteration's execution, the next value left on the AL.
    ChainRound = helpers::jit_chain_round, fn(*mut Vm, u64) -> i32, collects: true, al: Real;
    /// The poll at a block entry: limits, installs, the host's hook.
    Poll = helpers::jit_poll, fn(*mut Vm) -> i32, collects: true, al: Untouched;
    /// The poll at an inlined body's entry (limits only).
    PollInlined = helpers::jit_poll_inlined, fn(*mut Vm) -> i32, collects: false, al: Untouched;
    /// A poll region's test with the countdown too low: the due poll taken early, or 0.
    /// Called through a quiet trampoline (`quiet_calls.rs`), which drops the result: the
    /// countdown in the VM says.
    PollAhead = helpers::jit_poll_ahead, fn(*mut Vm) -> u32, collects: false, al: Untouched;
    /// Ask for the optimized compile of a hot Block.
    NoteHot = helpers::jit_note_hot, fn(*mut Vm, u64), collects: false, al: Untouched;
    /// A chained round's fresh Register.
    RestartFrame = helpers::jit_restart_frame, fn(*mut Vm) -> i32, collects: false, al: Untouched;
    /// An inlined body's entry bookkeeping.
    EnterInlined = helpers::jit_enter_inlined, fn(*mut Vm, u64) -> i32, collects: false, al: Untouched;
    /// Make inlined bodies' virtual frames real before a call, where the frame stack must grow
    /// first (compiled code pushes them inline where it has room, and pops them inline).
    FramesEnter = helpers::jit_frames_enter, fn(*mut Vm, *const u64, u64) -> i32, collects: false, al: Untouched;
    /// The recursion error entering an inlined body.
    RecursionError = helpers::jit_recursion_error, fn(*mut Vm) -> i32, collects: false, al: Untouched;

    // ----- leaving compiled code -----
    /// Position the pending error.
    ErrorAt = helpers::jit_error_at, fn(*mut Vm, u32, u32, u32), collects: false, al: Untouched;
    /// Leave the innermost `n` frames (inlined bodies).
    LeaveBlocks = helpers::jit_leave_blocks, fn(*mut Vm, u64) -> i32, collects: false, al: Untouched;
    /// An error or deoptimisation exit: the virtual state is handed over.
    Exit = helpers::jit_exit, fn(*mut Vm, i32, *const ExitDesc, *const u64, *const u64, u64) -> i32, collects: true, al: Passed;
    /// Resume a deoptimised run in the executor.
    Resume = helpers::jit_resume, fn(*mut Vm, *const ResumePoint, u64, u64) -> i32, collects: true, al: Passed;
    /// Start timing native code.
    TimeBegin = helpers::jit_time_begin, fn(*mut NativeClock), collects: false, al: Untouched;
    /// Stop timing native code.
    TimeEnd = helpers::jit_time_end, fn(*mut NativeClock), collects: false, al: Untouched;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_a_distinct_address() {
        let mut seen = std::collections::HashMap::new();
        for &h in Helper::ALL {
            let e = h.entry();
            assert_ne!(e.addr, 0, "{}", e.name);
            if let Some(other) = seen.insert(e.addr, e.name) {
                panic!("{} and {} share an address", other, e.name);
            }
        }
    }

    #[test]
    fn the_flush_rule_follows_the_row() {
        assert!(Helper::Exec.entry().needs_flushed_al(), "runs code on the AL");
        assert!(Helper::Poll.entry().needs_flushed_al(), "collects");
        assert!(!Helper::Exit.entry().needs_flushed_al(), "is handed the virtual AL");
        assert!(!Helper::ReadReg.entry().needs_flushed_al());
        assert_eq!(Helper::Validate.entry().ret, Some(types::I64));
        assert_eq!(Helper::NoteHot.entry().ret, None);
        assert_eq!(Helper::Exit.entry().params.len(), 6);
    }
}
