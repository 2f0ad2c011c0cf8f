//! Heap objects and the precise, non-moving mark-sweep collector.
//!
//! # Objects
//! Every heap object is a `#[repr(C)]` struct that starts with a [`Header`] (kind + mark bit)
//! and never moves.
//!
//! # Allocation: cells come from slabs
//! Cells are by far the most numerous objects (every Register frame that is written makes
//! some, every auto-vivified path component is one) and all have the same size, so they are
//! carved out of [`CELL_CHUNK`]-cell slab chunks and recycled through a free list instead of
//! costing a `malloc`/`free` pair each:
//! * `alloc_cell` pops a free slot (value Void, no children); when the free list is empty it
//!   allocates one more chunk and threads its slots onto the list;
//! * each chunk has two side bitmaps, *in use* (set by `alloc_cell`) and *live* (set when a
//!   collection marks the cell); the sweep reads only those: an in-use cell that is not live
//!   is dead and its slot goes back on the free list untouched. `alloc_cell` resets the slot
//!   (value Void, children dropped back to the inline slots, mark cleared) as it hands it
//!   out, when the caller is about to write the cell anyway.
//! * marks are epochs (1 and 2 alternate), so survivors need no unmarking pass either.
//!
//! Chunks are never returned while the heap lives, so the cell memory is bounded by the peak
//! number of live cells (plus one chunk).
//!
//! # Spare chunks: cell memory kept for the process's next heap
//! A dropped heap hands up to [`MAX_SPARE_CHUNKS`] of its chunks to a process-wide pool, and
//! `grow_cells` takes from the pool before it allocates. A process often makes many VMs in a
//! row (`soma test` one per test, a benchmark harness one per repeat, an embedding one per
//! request), and each used to allocate its chunks afresh: 64 KiB of pages the kernel faults in
//! and zeroes, then initialised cell by cell, only for the previous VM's identical chunks to
//! have been freed a moment before (list_map_fold's warm VMs spent 7% in `grow_cells`, plus
//! page faults; with the pool, 6% less wall time). CPython's object allocator keeps its arenas
//! across objects the same way.
//!
//! A spare chunk is all dead cells: its heap is gone, so no root, value or compiled code of
//! any VM refers into it. Its cells keep stale values (never read: `alloc_cell` resets a cell
//! before handing it out) and may keep the child vectors they had spilled to (freed when the
//! cell is handed out again, or when the chunk is dropped); the taking heap rewrites each
//! cell's `slot` for its own numbering. The pool is the only state shared between the heaps
//! of different threads: a `Mutex` guards it, and a chunk in it belongs to no heap (see
//! [`SpareChunk`]'s `Send`). Cells are not in `objects`; the other kinds (strings, big ints, blocks,
//! builtins, foreign handles) are allocated individually, listed in `objects`, and freed by the
//! sweep.
//!
//! # Pacing
//! Allocation counts bytes. The next collection is due when the bytes allocated since the last
//! one exceed `max(MIN_BUDGET, live_after_last_gc * GROWTH)`: each collection costs O(live)
//! and is paid for by at least O(live) of allocation, so total GC work stays linear in the
//! allocation volume (a fixed allocation interval would make it quadratic in the live size).
//! Stress mode collects at every safepoint instead.
//!
//! # Memory limit
//! The heap has a limit (`max_bytes`, by default `limits::default_max_memory()`) on the bytes
//! it holds plus the AL's buffer. The pacing budget never lets the bytes allocated since the
//! last collection go past the limit by more than [`LIMIT_HEADROOM`], so a collection is due
//! before that; after it, [`Heap::check_limit`] fails when the live bytes (and the allocation
//! about to be made, when its size is known) exceed the limit. An allocation of known size
//! (a `concat` result, a BigInt product) is checked *before* it is made, so an allocation
//! larger than the limit never happens. After a limit error the heap may stay above the
//! limit (the Store keeps what completed statements wrote); later plain safepoints fail again
//! only once it grew by more than [`LIMIT_HEADROOM`] since, so a program can still run, read,
//! and free memory (`Void !x.`), while every error still ends the run that grew the heap.
//!
//! # Roots and safepoints
//! The heap does not know the roots; `Vm::collect` marks them (AL, Store, Register frames,
//! loaded modules, builtins, host pins, JIT shadow-stack slots) and then calls
//! [`Heap::sweep`]. Allocation **never collects**: it only counts bytes. Collection happens at
//! *safepoints* (`Vm::safepoint`), which the allocating helpers call on entry, before they
//! take anything off the AL, i.e. at a moment when every live value is in a root. A value a
//! helper holds in a Rust local after its safepoint stays valid until the next safepoint.
//!
//! # Why mark-sweep
//! Objects are referenced by raw addresses inside NaN-boxed values and by JIT code, so they
//! must not move; cycles through CellRefs are normal (a cell holding a ref to its parent), so
//! reference counting would leak. Marking uses an explicit work list, so deep cell chains do
//! not recurse on the native stack.

use crate::builtin_id::BuiltinId;
use crate::cell::{CellPtr, Children};
pub use crate::cell::{CellObj, CELL_VALUE_OFFSET};
pub use crate::object::{Header, ObjKind};
use crate::value::{Kind, Tag, Value, PAYLOAD_MASK};
use std::fmt;
use num_bigint::BigInt;
use crate::sym::Sym;
use std::cell::Cell as StdCell;
use std::ptr::NonNull;

/// An immutable UTF-8 string: the header, the length, then the bytes inline (one allocation
/// per string; see [`StrObj::text`]).
#[repr(C)]
pub struct StrObj {
    pub header: Header,
    len: usize,
    // `len` bytes of UTF-8 follow.
}

