//! The Store's inline cache: one line per site that names a Store path (a path operand of a
//! Code, an instruction of compiled code), holding the cell the path resolved to. A line is
//! valid while the graph's epoch equals the one it was filled under: the epoch moves whenever
//! a cell some walk went through is unlinked (`graph.rs`), so a valid line names a live cell
//! that the path still reaches.
//!
//! The executor and compiled code use this one line type and this one protocol. Compiled code
//! reads a line's two words inline (at [`LINE_EPOCH_OFFSET`] and [`LINE_CELL_OFFSET`]) and calls
//! a helper on a miss; only [`StoreCacheLine::refill`] writes a line.

use crate::cell::CellPtr;
use crate::decode::Path;
use crate::graph::Graph;
use crate::heap::CellObj;
use std::cell::Cell;
use std::ptr::NonNull;

/// One cache line: `cell` is what the path resolved to, valid while the graph's epoch is
/// `epoch`. Interior-mutable, so lines shared with the running code (the executor's sit in
/// an `Rc<LoadedModule>`) fill in place.
#[repr(C)]
#[derive(Debug)]
pub struct StoreCacheLine {
    epoch: Cell<u64>,
    cell: Cell<*mut CellObj>,
}

/// Byte offsets of a line's words, for code that reads them inline (`Cell<T>` has `T`'s
/// layout).
pub const LINE_EPOCH_OFFSET: i32 = std::mem::offset_of!(StoreCacheLine, epoch) as i32;
pub const LINE_CELL_OFFSET: i32 = std::mem::offset_of!(StoreCacheLine, cell) as i32;

impl StoreCacheLine {
    /// A line that misses: epochs start at 0 and grow by one per structural change, so
    /// `u64::MAX` is never a live one.
    pub const fn empty() -> StoreCacheLine {
        StoreCacheLine {
            epoch: Cell::new(u64::MAX),
            cell: Cell::new(std::ptr::null_mut()),
        }
    }

    /// The cell the line holds, if it was filled under `epoch` (the graph's current one).
    #[inline(always)]
    pub fn cell_at(&self, epoch: u64) -> Option<CellPtr> {
        if self.epoch.get() == epoch {
            NonNull::new(self.cell.get()).map(CellPtr::from_raw)
        } else {
            None
        }
    }

    /// Walk to `path`'s Store cell (the walk is marked, so unlinking the cell moves the
    /// epoch) and fill the line with it under the current epoch; `None`, the line untouched,
    /// when the path was never created.
    #[inline(never)]
    pub fn refill(&self, graph: &Graph, path: &Path) -> Option<CellPtr> {
        let cell = graph.store_lookup(&path.syms)?;
        self.epoch.set(graph.epoch());
        self.cell.set(cell.as_raw().as_ptr());
        Some(cell)
    }

    /// The cell of `path` through the line: a hit, or a refill.
    #[inline(always)]
    pub fn resolve(&self, graph: &Graph, path: &Path) -> Option<CellPtr> {
        self.cell_at(graph.epoch()).or_else(|| self.refill(graph, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_line_misses_at_every_epoch() {
        let line = StoreCacheLine::empty();
        assert!(line.cell_at(0).is_none());
        assert!(line.cell_at(7).is_none());
    }

    #[test]
    fn the_offsets_are_the_two_words() {
        assert_eq!(LINE_EPOCH_OFFSET, 0);
        assert_eq!(LINE_CELL_OFFSET, 8);
        assert_eq!(std::mem::size_of::<StoreCacheLine>(), 16);
    }
}
