//! VM fields that speculative code keeps in registers: the poll countdown, the block depth and
//! the depth limit. Every block entry (a chained round, an inlined body's virtual frame)
//! decrements the countdown and bumps the depth; in memory that is a load and a store each,
//! several times per round. Speculative code keeps them in SSA variables instead and makes
//! memory current wherever anything else could look: before every helper call (the helper may
//! read them, and may change them, so they are loaded again after it), and before every
//! return (exits go through helpers). The pre-header loads them again, since it also runs
//! after the host poll.
//!
//! Baseline and generic optimized code use memory directly (the same accessors, no
//! variables): they call helpers too often for the registers to pay.

use super::*;
use cranelift_frontend::Variable;

/// The variables, when speculating.
#[derive(Clone, Copy)]
pub(super) struct VmState {
    countdown: Variable,
    depth: Variable,
    max_depth: Variable,
}

/// A field of the `Vm` the accessors below read and write.
#[derive(Clone, Copy)]
pub(super) enum VmField {
    /// `u32` entries left until the next poll.
    Countdown,
    /// Nested block executions (frames and virtual frames).
    Depth,
    /// The depth limit (read only).
    MaxDepth,
}

impl VmField {
    pub(super) fn offset(self) -> i32 {
        match self {
            VmField::Countdown => JitLayout::POLL_COUNTDOWN,
            VmField::Depth => JitLayout::BLOCK_DEPTH,
            VmField::MaxDepth => JitLayout::MAX_DEPTH,
        }
    }

    fn ty(self) -> ir::Type {
        match self {
            VmField::Countdown => I32,
            VmField::Depth | VmField::MaxDepth => I64,
        }
    }
}

impl<'e> Translator<'_, 'e> {
    /// Keep the fields in variables from here on (the start of speculative code).
    pub(super) fn declare_vm_state(&mut self) {
        let state = VmState {
            countdown: self.b.declare_var(I32),
            depth: self.b.declare_var(I64),
            max_depth: self.b.declare_var(I64),
        };
        self.vm_state = Some(state);
        self.reload_vm_state();
    }

    fn var(state: VmState, field: VmField) -> Variable {
        match field {
            VmField::Countdown => state.countdown,
            VmField::Depth => state.depth,
            VmField::MaxDepth => state.max_depth,
        }
    }

    /// Define the variables from memory (after a helper, in the pre-header).
    pub(super) fn reload_vm_state(&mut self) {
        let Some(state) = self.vm_state else { return };
        self.close_poll_region();
        for field in [VmField::Countdown, VmField::Depth, VmField::MaxDepth] {
            let v = self
                .b
                .ins()
                .load(field.ty(), MemFlagsData::trusted(), self.vm, field.offset());
            self.b.def_var(Self::var(state, field), v);
        }
    }

    /// Make memory current (before a helper call or a return). A variable still holding the
    /// value a reload loaded is not stored: no sync ran since that reload (each is followed by
    /// another), so memory holds it. Code that gives a variable an older value back must not
    /// give it a reloaded one (see `restore_depth`).
    pub(super) fn sync_vm_state(&mut self) {
        self.sync_write_count(false);
        self.sync_vm_fields();
    }

    /// [`Self::sync_vm_state`] where the function returns next (an exit, a return): the code
    /// will not compare the write counter again, so its idea of the counter (`writes`) is not
    /// advanced. Advancing it there would be a use of the variable on every exit path, which
    /// keeps it live through a loop whose rounds never read it, and the register allocator
    /// then moves it between a register and its stack slot in every round.
    pub(super) fn sync_vm_state_to_leave(&mut self) {
        self.sync_write_count(true);
        self.sync_vm_fields();
    }

    /// Add the code's own writes to the graph's write counter (part of [`Self::sync_vm_state`]),
    /// after storing the writes kept in registers (`speculate.rs`, "Sunk writes"). `leaving`:
    /// the function returns next (see [`Self::sync_vm_state_to_leave`]).
    pub(super) fn sync_write_count(&mut self, leaving: bool) {
        if self.vm_state.is_none() {
            return;
        }
        self.flush_sunk_writes();
        // Writes whose stores wait for the exits' shared tail are counted here, by their flag
        // (a flush that stores them counts them itself, and clears it).
        if let Some(flag) = self.sunk_dirty.filter(|_| self.sunk_flush_in_tail && !self.sunk.is_empty()) {
            let dirty = self.b.use_var(flag);
            if self.known_iconst(dirty) != Some(0) {
                self.count_own_writes(dirty);
            }
        }
        let writes = self.writes_var.filter(|_| self.body_started);
        let own_count = writes.map(|(seen, own)| (seen, own, self.b.use_var(own)));
        // Nothing to add where the count is known to be 0 (right after another sync point).
        if let Some((seen, own, d)) = own_count.filter(|&(_, _, d)| self.known_iconst(d) != Some(0)) {
            // Add the code's own writes to the graph's counter (see `speculate.rs`).
            let flags = MemFlagsData::trusted();
            let addr = self.vm_const(self.env.writes_ptr as u64);
            let m = self.b.ins().load(I64, flags, addr, 0);
            let m = self.b.ins().iadd(m, d);
            self.b.ins().store(flags, m, addr, 0);
            let zero = self.iconst(0);
            self.b.def_var(own, zero);
            // What the counter would be had nothing else written since the pre-header: not
            // the counter itself, or a sync between a call and its check (a helper leaving a
            // frame) would hide that call's writes.
            if !leaving {
                let s = self.b.use_var(seen);
                let s = self.b.ins().iadd(s, d);
                self.b.def_var(seen, s);
            }
        }
    }

    /// Store the countdown and the depth kept in variables (part of [`Self::sync_vm_state`]).
    pub(super) fn sync_vm_fields(&mut self) {
        let Some(state) = self.vm_state else { return };
        for field in [VmField::Countdown, VmField::Depth] {
            let v = self.b.use_var(Self::var(state, field));
            // Still the value a reload read: memory holds it (every helper and call is followed
            // by a reload, which redefines the variable, so none ran since that load).
            if !self.is_reload_of(v, field) {
                self.b
                    .ins()
                    .store(MemFlagsData::trusted(), v, self.vm, field.offset());
            }
        }
    }

    /// Whether `v` is the value `reload_vm_state` loaded for `field`.
    pub(super) fn is_reload_of(&self, v: ir::Value, field: VmField) -> bool {
        let dfg = &self.b.func.dfg;
        let ir::ValueDef::Result(inst, 0) = dfg.value_def(dfg.resolve_aliases(v)) else { return false };
        matches!(dfg.insts[inst],
            ir::InstructionData::Load { opcode: ir::Opcode::Load, arg, offset, .. }
                if arg == self.vm && i32::from(offset) == field.offset())
    }

    pub(super) fn load_vm_field(&mut self, field: VmField) -> ir::Value {
        match self.vm_state {
            Some(state) => self.b.use_var(Self::var(state, field)),
            None => self
                .b
                .ins()
                .load(field.ty(), MemFlagsData::trusted(), self.vm, field.offset()),
        }
    }

    pub(super) fn store_vm_field(&mut self, field: VmField, v: ir::Value) {
        match self.vm_state {
            Some(state) => self.b.def_var(Self::var(state, field), v),
            None => {
                self.b
                    .ins()
                    .store(MemFlagsData::trusted(), v, self.vm, field.offset());
            }
        }
    }
}