impl StrObj {
    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(
            std::mem::size_of::<StrObj>() + len,
            std::mem::align_of::<StrObj>(),
        )
        .expect("string size fits the address space")
    }

    /// The text of the string object at `p`.
    ///
    /// # Safety
    /// `p` is a live StrObj of a heap (made by `alloc_str`); the reference must not be used
    /// after the object is swept. Works from the raw pointer (whose provenance covers the
    /// whole allocation), not from a `&StrObj`, which would cover only the header.
    #[inline]
    pub unsafe fn text<'a>(p: NonNull<StrObj>) -> &'a str {
        // SAFETY: `alloc_str` wrote `len` bytes of valid UTF-8 right after the struct, in the
        // same allocation, and they never change.
        unsafe {
            let len = (*p.as_ptr()).len;
            let data = p.as_ptr().add(1).cast::<u8>();
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(data, len))
        }
    }
}

/// An Int outside the small-int range (never one that fits: see `value.rs`).
#[repr(C)]
pub struct BigIntObj {
    pub header: Header,
    pub value: BigInt,
}

/// Where a [`BlockObj`] keeps its compiled body: an [`abi::NativeEntry`](crate::abi::NativeEntry)
/// or nothing, as one nullable code address (null: none; the word compiled code loads at
/// `offset_of!(BlockObj, native_entry)`). The entry's signature names the VM, which owns this
/// heap, so the object layer stores it type-erased; `abi.rs` reads and writes it typed
/// (`get`/`set`).
#[repr(transparent)]
pub struct EntrySlot(pub(crate) StdCell<*const ()>);

impl EntrySlot {
    pub const fn empty() -> EntrySlot {
        EntrySlot(StdCell::new(std::ptr::null()))
    }
}


/// A block literal: one per Code of a loaded module, so block identity is per literal.
#[repr(C)]
pub struct BlockObj {
    pub header: Header,
    /// Index of the module in `Vm::modules`.
    pub module: u32,
    /// Index of the Code inside that module.
    pub code: u32,
    /// Executions so far (the tier-up counter).
    pub exec_count: StdCell<u64>,
    /// Compiled body, installed by the JIT; when set, executors call it instead of
    /// interpreting the Code.
    pub native_entry: EntrySlot,
    /// Where the tier-up hook sees this Block relative to the threshold, in executions: later
    /// (positive) when the JIT postponed it because its main-thread compile budget was spent,
    /// earlier (negative) when an earlier VM of the process compiled its Code. The execution
    /// count itself is never adjusted: it is what the Block ran (`Code.count` reports it).
    pub tier_up_shift: StdCell<i64>,
}

impl BlockObj {
    /// The execution count at which the tier-up hook looks at this Block, given the JIT's
    /// threshold (shifted by `tier_up_shift`).
    pub fn tier_up_due(&self, threshold: u64) -> u64 {
        threshold.saturating_add_signed(self.tier_up_shift.get())
    }
}

/// A builtin block (core builtin or one provided by the host).
#[repr(C)]
pub struct BuiltinObj {
    pub header: Header,
    pub id: BuiltinId,
    pub name: Box<str>,
}

/// An opaque host object (a Python object for the bridge). The runtime never looks inside;
/// when the object is swept, the heap's release callback gets `handle` back.
#[repr(C)]
pub struct ForeignObj {
    pub header: Header,
    pub handle: u64,
    pub type_name: Box<str>,
}

/// Host callback that releases a foreign handle (e.g. `Py_DECREF`). Must not call back into
/// the runtime.
pub type ForeignRelease = unsafe extern "C" fn(handle: u64);

/// The typed object accessors of `Value` (the bit layout is in `value.rs`).
impl Value {
    #[inline]
    pub fn as_str_obj(self) -> Option<NonNull<StrObj>> {
        self.ptr(Tag::Str)
    }
    #[inline]
    pub fn as_bigint_obj(self) -> Option<NonNull<BigIntObj>> {
        self.ptr(Tag::BigInt)
    }
    #[inline]
    pub fn as_block_obj(self) -> Option<NonNull<BlockObj>> {
        self.ptr(Tag::Block)
    }
    #[inline]
    pub fn as_builtin_obj(self) -> Option<NonNull<BuiltinObj>> {
        self.ptr(Tag::Builtin)
    }
    #[inline]
    pub fn as_foreign_obj(self) -> Option<NonNull<ForeignObj>> {
        self.ptr(Tag::Foreign)
    }

    /// The text of a Str value.
    ///
    /// The returned reference borrows the heap object, which lives until a collection frees
    /// it; callers use it before the next safepoint (or keep the Str rooted).
    #[inline]
    pub fn as_str<'a>(self) -> Option<&'a str> {
        // SAFETY: a Str value points at a live StrObj (see `from_bits`); its text is immutable
        // for the object's whole life, so a shared borrow of it cannot alias a mutation.
        self.as_str_obj().map(|p| unsafe { StrObj::text(p) })
    }

    /// The value of a BigInt (never in small-int range). Same lifetime rule as [`Value::as_str`].
    #[inline]
    pub fn as_bigint<'a>(self) -> Option<&'a num_bigint::BigInt> {
        // SAFETY: a BigInt value points at a live, immutable BigIntObj.
        self.as_bigint_obj().map(|p| unsafe { &(*p.as_ptr()).value })
    }

    /// The SOMA type name, as used in error messages and by `debug.type`.
    pub fn type_name<'a>(self) -> &'a str {
        match self.kind() {
            Kind::Double => "float",
            Kind::Void => "Void",
            Kind::Nil => "Nil",
            Kind::False | Kind::True => "Bool",
            Kind::Int | Kind::BigInt => "Int",
            Kind::Str => "Str",
            Kind::Block => "Block",
            Kind::Builtin => "BuiltinBlock",
            Kind::CellRef => "CellRef",
            Kind::Foreign => {
                let p = self.as_foreign_obj().expect("foreign tag");
                // SAFETY: a Foreign value points at a live ForeignObj whose type name is
                // immutable for its whole life.
                unsafe { &(*p.as_ptr()).type_name }
            }
        }
    }

