//! What the runtime and compiled code agree on: status codes, the signature of a compiled
//! Block, and the boundary every C-ABI helper runs its body behind ([`guard`],
//! [`catch_panic`]). Both executors (the reference executor `exec.rs` and JIT code) and the C
//! ABI (`ffi.rs`, the JIT's `helpers.rs`) use these; the layouts compiled code reads inline
//! are next to their types (`vm::JitLayout`, `cell::CELL_VALUE_OFFSET`, `heap::BlockObj`).

use crate::error::{RtResult, SomaError};
use crate::heap::EntrySlot;
use crate::value::Value;
use crate::vm::Vm;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A helper or compiled Block succeeded.
pub const SOMA_OK: i32 = 0;
/// It failed; the error is kept on the VM (`Vm::take_error`, `soma_rt_error_*`).
pub const SOMA_ERROR: i32 = 1;
/// A Rust panic was caught at the ABI boundary (also recorded as a RuntimeError on the VM).
pub const SOMA_INTERNAL: i32 = 2;

/// Signature of a compiled block: runs the block's body on `vm` in the frame its caller
/// entered and returns a status. `chained` is 1 when a `chain` loop runs the block: when the
/// body ends with the block itself on top of the AL (the loop continues with it), the code
/// may run that next iteration itself (same frame depth, a fresh Register, the entry
/// bookkeeping of `Vm::enter_block`) instead of pushing the block and returning.
pub type NativeEntry = unsafe extern "C" fn(vm: *mut Vm, chained: u32) -> i32;

impl EntrySlot {
    /// The installed compiled body, if any.
    #[inline]
    pub fn get(&self) -> Option<NativeEntry> {
        let p = self.0.get();
        if p.is_null() {
            None
        } else {
            // SAFETY: `set` is the only writer and stores only `NativeEntry` addresses, so a
            // non-null word is one (function and data pointers have the same size on every
            // target the runtime builds for: checked below).
            Some(unsafe { std::mem::transmute::<*const (), NativeEntry>(p) })
        }
    }

    /// Install (`Some`) or remove (`None`) the compiled body.
    #[inline]
    pub fn set(&self, entry: Option<NativeEntry>) {
        self.0.set(entry.map_or(std::ptr::null(), |f| f as *const ()));
    }
}

const _: () = assert!(std::mem::size_of::<NativeEntry>() == std::mem::size_of::<*const ()>());

/// Run a helper's body so that nothing unwinds out of it: a panic becomes the internal
/// RuntimeError kept on the VM (`SomaError::from_panic`, which carries the panic's message)
/// and the helper returns `on_panic`. Every helper of `ffi.rs` and of the JIT's `helpers.rs`
/// runs its body through this or [`guard`].
#[inline]
pub fn catch_panic<T>(vm: &mut Vm, on_panic: T, body: impl FnOnce(&mut Vm) -> T) -> T {
    match catch_unwind(AssertUnwindSafe(|| body(&mut *vm))) {
        Ok(r) => r,
        Err(payload) => {
            vm.set_error(SomaError::from_panic(&*payload));
            on_panic
        }
    }
}

/// [`catch_panic`] for a status-returning helper: `Ok` is [`SOMA_OK`], an error is kept on the
/// VM and is [`SOMA_ERROR`], a panic is [`SOMA_INTERNAL`].
///
/// It calls `catch_unwind` itself rather than through `catch_panic`: with the body as a
/// closure inside `catch_panic`'s closure, the unoptimised (test-profile) aarch64 build made
/// the helpers' frames so large that 4,990 nested `chain` levels no longer fit an 8 MiB stack
/// (19 did; `depth_limit_recursion_fits_an_8_mib_stack` under qemu). One closure, as here,
/// keeps them as small as before.
///
/// # Safety
/// `vm` is a live VM used by no other thread during the call, or null (reported as
/// internal).
#[inline]
pub unsafe fn guard(vm: *mut Vm, f: impl FnOnce(&mut Vm) -> RtResult<()>) -> i32 {
    // SAFETY: caller contract: a live VM, exclusively ours for the call, or null.
    let Some(vm) = (unsafe { vm.as_mut() }) else {
        return SOMA_INTERNAL;
    };
    match catch_unwind(AssertUnwindSafe(|| f(&mut *vm))) {
        Ok(Ok(())) => SOMA_OK,
        Ok(Err(e)) => {
            vm.set_error(e);
            SOMA_ERROR
        }
        Err(payload) => {
            vm.set_error(SomaError::from_panic(&*payload));
            SOMA_INTERNAL
        }
    }
}

/// The value whose bits a helper was passed.
///
/// # Safety
/// The bits are a live value of the VM the helper runs on (the helper contract: compiled
/// code and C hosts pass only values that are on the AL, in a cell, pinned, in a shadow-stack
/// slot or read since the last safepoint).
#[inline]
pub unsafe fn value_from_abi(bits: u64) -> Value {
    // SAFETY: caller contract.
    unsafe { Value::from_bits(bits) }
}
