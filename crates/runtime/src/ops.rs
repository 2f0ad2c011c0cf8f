//! The path operations and execute dispatch: the semantics behind the path opcodes.
//!
//! Each method is the single native definition of its operation; the C-ABI helpers in
//! `ffi.rs` wrap them and the reference executor calls those helpers. Operations that can
//! allocate call `safepoint` on entry, before they pop anything.

use crate::cell::{CellPtr, INLINE_CHILDREN};
use crate::decode::Path;
use crate::error::{msg, RtResult};
use crate::graph::Graph;
use crate::store_cache::StoreCacheLine;
use crate::sym::Sym;
use crate::value::Value;
use crate::vm::Vm;

/// Most fields [`Vm::new_record_fields`] makes at once.
pub const MAX_RECORD_FIELDS: usize = 8;

/// What [`Vm::write_record_field`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum FieldWrite {
    Written = 0,
    /// Nothing: the child holds a CellRef and the value is none, so the write goes through
    /// (the executor's to do).
    WouldWriteThrough = 1,
    /// Written, and the graph's write counter or epoch moved (the child was one a Store
    /// lookup went through or watches): what compiled code assumed of cells may be stale.
    WrittenCountersMoved = 2,
}

impl Vm {
    /// `a.b` (LOAD_STORE): push the value of the Store cell; error if never created.
    pub fn load_store(&mut self, path: &Path) -> RtResult<()> {
        let v = self.read_store(path)?;
        self.al.push(v);
        Ok(())
    }

    /// The value `a.b` would push.
    pub fn read_store(&self, path: &Path) -> RtResult<Value> {
        self.graph
            .store_read(&path.syms)
            .ok_or_else(|| msg::undefined_store(&path.display))
    }

    /// `_.a` (LOAD_REG).
    pub fn load_reg(&mut self, path: &Path) -> RtResult<()> {
        let v = self.read_reg(path)?;
        self.al.push(v);
        Ok(())
    }

    pub fn read_reg(&self, path: &Path) -> RtResult<Value> {
        Graph::reg_read(self.register(), &path.syms)
            .ok_or_else(|| msg::undefined_register(&path.display))
    }

    /// `a.b.` (REF_STORE): push a CellRef, creating the cell and its parents.
    pub fn ref_store(&mut self, path: &Path) -> RtResult<()> {
        self.safepoint()?;
        let cell = self.ref_store_cell(path);
        self.al.push(cell.as_value());
        Ok(())
    }

    /// The cell `a.b.` refers to, created (with its parents, Void) if needed. No safepoint.
    pub fn ref_store_cell(&mut self, path: &Path) -> CellPtr {
        self.graph.store_ref(&mut self.heap, &path.syms)
    }

    /// `_.a.` (REF_REG).
    pub fn ref_reg(&mut self, path: &Path) -> RtResult<()> {
        self.safepoint()?;
        let frame = self.frames.last_mut().expect("top-level frame");
        let cell = self
            .graph
            .reg_ref(&mut self.heap, &mut frame.register, &path.syms);
        self.al.push(cell.as_value());
        Ok(())
    }

    /// Pop the value a store statement writes (`!P` and `!P.` share one underflow message).
    fn pop_for_store(&mut self) -> RtResult<Value> {
        self.al.pop().ok_or_else(msg::store_underflow)
    }

    /// `!a.b` (SET_STORE): pop and write (CellRef write-through).
    pub fn set_store(&mut self, path: &Path) -> RtResult<()> {
        self.safepoint()?;
        let v = self.pop_for_store()?;
        self.graph.store_write(&mut self.heap, &path.syms, v);
        Ok(())
    }

    /// `!a.b` (SET_STORE) through a Store cache line: as [`Vm::set_store`], writing with
    /// [`Vm::write_store_cached`].
    pub fn set_store_cached(&mut self, path: &Path, line: &StoreCacheLine) -> RtResult<()> {
        self.safepoint()?;
        let v = self.pop_for_store()?;
        self.write_store_cached(path, line, v);
        Ok(())
    }

    /// Write `v` at Store path `path` through its cache line: into the cached cell when the
    /// line is valid, else by the walk (creating cells), refilling the line; write-through and
    /// epoch rules of `Graph::write_cell` either way. Never collects.
    pub fn write_store_cached(&mut self, path: &Path, line: &StoreCacheLine, v: Value) {
        match line.cell_at(self.graph.epoch()) {
            Some(cell) => self.graph.write_cell(cell, v),
            None => {
                self.graph.store_write(&mut self.heap, &path.syms, v);
                line.refill(&self.graph, path);
            }
        }
    }

    /// `!_.a` (SET_REG).
    pub fn set_reg(&mut self, path: &Path) -> RtResult<()> {
        self.safepoint()?;
        let v = self.pop_for_store()?;
        let frame = self.frames.last_mut().expect("top-level frame");
        self.graph
            .reg_write(&mut self.heap, &mut frame.register, &path.syms, v);
        Ok(())
    }

