//! The header every heap object starts with: which struct follows it and the collector's
//! and the Store cache's per-object flags. Below the object layouts (`heap.rs`, `cell.rs`) and
//! the NaN-boxed `Value`, which points at objects through it.

use std::cell::Cell as StdCell;

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
    pub(crate) kind: ObjKind,
    /// The mark epoch of the collection that last marked this object (`Heap::mark_epoch`
    /// alternates between 1 and 2; new objects have 0). An object is marked when this equals
    /// the current epoch, so survivors need no unmarking pass.
    pub(crate) marked: StdCell<u8>,
    /// What the graph's caches know of a cell (`CELL_*` bits; 0 for other objects and for a
    /// fresh cell): see `graph.rs`, "Structural epoch" and "Write counter".
    pub(crate) cell_flags: StdCell<u8>,
}

/// A Store lookup has walked through this cell or resolved to it.
pub(crate) const CELL_WALKED: u8 = 1;
/// A Store lookup has walked *through* this cell (searched its children or followed its
/// CellRef), not only resolved to it; set with [`CELL_WALKED`].
pub const CELL_WALKED_THROUGH: u8 = 2;
/// Speculative code may hold this cell's value across a call: writes to it are counted.
pub(crate) const CELL_WATCHED: u8 = 4;
/// Speculative code assumes this cell keeps its value (a guard: a builtin, a Block, a
/// constant): a write to it moves the structural epoch (`graph.rs`, "Guarded cells").
pub const CELL_GUARDED: u8 = 8;

impl Header {
    pub(crate) fn new(kind: ObjKind) -> Header {
        Header {
            kind,
            marked: StdCell::new(0),
            cell_flags: StdCell::new(0),
        }
    }
}
