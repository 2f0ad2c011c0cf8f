//! Cells: a value plus an ordered map of named children.
//!
//! Children keep insertion order (what `debug.graph.*` and the dict words observe). Maps are
//! small in practice: up to [`INLINE_CHILDREN`] live inside the cell (see [`Children`]), up
//! to [`INDEX_THRESHOLD`] are found by a linear scan of a `Vec`, and past that a hash index
//! (name -> position) is kept alongside the `Vec`.
//!
//! [`CellPtr`] is the handle Rust code uses for a cell. Its accessors are safe functions that
//! rely on the runtime invariant stated in `heap.rs`: a `CellPtr` is only used while its cell
//! is alive (reachable from a root, or no safepoint has run since it was obtained). They never
//! hand out references into the cell, so no two Rust borrows of one cell can overlap.

pub use crate::object::{CELL_GUARDED, CELL_WALKED_THROUGH};
use crate::object::{Header, CELL_WALKED, CELL_WATCHED};
use crate::sym::Sym;
use crate::value::{Tag, Value};
use std::ptr::NonNull;

pub use crate::sym::Name;

/// A cell of the graph: a value plus ordered named children (independent of each other).
/// One cache line: the header, the value and up to `cell::INLINE_CHILDREN` children (slab
/// chunks keep cells line-aligned), so a walk step touches one line per cell.
#[repr(C, align(64))]
pub struct CellObj {
    pub header: Header,
    /// Where the cell sits in the slabs: chunk index * `CELL_CHUNK` + index in the chunk
    /// (fixed when the chunk is made), for the side bitmaps.
    pub(crate) slot: u32,
    pub value: Value,
    pub children: Children,
}

const _: () = assert!(std::mem::size_of::<CellObj>() == 64, "a cell is one cache line");

/// Byte offset of `CellObj::value`, for JIT code that reads a cached cell inline.
pub const CELL_VALUE_OFFSET: usize = std::mem::offset_of!(CellObj, value);
/// Offset of a cell's flag byte (`object::CELL_*` bits), for compiled code that tests
/// [`CELL_WALKED_THROUGH`] before storing into a cell inline.
pub const CELL_FLAGS_OFFSET: usize = std::mem::offset_of!(CellObj, header) + std::mem::offset_of!(Header, cell_flags);

impl Value {
    /// The cell a CellRef value refers to.
    #[inline]
    pub fn as_cell(self) -> Option<CellPtr> {
        self.ptr::<CellObj>(Tag::CellRef).map(CellPtr::from_raw)
    }
}

/// Number of children above which a hash index is maintained.
pub const INDEX_THRESHOLD: usize = 8;

/// Children kept inside the cell itself. Most cells have at most this many (leaves, path
/// intermediates, small Register roots, and records of up to four fields such as a tree
/// node's key, value, left and right), so finding or adding one touches only the cell's own
/// cache line; a cell that grows past it moves its children to a vector.
pub const INLINE_CHILDREN: usize = 4;

/// Marks an unused inline slot. Never a real symbol: the interner would need 2^32 names.
const NO_SYM: Sym = Sym(u32::MAX);

/// In the first name slot: the children live in a [`Spilled`] vector (never a real symbol,
/// as [`NO_SYM`]).
const SPILLED: Sym = Sym(u32::MAX - 1);

/// Capacity of the vector a cell's children move to when they outgrow the inline slots.
const SPILL_CAPACITY: usize = 8;

/// The ordered children of a cell, in 48 bytes so that a cell with four of them is one
/// cache line.
///
/// Layout (`repr(C)`; the tests read it at fixed offsets, as compiled code could):
/// * **inline**: `syms[..n]` are the names of the `n <= INLINE_CHILDREN` children in
///   insertion order, the rest [`NO_SYM`]; `slots.cells[i]` is the cell of `syms[i]` (`None`
///   where the name is `NO_SYM`);
/// * **spilled** (`syms[0] == SPILLED`, the other names `NO_SYM`): `slots.spilled` is the
///   initialised field and owns its vector (freed by `recycle` and by `Drop`).
///
/// So a name other than `NO_SYM` and `SPILLED` found at `syms[i]` always means that
/// `slots.cells[i]` is its cell: one compare per slot finds a child without knowing the form.
#[repr(C)]
pub struct Children {
    syms: [Sym; INLINE_CHILDREN],
    slots: Slots,
}