    /// The type name error messages use: the reference's Python class names (`int`, `str`,
    /// `TrueSingleton`, `FalseSingleton`, `NilSingleton`, `VoidSingleton`, `Block`,
    /// `BuiltinBlock`, `CellRef`); a foreign object's Python type name.
    pub fn class_name<'a>(self) -> &'a str {
        match self.kind() {
            Kind::Void => "VoidSingleton",
            Kind::Nil => "NilSingleton",
            Kind::False => "FalseSingleton",
            Kind::True => "TrueSingleton",
            Kind::Int | Kind::BigInt => "int",
            Kind::Str => "str",
            _ => self.type_name(),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            Kind::Double => write!(f, "Double({})", f64::from_bits(self.to_bits())),
            Kind::Int => write!(f, "Int({})", self.as_small_int().unwrap()),
            Kind::Str => write!(f, "Str({:?})", self.as_str().unwrap()),
            Kind::BigInt => write!(f, "BigInt({})", self.as_bigint().unwrap()),
            k => write!(f, "{:?}@{:#x}", k, self.to_bits() & PAYLOAD_MASK),
        }
    }
}

/// Counters for tests, benchmarks and `SOMA_JIT_DUMP`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    pub objects: usize,
    /// Bytes of live objects as of the last sweep plus bytes allocated since.
    pub bytes: usize,
    pub collections: u64,
    pub freed_objects: u64,
}

/// The most emptied child vectors a heap keeps for reuse (`Heap::spare_spills`). A record of
/// more than `INLINE_CHILDREN` fields (the stdlib dict's nodes have five) keeps its children in
/// a vector; such records die and are made at about the same rate, so a few spares serve
/// them all, where each made a vector (`malloc`) and its cell's next user freed one (`free`).
const MAX_SPARE_SPILLS: usize = 64;

/// Smallest allocation budget between collections (bytes). Measured: 1 MiB beats 4 MiB on
/// every bench program (a smaller young working set stays in cache; with 4 MiB, freeing
/// big bursts of strings made malloc trim and re-fault its heap: 6x the page faults).
const MIN_BUDGET: usize = 1 << 20;

/// The budget after a collection is at least `GROWTH_NUM / GROWTH_DEN` times the live bytes.
const GROWTH_NUM: usize = 3;
const GROWTH_DEN: usize = 2;

/// How many objects [`Heap::trace`] has requested from memory ahead of visiting them. A
/// visit is a few dozen instructions and a miss to memory hundreds of cycles, so several
/// misses must be in flight for the loop to stop waiting on each in turn; 16 lines are
/// 1 KiB, far from evicting one another. Measured on bst (a 6 MB heap), the share of
/// samples in the trace: 20% with no lookahead, 13% at 4, 11% at 8, 9.5% at 16.
const TRACE_PREFETCH_DEPTH: usize = 16;

/// Ask the memory system for the cache line at `p`, without waiting for it. Only a hint: it
/// never faults and never changes what a later load reads, whatever `p` is.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` reads no memory architecturally and never faults (SSE, part of
    // the x86_64 baseline).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: `prfm` is a hint: it never faults and has no architectural effect.
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{p}]", p = in(reg) p, options(nostack, readonly, preserves_flags));
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let _ = p;
}

/// Near the memory limit, collections are still at least this many bytes of allocation apart
/// (so a heap close to its limit does not collect at every safepoint); also how far the
/// bytes held may overshoot the limit before a safepoint notices.
const LIMIT_HEADROOM: usize = 256 << 10;

/// Cells per slab chunk.
pub const CELL_CHUNK: usize = 1024;

const CHUNK_WORDS: usize = CELL_CHUNK / 64;

/// Side bitmaps of one slab chunk (bit i is cell i of the chunk).
struct ChunkBits {
    /// Cells handed out and not found dead by a sweep yet.
    in_use: [u64; CHUNK_WORDS],
    /// Cells marked by the collection in progress.
    live: [u64; CHUNK_WORDS],
}

/// The object heap.
pub struct Heap {
    objects: Vec<NonNull<Header>>,
    /// Bytes of the objects that survived the last sweep.
    live_bytes: usize,
    /// Bytes allocated since the last sweep.
    allocated_since_gc: usize,
    /// Collect when `allocated_since_gc` exceeds this.
    budget: usize,
    /// Collect at every safepoint.
    stress: bool,
    /// The memory limit (bytes of objects plus the AL's buffer; see the module docs).
    max_bytes: usize,
    /// Bytes held when the last limit error was raised (`None`: none since the heap was
    /// last found within its limit): a plain safepoint fails again only when the heap grew
    /// more than [`LIMIT_HEADROOM`] past it.
    over_limit_at: Option<usize>,
    mark_stack: Vec<NonNull<Header>>,
    /// Slab chunks of cells (see the module documentation). Never freed before the heap.
    cell_chunks: Vec<Box<[CellObj]>>,
    /// `cell_bits[i]` describes `cell_chunks[i]`.
    cell_bits: Vec<ChunkBits>,
    /// Free cell slots, not reset yet (`alloc_cell` resets a slot when it hands it out).
    cell_free: Vec<NonNull<CellObj>>,
    /// Emptied child vectors of recycled cells (at most [`MAX_SPARE_SPILLS`]), for records
    /// made with more fields than a cell holds inline ([`Heap::take_spare_spill`]).
    spare_spills: Vec<Vec<(Sym, CellPtr)>>,
    /// Where chunks come from before they are allocated, and go when the heap is dropped.
    spare: &'static ChunkPool,
    /// Current mark epoch: 1 or 2 (see `Header::marked`).
    mark_epoch: u8,
    /// Cells handed out and not swept yet.
    cells_in_use: usize,
    foreign_release: Option<ForeignRelease>,
    collections: u64,
    freed_objects: u64,
}

/// True when GC stress mode is requested (cargo feature `gc-stress` or `SOMA_GC_STRESS=1`).
pub fn stress_requested() -> bool {
    cfg!(feature = "gc-stress") || std::env::var("SOMA_GC_STRESS").is_ok_and(|v| v == "1")
}

impl Default for Heap {
    fn default() -> Self {
        Heap::new()
    }
}

impl Heap {
    pub fn new() -> Heap {
        Heap::with_pool(&SPARE_CHUNKS)
    }

