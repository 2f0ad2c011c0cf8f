//! Virtual Registers: names in shadow slots, `_.` and `!_.` modelled as aliases, the
//! Register instructions.

use super::*;
use cranelift_frontend::Variable;


/// Up to this many shadow slots are filled with one store each; more with a loop.
const UNROLLED_SLOT_FILL: usize = 16;

// # Slots reserved by the exits
//
// A function with virtual names reserves its shadow slots at entry: the top moves past them
// and they are filled with Void, so that the collector, which scans the shadow stack up to
// its top, finds valid values there, and the names' values stored before a call or a helper
// that may collect are roots. Speculative code keeps names in variables and stores them only
// where something could read them: before such a call (a name that may hold a heap value)
// and in the exits, which hand every name to `jit_exit`. When the exits are the only places
// that store there (fib: every name is a small Int), nothing needs the slots reserved while
// the function runs: the entry only checks that they fit and notes where they start, the
// returns release nothing, and the calls it makes reserve their own slots from the same
// top. An exit runs when every callee has returned, so the top is the entry's again: the
// exit stores the names at the address the entry noted, and `jit_exit` reserves the slots
// there (`Vm::shadow_adopt`), filling the unnamed ones with Void, before anything can
// collect. What is decided at the end of the translation (`exits_reserve_slots`): the
// entry's reservation and the returns' releases are removed, the slot fill left empty, and
// every exit description says the slots are not reserved.

