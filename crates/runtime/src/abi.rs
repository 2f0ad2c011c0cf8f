//! What the runtime and compiled code agree on: status codes and the signature of a compiled
//! Block. Both executors (the reference executor `exec.rs` and JIT code) and the C ABI
//! (`ffi.rs`, the JIT's `helpers.rs`) use these; the layouts compiled code reads inline are
//! next to their types (`vm::JitLayout`, `cell::CELL_VALUE_OFFSET`, `heap::BlockObj`).

use crate::heap::EntrySlot;
use crate::vm::Vm;

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