#[repr(C)]
union Slots {
    cells: [Option<CellPtr>; INLINE_CHILDREN],
    spilled: std::mem::ManuallyDrop<Spilled>,
}

/// Children that outgrew the inline slots: one allocation (the vector's), as many as a
/// cell's children ever cost (a box around this would make it two per spill).
struct Spilled {
    entries: Vec<(Sym, CellPtr)>,
    /// The same children by name ([`SymIndex`]); present only while `entries.len() >
    /// INDEX_THRESHOLD`. Boxed to keep `Spilled` within the inline slots.
    index: Option<Box<SymIndex>>,
}

/// Byte offset of the inline names within a cell (see [`Children`]).
#[cfg(test)]
const CELL_CHILD_SYMS_OFFSET: usize =
    std::mem::offset_of!(CellObj, children) + std::mem::offset_of!(Children, syms);
/// Byte offset of the inline child cells within a cell (see [`Children`]).
#[cfg(test)]
const CELL_CHILD_CELLS_OFFSET: usize =
    std::mem::offset_of!(CellObj, children) + std::mem::offset_of!(Children, slots);

const _: () = assert!(std::mem::size_of::<Children>() == 48);
const _: () = assert!(std::mem::size_of::<Spilled>() <= std::mem::size_of::<[Option<CellPtr>; INLINE_CHILDREN]>());

/// The two forms, borrowed.
enum View<'a> {
    Inline(&'a [Sym; INLINE_CHILDREN], &'a [Option<CellPtr>; INLINE_CHILDREN]),
    Spilled(&'a Spilled),
}

enum ViewMut<'a> {
    Inline(&'a mut [Sym; INLINE_CHILDREN], &'a mut [Option<CellPtr>; INLINE_CHILDREN]),
    Spilled(&'a mut Spilled),
}

const EMPTY_CELLS: [Option<CellPtr>; INLINE_CHILDREN] = [None; INLINE_CHILDREN];

impl Default for Children {
    fn default() -> Children {
        Children {
            syms: [NO_SYM; INLINE_CHILDREN],
            slots: Slots { cells: EMPTY_CELLS },
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.free_spilled();
    }
}

impl Children {
    pub fn new() -> Children {
        Children::default()
    }

    #[inline(always)]
    fn view(&self) -> View<'_> {
        if self.syms[0] == SPILLED {
            // SAFETY: `syms[0] == SPILLED` means `slots.spilled` is the initialised field
            // (see the type's layout); the borrow is tied to `&self`.
            View::Spilled(unsafe { &self.slots.spilled })
        } else {
            // SAFETY: any other first name means the inline form: `slots.cells` is the
            // initialised field.
            View::Inline(&self.syms, unsafe { &self.slots.cells })
        }
    }

