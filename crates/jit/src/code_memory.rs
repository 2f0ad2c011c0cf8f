//! Code memory: where installed machine code lives. One address range per process, cut into
//! chunks that the VMs' JIT modules take, fill densely and give back when their VM is dropped.
//!
//! # Why not cranelift-jit's providers
//! `ArenaMemoryProvider` reserved 128 MiB per module and started a fresh page at every
//! finalize: each install wrote a page never touched before (a page fault, the kernel zeroing
//! it), a 200-byte function took 4 KiB and a page of its own in the i-TLB, and each VM's drop
//! unmapped its range (with the compile thread running, an inter-processor interrupt to flush
//! its TLB). A `soma test` file makes a VM per test and installs hundreds of functions in
//! them (`tests/soma/05_dict_random.soma`: 36 VMs, 450 installs); a benchmark's warm VMs pay
//! the same for each of theirs. Here a module's installs go one after the other into its
//! chunks (each from a page boundary, its functions packed), and chunks given back are used
//! again by the next VM, their pages already mapped in.
//!
//! # Layout and bounds
//! [`RESERVATION`] bytes of address space are reserved (inaccessible) on first use and never
//! unmapped: every function of the process lies within it, so calls between a function and
//! the trampolines of its module (`quiet_calls.rs`, `call rel32` on x86-64, `bl` on aarch64)
//! always reach. It is cut into [`CHUNK`]-byte chunks, handed out in address order and, once
//! given back, from the free list; a function larger than a chunk gets a run of fresh
//! chunks of its own, which go back to the free list one by one. When the range is used up,
//! allocation fails and the Block stays interpreted (a failed compile in the statistics), as
//! when a module's reservation was used up before.
//!
//! # W^X
//! No page is writable and executable at once, and no page is ever made writable again while
//! its module lives. A chunk's pages are writable (never executable) while it is free and
//! when a module takes it; `finalize` makes the pages written since the last finalize
//! executable, after making the instruction cache see the new bytes; the next function goes
//! past them, onto the next page. So an install changes protections once (about two calls
//! per install before: its page made writable, then executable), and the pages of code that
//! may be running are never touched. A chunk given back is made writable again: a stale
//! entry into a dropped VM's code faults rather than running whatever is written there
//! next. Fresh chunks are carved from the inaccessible reservation and made writable once.
//! A finalize that fails leaves only the code just written unexecutable: its install fails
//! and its Block stays interpreted.
//!
//! # Threads
//! The pool is a process-wide `Mutex`: VMs on several threads take and give back chunks
//! under it. A module's own state is its own (`Send`: the JIT builder requires it; it holds
//! addresses, no references).

use cranelift_jit::{BranchProtection, JITMemoryKind, JITMemoryProvider};
use cranelift_module::{ModuleError, ModuleResult};
use std::io;
use std::sync::{Mutex, OnceLock};

/// The process's code address space (reserved, not committed: pages cost memory only once
/// code is written to them).
pub const RESERVATION: usize = 1 << 30;
/// The unit a module takes from the pool: 64 KiB, a few of the largest functions the
/// benchmarks compile (19 KiB) or a few hundred small ones.
pub const CHUNK: usize = 64 << 10;
/// Every function starts a cache line, as it did when each had a page of its own: the
/// placement of its hot code against lines (and the decoded-instruction cache's windows)
/// then depends on the function alone, not on what was installed before it. (A function
/// with an aligned loop asks for a line itself, `loop_align::pad_entry`.)
pub const FUNCTION_ALIGN: usize = 64;

struct Pool {
    /// The reservation's start (0: it could not be made).
    base: usize,
    /// Bytes of it handed out in address order so far.
    used: usize,
    /// Chunks given back, by address.
    free: Vec<usize>,
}

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    static POOL: OnceLock<Mutex<Pool>> = OnceLock::new();
    // Every update below completes before anything can panic: poison is ignored.
    POOL.get_or_init(|| Mutex::new(Pool { base: reserve().unwrap_or(0), used: 0, free: Vec::new() }))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Reserve [`RESERVATION`] bytes of inaccessible address space.
fn reserve() -> Option<usize> {
    // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing; it overlaps
    // nothing, and nothing refers to it until chunks are handed out.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            RESERVATION,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p as usize)
}

