//! Record names: a virtual Register name used only below itself.
//!
//! The stdlib's constructors build a record in a Register name and hand out its cell:
//! `{ !_.n.right !_.n.left !_.n.color !_.n.value !_.n.key  _.n. }` (a dict node),
//! `{ !_.cell.next !_.cell.value  _.cell. }` (a list cell). The name's own value is never
//! read or written there, only its children and its identity. Such a name is virtual as a
//! plain name is, but its slot holds a CellRef to the cell `_.n` is, which compiled code
//! makes itself at the name's first `!_.n.f` or `_.n.` (`jit_new_record`); the Register root
//! that would hold it is never made. `!_.n.f` writes the child (`jit_write_field`),
//! `_.n.` pushes the CellRef, `_.n.f` reads below it as a read below a plain name's CellRef
//! does. An exit attaches the cell to the materialised Register under its name
//! (`ExitName::record`), so the executor finds exactly the graph its own walks would have
//! made.
//!
//! Why the cell is the right one: the executor's walk of `_.n.f` goes to `_.n` and, unless
//! `_.n` holds a CellRef, into its children. A record name's value is written only by
//! `!_.n` and `!_.n.`, which a Code with record names does not have (`reg_eligible`), or by
//! a write through a CellRef to it, which stores no CellRef; and no other Code can reach the
//! name through `_` (a virtual `_.` that would escape bails). So it never holds a CellRef,
//! and `_.n`'s children are the cell's.
//!
//! Both helpers are leaves: they allocate without a safepoint (as the virtual `!_.x` beside
//! them skips the executor's), and touch nothing compiled code keeps in registers. A field
//! write that would go through a CellRef the field holds is not done: the code deopts there
//! and the executor does it. One that moved the graph's write counter or epoch (the field is
//! a cell a Store lookup went through or watches) leaves speculative code at the next
//! instruction, as a call that wrote would.

use super::*;
use soma_runtime::ops::{FieldWrite, MAX_RECORD_FIELDS};
use soma_runtime::sym::Sym;

