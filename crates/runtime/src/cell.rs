//! Cells: a value plus an ordered map of named children.
//!
//! Children keep insertion order (what `debug.graph.*` and the dict words observe). Maps are
//! small in practice, so up to [`INDEX_THRESHOLD`] children are found by a linear scan of a
//! `Vec`; past that a hash index (name -> position) is kept alongside the `Vec`.
//!
//! [`CellPtr`] is the handle Rust code uses for a cell. Its accessors are safe functions that
//! rely on the runtime invariant stated in `heap.rs`: a `CellPtr` is only used while its cell
//! is alive (reachable from a root, or no safepoint has run since it was obtained). They never
//! hand out references into the cell, so no two Rust borrows of one cell can overlap.

use crate::heap::CellObj;
use crate::sym::Sym;
use crate::value::{Tag, Value};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ptr::NonNull;
use std::rc::Rc;

/// Hasher for symbols: one multiply (Fibonacci hashing), high bits folded down because
/// hashbrown takes its bucket index from the low bits.
#[derive(Default)]
pub struct SymHasher(u64);

impl Hasher for SymHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0 = (self.0 ^ i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }
}

type SymMap<V> = HashMap<Sym, V, BuildHasherDefault<SymHasher>>;

/// A path component usable as a child name: a [`Sym`] (decoded paths carry them, the fast
/// path) or a string (host-facing APIs; interned on use, see `sym.rs`).
pub trait Name {
    /// The symbol of this name, interning it if needed (for creating a child).
    fn sym(&self) -> Sym;
    /// The symbol if the name was ever interned; `None` means no child can have this name.
    fn find_sym(&self) -> Option<Sym>;
}

impl Name for Sym {
    #[inline]
    fn sym(&self) -> Sym {
        *self
    }
    #[inline]
    fn find_sym(&self) -> Option<Sym> {
        Some(*self)
    }
}

macro_rules! str_name {
    ($($t:ty),*) => {$(
        impl Name for $t {
            fn sym(&self) -> Sym {
                Sym::intern(AsRef::<str>::as_ref(self))
            }
            fn find_sym(&self) -> Option<Sym> {
                Sym::find(AsRef::<str>::as_ref(self))
            }
        }
    )*};
}
str_name!(str, &str, String, Box<str>, Rc<str>);

/// Number of children above which a hash index is maintained.
pub const INDEX_THRESHOLD: usize = 8;

/// The ordered children of a cell.
#[derive(Default)]
pub struct Children {
    entries: Vec<(Sym, CellPtr)>,
    /// name -> position in `entries`; present only while `entries.len() > INDEX_THRESHOLD`.
    /// Boxed: most cells never have one, and a cell stays small (48 bytes with its header).
    index: Option<Box<SymMap<usize>>>,
}

impl Children {
    pub fn new() -> Children {
        Children::default()
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[inline]
    fn position(&self, name: Sym) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(&name).copied(),
            None => self.entries.iter().position(|&(k, _)| k == name),
        }
    }

    #[inline]
    pub fn get(&self, name: Sym) -> Option<CellPtr> {
        self.position(name).map(|i| self.entries[i].1)
    }

    /// Add a child that is not present yet (callers check with `get` first).
    #[inline]
    pub fn insert_new(&mut self, key: Sym, cell: CellPtr) {
        debug_assert!(self.get(key).is_none());
        if let Some(index) = &mut self.index {
            index.insert(key, self.entries.len());
        }
        self.entries.push((key, cell));
        if self.index.is_none() && self.entries.len() > INDEX_THRESHOLD {
            self.rebuild_index();
        }
    }

    /// Remove a child, keeping the order of the others. Returns whether it was present.
    pub fn remove(&mut self, name: Sym) -> bool {
        let Some(pos) = self.position(name) else {
            return false;
        };
        self.entries.remove(pos);
        if self.entries.len() > INDEX_THRESHOLD {
            self.rebuild_index();
        } else {
            self.index = None;
        }
        true
    }

    #[inline]
    pub fn clear(&mut self) {
        self.entries.clear();
        self.index = None;
    }

    /// Drop every child of a dead cell, keeping the entries' capacity when it is at most
    /// `keep` (so a recycled cell rarely allocates), else freeing it.
    pub(crate) fn recycle(&mut self, keep: usize) {
        if self.entries.capacity() > keep {
            self.entries = Vec::new();
        } else {
            self.entries.clear();
        }
        self.index = None;
    }

    fn rebuild_index(&mut self) {
        let index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, &(k, _))| (k, i))
            .collect();
        self.index = Some(Box::new(index));
    }

    pub fn iter(&self) -> impl Iterator<Item = (Sym, CellPtr)> + '_ {
        self.entries.iter().copied()
    }

    /// The child cells in insertion order (what marking needs).
    #[inline]
    pub fn cells(&self) -> impl Iterator<Item = CellPtr> + '_ {
        self.entries.iter().map(|&(_, c)| c)
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

    /// Record that a Store lookup went through (or ended at) this cell.
    #[inline]
    pub(crate) fn set_walked(self) {
        // SAFETY: as in `value`.
        unsafe { (*self.0.as_ptr()).header.walked.set(true) }
    }

    /// Whether a Store lookup ever went through (or ended at) this cell since it was allocated.
    #[inline]
    pub fn walked(self) -> bool {
        // SAFETY: as in `value`.
        unsafe { (*self.0.as_ptr()).header.walked.get() }
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