impl<'e> Translator<'_, 'e> {
    /// Whether the prologue reserves shadow slots: level 0 has virtual names, or some site
    /// executes a Block that may be inlined (which may have some).
    pub(super) fn needs_slots(&self) -> bool {
        let l = &self.levels[0];
        if matches!(l.reg, RegMode::Virtual(_)) && has_register_instrs(l.code) {
            return true;
        }
        l.code.instrs.iter().any(|ins| match ins.op {
            Opcode::ExecConst => self.inlinable(l.consts[ins.operand as usize].to_bits()),
            Opcode::ExecStore => self
                .store_value_at_compile_time(&l.code.paths[ins.operand as usize])
                .is_some_and(|v| self.inlinable(v.to_bits())),
            _ => false,
        })
    }

    /// Reserve the shadow slots (the count is patched in at the end; when the shadow stack is
    /// full, the whole Code runs in the executor instead: a deopt at instruction 0).
    /// `Vm::shadow_reserve` inline: bump the top, fill the slots with Void (the collector
    /// marks every slot in use).
    pub(super) fn reserve_slots(&mut self) {
        let flags = MemFlagsData::trusted();
        let n = self.slot_count_const();
        let top = self.b.ins().load(I64, flags, self.vm, JitLayout::SHADOW_TOP);
        let new_top = self.b.ins().iadd(top, n);
        let full = self
            .b
            .ins()
            .icmp_imm_s(IntCC::UnsignedGreaterThan, new_top, SHADOW_STACK_SLOTS as i64);
        // Shadow stack exhausted (deep recursion of blocks with many names): the executor
        // would still run this block with heap Registers, so interpret the whole Code (a
        // deopt exit at instruction 0; no slots are held, none released).
        let fail = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(fail);
        self.b.ins().brif(full, fail, &[], cont, &[]);
        self.b.switch_to_block(fail);
        self.emit_direct_args_to_al();
        let st = self.emit_resume(Box::new([ResumePoint {
            block: self.env.block.to_bits(),
            pc: 0,
        }]), DeoptReason::ShadowStackFull);
        self.emit_time_end();
        self.b.ins().return_(&[st]);

        self.b.switch_to_block(cont);
        let reserve = self.b.ins().store(flags, new_top, self.vm, JitLayout::SHADOW_TOP);
        self.reservation_insts.push(reserve);
        let base = self.b.ins().load(I64, flags, self.vm, JitLayout::SHADOW_BASE);
        let offset = self.b.ins().ishl_imm_s(top, 3);
        let first = self.b.ins().iadd(base, offset);
        let home = self.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 8, 3));
        self.b.ins().stack_store(I64, first, home, 0);
        self.slots_home = Some(home);
        // The Void stores come when the count is known (`finish_slot_fill`): one store per
        // slot, no loop, for the usual few.
        let fill = self.b.create_block();
        let done = self.b.create_block();
        self.b.ins().jump(fill, &[]);
        self.slot_fill = Some((fill, first, done));
        self.b.switch_to_block(done);
        self.slots = Some(first);
    }

    /// Fill the block `reserve_slots` left for the Void stores, now that the slot count is
    /// known: a store per slot, or a loop when there are many; nothing when the exits reserve
    /// the slots. `exits_reserve`: what [`Self::exits_reserve_slots`] decided.
    pub(super) fn finish_slot_fill(&mut self, exits_reserve: bool) {
        let Some((fill, first, done)) = self.slot_fill.take() else { return };
        let flags = MemFlagsData::trusted();
        self.b.switch_to_block(fill);
        if exits_reserve {
            // Nothing reads the slots before an exit reserves them (and fills the rest).
            self.b.ins().jump(done, &[]);
            return;
        }
        let void = self.iconst(Value::VOID.to_bits());
        if self.slot_count <= UNROLLED_SLOT_FILL {
            for slot in 0..self.slot_count {
                self.b.ins().store(flags, void, first, Self::slot_offset(slot));
            }
            self.b.ins().jump(done, &[]);
            return;
        }
        let end = self.b.ins().iadd_imm_s(first, (self.slot_count * 8) as i64);
        let head = self.b.create_block();
        let p = self.b.append_block_param(head, I64);
        let store = self.b.create_block();
        self.b.ins().jump(head, &[BlockArg::Value(first)]);
        self.b.switch_to_block(head);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, p, end);
        self.b.ins().brif(more, store, &[], done, &[]);
        self.b.switch_to_block(store);
        self.b.ins().store(flags, void, p, 0);
        let next = self.b.ins().iadd_imm_s(p, 8);
        self.b.ins().jump(head, &[BlockArg::Value(next)]);
    }

    /// Whether the exits reserve the slots rather than the entry (see "Slots reserved by the
    /// exits" above): speculative code whose slots nothing but an exit stores into. Decided
    /// once the exits are finished.
    pub(super) fn exits_reserve_slots(&self) -> bool {
        self.slots.is_some() && self.slot_vars.is_some() && !self.slots_used_in_place
    }

    /// The level whose names the current level's Register instructions use (itself, or the
    /// level it aliases), when those names are virtual.
    pub(super) fn virtual_level(&self) -> Option<usize> {
        let mut i = self.depth();
        loop {
            match &self.levels[i].reg {
                RegMode::Virtual(_) => return Some(i),
                RegMode::Alias(j) => i = *j,
                RegMode::Heap => return None,
            }
        }
    }

    pub(super) fn names(&mut self, level: usize) -> &mut Vec<RegName> {
        match &mut self.levels[level].reg {
            RegMode::Virtual(names) => names,
            _ => unreachable!("level {level} is virtual"),
        }
    }

    /// The virtual name `name` of `level` (given a slot on first use; `None` when slots were
    /// not reserved, which bails).
    pub(super) fn reg_name(&mut self, level: usize, k: usize) -> Option<usize> {
        let path = self.path(k);
        let name = &*path.components[0];
        if let Some(i) = self.names(level).iter().position(|n| &*n.name == name) {
            return Some(i);
        }
        if self.slots.is_none() {
            self.give_up("no shadow slots reserved");
            return None;
        }
        // One slot per (level, name): both inlined branches of a `choose` give a name the
        // same slot, and Blocks inlined one after another at a level reuse them.
        let next = self.slot_count;
        let slot = *self.slot_memo.entry((level, name.into())).or_insert(next);
        if slot == next {
            self.slot_count += 1;
        }
        let sym = path.syms[0];
        let names = self.names(level);
        names.push(RegName {
            name: name.into(),
            slot,
            sym,
            defined: false,
            record: false,
            info: None,
        });
        Some(names.len() - 1)
    }

    pub(super) fn slot_offset(slot: usize) -> i32 {
        (slot * 8) as i32
    }

    /// The variable that holds a slot's value in speculative code (see [`Self::write_slot`]).
    fn slot_var(&mut self, slot: usize) -> Option<Variable> {
        let vars = self.slot_vars.as_mut()?;
        if let Some(&v) = vars.get(&slot) {
            return Some(v);
        }
        let v = self.b.declare_var(I64);
        self.slot_vars.as_mut()?.insert(slot, v);
        Some(v)
    }

    /// A virtual name's value. In speculative code it lives in a variable: the slot in memory is
    /// made current only where something else could read it, before a helper call (which may
    /// collect: the slots are roots) and in the exits (which materialise the Registers from
    /// the slots), so the hot path stores nothing.
    pub(super) fn read_slot(&mut self, slot: usize) -> ir::Value {
        match self.slot_var(slot) {
            Some(var) => self.b.use_var(var),
            None => {
                self.slots_used_in_place = true;
                let base = self.slots.expect("reserved");
                self.b.ins().load(I64, MemFlagsData::trusted(), base, Self::slot_offset(slot))
            }
        }
    }

    pub(super) fn write_slot(&mut self, slot: usize, v: ir::Value) {
        match self.slot_var(slot) {
            Some(var) => self.b.def_var(var, v),
            None => {
                self.slots_used_in_place = true;
                let base = self.slots.expect("reserved");
                self.b.ins().store(MemFlagsData::trusted(), v, base, Self::slot_offset(slot));
            }
        }
    }

    /// Store the variables of `slots` (names written on every path here) into memory.
    pub(super) fn sync_slots(&mut self, slots: &[usize]) {
        let Some(base) = self.slots else { return };
        for &slot in slots {
            if let Some(var) = self.slot_vars.as_ref().and_then(|m| m.get(&slot).copied()) {
                // The exits' own stores come when the translation is finishing.
                self.slots_used_in_place |= !self.finishing;
                let v = self.b.use_var(var);
                self.b.ins().store(MemFlagsData::trusted(), v, base, Self::slot_offset(slot));
            }
        }
    }

    /// The slots to make current before a call or a helper, which may collect (the slots are
    /// roots): the defined names', except those known to hold a small Int or a truth value,
    /// which the collector has nothing to find in, or a value known at compile time (a
    /// constant of a module, a Block: the module keeps it alive, and compiled code refers to
    /// it by address, so it never moves). Only the collector reads the slots then; an exit
    /// makes every slot current itself before it materialises the Registers. A slot left
    /// unwritten holds Void or a value written earlier, which it kept alive since.
    pub(super) fn root_slots(&self) -> Vec<usize> {
        self.levels
            .iter()
            .filter_map(|l| match &l.reg {
                RegMode::Virtual(names) => Some(
                    names
                        .iter()
                        .filter(|n| {
                            n.defined && !n.info.is_some_and(|e| e.int.is_some() || e.truth.is_some() || e.konst.is_some())
                        })
                        .map(|n| n.slot),
                ),
                _ => None,
            })
            .flatten()
            .collect()
    }

    pub(super) fn is_cell_ref(&mut self, v: ir::Value) -> ir::Value {
        let h = self.high16(v);
        self.b.ins().icmp_imm_s(IntCC::Equal, h, (Tag::CellRef.high_bits() >> 48) as i64)
    }

    /// LOAD_REG: a virtual name's slot, or the value-form helper (no AL traffic, never
    /// collects).
    pub(super) fn gen_load_reg(&mut self, k: usize) {
        match self.read_virtual(k) {
            VirtualRead::Value(e) => return self.vpush_entry(e),
            VirtualRead::Failed => return,
            VirtualRead::Heap => {}
        }
        let path = self.vm_const(self.path_ptr(k));
        let out = self.out_addr();
        let st = self.helper_status(At::Main, Helper::ReadReg, &[self.vm, path, out]);
        let pending = self.pending();
        self.check(st, &pending);
        let v = self.load_out();
        self.vpush(v, None);
    }

    /// Register path `k` read from a virtual Register: the value, or the error emitted (a
    /// name never written in this execution, which the Register does not have).
    pub(super) fn read_virtual(&mut self, k: usize) -> VirtualRead {
        let Some(level) = self.virtual_level() else { return VirtualRead::Heap };
        let Some(i) = self.reg_name(level, k) else { return VirtualRead::Failed };
        let n = self.names(level)[i].clone();
        if !n.defined {
            self.emit_undefined_reg(k);
            return VirtualRead::Failed;
        }
        if n.record && self.path(k).syms.len() == 1 {
            self.give_up("a record name read as a value");
            return VirtualRead::Failed;
        }
        VirtualRead::Value(self.read_name(&n, k))
    }

    /// The value of Register path `k` whose first name is the (defined) virtual name `n`: its
    /// slot, with what is known of it, or for a longer path the value below the cell it
    /// refers to (`jit_read_below`: never collects, errors as the executor's walk).
    pub(super) fn read_name(&mut self, n: &RegName, k: usize) -> VEntry {
        // Speculative code: the value written last, still in SSA (only this code writes its
        // slots, and the collector moves nothing): no load. Baseline code loads the slot:
        // keeping the value live longer costs spill slots in its frame, and deep recursion
        // runs on the native stack (10,000 nested blocks must fit 8 MiB; on aarch64 this
        // forwarding took the frames past it).
        if self.path(k).components.len() == 1 && self.slot_vars.is_some() {
            if let Some(info) = n.info {
                return VEntry::Value(info);
            }
        }
        let v = self.read_slot(n.slot);
        if self.path(k).components.len() > 1 {
            let below = self.emit_read_below(v, k);
            return VEntry::new(below, None);
        }
        // Baseline code keeps what is known at compile time of the value (a constant, a
        // `choose` between two known values: `>_.go` of the stdlib's `ifelse` inlines).
        let mut e = VValue::new(v, None);
        if let Some(info) = n.info {
            e.konst = info.konst;
            e.choice = info.choice;
            e.nested = info.nested;
        }
        VEntry::Value(e)
    }

    /// `_.x.rest` (Register path `k`) below the cell that `v`, the value of `_.x`, refers to.
    ///
    /// `_.x.name` (a record read: `_.t.key`, `_.n.left`) asks `jit_child_cell` for the child
    /// cell and loads its value: a leaf helper, so the VM fields and Register slots this
    /// code keeps in registers stay there, and there is no status or out slot. As a walk of
    /// one component (`Graph::lookup_below`), no CellRef is followed below the start. When
    /// it finds nothing (not a CellRef, no such child), or for a longer path,
    /// `jit_read_below` reads as the executor's walk and reports its error; it never
    /// collects.
    ///
    /// Measured against calling `jit_read_below` for every read (callgrind, synchronous
    /// compiles, one run): bst's run 1,070 -> 972 M instructions, dict_workload's 1,057 ->
    /// 978 M, each compile about 5% more. Comparing the four inline name slots in the code
    /// first (the cell layout allows it) ran bst 2% faster still but dict_workload (five
    /// children, so spilled) 10% slower than this, and made compiles 12-17% dearer.
    fn emit_read_below(&mut self, v: ir::Value, k: usize) -> ir::Value {
        let done = self.b.create_block();
        let result = self.b.append_block_param(done, I64);
        let slow = self.b.create_block();
        if let [_, name] = *self.path(k).syms {
            self.out.child_reads += 1;
            let found = self.b.create_block();
            let sym = self.b.ins().iconst(I32, i64::from(name.0 as i32));
            let child = self.helper(At::Aside, Helper::ChildCell, &[v, sym]).expect("a cell or 0");
            self.b.ins().brif(child, found, &[], slow, &[]);
            self.seal_blocks(&[found]);
            self.b.switch_to_block(found);
            let value = self.b.ins().load(I64, MemFlagsData::trusted(), child, CELL_VALUE_OFFSET as i32);
            self.b.ins().jump(done, &[BlockArg::Value(value)]);
        } else {
            self.b.ins().jump(slow, &[]);
        }
        self.seal_blocks(&[slow]);
        self.b.switch_to_block(slow);
        let path = self.vm_const(self.path_ptr(k));
        let out = self.out_addr();
        let st = self.helper_status(At::Main, Helper::ReadBelow, &[self.vm, v, path, out]);
        let pending = self.pending();
        self.check(st, &pending);
        let value = self.load_out();
        self.b.ins().jump(done, &[BlockArg::Value(value)]);
        self.seal_blocks(&[done]);
        self.b.switch_to_block(done);
        result
    }

    /// SET_REG: into a virtual name's slot, or through the helper.
    pub(super) fn gen_set_reg(&mut self, k: usize) {
        let Some(level) = self.virtual_level() else {
            return self.gen_path_helper(Helper::SetReg, k);
        };
        if self.path(k).syms.len() > 1 {
            return self.gen_set_field(level, k);
        }
        let Some(i) = self.reg_name(level, k) else { return };
        if self.names(level)[i].record {
            return self.give_up("a record name written as a value");
        }
        let Some((entry, peeked)) = self.value_to_store(k) else { return };
        let v = entry.val;
        let n = self.names(level)[i].clone();
        // An old value known not to be a CellRef (an Int, a constant) cannot write through.
        let plain = n.info.is_some_and(|e| e.known_not_cell_ref());
        if n.defined && !plain {
            // Write-through case: old value a CellRef, new value not one.
            let old = self.read_slot(n.slot);
            let old_ref = self.is_cell_ref(old);
            let new_ref = self.is_cell_ref(v);
            let through = self.b.ins().band_not(old_ref, new_ref);
            let deopt = self.b.create_block();
            let cont = self.b.create_block();
            self.b.set_cold_block(deopt);
            self.b.ins().brif(through, deopt, &[], cont, &[]);
            self.b.switch_to_block(deopt);
            if !peeked {
                self.vs.push(VEntry::Value(entry));
            }
            self.emit_deopt(DeoptReason::RegisterWriteThrough);
            if !peeked {
                self.vs.pop();
            }
            self.b.switch_to_block(cont);
        }
        self.write_slot(n.slot, v);
        if peeked {
            self.vs.pop();
        }
        let name = &mut self.names(level)[i];
        name.defined = true;
        name.info = Some(entry);
    }

    /// The value a `!_.` write of Register path `k` stores: the virtual top (peeked, so
    /// `true`: a deopt must still find it on the AL; the caller pops it), else popped from
    /// the real AL (underflow error as the executor). `None` when the translation bails.
    pub(super) fn value_to_store(&mut self, k: usize) -> Option<(VValue, bool)> {
        let (entry, peeked) = match self.vs.entries().last() {
            Some(e) => (*e, true),
            None => {
                let v = self.emit_take(1, |t| {
                    // Empty AL: the helper reports the store's underflow.
                    let path = t.vm_const(t.path_ptr(k));
                    let out = t.out_addr();
                    let st = t.helper_status(At::Leaving, Helper::PopForStore, &[t.vm, path, out]);
                    t.emit_error_return(st, &[]);
                });
                (VEntry::new(v[0], None), false)
            }
        };
        let VEntry::Value(entry) = entry else {
            self.give_up("a virtual `_.` stored in a Register");
            return None;
        };
        Some((entry, peeked))
    }

    /// REF_REG: `_.` of a virtual Register is a virtual entry (no cell yet), `_.n.` a record
    /// name's cell; anything else goes through the helper.
    pub(super) fn gen_ref_reg(&mut self, k: usize) {
        match self.virtual_level() {
            Some(level) if self.path(k).components.is_empty() => {
                self.vpush_entry(VEntry::RegisterRoot(level));
            }
            Some(level) if self.path(k).components.len() == 1 => self.gen_ref_record(level, k),
            _ => self.gen_path_helper(Helper::RefReg, k),
        }
    }

    /// SETREF_REG. `!_.` of a virtual `_.` of an outer level makes this level an alias of it
    /// (nothing is emitted); `!_.` of anything else replaces the root in the real frame, so
    /// the level's Register is a heap one from here on (the virtual names it had are
    /// dropped by that very write).
    pub(super) fn gen_setref_reg(&mut self, k: usize) {
        let here = self.depth();
        let top = self.vs.entries().last().copied();
        if self.path(k).components.is_empty() {
            if matches!(self.levels[here].reg, RegMode::Alias(_)) {
                // A second `!_.` writes through the alias into the target's root.
                return self.give_up("`!_.` on an aliased Register");
            }
            if self.vs.entries().iter().any(|e| e.register_root() == Some(here)) {
                return self.give_up("`!_.` while this level's `_.` is virtual");
            }
            if let Some(target) = top.and_then(|e| e.register_root()) {
                // (A `_.` of a level that has ended cannot be aliased: `target >= here`.)
                let both_virtual = || {
                    matches!(self.levels[target].reg, RegMode::Virtual(_))
                        && matches!(self.levels[here].reg, RegMode::Virtual(_))
                };
                if target >= here || !both_virtual() {
                    return self.give_up("`!_.` of an unsupported root");
                }
                self.vs.pop();
                self.levels[here].reg = RegMode::Alias(target);
                return;
            }
            if self.levels[here].virtual_frame {
                return self.give_up("a heap Register needs a real frame");
            }
            self.levels[here].reg = RegMode::Heap;
        }
        self.gen_path_helper(Helper::SetRefReg, k);
    }

    /// EXEC_REG: a virtual name's value is executed as a known value (maybe inlined); else
    /// the helper.
    pub(super) fn gen_exec_reg(&mut self, k: usize) {
        match self.read_virtual(k) {
            VirtualRead::Value(e) => return self.exec_entry(e),
            VirtualRead::Failed => return,
            VirtualRead::Heap => {}
        }
        self.gen_path_helper(Helper::ExecReg, k);
    }

    /// `Undefined Register path` for a virtual name never written (the real frame at the
    /// top may belong to another level, so it is not asked).
    pub(super) fn emit_undefined_reg(&mut self, k: usize) {
        let path = self.vm_const(self.path_ptr(k));
        let st = self.helper_status(At::Main, Helper::UndefinedReg, &[self.vm, path]);
        let pending = self.pending();
        self.emit_error_return(st, &pending);
        // Unreachable continuation, for the instructions lowered after this one.
        let dead = self.b.create_block();
        self.b.switch_to_block(dead);
    }

    /// Call a `(vm, path) -> status` helper that works on the AL (its row has it flushed).
    pub(super) fn gen_path_helper(&mut self, h: Helper, k: usize) {
        let path = self.vm_const(self.path_ptr(k));
        let st = self.helper_status(At::Main, h, &[self.vm, path]);
        self.check(st, &[]);
        self.spec_after_call();
    }

    /// Call a `(vm) -> status` AL-form builtin helper (its row has the AL flushed).
    pub(super) fn gen_al_builtin(&mut self, h: Helper) {
        let st = self.helper_status(At::Main, h, &[self.vm]);
        self.check(st, &[]);
        self.spec_after_call();
    }

}

