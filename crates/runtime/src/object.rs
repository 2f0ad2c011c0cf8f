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
    /// A cell a Store lookup has walked through or resolved to (see `graph.rs`, epoch).
    pub(crate) walked: StdCell<bool>,
    /// A cell a Store lookup has walked *through* (searched its children or followed its
    /// CellRef), not only resolved to; implies `walked`.
    pub(crate) walked_through: StdCell<bool>,
}

impl Header {
    pub(crate) fn new(kind: ObjKind) -> Header {
        Header {
            kind,
            marked: StdCell::new(0),
            walked: StdCell::new(false),
            walked_through: StdCell::new(false),
        }
    }
}