    /// A heap that takes its chunks from `spare` and gives them back there.
    pub fn with_pool(spare: &'static ChunkPool) -> Heap {
        Heap {
            objects: Vec::new(),
            live_bytes: 0,
            allocated_since_gc: 0,
            budget: MIN_BUDGET,
            stress: stress_requested(),
            max_bytes: crate::limits::default_max_memory(),
            over_limit_at: None,
            mark_stack: Vec::new(),
            cell_chunks: Vec::new(),
            cell_bits: Vec::new(),
            cell_free: Vec::new(),
            spare_spills: Vec::new(),
            spare,
            mark_epoch: 1,
            cells_in_use: 0,
            foreign_release: None,
            collections: 0,
            freed_objects: 0,
        }
    }

    pub fn set_stress(&mut self, on: bool) {
        self.stress = on;
    }

    pub fn stress(&self) -> bool {
        self.stress
    }

    pub fn set_foreign_release(&mut self, release: Option<ForeignRelease>) {
        self.foreign_release = release;
    }

    pub fn stats(&self) -> HeapStats {
        HeapStats {
            objects: self.objects.len() + self.cells_in_use,
            bytes: self.live_bytes + self.allocated_since_gc,
            collections: self.collections,
            freed_objects: self.freed_objects,
        }
    }

    /// The memory limit in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Set the memory limit (at least 1 byte); takes effect at the next safepoint.
    pub fn set_max_bytes(&mut self, bytes: usize) {
        self.max_bytes = bytes.max(1);
        self.over_limit_at = None;
        self.budget = self.budget.min(self.room());
    }

    /// Bytes of the objects that survived the last collection.
    pub fn live_bytes(&self) -> usize {
        self.live_bytes
    }

    /// Bytes of objects held now (survivors of the last collection plus everything
    /// allocated since, garbage included).
    pub fn held_bytes(&self) -> usize {
        self.live_bytes + self.allocated_since_gc
    }

    /// Allocation room before the limit, at least [`LIMIT_HEADROOM`].
    fn room(&self) -> usize {
        self.max_bytes.saturating_sub(self.live_bytes).max(LIMIT_HEADROOM)
    }

    /// Right after a collection: the memory limit error when the live bytes plus `al_bytes`
    /// (the AL's buffer) plus `extra` (an allocation about to be made) exceed the limit.
    /// With `extra == 0` (a plain safepoint) after a limit error, only once the heap grew
    /// more than [`LIMIT_HEADROOM`] past what it held then: a program over its limit can
    /// still run, read and free memory, and every error ends the run that grew it.
    pub fn check_limit(&mut self, al_bytes: usize, extra: usize) -> crate::error::RtResult<()> {
        let held = self.live_bytes.saturating_add(al_bytes);
        if held.saturating_add(extra) <= self.max_bytes {
            self.over_limit_at = None;
            return Ok(());
        }
        if extra == 0 && self.over_limit_at.is_some_and(|at| held <= at.saturating_add(LIMIT_HEADROOM)) {
            return Ok(());
        }
        self.over_limit_at = Some(held);
        Err(crate::error::msg::memory_limit(self.max_bytes))
    }

    /// Before an allocation of `extra` bytes where no collection may run (a value-form
    /// helper of compiled code): the memory limit error when the survivors of the last
    /// collection plus `extra` exceed the limit. (Garbage since then is not counted: the next
    /// safepoint collects it and checks the total.)
    pub fn check_alloc(&self, extra: usize) -> crate::error::RtResult<()> {
        if self.live_bytes.saturating_add(extra) > self.max_bytes {
            Err(crate::error::msg::memory_limit(self.max_bytes))
        } else {
            Ok(())
        }
    }

    /// True when the next safepoint should collect.
    #[inline]
    pub fn should_collect(&self) -> bool {
        self.stress || self.allocated_since_gc > self.budget
    }

    fn register<T>(&mut self, obj: Box<T>, bytes: usize) -> NonNull<T> {
        let ptr = NonNull::from(Box::leak(obj));
        self.objects.push(ptr.cast());
        self.allocated_since_gc += bytes;
        ptr
    }

    pub fn alloc_str(&mut self, text: &str) -> Value {
        self.alloc_str_concat(text, "")
    }

    /// A string of `a` followed by `b`, copied once into the new object (`concat`).
    pub fn alloc_str_concat(&mut self, a: &str, b: &str) -> Value {
        let len = a.len().checked_add(b.len()).expect("string size fits the address space");
        let layout = StrObj::layout(len);
        // SAFETY: the layout has a non-zero size (the struct itself); the struct and then the
        // `len` bytes (two valid UTF-8 strings, so valid UTF-8) are written before the object
        // is published.
        let p = unsafe {
            let raw = std::alloc::alloc(layout).cast::<StrObj>();
            let Some(p) = NonNull::new(raw) else {
                std::alloc::handle_alloc_error(layout);
            };
            p.as_ptr().write(StrObj {
                header: Header::new(ObjKind::Str),
                len,
            });
            let data = p.as_ptr().add(1).cast::<u8>();
            std::ptr::copy_nonoverlapping(a.as_ptr(), data, a.len());
            std::ptr::copy_nonoverlapping(b.as_ptr(), data.add(a.len()), b.len());
            p
        };
        self.objects.push(p.cast());
        self.allocated_since_gc += layout.size();
        Value::from_ptr(Tag::Str, p.as_ptr() as usize)
    }

    /// Box a BigInt. Callers normalise first (`int::from_bigint`): the value must not fit in a
    /// small int.
    pub(crate) fn alloc_bigint(&mut self, value: BigInt) -> Value {
        debug_assert!(i64::try_from(&value).map_or(true, |i| !Value::fits_small(i)));
        let bytes = std::mem::size_of::<BigIntObj>() + (value.bits() as usize).div_ceil(8);
        let p = self.register(
            Box::new(BigIntObj {
                header: Header::new(ObjKind::BigInt),
                value,
            }),
            bytes,
        );
        Value::from_ptr(Tag::BigInt, p.as_ptr() as usize)
    }

