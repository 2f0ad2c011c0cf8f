//! The C-ABI helper surface (`soma_rt_*`) for compiled code and C hosts. The reference
//! executor (`exec.rs`) and the Rust bridge call the `Vm` operations directly instead.
//!
//! # Contract shared by every helper
//! * `vm` is a pointer returned by [`soma_rt_vm_new`], not yet freed, and not used by another
//!   thread during the call (a VM is single-threaded).
//! * A `u64` value argument is the bits of a `Value` of this VM that is alive (on the AL, in
//!   a cell, pinned, in a shadow-stack slot, or read since the last safepoint).
//! * A `*const Path` points at a path of a module loaded in this VM (`LoadedModule::module`);
//!   such paths live as long as the VM.
//! * Out pointers are valid for one write.
//! * Return value: [`SOMA_OK`], or [`SOMA_ERROR`] with the error kept on the VM (read it with
//!   `soma_rt_error_*`), or [`SOMA_INTERNAL`] when a Rust panic was caught (also recorded as a
//!   RuntimeError on the VM). Helpers never unwind across the ABI.
//! * Helpers documented as **safepoints** may collect garbage. A collection sees only the
//!   roots (the AL, the Store, Register frames, pins, shadow-stack slots), so before calling
//!   one the caller puts every live value it holds into a root: JIT code flushes its virtual
//!   AL entries onto the real AL (docs/jit.md, "The virtual AL and GC safety"), and keeps the
//!   names of a virtual Register in shadow-stack slots, which are roots for the frame's whole
//!   life. All other helpers never collect (they may allocate; collection waits for the next
//!   safepoint).
//! * Errors are not positioned; the caller (executor or JIT code) calls
//!   [`soma_rt_error_at`] with its instruction's line and column.

use crate::cell::CellPtr;
use crate::decode::Path;
use crate::error::{ErrorClass, SomaError};
use crate::heap::{CellObj, ForeignRelease};
use crate::int::ArithOp;
use crate::value::Value;
use crate::vm::Vm;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::abi::{guard, value_from_abi as val};
pub use crate::abi::{NativeEntry, SOMA_ERROR, SOMA_INTERNAL, SOMA_OK};

/// Write `v` through an out pointer.
///
/// # Safety
/// `out` must be valid for one write (module contract) or null (then nothing is written).
#[inline]
unsafe fn put<T>(out: *mut T, v: T) {
    if !out.is_null() {
        // SAFETY: non-null out pointers are valid for one write (module contract).
        unsafe { out.write(v) };
    }
}

// ----- lifecycle and modules -----

/// Create a VM (core builtins installed). Free it with [`soma_rt_vm_free`].
#[no_mangle]
pub extern "C" fn soma_rt_vm_new() -> *mut Vm {
    catch_unwind(|| Box::into_raw(Vm::new())).unwrap_or(std::ptr::null_mut())
}

/// Free a VM and everything on its heap (foreign handles are released).
///
/// # Safety
/// `vm` came from [`soma_rt_vm_new`] and is not used afterwards. Null is ignored.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_vm_free(vm: *mut Vm) {
    if !vm.is_null() {
        // SAFETY: the caller hands back ownership of a VM created by `soma_rt_vm_new`.
        let vm = unsafe { Box::from_raw(vm) };
        let _ = catch_unwind(AssertUnwindSafe(move || drop(vm)));
    }
}

/// Decode `len` bytes at `data` as a serialized module and load it; writes its id.
/// A malformed module is a `SOMA_ERROR` (RuntimeError "invalid bytecode: ...").
///
/// # Safety
/// Module contract; `data` is readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_load_module(
    vm: *mut Vm,
    data: *const u8,
    len: usize,
    out_module: *mut u32,
) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            let bytes = if len == 0 { &[][..] } else { std::slice::from_raw_parts(data, len) };
            let id = vm.load_module_bytes(bytes)?;
            put(out_module, id);
            Ok(())
        })
    }
}

/// Run code 0 of module `module` at top level with the reference executor. Errors come back
/// positioned. Safepoint.
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_run_module(vm: *mut Vm, module: u32) -> i32 {
    // SAFETY: module contract.
    unsafe { guard(vm, |vm| crate::exec::run_module(vm, module)) }
}

// ----- the AL -----

/// Push a value.
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_push(vm: *mut Vm, v: u64) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            vm.push(val(v));
            Ok(())
        })
    }
}

/// Pop a value into `out`; an empty AL is an error (`AL underflow: pop needs 1 value(s)`).
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_pop(vm: *mut Vm, out: *mut u64) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            let v = vm
                .pop()
                .ok_or_else(|| crate::error::msg::builtin_underflow("pop", 1))?;
            put(out, v.to_bits());
            Ok(())
        })
    }
}