    #[inline(always)]
    fn view_mut(&mut self) -> ViewMut<'_> {
        if self.syms[0] == SPILLED {
            // SAFETY: as in `view`; `&mut self` makes the borrow unique.
            ViewMut::Spilled(unsafe { &mut self.slots.spilled })
        } else {
            // SAFETY: as in `view` (inline form).
            ViewMut::Inline(&mut self.syms, unsafe { &mut self.slots.cells })
        }
    }

    /// Free the spilled vector, if any, and go back to empty inline slots.
    #[inline]
    fn free_spilled(&mut self) {
        drop(self.take_spilled());
    }

    /// The spilled vector, if any, taken out (its index dropped), the children back to empty
    /// inline slots.
    #[inline]
    fn take_spilled(&mut self) -> Option<Vec<(Sym, CellPtr)>> {
        if self.syms[0] != SPILLED {
            return None;
        }
        // SAFETY: the spilled form's field is initialised and owned by this `Children`; the
        // form is reset right after, so it is taken out once.
        let Spilled { entries, .. } = unsafe { std::mem::ManuallyDrop::take(&mut self.slots.spilled) };
        self.syms = [NO_SYM; INLINE_CHILDREN];
        self.slots = Slots { cells: EMPTY_CELLS };
        Some(entries)
    }

    #[inline]
    pub fn len(&self) -> usize {
        match self.view() {
            View::Inline(syms, _) => syms.iter().take_while(|&&k| k != NO_SYM).count(),
            View::Spilled(s) => s.entries.len(),
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        match self.view() {
            View::Inline(syms, _) => syms[0] == NO_SYM,
            View::Spilled(s) => s.entries.is_empty(),
        }
    }

    /// The child named `name`: compares against the inline slots (an unused slot never
    /// matches: its symbol is `NO_SYM`, its cell `None`), or scans / probes the vector.
    #[inline(always)]
    pub fn get(&self, name: Sym) -> Option<CellPtr> {
        match self.view() {
            View::Inline(syms, cells) => {
                for i in 0..INLINE_CHILDREN {
                    if syms[i] == name {
                        return cells[i];
                    }
                }
                None
            }
            View::Spilled(Spilled { entries, index: None }) => {
                for &(k, c) in entries.iter() {
                    if k == name {
                        return Some(c);
                    }
                }
                None
            }
            View::Spilled(Spilled { index: Some(index), .. }) => index.get(name),
        }
    }

    /// Add a child that is not present yet (callers check with `get` first).
    #[inline]
    pub fn insert_new(&mut self, key: Sym, cell: CellPtr) {
        debug_assert!(self.get(key).is_none());
        debug_assert!(key != NO_SYM && key != SPILLED);
        match self.view_mut() {
            ViewMut::Inline(syms, cells) => {
                for i in 0..INLINE_CHILDREN {
                    if syms[i] == NO_SYM {
                        syms[i] = key;
                        cells[i] = Some(cell);
                        return;
                    }
                }
                self.spill(key, cell);
            }
            ViewMut::Spilled(Spilled { entries, index }) => {
                entries.push((key, cell));
                match index {
                    Some(ix) if ix.has_room_for(entries.len()) => ix.insert(key, cell),
                    _ if entries.len() > INDEX_THRESHOLD => *index = Some(Box::new(SymIndex::build(entries))),
                    _ => {}
                }
            }
        }
    }

    /// Give a cell without children the children `entries` (distinct names, in insertion
    /// order), in the form `insert_new` one by one would leave them, without the spill
    /// along the way: a record's constructor makes all its fields at once.
    pub fn fill_empty(&mut self, entries: &[(Sym, CellPtr)], spare: Option<Vec<(Sym, CellPtr)>>) {
        debug_assert!(self.is_empty());
        debug_assert!(entries.iter().all(|&(k, _)| k != NO_SYM && k != SPILLED));
        if entries.len() <= INLINE_CHILDREN {
            let ViewMut::Inline(syms, cells) = self.view_mut() else {
                unreachable!("an empty cell's children are inline")
            };
            for (i, &(k, c)) in entries.iter().enumerate() {
                syms[i] = k;
                cells[i] = Some(c);
            }
            return;
        }
        let mut v = match spare {
            Some(mut v) => {
                v.clear();
                v
            }
            None => Vec::with_capacity(entries.len().max(SPILL_CAPACITY)),
        };
        v.extend_from_slice(entries);
        self.set_spilled(v);
    }

    /// Move full inline slots to a vector and append `(key, cell)`.
    #[cold]
    fn spill(&mut self, key: Sym, cell: CellPtr) {
        let mut entries = Vec::with_capacity(SPILL_CAPACITY);
        entries.extend(self.iter());
        entries.push((key, cell));
        self.set_spilled(entries);
    }

    /// Switch inline children (whose cells `entries` now holds) to the spilled form, indexed
    /// when there are more than `INDEX_THRESHOLD`.
    fn set_spilled(&mut self, entries: Vec<(Sym, CellPtr)>) {
        let index = (entries.len() > INDEX_THRESHOLD).then(|| Box::new(SymIndex::build(&entries)));
        self.syms = [NO_SYM; INLINE_CHILDREN];
        self.syms[0] = SPILLED;
        // The inline cells hold no resources: overwriting them leaks nothing.
        self.slots = Slots { spilled: std::mem::ManuallyDrop::new(Spilled { entries, index }) };
    }

    /// Remove a child, keeping the order of the others. Returns whether it was present.
    pub fn remove(&mut self, name: Sym) -> bool {
        match self.view_mut() {
            ViewMut::Inline(syms, cells) => {
                let Some(pos) = syms.iter().position(|&k| k == name) else {
                    return false;
                };
                for i in pos..INLINE_CHILDREN - 1 {
                    syms[i] = syms[i + 1];
                    cells[i] = cells[i + 1];
                }
                syms[INLINE_CHILDREN - 1] = NO_SYM;
                cells[INLINE_CHILDREN - 1] = None;
                true
            }
            ViewMut::Spilled(Spilled { entries, index }) => {
                let Some(pos) = entries.iter().position(|&(k, _)| k == name) else {
                    return false;
                };
                entries.remove(pos);
                *index = (entries.len() > INDEX_THRESHOLD).then(|| Box::new(SymIndex::build(entries)));
                true
            }
        }
    }

    #[inline]
    pub fn clear(&mut self) {
        match self.view_mut() {
            ViewMut::Inline(syms, cells) => {
                *syms = [NO_SYM; INLINE_CHILDREN];
                *cells = EMPTY_CELLS;
            }
            ViewMut::Spilled(Spilled { entries, index }) => {
                entries.clear();
                *index = None;
            }
        }
    }

    /// Drop every child of a dead cell: back to empty inline slots, so the next user of the
    /// cell starts with its children in its own cache line. (Keeping a spilled vector in the
    /// cell for its next user, as the cells did before they had inline slots, measured 5-15%
    /// slower on dict_workload: the next user is usually a leaf.) A spilled vector is handed
    /// back instead, emptied, for a record made with more fields than the inline slots hold
    /// ([`Children::fill_empty`]); the caller keeps it or drops it.
    #[inline]
    pub(crate) fn recycle(&mut self) -> Option<Vec<(Sym, CellPtr)>> {
        let spare = self.take_spilled().map(|mut entries| {
            entries.clear();
            entries
        });
        self.syms = [NO_SYM; INLINE_CHILDREN];
        self.slots = Slots { cells: EMPTY_CELLS };
        spare
    }

    /// The child at position `i` in insertion order.
    #[inline]
    fn at(&self, i: usize) -> Option<(Sym, CellPtr)> {
        match self.view() {
            View::Inline(syms, cells) => {
                let k = *syms.get(i)?;
                cells[i].map(|c| (k, c))
            }
            View::Spilled(s) => s.entries.get(i).copied(),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (Sym, CellPtr)> + '_ {
        let mut i = 0;
        std::iter::from_fn(move || {
            let e = self.at(i)?;
            i += 1;
            Some(e)
        })
    }

    /// The child cells in insertion order (what marking needs).
    #[inline]
    pub fn cells(&self) -> impl Iterator<Item = CellPtr> + '_ {
        let (inline, spilled): (&[Option<CellPtr>], &[(Sym, CellPtr)]) = match self.view() {
            View::Inline(_, cells) => (cells, &[]),
            View::Spilled(s) => (&[], &s.entries),
        };
        inline.iter().map_while(|c| *c).chain(spilled.iter().map(|&(_, c)| c))
    }
}