impl Pool {
    /// `n` consecutive chunks: a free one when `n` is 1, else fresh ones.
    fn take(&mut self, n: usize) -> Option<usize> {
        if self.base == 0 {
            return None;
        }
        if n == 1 {
            if let Some(c) = self.free.pop() {
                return Some(c);
            }
        }
        let bytes = n * CHUNK;
        if self.used + bytes > RESERVATION {
            return None;
        }
        let c = self.base + self.used;
        // Fresh address space is inaccessible: writable from now on (never executable
        // until a finalize).
        protect(c, bytes, libc::PROT_READ | libc::PROT_WRITE).ok()?;
        self.used += bytes;
        Some(c)
    }
}

fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    // SAFETY: sysconf reads a constant of the system.
    *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    })
}

/// Set the protection of `len` bytes at `start` (page-aligned, inside the reservation).
fn protect(start: usize, len: usize, prot: libc::c_int) -> io::Result<()> {
    // SAFETY: the range lies in the process's code reservation, which is never unmapped; the
    // caller owns it (the pool's free space, or chunks of its module), and no code in it can
    // be running while it changes: it is code just written and not yet entered, or a dropped
    // VM's (see the module's W^X notes).
    match unsafe { libc::mprotect(start as *mut libc::c_void, len, prot) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// One JIT module's code memory (see the module docs).
#[derive(Debug, Default)]
pub struct CodeMemory {
    /// Chunks this module holds, by address.
    chunks: Vec<usize>,
    /// The chunk being filled: its address, the bytes used and the bytes below which its
    /// pages are executable (a page boundary; new code goes past it).
    current: Option<(usize, usize, usize)>,
    /// Page ranges written since the last finalize (still writable).
    written: Vec<(usize, usize)>,
    /// Whether any code was finalized (then the memory must outlive every entry into it).
    finalized: bool,
    /// Chunks given up are not used again (see [`CodeMemory::with_unique_addresses`]).
    unique_addresses: bool,
}

impl CodeMemory {
    pub fn new() -> CodeMemory {
        CodeMemory::default()
    }

    /// With `unique`, memory whose chunks, when given up, are kept from every later module
    /// (otherwise [`CodeMemory::new`]): an address then
    /// names one function for the life of the process. The perf map (`SOMA_JIT_PERFMAP=1`)
    /// needs this: its lines are never withdrawn, and a process of many VMs (benchmarks'
    /// warm runs, `soma test`) reused a dropped VM's addresses for other functions, which
    /// `perf report` then named after the first (a profile of ten warm dict_workload VMs
    /// gave one Block's samples to another's name). The cost is the memory of every dropped
    /// VM's code, while profiling only.
    pub fn with_unique_addresses(unique: bool) -> CodeMemory {
        let mut m = CodeMemory::default();
        m.unique_addresses = unique;
        m
    }

    fn exhausted() -> io::Error {
        io::Error::new(io::ErrorKind::OutOfMemory, "the process's code memory is used up")
    }

    /// Where a function of `size` bytes aligned to `align` goes: the current chunk past its
    /// executable pages, or fresh chunks.
    fn place(&mut self, size: usize, align: usize) -> io::Result<usize> {
        if let Some((chunk, used, sealed)) = self.current {
            let at = used.max(sealed).next_multiple_of(align);
            if at + size <= CHUNK {
                self.current = Some((chunk, at + size, sealed));
                return Ok(chunk + at);
            }
        }
        let n = size.div_ceil(CHUNK).max(1);
        let start = pool().take(n).ok_or_else(Self::exhausted)?;
        self.chunks.extend((0..n).map(|i| start + i * CHUNK));
        // The last chunk of a run is filled on; the others are the function's alone.
        let last = start + (n - 1) * CHUNK;
        self.current = Some((last, size - (n - 1) * CHUNK, 0));
        Ok(start)
    }
}

impl JITMemoryProvider for CodeMemory {
    fn allocate(&mut self, size: usize, align: u64, kind: JITMemoryKind) -> io::Result<*mut u8> {
        if !matches!(kind, JITMemoryKind::Executable) {
            // The JIT defines functions only (its constants are written into the code).
            return Err(io::Error::new(io::ErrorKind::Unsupported, "code memory holds code only"));
        }
        let align = usize::try_from(align).unwrap_or(usize::MAX).max(FUNCTION_ALIGN);
        if !align.is_power_of_two() || align > CHUNK {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("alignment {align}")));
        }
        let size = size.max(1);
        let at = self.place(size, align)?;
        let page = page_size();
        self.written.push((at / page * page, (at + size).next_multiple_of(page)));
        Ok(at as *mut u8)
    }

    unsafe fn free_memory(&mut self) {
        self.current = None;
        self.written.clear();
        let chunks = std::mem::take(&mut self.chunks);
        let mut p = pool();
        for c in chunks {
            // Writable (never executable) until a module takes it again; should that fail,
            // the chunk is left out of the pool rather than handed out in an unknown state.
            if protect(c, CHUNK, libc::PROT_READ | libc::PROT_WRITE).is_ok() && !self.unique_addresses {
                p.free.push(c);
            }
        }
        self.finalized = false;
    }

    fn finalize(&mut self, branch_protection: BranchProtection) -> ModuleResult<()> {
        let mut ranges = std::mem::take(&mut self.written);
        ranges.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        // Code after this goes past the pages made executable now.
        if let Some((chunk, used, sealed)) = self.current {
            self.current = Some((chunk, used, sealed.max(used.next_multiple_of(page_size()))));
        }
        let fail = |err: io::Error| ModuleError::Allocation { err };
        for (s, e) in merged {
            // SAFETY: the range is this module's code memory, just written by this thread.
            unsafe { wasmtime_jit_icache_coherence::clear_cache(s as *const libc::c_void, e - s) }.map_err(fail)?;
            let mut prot = libc::PROT_READ | libc::PROT_EXEC;
            if branch_protection == BranchProtection::BTI && cfg!(all(target_arch = "aarch64", target_os = "linux")) {
                prot |= 0x10; // PROT_BTI
            }
            // On failure only the code just written stays unexecutable (its install fails;
            // its Block stays interpreted): the pages hold nothing else.
            protect(s, e - s, prot).map_err(fail)?;
        }
        wasmtime_jit_icache_coherence::pipeline_flush_mt().map_err(fail)?;
        self.finalized = true;
        Ok(())
    }
}

