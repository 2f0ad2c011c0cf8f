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
//! * the sweep walks every chunk: a marked cell survives, an unmarked in-use cell is reset
//!   (value Void, children dropped, back to the inline slots) and its slot goes back on the
//!   free list.
//!
//! Chunks are never returned, so the cell memory is bounded by the peak number of live cells
//! (plus one chunk). Cells are not in `objects`; the other kinds (strings, big ints, blocks,
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

use crate::builtins::BuiltinId;
use crate::cell::{CellPtr, Children};
use crate::value::{Tag, Value};
use num_bigint::BigInt;
use std::cell::Cell as StdCell;
use std::ptr::NonNull;

/// Which struct follows the header.
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ObjKind {
    Str = 0,
    BigInt = 1,
    Block = 2,
    Builtin = 3,
    Cell = 4,
    Foreign = 5,
}

/// First field of every heap object.
#[repr(C)]
pub struct Header {
    kind: ObjKind,
    marked: StdCell<bool>,
    /// A slab cell slot that is on the free list (never set for other objects).
    free: StdCell<bool>,
    /// A cell a Store lookup has walked through or resolved to (see `graph.rs`, epoch).
    pub(crate) walked: StdCell<bool>,
}

impl Header {
    fn new(kind: ObjKind) -> Header {
        Header {
            kind,
            marked: StdCell::new(false),
            free: StdCell::new(false),
            walked: StdCell::new(false),
        }
    }
}

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

/// Signature of a compiled block: runs the block's body on `vm` in the frame its caller
/// entered and returns a status. `chained` is 1 when a `chain` loop runs the block: when the
/// body ends with the block itself on top of the AL (the loop continues with it), the code
/// may run that next iteration itself (same frame depth, a fresh Register, the entry
/// bookkeeping of `Vm::enter_block`) instead of pushing the block and returning.
pub type NativeEntry = unsafe extern "C" fn(vm: *mut crate::vm::Vm, chained: u32) -> i32;

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
    pub native_entry: StdCell<Option<NativeEntry>>,
}

/// A builtin block (core builtin or one provided by the host).
#[repr(C)]
pub struct BuiltinObj {
    pub header: Header,
    pub id: BuiltinId,
    pub name: Box<str>,
}

/// A cell of the graph: a value plus ordered named children (independent of each other).
/// One cache line: the header, the value and up to `cell::INLINE_CHILDREN` children (slab
/// chunks keep cells line-aligned), so a walk step touches one line per cell.
#[repr(C, align(64))]
pub struct CellObj {
    pub header: Header,
    pub value: Value,
    pub children: Children,
}

const _: () = assert!(std::mem::size_of::<CellObj>() == 64, "a cell is one cache line");

/// Byte offset of `CellObj::value`, for JIT code that reads a cached cell inline.
pub const CELL_VALUE_OFFSET: usize = std::mem::offset_of!(CellObj, value);

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

/// Counters for tests, benchmarks and `SOMA_JIT_DUMP`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    pub objects: usize,
    /// Bytes of live objects as of the last sweep plus bytes allocated since.
    pub bytes: usize,
    pub collections: u64,
    pub freed_objects: u64,
}

/// Smallest allocation budget between collections (bytes). Measured: 1 MiB beats 4 MiB on
/// every bench program (a smaller young working set stays in cache; with 4 MiB, freeing
/// big bursts of strings made malloc trim and re-fault its heap: 6x the page faults).
const MIN_BUDGET: usize = 1 << 20;

/// The budget after a collection is at least `GROWTH_NUM / GROWTH_DEN` times the live bytes.
const GROWTH_NUM: usize = 3;
const GROWTH_DEN: usize = 2;