    pub(crate) fn alloc_block(&mut self, module: u32, code: u32) -> Value {
        let p = self.register(
            Box::new(BlockObj {
                header: Header::new(ObjKind::Block),
                module,
                code,
                exec_count: StdCell::new(0),
                native_entry: EntrySlot::empty(),
                tier_up_shift: StdCell::new(0),
            }),
            std::mem::size_of::<BlockObj>(),
        );
        Value::from_ptr(Tag::Block, p.as_ptr() as usize)
    }

    pub(crate) fn alloc_builtin(&mut self, id: BuiltinId, name: &str) -> Value {
        let p = self.register(
            Box::new(BuiltinObj {
                header: Header::new(ObjKind::Builtin),
                id,
                name: name.into(),
            }),
            std::mem::size_of::<BuiltinObj>() + name.len(),
        );
        Value::from_ptr(Tag::Builtin, p.as_ptr() as usize)
    }

    /// A fresh cell with value Void and no children.
    #[inline]
    pub fn alloc_cell(&mut self) -> CellPtr {
        let p = match self.cell_free.pop() {
            Some(p) => p,
            None => self.grow_cells(),
        };
        // SAFETY: a free slot belongs to a live chunk and is owned by nobody but the free
        // list (a dead cell is unreachable from every root); resetting it makes it
        // indistinguishable from a new cell. The mark must go too: a stale epoch could equal
        // a later collection's.
        let slot = unsafe {
            let cell = &mut *p.as_ptr();
            cell.header.marked.set(0);
            cell.header.cell_flags.set(0);
            cell.value = Value::VOID;
            if let Some(v) = cell.children.recycle() {
                if self.spare_spills.len() < MAX_SPARE_SPILLS {
                    self.spare_spills.push(v);
                }
            }
            cell.slot as usize
        };
        if let Some(bits) = self.cell_bits.get_mut(slot / CELL_CHUNK) {
            let i = slot % CELL_CHUNK;
            bits.in_use[i / 64] |= 1 << (i % 64);
        }
        self.cells_in_use += 1;
        self.allocated_since_gc += std::mem::size_of::<CellObj>();
        CellPtr::from_raw(p)
    }

    /// An emptied child vector of a recycled cell, if one is kept (for
    /// [`CellPtr::fill_children_reusing`]).
    pub fn take_spare_spill(&mut self) -> Option<Vec<(Sym, CellPtr)>> {
        self.spare_spills.pop()
    }

    /// Add a chunk of free cells; returns one of them (not on the free list).
    #[cold]
    fn grow_cells(&mut self) -> NonNull<CellObj> {
        let first = u32::try_from(self.cell_chunks.len() * CELL_CHUNK)
            .expect("fewer than 2^32 cell slots");
        let chunk = match self.spare.take() {
            Some(mut chunk) => {
                // Only the numbering is this heap's own; the rest of each cell is reset by
                // `alloc_cell` as it hands the cell out.
                for (cell, slot) in chunk.iter_mut().zip(first..) {
                    cell.slot = slot;
                }
                chunk
            }
            None => (0..CELL_CHUNK as u32)
                .map(|i| CellObj {
                    header: Header::new(ObjKind::Cell),
                    slot: first + i,
                    value: Value::VOID,
                    children: Children::new(),
                })
                .collect(),
        };
        self.cell_chunks.push(chunk);
        self.cell_bits.push(ChunkBits {
            in_use: [0; CHUNK_WORDS],
            live: [0; CHUNK_WORDS],
        });
        let chunk = self.cell_chunks.last_mut().expect("just pushed");
        let base = chunk.as_mut_ptr();
        // Hand out low addresses first (pop takes from the end).
        for i in (1..CELL_CHUNK).rev() {
            // SAFETY: `i` is in bounds of the chunk; the boxed slice never moves.
            self.cell_free.push(unsafe { NonNull::new_unchecked(base.add(i)) });
        }
        // SAFETY: slot 0 of a non-empty chunk.
        unsafe { NonNull::new_unchecked(base) }
    }

    /// Wrap a host handle. The heap owns the handle from now on and gives it back to the
    /// release callback when the object dies.
    pub fn alloc_foreign(&mut self, handle: u64, type_name: &str) -> Value {
        let p = self.register(
            Box::new(ForeignObj {
                header: Header::new(ObjKind::Foreign),
                handle,
                type_name: type_name.into(),
            }),
            std::mem::size_of::<ForeignObj>() + type_name.len(),
        );
        Value::from_ptr(Tag::Foreign, p.as_ptr() as usize)
    }

    // ----- marking -----

    /// Mark a value (and, after [`Heap::trace`], everything reachable from it).
    #[inline]
    pub fn mark_value(&mut self, v: Value) {
        if let Some(h) = v.heap_addr() {
            self.mark_stack.push(h);
        }
    }

    /// Mark a cell (and, after [`Heap::trace`], everything reachable from it).
    #[inline]
    pub fn mark_cell(&mut self, c: CellPtr) {
        self.mark_stack.push(c.as_raw().cast());
    }

    /// Mark everything reachable from the objects [`Heap::mark_value`] and
    /// [`Heap::mark_cell`] queued.
    ///
    /// Objects are marked when they are *visited*, not when they are queued: queuing an
    /// object reads nothing of it, so a cell's children and its CellRef's target go on the
    /// mark stack without touching their memory (the same object may be queued more than
    /// once; its mark is checked on its visit). Between the stack and the visit every object
    /// waits in a short FIFO, and its cache line is requested as it enters: the cache misses
    /// of a heap bigger than the cache (one per object, most of this loop's time) overlap
    /// instead of being paid one after the other.
    pub fn trace(&mut self) {
        let mut waiting = [NonNull::<Header>::dangling(); TRACE_PREFETCH_DEPTH];
        let (mut head, mut len) = (0usize, 0usize);
        loop {
            while len < TRACE_PREFETCH_DEPTH {
                let Some(h) = self.mark_stack.pop() else { break };
                prefetch(h.as_ptr().cast());
                waiting[(head + len) % TRACE_PREFETCH_DEPTH] = h;
                len += 1;
            }
            if len == 0 {
                return;
            }
            let h = waiting[head];
            head = (head + 1) % TRACE_PREFETCH_DEPTH;
            len -= 1;
            self.visit(h);
        }
    }