/// The name index of a big children map: open addressing with linear probing over
/// `(symbol, cell)` slots, a power-of-two table at most half full, one multiply to hash. It
/// holds the cells themselves, so a lookup touches only the table (a `HashMap<Sym, usize>`
/// into `entries` touched its control bytes, its buckets and then `entries`).
pub struct SymIndex {
    slots: Box<[(Sym, Option<CellPtr>)]>,
}

impl SymIndex {
    /// Smallest table: 32 slots (the index starts past `INDEX_THRESHOLD` children).
    const MIN_SLOTS: usize = 32;

    fn build(entries: &[(Sym, CellPtr)]) -> SymIndex {
        let n = (entries.len() * 2).next_power_of_two().max(SymIndex::MIN_SLOTS);
        let mut ix = SymIndex {
            slots: vec![(NO_SYM, None); n].into_boxed_slice(),
        };
        for &(k, c) in entries {
            ix.insert(k, c);
        }
        ix
    }

    #[inline]
    fn home(&self, name: Sym) -> usize {
        // Fibonacci hashing: the high bits of the product are the well-mixed ones.
        ((name.0 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & (self.slots.len() - 1)
    }

    /// Whether `len` children keep the table at most half full.
    #[inline]
    fn has_room_for(&self, len: usize) -> bool {
        len * 2 <= self.slots.len()
    }

    /// Add a name that is not present (the table has a free slot: it is at most half full).
    fn insert(&mut self, name: Sym, cell: CellPtr) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(name);
        while self.slots[i].0 != NO_SYM {
            i = (i + 1) & mask;
        }
        self.slots[i] = (name, Some(cell));
    }

    #[inline]
    fn get(&self, name: Sym) -> Option<CellPtr> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(name);
        loop {
            let (k, c) = self.slots[i];
            if k == name {
                return c;
            }
            if k == NO_SYM {
                return None;
            }
            i = (i + 1) & mask;
        }
    }
}