    /// `!a.b.` (SETREF_STORE): pop; Void deletes, anything else replaces and drops children.
    pub fn setref_store(&mut self, path: &Path) -> RtResult<()> {
        self.safepoint()?;
        let v = self.pop_for_store()?;
        self.graph.store_setref(&mut self.heap, &path.syms, v);
        Ok(())
    }

    /// `!_.a.` (SETREF_REG).
    pub fn setref_reg(&mut self, path: &Path) -> RtResult<()> {
        self.safepoint()?;
        let v = self.pop_for_store()?;
        let frame = self.frames.last_mut().expect("top-level frame");
        self.graph
            .reg_setref(&mut self.heap, &mut frame.register, &path.syms, v);
        Ok(())
    }

    // ----- record names of compiled code -----
    //
    // A Register name used only below itself (`!_.n.f`, `_.n.f`, `_.n.`: a record being
    // built) lives in compiled code as the cell it names, made before the Register that
    // would hold it exists: these are the two writes the executor's walk from `_` would do
    // there. They never collect (no safepoint: the caller may hold unrooted values), as
    // the virtual `!_.x` they stand beside does not.

    /// A new cell for a record name (value Void), with the child `field` holding its value
    /// when given: `_.n.` or the first `!_.n.f` of a Register name that does not exist yet.
    pub fn new_record(&mut self, field: Option<(Sym, Value)>) -> Value {
        let cell = self.heap.alloc_cell();
        if let Some((name, v)) = field {
            self.add_field(cell, name, v);
        }
        cell.as_value()
    }

    /// A new record cell with the fields `fields` (distinct names, in the order they are
    /// written), each a new child holding its value: what `new_record` and one
    /// `write_record_field` per further field make of a fresh record, in one step. A fresh
    /// record's fields are new cells no lookup has walked, so no write goes through a CellRef
    /// and the graph's counters do not move. Never collects.
    ///
    /// # Panics
    /// With more than [`MAX_RECORD_FIELDS`] fields.
    pub fn new_record_fields(&mut self, fields: &[(Sym, Value)]) -> Value {
        assert!(fields.len() <= MAX_RECORD_FIELDS, "at most MAX_RECORD_FIELDS fields at once");
        let cell = self.heap.alloc_cell();
        // (`cell` only fills the unused tail.)
        let mut children = [(Sym(0), cell); MAX_RECORD_FIELDS];
        for (slot, &(name, v)) in children.iter_mut().zip(fields) {
            *slot = (name, self.field_cell(v));
        }
        let spare = if fields.len() > INLINE_CHILDREN { self.heap.take_spare_spill() } else { None };
        cell.fill_children_reusing(&children[..fields.len()], spare);
        cell.as_value()
    }

    /// A new child `name` of `record` (which has none of that name) holding `v`.
    fn add_field(&mut self, record: CellPtr, name: Sym, v: Value) {
        let child = self.field_cell(v);
        record.insert_child_sym(name, child);
    }

    /// A new cell holding `v`, to be a record's field.
    fn field_cell(&mut self, v: Value) -> CellPtr {
        let child = self.heap.alloc_cell();
        child.set_value(v);
        child
    }

    /// `!_.n.name` of `v` where the record name `_.n` is `record`, which never holds a
    /// CellRef (so the executor's walk would stay in its children): the child is created
    /// or written with `Graph::write_cell`'s rules, except that a write that would go
    /// through a CellRef the child holds is not done (the caller hands the instruction to
    /// the executor instead).
    pub fn write_record_field(&mut self, record: CellPtr, name: Sym, v: Value) -> FieldWrite {
        debug_assert!(!record.value().is_cell_ref(), "a record name never holds a CellRef");
        match record.child_sym(name) {
            None => {
                self.add_field(record, name, v);
                FieldWrite::Written
            }
            Some(child) if child.value().is_cell_ref() && !v.is_cell_ref() => FieldWrite::WouldWriteThrough,
            Some(child) => {
                let before = (self.graph.epoch(), self.graph.writes());
                self.graph.write_cell(child, v);
                if (self.graph.epoch(), self.graph.writes()) == before {
                    FieldWrite::Written
                } else {
                    FieldWrite::WrittenCountersMoved
                }
            }
        }
    }

    /// `>a.b` (EXEC_STORE): read and execute.
    pub fn exec_store(&mut self, path: &Path) -> RtResult<()> {
        let v = self.read_store(path)?;
        self.exec_value(v)
    }

    /// `>_.a` (EXEC_REG).
    pub fn exec_reg(&mut self, path: &Path) -> RtResult<()> {
        let v = self.read_reg(path)?;
        self.exec_value(v)
    }

    /// Execute a value: a Block runs (compiled if it has a native entry, else interpreted),
    /// a builtin runs, anything else is an error. Runs to completion (native recursion,
    /// bounded by the depth limit and the native stack guard).
    pub fn exec_value(&mut self, v: Value) -> RtResult<()> {
        if v.as_block_obj().is_some() {
            crate::exec::run_block(self, v)
        } else if let Some(b) = v.as_builtin_obj() {
            // SAFETY: builtin objects are VM roots for the VM's whole life.
            let id = unsafe { (*b.as_ptr()).id };
            self.call_builtin(id)
        } else {
            Err(msg::not_executable(v))
        }
    }
}