    /// Mark one queued object unless it is marked already; a cell's value and children are
    /// queued in turn.
    #[inline]
    fn visit(&mut self, h: NonNull<Header>) {
        // SAFETY: `h` was queued from a root or from a live cell's fields; by the GC invariant
        // every such object is alive (allocated here and not yet swept).
        let header = unsafe { h.as_ref() };
        if header.marked.get() == self.mark_epoch {
            return;
        }
        header.marked.set(self.mark_epoch);
        if header.kind != ObjKind::Cell {
            return;
        }
        // SAFETY: the header says this is a CellObj; it is alive (above). The shared borrow
        // of its children lasts for the loop, which only pushes onto `mark_stack`.
        let cell = unsafe { &*h.cast::<CellObj>().as_ptr() };
        let slot = cell.slot as usize;
        if let Some(bits) = self.cell_bits.get_mut(slot / CELL_CHUNK) {
            let i = slot % CELL_CHUNK;
            bits.live[i / 64] |= 1 << (i % 64);
        }
        if let Some(v) = cell.value.heap_addr() {
            self.mark_stack.push(v);
        }
        for c in cell.children.cells() {
            self.mark_stack.push(c.as_raw().cast());
        }
    }

    /// Free every unmarked object, start a new mark epoch (survivors read as unmarked) and
    /// reset the budget.
    /// Call only after marking every root and [`Heap::trace`].
    pub fn sweep(&mut self) {
        debug_assert!(self.mark_stack.is_empty());
        let release = self.foreign_release;
        let epoch = self.mark_epoch;
        let mut live = 0usize;
        let mut freed = 0u64;
        // Cells: only the side bitmaps are read. A cell in use and not marked is dead: its
        // slot goes on the free list as it is (`alloc_cell` resets it); no cell is touched.
        let mut cells_live = 0usize;
        for (chunk, bits) in self.cell_chunks.iter_mut().zip(self.cell_bits.iter_mut()) {
            let base = chunk.as_mut_ptr();
            for w in 0..CHUNK_WORDS {
                let live = bits.live[w];
                let mut dead = bits.in_use[w] & !live;
                bits.in_use[w] = live;
                bits.live[w] = 0;
                cells_live += live.count_ones() as usize;
                freed += u64::from(dead.count_ones());
                while dead != 0 {
                    let i = w * 64 + dead.trailing_zeros() as usize;
                    dead &= dead - 1;
                    // SAFETY: `i < CELL_CHUNK`, in bounds of the chunk, which never moves.
                    self.cell_free.push(unsafe { NonNull::new_unchecked(base.add(i)) });
                }
            }
        }
        self.cells_in_use = cells_live;
        live += cells_live * std::mem::size_of::<CellObj>();
        self.objects.retain(|&h| {
            // SAFETY: every address in `objects` is a live object allocated by `register`
            // and freed only here, after which it is removed from the list.
            let header = unsafe { h.as_ref() };
            if header.marked.get() == epoch {
                // SAFETY: `h` is a live object of this heap (it survives this sweep).
                live += unsafe { object_bytes(h) };
                true
            } else {
                freed += 1;
                // SAFETY: unmarked means unreachable from every root, so no value that can be
                // used again points at it.
                unsafe { free_object(h, release) };
                false
            }
        });
        self.live_bytes = live;
        self.allocated_since_gc = 0;
        self.budget = MIN_BUDGET.max(live / GROWTH_DEN * GROWTH_NUM).min(self.room());
        // The next collection marks with the other epoch: every current mark reads as unmarked.
        self.mark_epoch = 3 - self.mark_epoch;
        self.collections += 1;
        self.freed_objects += freed;
    }
}

/// Accounted size of an object (must be stable over its life).
///
/// # Safety
/// `h` must be a live object of this heap.
unsafe fn object_bytes(h: NonNull<Header>) -> usize {
    // SAFETY (whole body): the kind in the header says which struct `h` heads.
    unsafe {
        match h.as_ref().kind {
            ObjKind::Str => std::mem::size_of::<StrObj>() + h.cast::<StrObj>().as_ref().len,
            ObjKind::BigInt => {
                std::mem::size_of::<BigIntObj>()
                    + (h.cast::<BigIntObj>().as_ref().value.bits() as usize).div_ceil(8)
            }
            ObjKind::Block => std::mem::size_of::<BlockObj>(),
            ObjKind::Builtin => {
                std::mem::size_of::<BuiltinObj>() + h.cast::<BuiltinObj>().as_ref().name.len()
            }
            ObjKind::Cell => std::mem::size_of::<CellObj>(),
            ObjKind::Foreign => {
                std::mem::size_of::<ForeignObj>()
                    + h.cast::<ForeignObj>().as_ref().type_name.len()
            }
        }
    }
}

/// Drop an object's Box.
///
/// # Safety
/// `h` must be a live object of this heap that nothing will use again.
unsafe fn free_object(h: NonNull<Header>, release: Option<ForeignRelease>) {
    // SAFETY (whole body): `h` was produced by `Box::leak` of the struct its kind names.
    unsafe {
        match h.as_ref().kind {
            ObjKind::Str => {
                let p = h.cast::<StrObj>();
                std::alloc::dealloc(p.as_ptr().cast(), StrObj::layout(p.as_ref().len));
            }
            ObjKind::BigInt => drop(Box::from_raw(h.cast::<BigIntObj>().as_ptr())),
            ObjKind::Block => drop(Box::from_raw(h.cast::<BlockObj>().as_ptr())),
            ObjKind::Builtin => drop(Box::from_raw(h.cast::<BuiltinObj>().as_ptr())),
            ObjKind::Cell => unreachable!("cells live in slabs and are never freed one by one"),
            ObjKind::Foreign => {
                let obj = Box::from_raw(h.cast::<ForeignObj>().as_ptr());
                if let Some(release) = release {
                    release(obj.handle);
                }
            }
        }
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        let release = self.foreign_release;
        // The cell chunks drop with the heap (after this), freeing every cell at once.
        for h in self.objects.drain(..) {
            // SAFETY: the heap is going away with everything it owns; nothing can use these
            // objects afterwards (a Vm drops its heap last, see `Vm`'s field order).
            unsafe { free_object(h, release) };
        }
        self.spare.keep(&mut self.cell_chunks);
    }
}

