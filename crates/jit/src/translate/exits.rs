//! Error and deoptimisation exits: positioning an error, the shared exit blocks
//! `jit_exit` rebuilds the executor's state from, returns and slot release.

use super::*;

/// Where a shared exit block gets a pending entry from.
pub(super) enum ExitValue {
    /// A virtual Register's root: `jit_exit` makes its CellRef.
    Root,
    /// A constant, made in the exit block.
    Const(u64),
    /// A parameter of the block: the value, or a small Int's integer to box.
    Param { raw_int: bool },
}

impl<'e> Translator<'_, 'e> {
    /// After a helper returned `status`: when it is not OK, flush `pending` (what the executor
    /// would still hold on the AL), position the error at this instruction and return the
    /// status. Continues in a fresh block on success.
    pub(super) fn check(&mut self, status: ir::Value, pending: &[VEntry]) {
        self.check_leaving_frames(status, pending, 0);
    }

    /// [`Self::check`] of a status returned with `realized` virtual frames made real
    /// (`emit_realize_frames`): an exit makes them real itself (`jit_exit`), so the failing
    /// path leaves them first.
    pub(super) fn check_leaving_frames(&mut self, status: ir::Value, pending: &[VEntry], realized: usize) {
        if pending.is_empty() && self.depth() == 0 && realized == 0 {
            // Shared exit: one cold block per function positions and returns.
            let fail = self.error_exit();
            let cont = self.b.create_block();
            let (_, pc) = self.error_site();
            let pc = self.b.ins().iconst(I32, pc as i64);
            let args = [BlockArg::Value(status), BlockArg::Value(pc)];
            self.b.ins().brif(status, fail, &args, cont, &[]);
            self.b.seal_block(cont);
            self.b.switch_to_block(cont);
            return;
        }
        let fail = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(fail);
        self.b.ins().brif(status, fail, &[], cont, &[]);
        self.seal_blocks(&[fail, cont]);
        self.b.switch_to_block(fail);
        self.emit_leave_realized(realized);
        self.emit_error_return(status, pending);
        self.b.switch_to_block(cont);
    }

    /// The virtual stack as the executor would hold it (for error paths).
    pub(super) fn pending(&self) -> Vec<VEntry> {
        self.vs.entries().to_vec()
    }

    /// The function's shared error exit `(status, pc)` for level 0 with nothing pending:
    /// position the pending error at that instruction of level 0's Code, release the Register
    /// slots, return the status. Created on first use, filled by `finish_error_exit`.
    pub(super) fn error_exit(&mut self) -> ir::Block {
        if let Some(b) = self.shared_exit {
            return b;
        }
        let exit = self.b.create_block();
        self.b.set_cold_block(exit);
        for _ in 0..2 {
            self.b.append_block_param(exit, I32);
        }
        self.shared_exit = Some(exit);
        exit
    }

    /// Fill the shared error exit (after the body: a block under construction cannot be left).
    pub(super) fn finish_error_exit(&mut self) {
        let Some(exit) = self.shared_exit else { return };
        self.b.switch_to_block(exit);
        let p = self.b.block_params(exit).to_vec();
        let code = self.b.ins().iconst(I32, self.levels[0].code_index as i64);
        let module = self.b.ins().iconst(I32, self.levels[0].module as i64);
        self.helper(At::Leaving, Helper::ErrorAt, &[self.vm, code, p[1], module]);
        self.emit_return(p[0]);
    }

    /// Error path of the current instruction: `pending` is what the executor would still
    /// hold on the AL. Positions the error here (in this level's module), unwinds the frames
    /// of inlined levels and returns `status` (see [`helpers::jit_exit`]).
    pub(super) fn emit_error_return(&mut self, status: ir::Value, pending: &[VEntry]) {
        let (block, args) = self.error_target(status, pending);
        self.b.ins().jump(block, &args);
    }

    /// Where [`Self::emit_error_return`] jumps, and with what.
    pub(super) fn error_target(&mut self, status: ir::Value, pending: &[VEntry]) -> (ir::Block, Vec<BlockArg>) {
        let (code, pc) = self.error_site();
        let module = self.lvl().module;
        let site = self.iconst(((code as u64) << 32) | pc as u64);
        self.exit_target(status, pending, ExitKind::Error { module }, site)
    }

    /// Where an exit leaves through `jit_exit`, and the arguments to jump there with. Exits
    /// with the same shape (the levels and their Register states, the pending entries, the
    /// kind) share one block at the end of the function, which gets the status, the site
    /// (`code << 32 | pc` of an error, `deopt::encode_site` of a deopt) and the pending
    /// values as arguments.
    pub(super) fn exit_target(
        &mut self,
        status: ir::Value,
        pending: &[VEntry],
        kind: ExitKind,
        site: ir::Value,
    ) -> (ir::Block, Vec<BlockArg>) {
        // The shape's key, built in a buffer kept for the translation: most exits share the
        // shape of one before them, and then nothing else is built (translating is main-thread
        // time; this ran for every guard and every helper's error check).
        let mut key = std::mem::take(&mut self.exit_key);
        key.clear();
        key.push(matches!(kind, ExitKind::Deopt) as u64);
        if let ExitKind::Error { module } = kind {
            key.push(module as u64);
        }
        for (i, l) in self.levels.iter().enumerate() {
            key.extend([l.block.to_bits(), l.virtual_frame as u64, Self::resume_pc(&self.levels, i) as u64]);
            match &l.reg {
                RegMode::Heap => key.push(0),
                RegMode::Alias(n) => key.extend([1, *n as u64]),
                RegMode::Virtual(names) => {
                    key.push(2);
                    for n in names.iter().filter(|n| n.defined) {
                        key.extend([n.slot as u64, n.sym.0 as u64, n.record as u64]);
                    }
                    key.push(u64::MAX);
                }
            }
        }
        // A small Int held unboxed goes to the exit as its integer and is boxed there, and a
        // constant is made there: the boxed form, or the constant, is then dead on the hot path
        // when only exits use it (the old operand of an overflow-checked add, the `1` of
        // `n 1 >+`), and Cranelift does not sink such values into the cold block itself.
        for e in pending {
            match Self::exit_value(e) {
                ExitValue::Root => key.push(e.register_root().expect("a root") as u64),
                ExitValue::Const(bits) => key.extend([u64::MAX - 2, bits]),
                ExitValue::Param { raw_int: true } => key.push(u64::MAX - 1),
                ExitValue::Param { raw_int: false } => key.push(u64::MAX),
            }
        }
        let values = pending
            .iter()
            .filter_map(|e| e.value())
            .filter(|v| v.konst.is_none())
            .map(|v| v.int.unwrap_or(v.val));
        let mut args = vec![BlockArg::Value(status), BlockArg::Value(site)];
        args.extend(values.map(BlockArg::Value));
        let block = match self.exits.get(key.as_slice()) {
            Some(&b) => {
                self.exit_key = key;
                b
            }
            None => {
                let b = self.b.create_block();
                self.b.set_cold_block(b);
                self.b.append_block_param(b, I32);
                self.b.append_block_param(b, I64);
                for _ in 2..args.len() {
                    self.b.append_block_param(b, I64);
                }
                let levels = self
                    .levels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| ExitLevel {
                        block: l.block,
                        virtual_frame: l.virtual_frame,
                        reg: match &l.reg {
                            RegMode::Heap => ExitReg::Heap,
                            RegMode::Alias(n) => ExitReg::Alias(*n),
                            RegMode::Virtual(names) => ExitReg::Virtual(
                                names
                                    .iter()
                                    .filter(|n| n.defined)
                                    .map(|n| ExitName { slot: n.slot, sym: n.sym, record: n.record })
                                    .collect(),
                            ),
                        },
                        resume_pc: Self::resume_pc(&self.levels, i),
                    })
                    .collect();
                let desc = Box::new(ExitDesc {
                    levels,
                    pending: pending.iter().map(VEntry::register_root).collect(),
                    kind,
                    slot_count: 0,
                    slots_reserved: true,
                });
                let sources = pending.iter().map(Self::exit_value).collect();
                self.exits.insert(key, b);
                self.exit_bodies.push((b, desc, sources));
                b
            }
        };
        (block, args)
    }

    /// Where level `i` resumes: after the instruction that ran the next level (the innermost
    /// level's pc comes with the site).
    fn resume_pc(levels: &[Level], i: usize) -> usize {
        levels.get(i + 1).map_or(0, |next| next.call_pc + 1)
    }

    /// How a pending entry reaches an exit block.
    fn exit_value(e: &VEntry) -> ExitValue {
        match e {
            VEntry::RegisterRoot(_) => ExitValue::Root,
            VEntry::Value(v) => match v.konst {
                Some(bits) => ExitValue::Const(bits),
                None => ExitValue::Param { raw_int: v.int.is_some() },
            },
        }
    }

    /// Fill the shared exit blocks (after the body).
    ///
    /// Each exit block stores what it hands over and makes memory current; all of them then
    /// jump to one tail that calls `jit_exit` with the exit's description and returns its
    /// status: one call sequence and one epilogue in the machine code instead of one per
    /// exit (a function has about ten exits). The tail also stores the sunk Store writes
    /// (`speculate.rs`, "Sunk writes"), once for all exits: the variables it reads reach it
    /// as each exit block's values. Timed code (`CodeEnv::clock`) keeps a call per exit: its
    /// clock stops after the call, through a helper that syncs the VM fields.
    pub(super) fn finish_exits(&mut self) {
        let bodies = std::mem::take(&mut self.exit_bodies);
        let tail = (bodies.len() > 1 && self.env.clock.is_none()).then(|| {
            let b = self.b.create_block();
            self.b.set_cold_block(b);
            self.b.append_block_param(b, I32); // the exit's kind, as `jit_exit` takes it
            self.b.append_block_param(b, I64); // its site
            self.b.append_block_param(b, I64); // its `ExitDesc`
            b
        });
        self.sunk_flush_in_tail = tail.is_some();
        // Exits find the shadow slots again (`slots_again`); the address made at entry is only
        // the hot path's, and the invariant check's.
        let at_entry = self.slots;
        for (block, desc, sources) in bodies {
            self.b.switch_to_block(block);
            let params = self.b.block_params(block).to_vec();
            let mut next = params[2..].iter();
            self.max_flush = self.max_flush.max(desc.pending.len());
            // The buffer's address, made at the first store (an exit often hands over nothing).
            let mut buf = None;
            for (i, source) in sources.into_iter().enumerate() {
                let v = match source {
                    ExitValue::Root => continue,
                    ExitValue::Const(bits) => self.value_const(bits),
                    ExitValue::Param { raw_int } => {
                        let &v = next.next().expect("a parameter per value passed");
                        if raw_int { self.box_int(v) } else { v }
                    }
                };
                let at = match buf {
                    Some(at) => at,
                    None => *buf.insert(self.flush_addr()),
                };
                self.b.ins().store(MemFlagsData::trusted(), v, at, (i * 8) as i32);
            }
            // The names `jit_exit` materialises, from their variables (speculative code).
            let slots: Vec<usize> = desc
                .levels
                .iter()
                .filter_map(|l| match &l.reg {
                    ExitReg::Virtual(names) => Some(names.iter().map(|n| n.slot)),
                    _ => None,
                })
                .flatten()
                .collect();
            // The address only where something is stored there or `jit_exit` gets it here.
            let needs_slots = tail.is_none() || slots.iter().any(|s| self.slot_vars.as_ref().is_some_and(|m| m.contains_key(s)));
            self.slots = at_entry.filter(|_| needs_slots).map(|entry| self.slots_again(entry));
            self.sync_slots(&slots);
            let d = self.vm_const(&*desc as *const ExitDesc as u64);
            self.out.exits.push(desc);
            if let Some(tail) = tail {
                // What `helper` makes current before a call that may collect (the Register
                // slots are above; `jit_exit` passes the AL, so there is nothing to flush).
                self.sync_vm_state_to_leave();
                let args = [BlockArg::Value(params[0]), BlockArg::Value(params[1]), BlockArg::Value(d)];
                self.b.ins().jump(tail, &args);
                continue;
            }
            let buf = buf.unwrap_or_else(|| self.flush_addr());
            let slots = self.exit_slots();
            let st = self.helper_status(At::Leaving, Helper::Exit, &[self.vm, params[0], d, buf, slots, params[1]],
            );
            self.emit_time_end();
            self.b.ins().return_(&[st]);
        }
        if let Some(tail) = tail {
            self.b.switch_to_block(tail);
            self.slots = at_entry.map(|entry| self.slots_again(entry));
            let p = self.b.block_params(tail).to_vec();
            self.sunk_flush_in_tail = false;
            self.flush_sunk_writes();
            let buf = self.flush_addr();
            let slots = self.exit_slots();
            let st = self.emit_call(Helper::Exit, &[self.vm, p[0], p[2], buf, slots, p[1]]).expect("a status");
            self.b.ins().return_(&[st]);
        }
        self.slots = at_entry;
    }

    /// The address of this code's first shadow slot, for an exit: loaded from the frame slot
    /// where the entry stored it (`reserve_slots`). An exit uses this instead of `entry`, the
    /// address as an SSA value: a value only exits read stayed live through a loop's rounds,
    /// and the register allocator moved it between a register and the stack on every round
    /// (a load and a store of a loop's dozen instructions, the store the next round's load
    /// waited for). Until 2026-12-07 each exit computed it again from the VM (the shadow
    /// stack's base plus its top less the slots reserved here: every call this code makes
    /// releases what it reserves, so wherever this code runs the top is its own), seven
    /// instructions in each of a function's dozens of exit blocks. With the translator's
    /// invariant checks on, that computation, the loaded address and `entry` are compared.
    fn slots_again(&mut self, entry: ir::Value) -> ir::Value {
        let home = self.slots_home.expect("slots reserved at entry");
        let addr = self.b.ins().stack_load(I64, I64, home, 0);
        if self.env.check_invariants {
            let flags = MemFlagsData::trusted();
            let n = self.reserved_count_const();
            let top = self.b.ins().load(I64, flags, self.vm, JitLayout::SHADOW_TOP);
            let first = self.b.ins().isub(top, n);
            let offset = self.b.ins().ishl_imm_s(first, 3);
            let base = self.b.ins().load(I64, flags, self.vm, JitLayout::SHADOW_BASE);
            let again = self.b.ins().iadd(base, offset);
            for other in [again, entry] {
                let moved = self.b.ins().icmp(IntCC::NotEqual, addr, other);
                self.b.ins().trapnz(moved, ir::TrapCode::unwrap_user(TRAP_SLOTS_MOVED));
            }
        }
        addr
    }

    /// `jit_exit`'s Register slots argument (0 without slots).
    fn exit_slots(&mut self) -> ir::Value {
        match self.slots {
            Some(s) => s,
            None => self.iconst(0),
        }
    }

    pub(super) fn emit_leave_inlined(&mut self, n: usize) {
        if n > 0 {
            let n = self.iconst(n as u64);
            self.helper_status(At::Leaving, Helper::LeaveBlocks, &[self.vm, n]);
        }
    }

    /// Return `status`, releasing the shadow slots first.
    pub(super) fn emit_return(&mut self, status: ir::Value) {
        self.sync_vm_state_to_leave();
        self.emit_release_slots();
        self.emit_time_end();
        self.b.ins().return_(&[status]);
    }

    /// `Vm::shadow_release` inline (slots are released in LIFO order).
    pub(super) fn emit_release_slots(&mut self) {
        if self.slots.is_some() {
            let flags = MemFlagsData::trusted();
            let n = self.slot_count_const();
            let top = self.b.ins().load(I64, flags, self.vm, JitLayout::SHADOW_TOP);
            let released = self.b.ins().isub(top, n);
            let store = self.b.ins().store(flags, released, self.vm, JitLayout::SHADOW_TOP);
            // Removed when the exits reserve the slots (`exits_reserve_slots`).
            for v in [top, released] {
                let inst = self.b.func.dfg.value_def(v).unwrap_inst();
                self.reservation_insts.push(inst);
            }
            self.reservation_insts.push(store);
        }
    }

    /// The number of shadow slots held while the code runs: the slot count, or 0 when the
    /// exits reserve them (an `iconst` patched once both are known).
    fn reserved_count_const(&mut self) -> ir::Value {
        let (v, inst) = self.placeholder_iconst(I64);
        self.reserved_count_uses.push(inst);
        v
    }

    /// The number of shadow slots the code has (an `iconst` patched once the count is known).
    pub(super) fn slot_count_const(&mut self) -> ir::Value {
        let (v, inst) = self.placeholder_iconst(I64);
        self.slot_count_uses.push(inst);
        v
    }

    pub(super) fn emit_time_end(&mut self) {
        if let Some(clock) = self.env.clock {
            let c = self.vm_const(clock as u64);
            self.helper(At::Leaving, Helper::TimeEnd, &[c]);
        }
    }

    /// Deoptimisation exit at the current instruction, for `reason`: the executor takes over
    /// every level, innermost first, with the virtual stack as its AL (see
    /// [`helpers::jit_exit`]).
    pub(super) fn emit_deopt(&mut self, reason: DeoptReason) {
        self.emit_deopt_at(self.lvl().pc, reason);
    }

    /// Deoptimisation exit that resumes the innermost level at instruction `pc`.
    pub(super) fn emit_deopt_at(&mut self, pc: usize, reason: DeoptReason) {
        let site = self.iconst(deopt::encode_site(pc, reason, 0));
        self.emit_deopt_site(site);
    }

    /// Deoptimisation exit with a site computed at run time (`deopt::encode_site`'s layout).
    pub(super) fn emit_deopt_site(&mut self, site: ir::Value) {
        let entries = self.pending();
        let ok = self.b.ins().iconst(I32, ffi::SOMA_OK as i64);
        let (block, args) = self.exit_target(ok, &entries, ExitKind::Deopt, site);
        self.b.ins().jump(block, &args);
    }

    /// Interpret from the frames `points` describe (`helpers::jit_resume`), a deopt for
    /// `reason`.
    pub(super) fn emit_resume(&mut self, points: Box<[ResumePoint]>, reason: DeoptReason) -> ir::Value {
        let n = self.iconst(points.len() as u64);
        let p = self.vm_const(points.as_ptr() as u64);
        let r = self.iconst(deopt::encode_site(0, reason, 0));
        self.out.resume_points.push(points);
        self.helper_status(At::Leaving, Helper::Resume, &[self.vm, p, n, r])
    }

}

/// The user trap code of a failed shadow-slot check (`CodeEnv::check_invariants`): at an exit,
/// the shadow stack's top was not where this code's slots end.
const TRAP_SLOTS_MOVED: u8 = 2;
