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
use crate::value::{Tag, Value};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ptr::NonNull;
use std::rc::Rc;

/// A small, fast, non-cryptographic hasher for child names (FNV-1a over 8-byte words).
///
/// Names are short program identifiers and hash flooding is not a threat model for a local
/// language VM, so the std SipHash (about 20 ns per short name) is not worth its cost here.
#[derive(Default)]
pub struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        const PRIME: u64 = 0x0000_0100_0000_01B3;
        let mut h = if self.0 == 0 { 0xCBF2_9CE4_8422_2325 } else { self.0 };
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            h = (h ^ u64::from_le_bytes(c.try_into().expect("8 bytes"))).wrapping_mul(PRIME);
        }
        for &b in chunks.remainder() {
            h = (h ^ b as u64).wrapping_mul(PRIME);
        }
        self.0 = h;
    }
    fn finish(&self) -> u64 {
        // Mix the high bits down: hashbrown takes its bucket index from the low bits.
        self.0 ^ (self.0 >> 29)
    }
}

type NameMap<V> = HashMap<Rc<str>, V, BuildHasherDefault<NameHasher>>;

/// A path component usable as a child name. Creating a child needs an owned key; decoded
/// paths hold `Rc<str>` components, so a new child shares the path's string instead of
/// allocating a copy.
pub trait Name: AsRef<str> {
    fn to_key(&self) -> Rc<str> {
        self.as_ref().into()
    }
}

impl Name for str {}
impl Name for &str {}
impl Name for String {}
impl Name for Box<str> {}
impl Name for Rc<str> {
    fn to_key(&self) -> Rc<str> {
        self.clone()
    }
}

/// Number of children above which a hash index is maintained.
pub const INDEX_THRESHOLD: usize = 8;

/// The ordered children of a cell.
#[derive(Default)]
pub struct Children {
    entries: Vec<(Rc<str>, CellPtr)>,
    /// name -> position in `entries`; present only while `entries.len() > INDEX_THRESHOLD`.
    index: Option<NameMap<usize>>,
}

impl Children {
    pub fn new() -> Children {
        Children::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, name: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(name).copied(),
            None => self.entries.iter().position(|(k, _)| &**k == name),
        }
    }

    pub fn get(&self, name: &str) -> Option<CellPtr> {
        self.position(name).map(|i| self.entries[i].1)
    }

    /// Add a child that is not present yet (callers check with `get` first).
    pub fn insert_new(&mut self, key: Rc<str>, cell: CellPtr) {
        debug_assert!(self.get(&key).is_none());
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), self.entries.len());
        }
        self.entries.push((key, cell));
        if self.index.is_none() && self.entries.len() > INDEX_THRESHOLD {
            self.rebuild_index();
        }
    }

    /// Remove a child, keeping the order of the others. Returns whether it was present.
    pub fn remove(&mut self, name: &str) -> bool {
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

    pub fn clear(&mut self) {
        self.entries.clear();
        self.index = None;
    }

    fn rebuild_index(&mut self) {
        let index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        self.index = Some(index);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, CellPtr)> {
        self.entries.iter().map(|(k, c)| (&**k, *c))
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

    #[inline]
    pub fn child(self, name: &str) -> Option<CellPtr> {
        // SAFETY: the borrow of `children` ends before this function returns.
        unsafe { (*self.0.as_ptr()).children.get(name) }
    }

    /// Add a child named `name`, which must not exist yet.
    pub fn insert_child<N: Name + ?Sized>(self, name: &N, child: CellPtr) {
        let key = name.to_key();
        // SAFETY: exclusive access for the duration of the call (single-threaded runtime, no
        // reference into the cell escapes any accessor).
        unsafe { (*self.0.as_ptr()).children.insert_new(key, child) }
    }

    /// Unlink the child `name`. Returns whether it existed.
    pub fn remove_child(self, name: &str) -> bool {
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
            f(k, c);
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