/// Number of values on the AL (0 for a null VM).
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_al_len(vm: *const Vm) -> usize {
    // SAFETY: module contract (shared access only).
    unsafe { vm.as_ref().map_or(0, |vm| vm.al().len()) }
}

// ----- path operations -----

macro_rules! path_helpers {
    ($($(#[$doc:meta])* $name:ident => $method:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// Module contract (`path` belongs to a module loaded in `vm`).
        #[no_mangle]
        pub unsafe extern "C" fn $name(vm: *mut Vm, path: *const Path) -> i32 {
            // SAFETY: module contract; `path` is checked for null before use.
            unsafe {
                guard(vm, |vm| {
                    let path = path.as_ref().ok_or_else(|| SomaError::runtime("null path"))?;
                    vm.$method(path)
                })
            }
        }
    )*};
}

path_helpers! {
    /// `a.b`: push the Store cell's value; `Undefined Store path: 'a.b'` if never created.
    soma_rt_load_store => load_store;
    /// `a.b.`: push a CellRef, creating the cell and its parents. Safepoint.
    soma_rt_ref_store => ref_store;
    /// `_.a.`: push a CellRef into the current Register, creating cells. Safepoint.
    soma_rt_ref_reg => ref_reg;
    /// `!a.b`: pop and write with CellRef write-through. Safepoint.
    soma_rt_set_store => set_store;
    /// `!_.a`: pop and write into the current Register. Safepoint.
    soma_rt_set_reg => set_reg;
    /// `!a.b.`: pop; Void deletes, else replace value and drop children. Safepoint.
    soma_rt_setref_store => setref_store;
    /// `!_.a.`: the same in the current Register. Safepoint.
    soma_rt_setref_reg => setref_reg;
    /// `>a.b`: read and execute to completion (blocks run compiled or interpreted). Safepoint.
    soma_rt_exec_store => exec_store;
    /// `>_.a`: read from the Register and execute. Safepoint.
    soma_rt_exec_reg => exec_reg;
}

/// First step of `>chain` for executors that loop themselves: pops the AL top; writes it to
/// `out` if it is executable (run it, then continue with `Vm::chain_next`; compiled code uses
/// the JIT's `jit_chain_step`), else pushes it back
/// and writes Void (the chain is over). Underflow is an error.
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_chain_start(vm: *mut Vm, out: *mut u64) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            let v = vm.chain_start()?.unwrap_or(Value::VOID);
            put(out, v.to_bits());
            Ok(())
        })
    }
}

/// Enter a block frame for compiled code that runs a Block inline: depth check (recursion
/// error), fresh Register, tier-up counter bump. Pair with [`soma_rt_leave_block`].
///
/// # Safety
/// Module contract; `block` is a Block value.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_enter_block(vm: *mut Vm, block: u64) -> i32 {
    // SAFETY: module contract.
    unsafe { guard(vm, |vm| vm.enter_block(val(block))) }
}

/// Leave the innermost block frame (also after an error).
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_leave_block(vm: *mut Vm) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            vm.leave_block();
            Ok(())
        })
    }
}

// ----- builtins (AL in, AL out) -----

macro_rules! builtin_helpers {
    ($($(#[$doc:meta])* $name:ident => $id:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// # Safety
        /// Module contract.
        #[no_mangle]
        pub unsafe extern "C" fn $name(vm: *mut Vm) -> i32 {
            // SAFETY: module contract.
            unsafe { guard(vm, |vm| vm.call_builtin(crate::builtins::BuiltinId::$id)) }
        }
    )*};
}

builtin_helpers! {
    /// `>+` on the AL (Int slow path included). Safepoint.
    soma_rt_add => Add;
    /// `>-`. Safepoint.
    soma_rt_sub => Sub;
    /// `>*`. Safepoint.
    soma_rt_mul => Mul;
    /// `>/` (floor division). Safepoint.
    soma_rt_div => Div;
    /// `>%` (sign of the divisor). Safepoint.
    soma_rt_mod => Mod;
    /// `><` (Int/Int or Str/Str).
    soma_rt_lt => Lt;
    /// `>choose` (selects, runs nothing).
    soma_rt_choose => Choose;
    /// `>block`.
    soma_rt_block => Block;
    /// `>isNil`.
    soma_rt_is_nil => IsNil;
    /// `>isVoid`.
    soma_rt_is_void => IsVoid;
}

/// Value-form Int slow path for JIT code: `*out = a op b` where op is 0 `+`, 1 `-`, 2 `*`,
/// 3 `/`, 4 `%`. Type errors and division by zero as the builtins. Allocates, never collects.
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_int_arith(vm: *mut Vm, op: u32, a: u64, b: u64, out: *mut u64) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            let op = ArithOp::from_u32(op).ok_or_else(|| SomaError::runtime("bad arith op"))?;
            let r = vm.arith(op, val(a), val(b))?;
            put(out, r.to_bits());
            Ok(())
        })
    }
}