/// Cells per slab chunk.
pub const CELL_CHUNK: usize = 1024;

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
    mark_stack: Vec<NonNull<Header>>,
    /// Slab chunks of cells (see the module documentation). Never freed before the heap.
    cell_chunks: Vec<Box<[CellObj]>>,
    /// Free cell slots: value Void, no children, unmarked, `free` set.
    cell_free: Vec<NonNull<CellObj>>,
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
        Heap {
            objects: Vec::new(),
            live_bytes: 0,
            allocated_since_gc: 0,
            budget: MIN_BUDGET,
            stress: stress_requested(),
            mark_stack: Vec::new(),
            cell_chunks: Vec::new(),
            cell_free: Vec::new(),
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
        let layout = StrObj::layout(text.len());
        // SAFETY: the layout has a non-zero size (the struct itself); the struct and then the
        // bytes are written before the object is published.
        let p = unsafe {
            let raw = std::alloc::alloc(layout).cast::<StrObj>();
            let Some(p) = NonNull::new(raw) else {
                std::alloc::handle_alloc_error(layout);
            };
            p.as_ptr().write(StrObj {
                header: Header::new(ObjKind::Str),
                len: text.len(),
            });
            std::ptr::copy_nonoverlapping(text.as_ptr(), p.as_ptr().add(1).cast::<u8>(), text.len());
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
                native_entry: StdCell::new(None),
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
        // list; it was reset when it was swept (or created fresh).
        unsafe { (*p.as_ptr()).header.free.set(false) };
        self.cells_in_use += 1;
        self.allocated_since_gc += std::mem::size_of::<CellObj>();
        CellPtr::from_raw(p)
    }

    /// Add a chunk of free cells; returns one of them (not on the free list).
    #[cold]
    fn grow_cells(&mut self) -> NonNull<CellObj> {
        let chunk: Box<[CellObj]> = (0..CELL_CHUNK)
            .map(|_| {
                let header = Header::new(ObjKind::Cell);
                header.free.set(true);
                CellObj {
                    header,
                    value: Value::VOID,
                    children: Children::new(),
                }
            })
            .collect();
        self.cell_chunks.push(chunk);
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
            self.mark_header(h);
        }
    }

    #[inline]
    pub fn mark_cell(&mut self, c: CellPtr) {
        self.mark_header(c.as_raw().cast());
    }

    #[inline]
    fn mark_header(&mut self, h: NonNull<Header>) {
        // SAFETY: `h` comes from a root or from a marked object's fields; by the GC invariant
        // every such object is alive (it was allocated here and not yet swept).
        let header = unsafe { h.as_ref() };
        if !header.marked.get() {
            header.marked.set(true);
            if header.kind == ObjKind::Cell {
                self.mark_stack.push(h);
            }
        }
    }

    /// Drain the mark stack: mark the value and children of every grey cell.
    pub fn trace(&mut self) {
        while let Some(h) = self.mark_stack.pop() {
            let cell = CellPtr::from_raw(h.cast::<CellObj>());
            self.mark_value(cell.value());
            // SAFETY: the cell is alive (it was just marked); the shared borrow of its
            // children lasts for the loop, which only touches mark bits and `mark_stack`.
            let children = unsafe { &(*h.cast::<CellObj>().as_ptr()).children };
            for c in children.cells() {
                let kh: NonNull<Header> = c.as_raw().cast();
                // SAFETY: a child of a live cell is alive (GC invariant).
                let header = unsafe { kh.as_ref() };
                if !header.marked.get() {
                    header.marked.set(true);
                    self.mark_stack.push(kh);
                }
            }
        }
    }

    /// Free every unmarked object, clear the marks of the survivors and reset the budget.
    /// Call only after marking every root and [`Heap::trace`].
    pub fn sweep(&mut self) {
        debug_assert!(self.mark_stack.is_empty());
        let release = self.foreign_release;
        let mut live = 0usize;
        let mut freed = 0u64;
        // Cells: walk the slabs.
        let mut cells_live = 0usize;
        for chunk in &mut self.cell_chunks {
            for cell in chunk.iter_mut() {
                if cell.header.free.get() {
                    continue;
                }
                if cell.header.marked.get() {
                    cell.header.marked.set(false);
                    cells_live += 1;
                } else {
                    // Unmarked means unreachable from every root: nothing will use this cell
                    // again until `alloc_cell` hands it out afresh; resetting it makes it
                    // indistinguishable from a new cell.
                    cell.value = Value::VOID;
                    cell.children.recycle();
                    cell.header.free.set(true);
                    cell.header.walked.set(false);
                    self.cell_free.push(NonNull::from(cell));
                    freed += 1;
                }
            }
        }
        self.cells_in_use = cells_live;
        live += cells_live * std::mem::size_of::<CellObj>();
        self.objects.retain(|&h| {
            // SAFETY: every address in `objects` is a live object allocated by `register`
            // and freed only here, after which it is removed from the list.
            let header = unsafe { h.as_ref() };
            if header.marked.get() {
                header.marked.set(false);
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
        self.budget = MIN_BUDGET.max(live / GROWTH_DEN * GROWTH_NUM);
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
