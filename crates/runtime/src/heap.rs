//! Heap objects and the precise, non-moving mark-sweep collector.
//!
//! # Objects
//! Every heap object is a `#[repr(C)]` struct that starts with a [`Header`] (kind + mark bit),
//! allocated with `Box` and never moved. The heap keeps the address of every object it
//! allocated in `objects`; a sweep frees the unmarked ones.
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
}

impl Header {
    fn new(kind: ObjKind) -> Header {
        Header {
            kind,
            marked: StdCell::new(false),
        }
    }
}

/// An immutable UTF-8 string.
#[repr(C)]
pub struct StrObj {
    pub header: Header,
    pub text: Box<str>,
}

/// An Int outside the small-int range (never one that fits: see `value.rs`).
#[repr(C)]
pub struct BigIntObj {
    pub header: Header,
    pub value: BigInt,
}

/// Signature of a compiled block: runs the block's body on `vm` and returns a status.
pub type NativeEntry = unsafe extern "C" fn(vm: *mut crate::vm::Vm) -> i32;

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
#[repr(C)]
pub struct CellObj {
    pub header: Header,
    pub value: Value,
    pub children: Children,
}

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

/// Smallest allocation budget between collections.
const MIN_BUDGET: usize = 1 << 20;

/// Dead cells kept for reuse. Register cells die by the thousand between collections (every
/// block execution makes some); recycling them, with their children vectors' capacity, saves
/// a malloc/free pair per cell. Bounded so a burst of garbage does not pin memory.
const CELL_POOL_MAX: usize = 4096;

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
    /// Swept cells ready for reuse: value Void, no children, unmarked, not in `objects`.
    cell_pool: Vec<NonNull<CellObj>>,
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
            cell_pool: Vec::new(),
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
            objects: self.objects.len(),
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
        let bytes = std::mem::size_of::<StrObj>() + text.len();
        let p = self.register(
            Box::new(StrObj {
                header: Header::new(ObjKind::Str),
                text: text.into(),
            }),
            bytes,
        );
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
    pub fn alloc_cell(&mut self) -> CellPtr {
        if let Some(p) = self.cell_pool.pop() {
            // A pooled cell was reset when it was swept and is owned by nobody but the pool.
            self.objects.push(p.cast());
            self.allocated_since_gc += std::mem::size_of::<CellObj>();
            return CellPtr::from_raw(p);
        }
        let p = self.register(
            Box::new(CellObj {
                header: Header::new(ObjKind::Cell),
                value: Value::VOID,
                children: Children::new(),
            }),
            std::mem::size_of::<CellObj>(),
        );
        CellPtr::from_raw(p)
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
        let pool = &mut self.cell_pool;
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
                if header.kind == ObjKind::Cell && pool.len() < CELL_POOL_MAX {
                    let cell = h.cast::<CellObj>();
                    // SAFETY: unmarked means unreachable from every root, so nothing will use
                    // this cell again until `alloc_cell` hands it out afresh; resetting it
                    // here (dropping its child links, keeping their vector's capacity) makes
                    // it indistinguishable from a new cell.
                    unsafe {
                        (*cell.as_ptr()).value = Value::VOID;
                        (*cell.as_ptr()).children.clear();
                    }
                    pool.push(cell);
                } else {
                    // SAFETY: unmarked means unreachable from every root, so no value that
                    // can be used again points at it.
                    unsafe { free_object(h, release) };
                }
                false
            }
        });
        self.live_bytes = live;
        self.allocated_since_gc = 0;
        self.budget = MIN_BUDGET.max(live);
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
            ObjKind::Str => std::mem::size_of::<StrObj>() + h.cast::<StrObj>().as_ref().text.len(),
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
            ObjKind::Str => drop(Box::from_raw(h.cast::<StrObj>().as_ptr())),
            ObjKind::BigInt => drop(Box::from_raw(h.cast::<BigIntObj>().as_ptr())),
            ObjKind::Block => drop(Box::from_raw(h.cast::<BlockObj>().as_ptr())),
            ObjKind::Builtin => drop(Box::from_raw(h.cast::<BuiltinObj>().as_ptr())),
            ObjKind::Cell => drop(Box::from_raw(h.cast::<CellObj>().as_ptr())),
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
        for h in self.objects.drain(..).chain(self.cell_pool.drain(..).map(NonNull::cast)) {
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