/// A handle to a live cell. Equality is cell identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(transparent)]
pub struct CellPtr(NonNull<CellObj>);

impl CellPtr {
    #[inline]
    pub(crate) fn from_raw(p: NonNull<CellObj>) -> CellPtr {
        CellPtr(p)
    }

    #[inline]
    pub fn as_raw(self) -> NonNull<CellObj> {
        self.0
    }

    /// The CellRef value naming this cell.
    #[inline]
    pub fn as_value(self) -> Value {
        Value::from_ptr(Tag::CellRef, self.0.as_ptr() as usize)
    }

    #[inline]
    pub fn value(self) -> Value {
        // SAFETY: the cell is alive (module invariant); reading a Copy field does not create a
        // lasting borrow.
        unsafe { (*self.0.as_ptr()).value }
    }

    #[inline]
    pub fn set_value(self, v: Value) {
        // SAFETY: as in `value`; the runtime is single-threaded, so no other access overlaps.
        unsafe { (*self.0.as_ptr()).value = v }
    }

    /// The child named `name` (a string is looked up in the symbol table first).
    #[inline]
    pub fn child<N: Name + ?Sized>(self, name: &N) -> Option<CellPtr> {
        self.child_sym(name.find_sym()?)
    }

    /// The children, named, in insertion order (copied: the caller may write the graph).
    pub fn children(self) -> Vec<(Sym, CellPtr)> {
        // SAFETY: the borrow of `children` ends before this function returns.
        unsafe { (*self.0.as_ptr()).children.iter().collect() }
    }

    #[inline]
    pub fn child_sym(self, name: Sym) -> Option<CellPtr> {
        // SAFETY: the borrow of `children` ends before this function returns.
        unsafe { (*self.0.as_ptr()).children.get(name) }
    }

    /// Add a child named `name`, which must not exist yet.
    #[inline]
    pub fn insert_child<N: Name + ?Sized>(self, name: &N, child: CellPtr) {
        let key = name.sym();
        // SAFETY: exclusive access for the duration of the call (single-threaded runtime, no
        // reference into the cell escapes any accessor).
        unsafe { (*self.0.as_ptr()).children.insert_new(key, child) }
    }