/// Value-form `<`: `*out` = True/False. Never allocates.
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_lt_values(vm: *mut Vm, a: u64, b: u64, out: *mut u64) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |_| {
            let r = crate::builtins::lt(val(a), val(b))?;
            put(out, r.to_bits());
            Ok(())
        })
    }
}

// ----- memory -----

/// Collect if the allocation budget is spent (always in stress mode). Safepoint. Fails
/// (`SOMA_ERROR`) when the heap is then over its memory limit (see `heap.rs`).
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_safepoint(vm: *mut Vm) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| vm.safepoint())
    }
}

/// Keep a value alive for the host; returns a non-zero handle (0 on failure).
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_pin(vm: *mut Vm, v: u64) -> u64 {
    let mut handle = 0;
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            handle = vm.pin(val(v));
            Ok(())
        })
    };
    handle
}

/// The value behind a live handle (`SOMA_ERROR` for a dead one).
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_pinned(vm: *mut Vm, handle: u64, out: *mut u64) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            let v = vm
                .pinned(handle)
                .ok_or_else(|| SomaError::runtime("dead pin handle"))?;
            put(out, v.to_bits());
            Ok(())
        })
    }
}

/// Release a handle (`SOMA_ERROR` if it was not live).
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_unpin(vm: *mut Vm, handle: u64) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            if vm.unpin(handle) {
                Ok(())
            } else {
                Err(SomaError::runtime("dead pin handle"))
            }
        })
    }
}

/// Reserve `n` shadow-stack root slots (Void-initialised); writes the address of the first.
/// Exhaustion is the recursion error.
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_shadow_reserve(vm: *mut Vm, n: usize, out_base: *mut *mut u64) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            let base = vm.shadow_reserve(n)?;
            put(out_base, base.cast::<u64>());
            Ok(())
        })
    }
}

/// Release the `n` most recently reserved shadow-stack slots.
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_shadow_release(vm: *mut Vm, n: usize) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            vm.shadow_release(n);
            Ok(())
        })
    }
}

/// Set the host callback that releases foreign handles when their objects die.
///
/// # Safety
/// Module contract; `release` must not call back into the runtime.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_set_foreign_release(vm: *mut Vm, release: Option<ForeignRelease>) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            vm.heap().set_foreign_release(release);
            Ok(())
        })
    }
}

// ----- values -----

/// Allocate a Str from `len` bytes of UTF-8 at `data` (invalid UTF-8 is an error).
///
/// # Safety
/// Module contract; `data` readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_new_str(vm: *mut Vm, data: *const u8, len: usize, out: *mut u64) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            let bytes = if len == 0 { &[][..] } else { std::slice::from_raw_parts(data, len) };
            let s = std::str::from_utf8(bytes).map_err(|_| SomaError::runtime("invalid UTF-8"))?;
            let v = vm.heap().alloc_str(s);
            put(out, v.to_bits());
            Ok(())
        })
    }
}

/// Wrap a host handle as a Foreign value whose type name is `type_name` (UTF-8, `len`
/// bytes). The heap owns the handle from now on (released through the release callback).
///
/// # Safety
/// Module contract; `type_name` readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_new_foreign(
    vm: *mut Vm,
    handle: u64,
    type_name: *const u8,
    len: usize,
    out: *mut u64,
) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            let bytes = if len == 0 { &[][..] } else { std::slice::from_raw_parts(type_name, len) };
            let name = std::str::from_utf8(bytes).map_err(|_| SomaError::runtime("invalid UTF-8"))?;
            let v = vm.heap().alloc_foreign(handle, name);
            put(out, v.to_bits());
            Ok(())
        })
    }
}

/// The UTF-8 bytes of a Str value (valid until the Str dies). `SOMA_ERROR` if not a Str.
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_str_data(vm: *mut Vm, v: u64, out_ptr: *mut *const u8, out_len: *mut usize) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |_| {
            let s = val(v).as_str().ok_or_else(|| SomaError::runtime("not a Str"))?;
            put(out_ptr, s.as_ptr());
            put(out_len, s.len());
            Ok(())
        })
    }
}

// ----- Store cell caching for compiled code -----

