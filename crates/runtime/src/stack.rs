//! The native stack guard: how much of this thread's stack is left. Block execution (the
//! executor, compiled code, helpers that execute values) refuses to go deeper when less than
//! [`STACK_RESERVE`] is left, so runaway native recursion is a SOMA recursion error, never a
//! crash.

/// Keep this much native stack free; below it, block execution is a recursion error.
const STACK_RESERVE: usize = 256 * 1024;

thread_local! {
    /// Lowest stack address this thread may use before block execution is refused
    /// (0 = not yet computed, `usize::MAX` = unknown, no guard).
    static STACK_LIMIT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// True when less than the reserve of native stack is left on this thread.
pub fn stack_is_low() -> bool {
    let marker = 0u8;
    let sp = &marker as *const u8 as usize;
    sp < thread_stack_limit()
}

/// The lowest stack address this thread may use before block execution is refused (0 when
/// the bounds are unknown: no guard). Computed once per thread.
pub fn thread_stack_limit() -> usize {
    STACK_LIMIT.with(|l| {
        if l.get() == 0 {
            l.set(compute_stack_limit());
        }
        match l.get() {
            usize::MAX => 0,
            limit => limit,
        }
    })
}

#[cfg(target_os = "linux")]
fn compute_stack_limit() -> usize {
    // SAFETY: pthread_getattr_np fills `attr` for the calling thread; we destroy it after
    // reading the stack bounds. Both calls only touch the memory we pass.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return usize::MAX;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let ok = libc::pthread_attr_getstack(&attr, &mut addr, &mut size) == 0;
        libc::pthread_attr_destroy(&mut attr);
        if !ok || addr.is_null() {
            return usize::MAX;
        }
        addr as usize + STACK_RESERVE.min(size / 2)
    }
}

#[cfg(not(target_os = "linux"))]
fn compute_stack_limit() -> usize {
    usize::MAX
}