/// Most chunks the process keeps for later heaps (16 MiB of cells): enough for the VMs of a
/// `soma test` file or of a benchmark's repeats, and a bound on what a process holds after
/// its VMs are gone.
pub const MAX_SPARE_CHUNKS: usize = 256;

/// Cell chunks of dropped heaps, for the next heaps (see the module docs). The process has
/// one, [`SPARE_CHUNKS`]; tests make their own.
pub struct ChunkPool {
    chunks: std::sync::Mutex<Vec<SpareChunk>>,
}

/// The process's pool, the one every heap uses unless made with [`Heap::with_pool`].
pub static SPARE_CHUNKS: ChunkPool = ChunkPool::new();

/// A chunk of a dropped heap, in a pool.
struct SpareChunk(Box<[CellObj]>);

// SAFETY: a spare chunk belongs to no heap: the heap that made it was dropped, so nothing of
// any VM refers into it, and the `Cell` fields of its headers are accessed only by the heap
// that takes it, after taking it. What it owns besides plain data (cells' spilled child
// vectors) is memory of the global allocator, which any thread may free.
unsafe impl Send for SpareChunk {}

impl ChunkPool {
    pub const fn new() -> ChunkPool {
        ChunkPool { chunks: std::sync::Mutex::new(Vec::new()) }
    }