impl Drop for CodeMemory {
    fn drop(&mut self) {
        // Memory holding finalized code whose module was not freed explicitly may still be
        // entered: it stays as it is (out of the pool). Memory never finalized goes back.
        if !self.finalized {
            // SAFETY: no code in it was made executable, so nothing can run in it.
            unsafe { self.free_memory() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_packed_into_a_chunk_and_chunks_are_used_again() {
        let mut m = CodeMemory::new();
        let a = m.allocate(100, 16, JITMemoryKind::Executable).unwrap() as usize;
        let b = m.allocate(100, 16, JITMemoryKind::Executable).unwrap() as usize;
        assert_eq!(b, a + 128, "the second function follows the first, on the next line");
        assert_eq!(a % FUNCTION_ALIGN, 0);
        m.finalize(BranchProtection::None).unwrap();
        // The next install starts past the pages made executable.
        let c = m.allocate(100, 16, JITMemoryKind::Executable).unwrap() as usize;
        assert_eq!(c, (b + 100).next_multiple_of(page_size()));
        m.finalize(BranchProtection::None).unwrap();
        // A function larger than a chunk gets a run of its own.
        let big = m.allocate(CHUNK + 10, 16, JITMemoryKind::Executable).unwrap() as usize;
        assert_ne!(big / CHUNK, a / CHUNK);
        m.finalize(BranchProtection::None).unwrap();
        let held = m.chunks.clone();
        assert_eq!(held.len(), 3);
        // SAFETY: nothing runs in this memory.
        unsafe { m.free_memory() };
        let mut n = CodeMemory::new();
        let c = n.allocate(10, 16, JITMemoryKind::Executable).unwrap() as usize;
        assert!(held.contains(&(c / CHUNK * CHUNK)), "a chunk given back is taken again");
        // SAFETY: as above.
        unsafe { n.free_memory() };
    }

    #[test]
    fn chunks_of_memory_with_unique_addresses_are_not_used_again() {
        let mut m = CodeMemory::with_unique_addresses(true);
        let a = m.allocate(100, 16, JITMemoryKind::Executable).unwrap() as usize;
        m.finalize(BranchProtection::None).unwrap();
        // SAFETY: nothing runs in this memory.
        unsafe { m.free_memory() };
        assert!(!pool().free.contains(&(a / CHUNK * CHUNK)), "kept out of the pool");
    }

    #[test]
    fn only_code_is_allocated() {
        let mut m = CodeMemory::new();
        assert!(m.allocate(8, 8, JITMemoryKind::Writable).is_err());
        assert!(m.allocate(8, 8, JITMemoryKind::ReadOnly).is_err());
    }
}