/// The Register states after two inlined branches, when they agree: the same modes, the same
/// names defined (a name only one branch gave a slot must be undefined there), and what is
/// known of a value kept only where both branches know the same.
pub(super) fn merge_regs(a: &RegSnapshot, b: &RegSnapshot) -> Option<RegSnapshot> {
    a.iter()
        .zip(b)
        .map(|(x, y)| match (x, y) {
            (RegMode::Heap, RegMode::Heap) => Some(RegMode::Heap),
            (RegMode::Alias(i), RegMode::Alias(j)) if i == j => Some(RegMode::Alias(*i)),
            (RegMode::Virtual(xs), RegMode::Virtual(ys)) => {
                let mut names = Vec::with_capacity(xs.len().max(ys.len()));
                for n in xs {
                    match ys.iter().find(|m| m.name == n.name) {
                        Some(m) if m.slot == n.slot && m.defined == n.defined && m.record == n.record => {
                            let info = if m.info == n.info { n.info } else { None };
                            names.push(RegName { info, ..n.clone() });
                        }
                        None if !n.defined => names.push(n.clone()),
                        _ => return None,
                    }
                }
                for m in ys.iter().filter(|m| !xs.iter().any(|n| n.name == m.name)) {
                    if m.defined {
                        return None;
                    }
                    names.push(m.clone());
                }
                Some(RegMode::Virtual(names))
            }
            _ => None,
        })
        .collect()
}