    /// Chunks in the pool.
    pub fn len(&self) -> usize {
        self.chunks.lock().map_or(0, |c| c.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Take the chunks of a heap being dropped, up to the bound (the rest are freed).
    fn keep(&self, chunks: &mut Vec<Box<[CellObj]>>) {
        // A poisoned lock (a panic while it was held) only costs the reuse.
        if let Ok(mut spare) = self.chunks.lock() {
            let room = MAX_SPARE_CHUNKS.saturating_sub(spare.len());
            let keep = chunks.len().min(room);
            spare.extend(chunks.drain(..keep).map(SpareChunk));
        }
    }

    /// A chunk, if the pool has one.
    fn take(&self) -> Option<Box<[CellObj]>> {
        self.chunks.lock().ok()?.pop().map(|SpareChunk(chunk)| chunk)
    }
}

impl Default for ChunkPool {
    fn default() -> Self {
        ChunkPool::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_heaps_chunks_serve_the_next_heap_as_new_cells() {
        // A pool of the test's own: the process's is shared with the tests running beside it.
        static POOL: ChunkPool = ChunkPool::new();
        let pool = &POOL;
        let mut old = Heap::with_pool(pool);
        let first = old.alloc_cell();
        // Leave it as a dead heap's cell can be: a value and spilled children.
        first.set_value(Value::small_int(7).expect("small"));
        for name in ["a", "b", "c", "d", "e", "f"] {
            let child = old.alloc_cell();
            first.insert_child(name, child);
        }
        assert_eq!(first.child_count(), 6);
        let address = first.as_raw();
        for _ in 0..CELL_CHUNK {
            old.alloc_cell(); // a second chunk
        }
        drop(old);
        assert_eq!(pool.len(), 2);

        let mut new = Heap::with_pool(pool);
        let cells: Vec<CellPtr> = (0..2 * CELL_CHUNK).map(|_| new.alloc_cell()).collect();
        assert!(pool.is_empty(), "both chunks taken before any is allocated");
        assert!(cells.iter().any(|c| c.as_raw() == address), "the old cells are handed out again");
        for c in &cells {
            assert!(c.value().is_void());
            assert_eq!(c.child_count(), 0);
        }
        // The slots are the new heap's: marking and sweeping find each cell by it.
        let keep = cells[CELL_CHUNK + 3];
        new.mark_cell(keep);
        new.trace();
        new.sweep();
        assert_eq!(new.stats().objects, 1);
        drop(new);
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn the_pool_keeps_at_most_its_bound() {
        static POOL: ChunkPool = ChunkPool::new();
        let pool = &POOL;
        let mut heap = Heap::with_pool(pool);
        for _ in 0..(MAX_SPARE_CHUNKS + 3) * CELL_CHUNK {
            heap.alloc_cell();
        }
        drop(heap);
        assert_eq!(pool.len(), MAX_SPARE_CHUNKS);
    }

    #[test]
    fn unreachable_objects_are_swept_and_marked_ones_survive() {
        let mut heap = Heap::new();
        let keep = heap.alloc_str("keep");
        let _drop = heap.alloc_str("drop");
        let cell = heap.alloc_cell();
        let inner = heap.alloc_str("inner");
        cell.set_value(inner);
        assert_eq!(heap.stats().objects, 4);
        heap.mark_value(keep);
        heap.mark_cell(cell);
        heap.trace();
        heap.sweep();
        assert_eq!(heap.stats().objects, 3);
        assert_eq!(keep.as_str(), Some("keep"));
        assert_eq!(cell.value().as_str(), Some("inner"));
        // Nothing marked: everything goes.
        heap.sweep();
        assert_eq!(heap.stats().objects, 0);
        assert_eq!(heap.stats().freed_objects, 4);
    }

    #[test]
    fn cycles_are_reclaimed() {
        let mut heap = Heap::new();
        let parent = heap.alloc_cell();
        let child = heap.alloc_cell();
        parent.insert_child("c", child);
        // child holds a CellRef to its parent, parent a CellRef to itself.
        child.set_value(parent.as_value());
        parent.set_value(parent.as_value());
        heap.mark_cell(child);
        heap.trace();
        heap.sweep();
        assert_eq!(heap.stats().objects, 2, "reachable cycle survives");
        heap.sweep();
        assert_eq!(heap.stats().objects, 0, "unreachable cycle is freed");
    }

    /// The trace marks on visit, through a lookahead queue: a graph many times deeper and
    /// wider than the queue, with objects shared by several parents (queued more than once)
    /// and reached both as children and through CellRef values, keeps exactly what a root
    /// reaches.
    #[test]
    fn a_graph_larger_than_the_trace_lookahead_keeps_exactly_the_reachable() {
        let mut heap = Heap::new();
        let shared = heap.alloc_str("shared");
        // A chain of CellRefs, each link also holding the shared string in a child and the
        // link before it as a second child: every link is reached twice.
        let head = heap.alloc_cell();
        let mut prev = head;
        for i in 0..(TRACE_PREFETCH_DEPTH * 40) {
            let link = heap.alloc_cell();
            let leaf = heap.alloc_cell();
            leaf.set_value(shared);
            link.insert_child(format!("s{i}").as_str(), leaf);
            let back = heap.alloc_cell();
            back.set_value(prev.as_value());
            link.insert_child("back", back);
            prev.set_value(link.as_value());
            prev = link;
        }
        // A wide record (spilled children) reached only through the last link.
        let wide = heap.alloc_cell();
        for i in 0..(TRACE_PREFETCH_DEPTH * 3) {
            let field = heap.alloc_cell();
            field.set_value(heap.alloc_str(&format!("f{i}")));
            wide.insert_child(format!("f{i}").as_str(), field);
        }
        prev.set_value(wide.as_value());
        // Garbage of the same shapes, pointing into the live graph.
        for _ in 0..(TRACE_PREFETCH_DEPTH * 10) {
            let dead = heap.alloc_cell();
            dead.set_value(head.as_value());
            dead.insert_child("w", wide);
            heap.alloc_str("dead");
        }
        let before = heap.stats().objects;
        let garbage = TRACE_PREFETCH_DEPTH * 10 * 2;
        heap.mark_cell(head);
        heap.mark_cell(head); // a root queued twice is marked once
        heap.trace();
        heap.sweep();
        assert_eq!(heap.stats().objects, before - garbage);
        assert_eq!(heap.stats().freed_objects, garbage as u64);
        // Everything the root reaches is intact.
        let mut link = head;
        let mut links = 0;
        while let Some(next) = link.value().as_cell() {
            if next == wide {
                break;
            }
            assert_eq!(next.child_sym(Sym::intern("back")).unwrap().value(), link.as_value());
            link = next;
            links += 1;
        }
        assert_eq!(links, TRACE_PREFETCH_DEPTH * 40);
        assert_eq!(shared.as_str(), Some("shared"));
        let last = TRACE_PREFETCH_DEPTH * 3 - 1;
        let field = wide.child_sym(Sym::intern(&format!("f{last}"))).unwrap();
        assert_eq!(field.value().as_str(), Some(format!("f{last}").as_str()));
    }

    #[test]
    fn swept_cells_are_recycled_clean() {
        let mut heap = Heap::new();
        let a = heap.alloc_cell();
        let child = heap.alloc_cell();
        a.insert_child("k", child);
        let s = heap.alloc_str("x");
        a.set_value(s);
        heap.sweep(); // nothing marked: both cells go to the pool, the Str is freed
        assert_eq!(heap.stats().objects, 0);
        let b = heap.alloc_cell();
        let c = heap.alloc_cell();
        assert!([a, child].contains(&b) && [a, child].contains(&c), "pooled cells reused");
        for cell in [b, c] {
            assert_eq!(cell.value(), Value::VOID);
            assert_eq!(cell.child_count(), 0);
        }
        assert_eq!(heap.stats().objects, 2);
    }

    /// A dead record's child vector (five fields: more than a cell holds inline) is kept when
    /// its cell is reused, emptied, and the next record of as many fields takes it: its
    /// children are that record's own, in order.
    #[test]
    fn a_dead_records_child_vector_serves_the_next_record() {
        let mut heap = Heap::new();
        let names: Vec<Sym> = (0..5).map(|i| Sym(100 + i)).collect();
        let record = heap.alloc_cell();
        let fields: Vec<(Sym, CellPtr)> = names.iter().map(|&n| (n, heap.alloc_cell())).collect();
        record.fill_children(&fields);
        heap.sweep(); // nothing marked: every cell is free
        assert!(heap.spare_spills.is_empty(), "a dead cell keeps its children until reused");
        let cells: Vec<CellPtr> = (0..6).map(|_| heap.alloc_cell()).collect();
        assert_eq!(heap.spare_spills.len(), 1, "the record's slot was reused: its vector is spare");
        assert!(cells.iter().all(|c| c.child_count() == 0), "reused cells start empty");
        let spare = heap.take_spare_spill();
        assert!(spare.as_ref().is_some_and(|v| v.is_empty()), "handed out emptied");
        let entries: Vec<(Sym, CellPtr)> = names.iter().zip(&cells[1..]).map(|(&n, &c)| (n, c)).collect();
        cells[0].fill_children_reusing(&entries, spare);
        assert_eq!(cells[0].child_count(), 5);
        for (n, c) in &entries {
            assert_eq!(cells[0].child_sym(*n), Some(*c));
        }
        assert!(heap.take_spare_spill().is_none());
    }

    static RELEASED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    unsafe extern "C" fn record_release(handle: u64) {
        RELEASED.fetch_add(handle, std::sync::atomic::Ordering::SeqCst);
    }

    #[test]
    fn foreign_handles_are_released_once_when_swept_or_dropped() {
        let mut heap = Heap::new();
        heap.set_foreign_release(Some(record_release));
        let f = heap.alloc_foreign(1000, "list");
        assert_eq!(f.type_name(), "list");
        heap.alloc_foreign(7, "float");
        heap.mark_value(f);
        heap.trace();
        heap.sweep();
        assert_eq!(RELEASED.load(std::sync::atomic::Ordering::SeqCst), 7);
        drop(heap);
        assert_eq!(RELEASED.load(std::sync::atomic::Ordering::SeqCst), 1007);
    }

    #[test]
    fn budget_triggers_collection_requests() {
        let mut heap = Heap::new();
        heap.set_stress(false);
        assert!(!heap.should_collect());
        let big = "x".repeat(MIN_BUDGET + 1);
        heap.alloc_str(&big);
        assert!(heap.should_collect());
        heap.sweep();
        assert!(!heap.should_collect());
    }
}