    /// Add a child named by symbol, which must not exist yet.
    #[inline]
    pub fn insert_child_sym(self, key: Sym, child: CellPtr) {
        // SAFETY: as in `insert_child`.
        unsafe { (*self.0.as_ptr()).children.insert_new(key, child) }
    }

    /// Give this cell, which has no children, the children `entries` (distinct names, in
    /// insertion order; [`Children::fill_empty`]).
    #[inline]
    pub fn fill_children(self, entries: &[(Sym, CellPtr)]) {
        self.fill_children_reusing(entries, None);
    }

    /// [`Self::fill_children`], keeping more children than the inline slots hold in `spare`
    /// when it is given (an emptied vector of a dead cell, [`Heap::take_spare_spill`]).
    ///
    /// [`Heap::take_spare_spill`]: crate::heap::Heap::take_spare_spill
    #[inline]
    pub fn fill_children_reusing(self, entries: &[(Sym, CellPtr)], spare: Option<Vec<(Sym, CellPtr)>>) {
        // SAFETY: as in `insert_child`.
        unsafe { (*self.0.as_ptr()).children.fill_empty(entries, spare) }
    }

    /// Record that a Store lookup went through (or ended at) this cell.
    #[inline]
    pub(crate) fn set_walked(self) {
        self.add_flags(CELL_WALKED);
    }

    /// Record that a Store lookup went through this cell: searched its children or followed
    /// the CellRef it holds (also counts as walked).
    #[inline]
    pub(crate) fn set_walked_through(self) {
        self.add_flags(CELL_WALKED | CELL_WALKED_THROUGH);
    }

    /// Record that speculative code holds this cell's value across calls (its pre-header
    /// resolved it): from now until the cell is recycled, every write to it is counted in
    /// `Graph::writes`.
    #[inline]
    pub fn set_watched(self) {
        self.add_flags(CELL_WATCHED);
    }

    /// Whether speculative code may hold this cell's value (see [`CellPtr::set_watched`]).
    #[inline]
    pub fn watched(self) -> bool {
        self.flags() & CELL_WATCHED != 0
    }

    /// Mark the cell guarded (only [`Graph::guard_cell`](crate::graph::Graph::guard_cell),
    /// which moves the epoch with it).
    #[inline]
    pub(crate) fn set_guarded(self) {
        self.add_flags(CELL_GUARDED);
    }

    /// Whether speculative code assumes this cell keeps its value (see
    /// [`Graph::guard_cell`](crate::graph::Graph::guard_cell)).
    #[inline]
    pub fn guarded(self) -> bool {
        self.flags() & CELL_GUARDED != 0
    }

    #[inline]
    fn flags(self) -> u8 {
        // SAFETY: as in `value`.
        unsafe { (*self.0.as_ptr()).header.cell_flags.get() }
    }

    #[inline]
    fn add_flags(self, bits: u8) {
        // SAFETY: as in `value`.
        let flags = unsafe { &(*self.0.as_ptr()).header.cell_flags };
        flags.set(flags.get() | bits);
    }

    /// Whether a Store lookup ever went through this cell (not only ended at it) since it was
    /// allocated.
    #[inline]
    pub fn walked_through(self) -> bool {
        self.flags() & CELL_WALKED_THROUGH != 0
    }

    /// Whether a Store lookup ever went through (or ended at) this cell since it was allocated.
    #[inline]
    pub fn walked(self) -> bool {
        self.flags() & CELL_WALKED != 0
    }

    /// Unlink the child `name`. Returns whether it existed.
    pub fn remove_child<N: Name + ?Sized>(self, name: &N) -> bool {
        let Some(name) = name.find_sym() else {
            return false;
        };
        // SAFETY: as in `insert_child`.
        unsafe { (*self.0.as_ptr()).children.remove(name) }
    }