/// Address of the structural epoch (see `graph.rs`): a cached Store cell stays valid while
/// the value at this address is unchanged. Stable for the VM's life.
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_epoch_ptr(vm: *mut Vm) -> *const u64 {
    // SAFETY: module contract; the graph lives inside the boxed VM and never moves.
    unsafe { vm.as_mut().map_or(std::ptr::null(), |vm| vm.graph().epoch_ptr()) }
}

/// Resolve a Store path without creating anything: writes the cell (or null if the path was
/// never created). The value lives at `CELL_VALUE_OFFSET` in the cell.
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_store_lookup(vm: *mut Vm, path: *const Path, out: *mut *mut CellObj) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            let path = path.as_ref().ok_or_else(|| SomaError::runtime("null path"))?;
            let cell = vm.graph().store_lookup(&path.syms);
            put(out, cell.map_or(std::ptr::null_mut(), |c| c.as_raw().as_ptr()));
            Ok(())
        })
    }
}

/// `!path` on an already resolved cell (write-through and epoch rules included). Never
/// collects.
///
/// # Safety
/// Module contract; `cell` is a live cell of this VM (e.g. cached under an unchanged epoch).
#[no_mangle]
pub unsafe extern "C" fn soma_rt_cell_write(vm: *mut Vm, cell: *mut CellObj, v: u64) -> i32 {
    // SAFETY: module contract.
    unsafe {
        guard(vm, |vm| {
            let cell = std::ptr::NonNull::new(cell).ok_or_else(|| SomaError::runtime("null cell"))?;
            vm.graph().write_cell(CellPtr::from_raw(cell), val(v));
            Ok(())
        })
    }
}

// ----- errors -----

/// Class of the pending error: 0 none, 1 Lex, 2 Parse, 3 Runtime.
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_error_class(vm: *const Vm) -> i32 {
    // SAFETY: module contract (shared access).
    unsafe { vm.as_ref().and_then(|vm| vm.last_error()).map_or(0, |e| e.class as i32) }
}

/// Line of the pending error (0 if none or not positioned).
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_error_line(vm: *const Vm) -> u32 {
    // SAFETY: module contract (shared access).
    unsafe { vm.as_ref().and_then(|vm| vm.last_error()).map_or(0, |e| e.line) }
}

/// Column of the pending error (0 if none or not positioned).
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_error_col(vm: *const Vm) -> u32 {
    // SAFETY: module contract (shared access).
    unsafe { vm.as_ref().and_then(|vm| vm.last_error()).map_or(0, |e| e.col) }
}

/// The pending error's message as UTF-8 (valid until the error is cleared or replaced).
/// Returns `SOMA_ERROR` when there is no pending error.
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_error_message(vm: *const Vm, out_ptr: *mut *const u8, out_len: *mut usize) -> i32 {
    // SAFETY: module contract (shared access).
    let Some(e) = (unsafe { vm.as_ref() }).and_then(|vm| vm.last_error()) else {
        return SOMA_ERROR;
    };
    // SAFETY: out pointers per module contract.
    unsafe {
        put(out_ptr, e.message.as_ptr());
        put(out_len, e.message.len());
    }
    SOMA_OK
}

/// Drop the pending error (the VM stays usable after any error).
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_error_clear(vm: *mut Vm) {
    // SAFETY: module contract.
    if let Some(vm) = unsafe { vm.as_mut() } {
        vm.take_error();
    }
}

/// Give the pending error a position unless it already has one (compiled code calls this
/// with the failing instruction's line:col after a helper returns an error).
///
/// # Safety
/// Module contract.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_error_at(vm: *mut Vm, line: u32, col: u32) {
    // SAFETY: module contract.
    if let Some(vm) = unsafe { vm.as_mut() } {
        if let Some(e) = vm.take_error() {
            vm.set_error(e.at(line, col));
        }
    }
}

/// Record an error from the host (class 1 Lex, 2 Parse, else Runtime; message UTF-8).
///
/// # Safety
/// Module contract; `message` readable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn soma_rt_set_error(
    vm: *mut Vm,
    class: i32,
    message: *const u8,
    len: usize,
    line: u32,
    col: u32,
) -> i32 {
    // SAFETY: module contract.
    let Some(vm) = (unsafe { vm.as_mut() }) else {
        return SOMA_INTERNAL;
    };
    let bytes = if len == 0 || message.is_null() {
        &[][..]
    } else {
        // SAFETY: the caller guarantees `len` readable bytes.
        unsafe { std::slice::from_raw_parts(message, len) }
    };
    let class = match class {
        1 => ErrorClass::Lex,
        2 => ErrorClass::Parse,
        4 => ErrorClass::Limit,
        _ => ErrorClass::Runtime,
    };
    vm.set_error_parts(class, &String::from_utf8_lossy(bytes), line, col);
    SOMA_OK
}