impl<'e> Translator<'_, 'e> {
    /// `!_.n.f` (Register path `k`, two components) of a virtual Register at `level`.
    pub(super) fn gen_set_field(&mut self, level: usize, k: usize) {
        let Some(i) = self.reg_name(level, k) else { return };
        let n = self.names(level)[i].clone();
        if n.defined && !n.record {
            return self.give_up("a field written below a plain Register name");
        }
        if !n.defined {
            if let Some(fields) = self.fresh_record_fields(k) {
                return self.new_record_with_fields(level, i, &fields);
            }
        }
        let Some((entry, peeked)) = self.value_to_store(k) else { return };
        self.out.record_sites += 1;
        let field = self.path(k).syms[1].0;
        let sym = self.b.ins().iconst(I32, i64::from(field as i32));
        if !n.defined {
            // The record's first write makes its cell, with the field.
            self.new_record(level, i, sym, entry.val);
            if peeked {
                self.vs.pop();
            }
            return;
        }
        let record = self.read_slot(n.slot);
        let r = self.helper(At::Main, Helper::WriteField, &[self.vm, record, sym, entry.val]).expect("a result");
        let cold = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(cold);
        self.b.ins().brif(r, cold, &[], cont, &[]);
        self.seal_blocks(&[cold]);
        self.b.switch_to_block(cold);
        // 1: the write goes through a CellRef the field holds: the executor does this
        // instruction (the value still on the AL).
        let through = self.b.create_block();
        let other = self.b.create_block();
        let is_through = self.b.ins().icmp_imm_s(IntCC::Equal, r, FieldWrite::WouldWriteThrough as i64);
        self.b.ins().brif(is_through, through, &[], other, &[]);
        self.seal_blocks(&[through, other]);
        self.b.switch_to_block(through);
        if !peeked {
            self.vs.push(VEntry::Value(entry));
        }
        self.emit_deopt(DeoptReason::RegisterWriteThrough);
        if !peeked {
            self.vs.pop();
        }
        // 2: written, but the graph's counters moved; 3: the helper failed.
        self.b.switch_to_block(other);
        if peeked {
            self.vs.pop();
        }
        let failed = self.b.create_block();
        let moved = self.b.create_block();
        let is_failure = self.b.ins().icmp_imm_s(IntCC::Equal, r, helpers::FIELD_WRITE_FAILED as i64);
        self.b.ins().brif(is_failure, failed, &[], moved, &[]);
        self.seal_blocks(&[failed, moved]);
        self.b.switch_to_block(failed);
        self.emit_internal_error_return();
        self.b.switch_to_block(moved);
        if self.spec.is_some() {
            // What the code holds of cells may be stale (`spec_after_call`'s case).
            let next = self.lvl().pc + 1;
            self.emit_deopt_at(next, DeoptReason::RecordFieldSeen);
        } else {
            self.b.ins().jump(cont, &[]);
        }
        self.seal_blocks(&[cont]);
        self.b.switch_to_block(cont);
    }

    /// `_.n.` (Register path `k`, one component) of a virtual Register at `level`: the
    /// record name's cell, made here if the name has none yet.
    pub(super) fn gen_ref_record(&mut self, level: usize, k: usize) {
        let Some(i) = self.reg_name(level, k) else { return };
        let n = self.names(level)[i].clone();
        if n.defined && !n.record {
            return self.give_up("a reference to a plain Register name");
        }
        self.out.record_sites += 1;
        if !n.defined {
            let no_field = self.b.ins().iconst(I32, i64::from(helpers::NO_FIELD as i32));
            let nothing = self.iconst(0);
            self.new_record(level, i, no_field, nothing);
        }
        let n = self.names(level)[i].clone();
        let e = self.read_name(&n, k);
        self.vpush_entry(e);
    }

    /// The error path of a leaf helper that failed (it panicked: the internal error is on the
    /// VM), with the virtual stack as the executor would hold it.
    fn emit_internal_error_return(&mut self) {
        let st = self.b.ins().iconst(I32, i64::from(ffi::SOMA_INTERNAL));
        let pending = self.pending();
        self.emit_error_return(st, &pending);
    }

    /// The fields of the writes that start at the current instruction, a `!_.n.f` of a record
    /// name with no cell yet, when the code makes them at once: the instruction and the
    /// `!_.n.g` right after it into the same name (at least one, and at most
    /// `MAX_RECORD_FIELDS` in all), each of another field, as far as their values are
    /// virtual entries (each write takes the top one). `dict.#node`'s five writes, inlined
    /// where its caller pushed the fields, are one call instead of five.
    ///
    /// Why it is the same: a new record's field writes each add a child to a cell nothing
    /// else can reach yet (its CellRef is pushed only by a later `_.n.`), holding a value
    /// that is already computed; none can fail (a value is there for each), go through a
    /// CellRef (each child is new) or move the graph's counters (no lookup walked the cell).
    /// So making the cell with all its children in their order leaves what the writes one
    /// by one would, and no exit can come between them.
    fn fresh_record_fields(&self, k: usize) -> Option<Vec<Sym>> {
        let l = self.lvl();
        let first = self.path(k);
        let mut fields = vec![first.syms[1]];
        for ins in &l.code.instrs[l.pc + 1..] {
            if fields.len() == MAX_RECORD_FIELDS || ins.op != Opcode::SetReg {
                break;
            }
            let p = &l.code.paths[ins.operand as usize];
            if p.syms.len() != 2 || p.syms[0] != first.syms[0] || fields.contains(&p.syms[1]) {
                break;
            }
            fields.push(p.syms[1]);
        }
        // As many as there are virtual values on top (the writes after take the real AL's).
        let virtual_values = self.vs.entries().iter().rev().take_while(|e| matches!(e, VEntry::Value(_))).count();
        fields.truncate(virtual_values);
        // A direct self-call's entry joins the body at one instruction: never inside a batch.
        let joins_inside = self.depth() == 0
            && self.direct.as_ref().is_some_and(|d| (l.pc + 1..l.pc + fields.len()).contains(&d.args));
        (fields.len() >= 2 && !joins_inside).then_some(fields)
    }

    /// Make the cell of record name `i` of `level` with the fields `fields` (from
    /// [`Self::fresh_record_fields`]), taking their values off the virtual stack, and pass
    /// over the writes after the current one.
    fn new_record_with_fields(&mut self, level: usize, i: usize, fields: &[Sym]) {
        self.out.record_sites += fields.len();
        self.out.record_batches += 1;
        let base = self.flush_addr();
        self.max_flush = self.max_flush.max(2 * fields.len());
        let flags = MemFlagsData::trusted();
        let top = self.vs.entries().len() - 1;
        for (j, field) in fields.iter().enumerate() {
            let v = self.vs.entries()[top - j].value().expect("checked: a virtual value").val;
            let sym = self.b.ins().iconst(I64, i64::from(field.0));
            self.b.ins().store(flags, sym, base, (16 * j) as i32);
            self.b.ins().store(flags, v, base, (16 * j + 8) as i32);
        }
        let n = self.iconst(fields.len() as u64);
        let cell = self.helper(At::Main, Helper::NewRecordFields, &[self.vm, base, n]).expect("a cell or 0");
        // An internal error leaves with every value still on the AL, as at the first write.
        self.keep_record_cell(level, i, cell);
        for _ in fields {
            self.vs.pop();
        }
        self.lowered_ahead = fields.len() - 1;
    }

    /// Make the cell of record name `i` of `level` (with field `sym` holding `v`, unless
    /// `sym` is `NO_FIELD`) and keep it in the name's slot.
    fn new_record(&mut self, level: usize, i: usize, sym: ir::Value, v: ir::Value) {
        let cell = self.helper(At::Main, Helper::NewRecord, &[self.vm, sym, v]).expect("a cell or 0");
        self.keep_record_cell(level, i, cell);
    }

    /// A record cell just made (`cell`, 0 if its helper failed) becomes record name `i` of
    /// `level`.
    fn keep_record_cell(&mut self, level: usize, i: usize, cell: ir::Value) {
        let failed = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(failed);
        self.b.ins().brif(cell, cont, &[], failed, &[]);
        self.seal_blocks(&[failed, cont]);
        self.b.switch_to_block(failed);
        self.emit_internal_error_return();
        self.b.switch_to_block(cont);
        let slot = self.names(level)[i].slot;
        self.write_slot(slot, cell);
        let name = &mut self.names(level)[i];
        name.defined = true;
        name.record = true;
        name.info = Some(VValue::new(cell, None));
    }
}