    /// Unlink every child. Returns whether there were any.
    pub fn clear_children(self) -> bool {
        // SAFETY: as in `insert_child`.
        unsafe {
            let children = &mut (*self.0.as_ptr()).children;
            let had = !children.is_empty();
            children.clear();
            had
        }
    }

    pub fn child_count(self) -> usize {
        // SAFETY: as in `child`.
        unsafe { (*self.0.as_ptr()).children.len() }
    }

    /// Call `f` for each child in insertion order. `f` must not mutate this cell's children.
    pub fn for_each_child(self, mut f: impl FnMut(&str, CellPtr)) {
        // SAFETY: the shared borrow lasts for the loop; `f` is documented not to mutate this
        // cell's children (it only records names and pointers).
        let children = unsafe { &(*self.0.as_ptr()).children };
        for (k, c) in children.iter() {
            f(k.as_str(), c);
        }
    }

    /// Names of the children in insertion order.
    pub fn child_names(self) -> Vec<String> {
        let mut names = Vec::new();
        self.for_each_child(|k, _| names.push(k.to_string()));
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::Heap;

    #[test]
    fn filling_an_empty_cell_equals_inserting_one_by_one() {
        let mut heap = Heap::new();
        for n in [1, 2, INLINE_CHILDREN, INLINE_CHILDREN + 1, SPILL_CAPACITY, INDEX_THRESHOLD + 3] {
            let entries: Vec<(Sym, CellPtr)> =
                (0..n).map(|i| (format!("fill{i}").as_str().sym(), heap.alloc_cell())).collect();
            let (filled, inserted) = (heap.alloc_cell(), heap.alloc_cell());
            filled.fill_children(&entries);
            for &(k, c) in &entries {
                inserted.insert_child_sym(k, c);
            }
            assert_eq!(filled.children(), inserted.children(), "{n} children, in order");
            for &(k, c) in &entries {
                assert_eq!(filled.child_sym(k), Some(c));
            }
            assert_eq!(filled.child("missing"), None);
            // Still an ordinary cell: more children, removals.
            let extra = heap.alloc_cell();
            filled.insert_child("extra", extra);
            assert_eq!(filled.child("extra"), Some(extra));
            assert!(filled.remove_child("fill0"));
            assert_eq!(filled.child_count(), n);
        }
    }

    #[test]
    fn order_is_kept_below_and_above_the_index_threshold() {
        let mut heap = Heap::new();
        let parent = heap.alloc_cell();
        let mut expected = Vec::new();
        for i in 0..20 {
            let name = format!("k{i}");
            let child = heap.alloc_cell();
            parent.insert_child(&name, child);
            expected.push((name, child));
            for (n, c) in &expected {
                assert_eq!(parent.child(n), Some(*c));
            }
        }
        assert_eq!(parent.child("missing"), None);
        // Remove from the middle while indexed, then drop back below the threshold.
        for victim in ["k3", "k10", "k19", "k0", "k1", "k2", "k4", "k5", "k6", "k7", "k8", "k9"] {
            assert!(parent.remove_child(victim));
            assert!(!parent.remove_child(victim));
            expected.retain(|(n, _)| n != victim);
            let names: Vec<String> = expected.iter().map(|(n, _)| n.clone()).collect();
            assert_eq!(parent.child_names(), names);
            for (n, c) in &expected {
                assert_eq!(parent.child(n), Some(*c));
            }
        }
        assert!(parent.clear_children());
        assert!(!parent.clear_children());
        assert_eq!(parent.child_count(), 0);
    }

    #[test]
    fn inline_spilled_and_indexed_maps_agree_with_a_model() {
        let mut heap = Heap::new();
        let parent = heap.alloc_cell();
        let mut model: Vec<(Sym, CellPtr)> = Vec::new();
        let names: Vec<Sym> = (0..300).map(|i| Sym::intern(&format!("cell_test_n{i}"))).collect();
        // Grow through the inline slots, the spill, the index and its regrowths; then shrink.
        for step in 0..1200usize {
            let name = names[(step * 7919) % names.len()];
            let present = model.iter().any(|&(k, _)| k == name);
            if step % 3 == 2 || (present && step > 600) {
                assert_eq!(parent.remove_child(&name), present);
                model.retain(|&(k, _)| k != name);
            } else if !present {
                let c = heap.alloc_cell();
                parent.insert_child(&name, c);
                model.push((name, c));
            }
            assert_eq!(parent.child_count(), model.len());
            for &(k, c) in &model {
                assert_eq!(parent.child_sym(k), Some(c));
            }
            // SAFETY: `parent` is alive (no collection runs in this test); the shared borrow
            // ends with the statement.
            let order: Vec<(Sym, CellPtr)> =
                unsafe { (*parent.as_raw().as_ptr()).children.iter().collect() };
            assert_eq!(order, model);
        }
    }

    /// The name in inline slot `i` and the address in cell slot `i`, read at fixed offsets.
    fn raw_slot(cell: CellPtr, i: usize) -> (u32, usize) {
        let base = cell.as_raw().as_ptr() as *const u8;
        // SAFETY: both offsets (plus `i` elements, `i < INLINE_CHILDREN`) lie inside the live
        // cell; the fields are plain integers and pointers in either form of `Children`.
        unsafe {
            (
                *(base.add(CELL_CHILD_SYMS_OFFSET + 4 * i) as *const u32),
                *(base.add(CELL_CHILD_CELLS_OFFSET + 8 * i) as *const usize),
            )
        }
    }

    #[test]
    fn a_name_in_an_inline_slot_always_pairs_with_its_cell() {
        let mut heap = Heap::new();
        let parent = heap.alloc_cell();
        let names: Vec<Sym> = (0..6).map(|i| Sym::intern(&format!("layout_n{i}"))).collect();
        let kids: Vec<CellPtr> = (0..6).map(|_| heap.alloc_cell()).collect();
        for i in 0..INLINE_CHILDREN {
            parent.insert_child(&names[i], kids[i]);
            for j in 0..=i {
                assert_eq!(raw_slot(parent, j), (names[j].0, kids[j].as_raw().as_ptr() as usize));
            }
        }
        // A fifth child spills: no inline name slot holds a real name any more.
        parent.insert_child(&names[4], kids[4]);
        for i in 0..INLINE_CHILDREN {
            let (sym, _) = raw_slot(parent, i);
            assert!(sym == NO_SYM.0 || sym == SPILLED.0, "slot {i} holds {sym}");
        }
        assert_eq!(parent.child_sym(names[4]), Some(kids[4]));
        assert_eq!(parent.child_sym(names[0]), Some(kids[0]));
        // Removing below the inline count keeps the vector (the form never shrinks back)...
        assert!(parent.remove_child(&names[0]));
        assert_eq!(parent.child_count(), 4);
        assert_eq!(raw_slot(parent, 0).0, SPILLED.0);
        // ... until the cell is recycled, which frees it and starts inline again.
        // SAFETY: `parent` is alive and no other borrow of its children exists.
        let spare = unsafe { (*parent.as_raw().as_ptr()).children.recycle() };
        assert!(spare.is_some_and(|v| v.is_empty() && v.capacity() >= SPILL_CAPACITY), "the vector is handed back, emptied");
        assert_eq!(parent.child_count(), 0);
        for i in 0..INLINE_CHILDREN {
            assert_eq!(raw_slot(parent, i), (NO_SYM.0, 0));
        }
        parent.insert_child(&names[5], kids[5]);
        assert_eq!(raw_slot(parent, 0), (names[5].0, kids[5].as_raw().as_ptr() as usize));
    }

    #[test]
    fn cell_ref_value_round_trips_to_the_same_cell() {
        let mut heap = Heap::new();
        let c = heap.alloc_cell();
        let v = c.as_value();
        assert!(v.is_cell_ref());
        assert_eq!(v.as_cell(), Some(c));
        assert_eq!(v.type_name(), "CellRef");
        assert_eq!(c.value(), Value::VOID);
    }
}
