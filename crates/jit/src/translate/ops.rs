//! Value tests, the Store cache, and one `gen_*` per opcode with the specialised builtins.

use super::*;
use super::vmstate::VmField;
use soma_runtime::cell::{CELL_FLAGS_OFFSET, CELL_GUARDED};

impl<'e> Translator<'_, 'e> {
    pub(super) fn high16(&mut self, v: ir::Value) -> ir::Value {
        self.b.ins().ushr_imm_s(v, 48)
    }

    /// Nonzero when `v` is a small Int.
    pub(super) fn is_small_int(&mut self, v: ir::Value) -> ir::Value {
        let h = self.high16(v);
        self.b.ins().icmp_imm_s(IntCC::Equal, h, (Tag::Int.high_bits() >> 48) as i64)
    }

    /// Nonzero when `v` is a Block or a builtin.
    pub(super) fn is_executable(&mut self, v: ir::Value) -> ir::Value {
        let h = self.high16(v);
        let d = self.b.ins().iadd_imm_s(h, -((Tag::Block.high_bits() >> 48) as i64));
        self.b.ins().icmp_imm_s(IntCC::UnsignedLessThanOrEqual, d, 1)
    }

    /// Sign-extend the 48-bit payload.
    pub(super) fn unbox_int(&mut self, v: ir::Value) -> ir::Value {
        let s = self.b.ins().ishl_imm_s(v, 16);
        self.b.ins().sshr_imm_s(s, 16)
    }

    pub(super) fn box_int(&mut self, i: ir::Value) -> ir::Value {
        let p = self.b.ins().band_imm_s(i, PAYLOAD_MASK as i64);
        self.b.ins().bor_imm_s(p, Tag::Int.high_bits() as i64)
    }

    /// Whether `v` is [`Self::box_int`] of `i` made in this translation (rather than a value
    /// that came boxed, such as an argument or a Store value).
    pub(super) fn is_boxing_of(&self, v: ir::Value, i: ir::Value) -> bool {
        let dfg = &self.b.func.dfg;
        let defined_by = |v: ir::Value, op: ir::Opcode| match dfg.value_def(dfg.resolve_aliases(v)) {
            ir::ValueDef::Result(inst, 0) if dfg.insts[inst].opcode() == op => Some(dfg.inst_args(inst)[0]),
            _ => None,
        };
        defined_by(v, ir::Opcode::Bor)
            .and_then(|p| defined_by(p, ir::Opcode::Band))
            .is_some_and(|x| dfg.resolve_aliases(x) == dfg.resolve_aliases(i))
    }

    /// Nonzero when the i64 `i` fits in a small int.
    pub(super) fn fits_small(&mut self, i: ir::Value) -> ir::Value {
        let s = self.unbox_int(i);
        self.b.ins().icmp(IntCC::Equal, s, i)
    }

    // ----- Store cache -----

    /// The epoch guard of a cache line: branch to the cold `miss` block unless the line was
    /// filled under the current epoch; on a hit (the block now current) return its cell.
    pub(super) fn emit_cache_hit(&mut self, cache: ir::Value, miss: ir::Block) -> ir::Value {
        let flags = MemFlagsData::trusted();
        let epoch_addr = self.vm_const(self.env.epoch_ptr as u64);
        let epoch = self.b.ins().load(I64, flags, epoch_addr, 0);
        let cached = self.b.ins().load(I64, flags, cache, LINE_EPOCH_OFFSET);
        let hit = self.b.ins().icmp(IntCC::Equal, epoch, cached);
        let hit_b = self.b.create_block();
        self.b.set_cold_block(miss);
        self.b.ins().brif(hit, hit_b, &[], miss, &[]);
        self.b.switch_to_block(hit_b);
        self.b.ins().load(I64, flags, cache, LINE_CELL_OFFSET)
    }

    /// The poll countdown of a block entry done inline: decrement it, and at zero call `poll`
    /// (a status helper taking the VM); a non-zero status goes to `on_fail`, which ends its
    /// block. Continues in the block after the poll.
    pub(super) fn emit_countdown_poll(&mut self, poll: Helper, on_fail: impl FnOnce(&mut Self, ir::Value)) {
        self.emit_countdown_poll_then(poll, on_fail, |t, cont| {
            t.b.ins().jump(cont, &[]);
        });
    }

    /// [`Self::emit_countdown_poll`], with `after_poll` run where a poll succeeded: it ends
    /// that (cold) block, jumping to the continuation it is given or elsewhere.
    pub(super) fn emit_countdown_poll_then(
        &mut self,
        poll: Helper,
        on_fail: impl FnOnce(&mut Self, ir::Value),
        after_poll: impl FnOnce(&mut Self, ir::Block),
    ) {
        let n = self.load_vm_field(VmField::Countdown);
        let n = self.b.ins().iadd_imm_s(n, -1);
        self.store_vm_field(VmField::Countdown, n);
        let poll_b = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(poll_b);
        self.b.ins().brif(n, cont, &[], poll_b, &[]);
        self.b.switch_to_block(poll_b);
        let st = self.helper_status(At::Aside, poll, &[self.vm]);
        let fail = self.b.create_block();
        let polled = self.b.create_block();
        self.b.set_cold_block(fail);
        self.b.set_cold_block(polled);
        self.b.ins().brif(st, fail, &[], polled, &[]);
        self.b.switch_to_block(fail);
        on_fail(self, st);
        self.b.switch_to_block(polled);
        after_poll(self, cont);
        self.b.switch_to_block(cont);
    }

    /// This Block's execution count, loaded (at entry: whoever entered it counted it).
    pub(super) fn load_own_exec_count(&mut self) -> ir::Value {
        let obj = self.env.block.as_block_obj().expect("a compiled Block").as_ptr() as u64;
        let count_addr = self.vm_const(obj + std::mem::offset_of!(BlockObj, exec_count) as u64);
        self.b.ins().load(I64, MemFlagsData::trusted(), count_addr, 0)
    }

    /// When this Block's execution `count` is `n`, ask for the optimized compile: a cold call
    /// of `jit_note_hot`, which neither collects nor touches the AL (it translates and
    /// queues, or compiles and installs), so nothing is flushed.
    pub(super) fn emit_hot_check(&mut self, count: ir::Value, n: u64) {
        let hot = self.b.ins().icmp_imm_s(IntCC::Equal, count, n as i64);
        let ask = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(ask);
        self.b.ins().brif(hot, ask, &[], cont, &[]);
        self.b.switch_to_block(ask);
        let block = self.vm_const(self.env.block.to_bits());
        self.helper(At::Aside, Helper::NoteHot, &[self.vm, block]);
        self.b.ins().jump(cont, &[]);
        self.b.switch_to_block(cont);
    }

    /// `exec_count += 1` on the Block object at `obj` (an execution the executor would count);
    /// returns the new count.
    pub(super) fn emit_count_execution(&mut self, obj: u64) -> ir::Value {
        let flags = MemFlagsData::trusted();
        let count_addr = self.vm_const(obj + std::mem::offset_of!(BlockObj, exec_count) as u64);
        let count = self.b.ins().load(I64, flags, count_addr, 0);
        let count = self.b.ins().iadd_imm_s(count, 1);
        self.b.ins().store(flags, count, count_addr, 0);
        count
    }

    /// The value of Store path `k` through this instruction's cache line. When the path was
    /// never created, the `Undefined Store path` error exit.
    pub(super) fn cached_store_value(&mut self, k: usize) -> ir::Value {
        if self.lvl().is_program {
            // The program runs once: a helper read is smaller and compiles faster.
            let path = self.vm_const(self.path_ptr(k));
            let out = self.out_addr();
            let st = self.helper_status(At::Main, Helper::ReadStore, &[self.vm, path, out]);
            let pending = self.pending();
            self.check(st, &pending);
            return self.load_out();
        }
        // Never created: the helper recorded `Undefined Store path` (the virtual stack is what
        // the executor holds).
        let st = self.b.ins().iconst(I32, ffi::SOMA_ERROR as i64);
        let pending = self.pending();
        let (undefined, args) = self.error_target(st, &pending);
        let cell = self.emit_cached_cell(self.path_ptr(k), Helper::ResolveStore, undefined, &args);
        self.b.ins().load(I64, MemFlagsData::trusted(), cell, CELL_VALUE_OFFSET as i32)
    }

    /// The cell of the Store path at `path` through a fresh cache line: the epoch-guarded hit,
    /// or on a miss the helper `miss` (`jit_resolve_store`, or `jit_ref_store_cell`, which
    /// makes the cell), which refills the line; when it finds no cell (it recorded the error)
    /// the code jumps to `missing` with `args`. Continues, with the cell, in a block of its own.
    pub(super) fn emit_cached_cell(&mut self, path: u64, miss: Helper, missing: ir::Block, args: &[BlockArg]) -> ir::Value {
        let line = self.cache_ptr();
        let cache = self.vm_const(line);
        let miss_b = self.b.create_block();
        let have = self.b.create_block();
        let cell = self.b.append_block_param(have, I64);
        let c = self.emit_cache_hit(cache, miss_b);
        self.b.ins().jump(have, &[BlockArg::Value(c)]);

        self.b.switch_to_block(miss_b);
        let path = self.vm_const(path);
        let c = self.helper(At::Aside, miss, &[self.vm, path, cache]).expect("cell");
        self.b.ins().brif(c, have, &[BlockArg::Value(c)], missing, args);
        self.b.switch_to_block(have);
        cell
    }

    /// End of the Code. The virtual stack goes to the AL and the function returns OK, except
    /// in a chained run (a `chain` loop is running this Code) whose result on top is this
    /// very Block: the loop would pop it and run it again, so the code runs that next
    /// iteration itself without growing anything (see `heap::NativeEntry`).
    pub(super) fn finish_body(&mut self) {
        let self_bits = self.env.block.to_bits();
        let top = self.vs.entries().last().and_then(VEntry::value).copied();
        let top = top.filter(|e| !self.lvl().is_program && (e.konst == Some(self_bits) || e.may_be == Some(self_bits)));
        let Some(top) = top else {
            self.emit_direct_return();
            self.flush();
            let ok = self.b.ins().iconst(I32, ffi::SOMA_OK as i64);
            self.emit_return(ok);
            return;
        };
        self.vs.pop();
        self.flush();
        let is_self = match top.choice {
            // `>block X >choose`: the condition itself.
            Some((truthy, a, b)) if a == self_bits && b != self_bits => truthy,
            Some((truthy, a, b)) if b == self_bits && a != self_bits => {
                self.b.ins().icmp_imm_s(IntCC::Equal, truthy, 0)
            }
            _ => {
                let me = self.vm_const(self_bits);
                self.b.ins().icmp(IntCC::Equal, top.val, me)
            }
        };
        if self.spec.is_some() {
            // Newer code is looked for only when the host poll runs (`emit_reenter_spec`).
            // Two branches rather than a `band`: each is a test and a jump.
            let loop_b = self.b.create_block();
            let ret_b = self.b.create_block();
            // Leaving the loop is once per loop: its blocks go after the rounds' code, which
            // then takes one jump per round, the back edge (see `cold.rs`).
            self.b.set_cold_block(ret_b);
            if self.may_assume_chained() {
                // The pre-header made sure a `chain` loop runs this code.
                self.spec.as_mut().expect("speculating").chained_only = true;
                self.b.ins().brif(is_self, loop_b, &[], ret_b, &[]);
            } else {
                let is_chained = self.b.create_block();
                self.b.ins().brif(is_self, is_chained, &[], ret_b, &[]);
                self.b.switch_to_block(is_chained);
                let chained = self.chained_flag();
                self.b.ins().brif(chained, loop_b, &[], ret_b, &[]);
            }
            // The return path's push may call a helper, which ends the poll region for the
            // code translated after it; the loop's path does not pass there.
            let region = self.poll_region;
            self.b.switch_to_block(ret_b);
            // A `choose` between two constants is selected again here: the select made where
            // it was chosen is then used by nothing on the loop's path, and not computed there.
            let v = match top.choice {
                Some((truthy, a, b)) => {
                    let (a, b) = (self.value_const(a), self.value_const(b));
                    self.b.ins().select(truthy, a, b)
                }
                None => top.val,
            };
            self.emit_push(vec![v]);
            let ok = self.b.ins().iconst(I32, ffi::SOMA_OK as i64);
            self.emit_return(ok);
            self.b.switch_to_block(loop_b);
            self.poll_region = region;
            return self.emit_reenter_spec();
        }
        let chained = self.chained_flag();
        let again = self.b.ins().band(is_self, chained);
        // Newer code for this Block installed meanwhile (the optimizing tier): return, and
        // the `chain` loop runs the next round in it.
        let flag_addr = self.vm_const(&*self.out.superseded as *const std::cell::Cell<u64> as u64);
        let superseded = self.b.ins().load(I64, MemFlagsData::trusted(), flag_addr, 0);
        let loop_b = self.b.create_block();
        let ret_b = self.b.create_block();
        let check_b = self.b.create_block();
        let moved_b = self.b.create_block();
        self.b.set_cold_block(moved_b);
        self.b.ins().brif(again, check_b, &[], ret_b, &[]);
        self.b.switch_to_block(check_b);
        self.b.ins().brif(superseded, moved_b, &[], loop_b, &[]);
        // Leaving for the newer code: mark the move (2), for the statistics.
        self.b.switch_to_block(moved_b);
        let two = self.b.ins().iconst(I64, 2);
        self.b.ins().store(MemFlagsData::trusted(), two, flag_addr, 0);
        self.b.ins().jump(ret_b, &[]);

        self.b.switch_to_block(ret_b);
        self.emit_push(vec![top.val]);
        let ok = self.b.ins().iconst(I32, ffi::SOMA_OK as i64);
        self.emit_return(ok);

        self.b.switch_to_block(loop_b);
        self.emit_reenter();
        self.b.ins().jump(self.body, &[]);
    }

    /// Nonzero (as an i8 truth value) when this run is chained (`chained` is 1; a direct
    /// self-call passes another value, see `direct.rs`).
    pub(super) fn chained_flag(&mut self) -> ir::Value {
        self.b.ins().icmp_imm_s(IntCC::Equal, self.chained, 1)
    }

    /// The block-entry bookkeeping of the next chained iteration (`Vm::enter_block` for the
    /// same Block at the same depth): poll countdown, execution count, fresh Register.
    pub(super) fn emit_reenter(&mut self) {
        // A failed poll fails the block entry: the error is the caller's, positioned at its
        // `chain` (as when `Vm::enter_block` fails), so it is returned unpositioned.
        self.emit_countdown_poll(Helper::Poll, |t, st| t.emit_return(st));

        let obj = self.env.block.as_block_obj().expect("a compiled Block").as_ptr();
        let count = self.emit_count_execution(obj as u64);
        if let Some(n) = self.env.hot_at {
            self.emit_hot_check(count, n);
        }
        // Level 0's Register may be virtual now and heap at the end (after `!_.` of a value):
        // restarting the real frame is right whatever the mode.
        if has_register_instrs(self.levels[0].code) {
            self.helper_status(At::Main, Helper::RestartFrame, &[self.vm]);
        }
    }

    // ----- one gen_* per opcode -----

    /// CONST: a virtual push of the constant's bits (constants are module roots).
    pub(super) fn gen_const(&mut self, k: usize) {
        let bits = self.lvl().consts[k].to_bits();
        let v = self.value_const(bits);
        self.vpush(v, Some(bits));
    }

    /// LOAD_STORE: inline read through the epoch-guarded cache line.
    pub(super) fn gen_load_store(&mut self, k: usize) {
        if self.speculating() {
            if let Some(e) = self.spec_read_store(k) {
                self.vpush_entry(VEntry::Value(e));
            }
            return;
        }
        let v = self.cached_store_value(k);
        self.vpush(v, None);
    }

    /// REF_STORE (`a.b.`): the CellRef of the cell behind this instruction's cache line. On a
    /// miss `jit_ref_store_cell` makes the cell if the path was never created (the
    /// executor's walk) and refills the line. Neither path collects or touches the AL, and
    /// neither writes a value or deletes: speculative code goes on as after a read.
    /// Run-once program code keeps the AL-form helper.
    pub(super) fn gen_ref_store(&mut self, k: usize) {
        if self.lvl().is_program {
            return self.gen_path_helper(Helper::RefStore, k);
        }
        // The helper fails only by panicking (the internal error is on the VM).
        let st = self.b.ins().iconst(I32, i64::from(ffi::SOMA_INTERNAL));
        let pending = self.pending();
        let (failed, args) = self.error_target(st, &pending);
        let cell = self.emit_cached_cell(self.path_ptr(k), Helper::RefStoreCell, failed, &args);
        let tag = self.iconst(Tag::CellRef.high_bits());
        let v = self.b.ins().bor(cell, tag);
        self.vpush(v, None);
    }

    /// SET_STORE: the cached-write helper (a safepoint, like the executor's: its row has the
    /// virtual AL flushed first).
    pub(super) fn gen_set_store(&mut self, k: usize) {
        if let Some(e) = self.vs.pop() {
            let VEntry::Value(e) = e else {
                return self.give_up("a virtual `_.` stored in the Store");
            };
            if self.speculating() {
                return self.spec_set_store(k, e);
            }
            return self.gen_set_store_value(k, e.val);
        }
        let path = self.vm_const(self.path_ptr(k));
        let line = self.cache_ptr();
        let cache = self.vm_const(line);
        if self.speculating() {
            // The value is on the AL (a call left it there): take it into a register and
            // store it as speculative code stores a virtual value. An empty AL is the
            // helper's underflow error.
            let v = self.emit_take(1, |t| {
                let st = t.helper_status(At::Leaving, Helper::SetStore, &[t.vm, path, cache]);
                t.emit_error_return(st, &[]);
            });
            return self.spec_set_store(k, VValue::new(v[0], None));
        }
        self.impure("a Store write from the AL in speculative code");
        let st = self.helper_status(At::Main, Helper::SetStore, &[self.vm, path, cache]);
        self.check(st, &[]);
    }

    /// SET_STORE of a virtual value: an inline store into the cached cell when neither the old
    /// nor the new value is a CellRef and no speculative code guards the cell (no
    /// write-through, no epoch change), else the value-form helper. Nothing is flushed:
    /// neither path collects.
    pub(super) fn gen_set_store_value(&mut self, k: usize, v: ir::Value) {
        let line = self.cache_ptr();
        let cache = self.vm_const(line);
        if self.lvl().is_program {
            return self.emit_set_store_helper(k, cache, v);
        }
        let flags = MemFlagsData::trusted();
        let slow = self.b.create_block();
        let store_b = self.b.create_block();
        let done = self.b.create_block();
        let cell = self.emit_cache_hit(cache, slow);
        let old = self.b.ins().load(I64, flags, cell, CELL_VALUE_OFFSET as i32);
        let old_ref = self.is_cell_ref(old);
        let new_ref = self.is_cell_ref(v);
        let any_ref = self.b.ins().bor(old_ref, new_ref);
        let cell_flags = self.b.ins().uload8(I32, flags, cell, CELL_FLAGS_OFFSET as i32);
        let guarded = self.b.ins().band_imm_s(cell_flags, i64::from(CELL_GUARDED));
        let guarded = self.b.ins().icmp_imm_s(IntCC::NotEqual, guarded, 0);
        let slow_needed = self.b.ins().bor(any_ref, guarded);
        self.b.ins().brif(slow_needed, slow, &[], store_b, &[]);

        self.b.switch_to_block(store_b);
        self.b.ins().store(flags, v, cell, CELL_VALUE_OFFSET as i32);
        self.emit_count_write();
        self.b.ins().jump(done, &[]);

        self.b.switch_to_block(slow);
        self.emit_set_store_helper(k, cache, v);
        self.b.ins().jump(done, &[]);

        self.b.switch_to_block(done);
    }

    /// `Graph::writes += 1`: an inline cell write counts as the graph's own writes do.
    pub(super) fn emit_count_write(&mut self) {
        let flags = MemFlagsData::trusted();
        let addr = self.vm_const(self.env.writes_ptr as u64);
        let n = self.b.ins().load(I64, flags, addr, 0);
        let n = self.b.ins().iadd_imm_s(n, 1);
        self.b.ins().store(flags, n, addr, 0);
    }

    /// `jit_set_store_value` (the write with write-through and epoch rules, refilling the
    /// cache line), error exit with the virtual stack as it stands.
    pub(super) fn emit_set_store_helper(&mut self, k: usize, cache: ir::Value, v: ir::Value) {
        self.impure("a Store write through the helper in speculative code");
        let path = self.vm_const(self.path_ptr(k));
        let st = self.helper_status(At::Main, Helper::SetStoreValue, &[self.vm, path, cache, v],
        );
        let pending = self.pending();
        self.check(st, &pending);
    }

    /// EXEC_CONST: a block literal, inlined when small, else run through the exec helper.
    pub(super) fn gen_exec_const(&mut self, k: usize) {
        let bits = self.lvl().consts[k].to_bits();
        let v = self.value_const(bits);
        self.exec_entry(VEntry::new(v, Some(bits)));
    }

    /// EXEC_STORE: read through the cache. A site whose path held a specialised builtin or an
    /// inlinable Block at compile time is guarded on the value's identity (deopt exit when
    /// rebound) and lowered inline; anything else is flushed and executed by the helper.
    pub(super) fn gen_exec_store(&mut self, k: usize) {
        let speculating = self.speculating();
        let seen = self.store_value_at_compile_time(self.path(k));
        let builtin = seen.and_then(|s| {
            let p = s.as_builtin_obj()?;
            // SAFETY: builtin objects are VM roots for the VM's whole life.
            let id: BuiltinId = unsafe { (*p.as_ptr()).id };
            is_specialised(id).then_some(id)
        });
        let block = seen.filter(|s| s.as_block_obj().is_some());
        let Some(bits) = seen.filter(|_| builtin.is_some() || block.is_some()) else {
            let v = if speculating {
                let Some(e) = self.spec_read_store(k) else { return };
                e.val
            } else {
                self.cached_store_value(k)
            };
            self.flush();
            self.emit_exec_value(v);
            return;
        };
        self.record_assumption(k, bits.to_bits());
        if speculating {
            // Checked once, in the pre-header.
            if self.spec_guard(k, bits.to_bits()) {
                match builtin {
                    Some(id) => self.gen_builtin(id),
                    None if self.inlinable(bits.to_bits()) => self.inline_block(bits.to_bits()),
                    None => self.emit_call_block(bits.to_bits()),
                }
            }
            return;
        }
        let v = self.cached_store_value(k);
        let expected = self.value_const(bits.to_bits());
        let same = self.b.ins().icmp(IntCC::Equal, v, expected);
        let fast = self.b.create_block();
        let deopt = self.b.create_block();
        self.b.set_cold_block(deopt);
        self.b.ins().brif(same, fast, &[], deopt, &[]);
        self.b.switch_to_block(deopt);
        self.emit_deopt(DeoptReason::GuardedPathRebound);
        self.b.switch_to_block(fast);
        match builtin {
            Some(id) => self.gen_builtin(id),
            None if self.inlinable(bits.to_bits()) => self.inline_block(bits.to_bits()),
            None => self.emit_call_block(bits.to_bits()),
        }
    }

    /// Record that Store path `k` is assumed to hold `bits` (a guarded site; code whose
    /// assumptions no longer hold when it would be installed is stale, `Translated::assumptions`).
    pub(super) fn record_assumption(&mut self, k: usize, bits: u64) {
        let comps = self.path(k).components.iter().map(|c| c.to_string()).collect();
        self.out.assumptions.push((comps, bits));
    }

    /// A guarded builtin, lowered inline where its operands are virtual.
    pub(super) fn gen_builtin(&mut self, id: BuiltinId) {
        match id {
            BuiltinId::Chain => self.gen_chain(),
            BuiltinId::Choose => {
                self.ensure_virtual(3, al_form_helper(id));
                self.gen_choose()
            }
            BuiltinId::Lt if self.speculating() && self.site_is_wide() => self.gen_al_builtin(al_form_helper(id)),
            BuiltinId::Lt => {
                self.ensure_virtual(2, al_form_helper(id));
                if self.speculating() {
                    return self.gen_lt_spec();
                }
                self.gen_lt()
            }
            BuiltinId::IsNil => self.gen_is_singleton(id, Value::NIL),
            BuiltinId::IsVoid => self.gen_is_singleton(id, Value::VOID),
            BuiltinId::Block if !self.lvl().is_program => {
                let bits = self.lvl().block.to_bits();
                let v = self.value_const(bits);
                self.vpush(v, Some(bits));
            }
            _ => match arith_op(id) {
                // Type feedback: this site saw other kinds, or overflowed, before.
                Some(_) if self.speculating() && self.site_is_wide() => self.gen_al_builtin(al_form_helper(id)),
                Some(op) => {
                    self.ensure_virtual(2, al_form_helper(id));
                    if self.speculating() {
                        return self.gen_arith_spec(op);
                    }
                    self.gen_arith(op)
                }
                None => self.gen_al_builtin(al_form_helper(id)),
            },
        }
    }

    /// `>isNil` and `>isVoid`: whether the top value is the singleton `target`, as a truth a
    /// `choose` branches on (`dict.#solid`'s `_.x >isNil`, the list words' `_.rest >isNil`
    /// in every round). It was the generic execution of a builtin value, with the virtual
    /// stack flushed before it and the result read back from the AL. What is known of the
    /// value decides at compile time: a constant, a small Int, a truth value.
    fn gen_is_singleton(&mut self, id: BuiltinId, target: Value) {
        self.out.singleton_tests += 1;
        self.ensure_virtual(1, al_form_helper(id));
        let e = match self.vs.pop() {
            Some(VEntry::Value(e)) => e,
            // A virtual `_.` is a CellRef: never a singleton.
            Some(other) => {
                debug_assert!(other.register_root().is_some());
                return self.vpush_bool(false);
            }
            None => unreachable!("ensure_virtual left one entry"),
        };
        match e.konst {
            Some(k) => return self.vpush_bool(k == target.to_bits()),
            None if e.int.is_some() || e.truth.is_some() => return self.vpush_bool(false),
            None => {}
        }
        let truth = self.b.ins().icmp_imm_s(IntCC::Equal, e.val, target.to_bits() as i64);
        let mut r = VValue::new(self.box_truth(truth), None);
        r.truth = Some(truth);
        self.vpush_entry(VEntry::Value(r));
    }

    /// Push `True` or `False`, known at compile time.
    fn vpush_bool(&mut self, b: bool) {
        let bits = Value::bool(b).to_bits();
        let v = self.value_const(bits);
        self.vpush(v, Some(bits));
    }

    /// The truth (an `i8`) of an entry known to be `True` or `False`.
    fn truth_of(&mut self, e: &VValue) -> Option<ir::Value> {
        if e.truth.is_some() {
            return e.truth;
        }
        let b = e.konst.filter(|&k| k == Value::TRUE.to_bits() || k == Value::FALSE.to_bits())?;
        Some(self.b.ins().iconst(types::I8, (b == Value::TRUE.to_bits()) as i64))
    }

    /// The truth value of `rel`: one compare (or a constant), boxed by a select that is dead
    /// code unless the value escapes.
    pub(super) fn rel_value(&mut self, rel: Rel) -> VValue {
        let Some(cc) = rel.cond() else {
            let bits = if rel.mask == Rel::ALWAYS { Value::TRUE } else { Value::FALSE }.to_bits();
            return VValue::new(self.value_const(bits), Some(bits));
        };
        let x = self.int_operand(rel.x);
        let y = self.int_operand(rel.y);
        let truth = self.b.ins().icmp(cc, x, y);
        let mut e = VValue::new(self.box_truth(truth), None);
        e.truth = Some(truth);
        e.rel = Some(rel);
        e
    }

    /// `True` or `False` by a truth (an `i8`).
    fn box_truth(&mut self, truth: ir::Value) -> ir::Value {
        let t = self.iconst(Value::TRUE.to_bits());
        let f = self.iconst(Value::FALSE.to_bits());
        self.b.ins().select(truth, t, f)
    }

    fn int_operand(&mut self, o: IntOperand) -> ir::Value {
        match o {
            IntOperand::Ssa(v) => v,
            IntOperand::Const(i) => self.iconst(i as u64),
        }
    }

    /// `choose` on three virtual operands: a select, nothing called.
    pub(super) fn gen_choose(&mut self) {
        let [c, t, f]: [VEntry; 3] = self.vs.pop_n(3).try_into().expect("3 entries");
        // SAFETY: compile-time constant bits are live values (module constants). A virtual
        // `_.` is a CellRef, which is truthy.
        let known = match c {
            VEntry::Value(c) => c.konst.map(|cb| unsafe { Value::from_bits(cb) }.is_truthy()),
            VEntry::RegisterRoot(_) => Some(true),
        };
        if let Some(truthy) = known {
            self.vpush_entry(if truthy { t } else { f });
            return;
        }
        let (VEntry::Value(c), VEntry::Value(t), VEntry::Value(f)) = (c, t, f) else {
            return self.give_up("a virtual `_.` chosen at run time");
        };
        if let Some(rel) = chosen_rel(&c, &t, &f) {
            self.out.folded_compares += 1;
            let e = self.rel_value(rel);
            return self.vpush_entry(VEntry::Value(e));
        }
        let truthy = match c.truth {
            Some(t) => t,
            None => {
                // Falsy values are exactly Void, Nil, False: BOX_BASE + 0..=2.
                let d = self.b.ins().iadd_imm_s(c.val, -(BOX_BASE as i64));
                self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThan, d, 2)
            }
        };
        let r = self.b.ins().select(truthy, t.val, f.val);
        let mut e = VValue::new(r, None);
        if let (Some(x), Some(y)) = (t.int, f.int) {
            e.int = Some(self.b.ins().select(truthy, x, y));
        }
        if let (Some(x), Some(y)) = (self.truth_of(&t), self.truth_of(&f)) {
            e.truth = Some(self.b.ins().select(truthy, x, y));
        }
        match (t.konst, f.konst) {
            (Some(a), Some(b)) if a == b => e.konst = Some(a),
            (Some(a), Some(b)) => e.choice = Some((truthy, a, b)),
            _ => {
                let arm = |v: &VValue| {
                    v.konst.map(ChoiceArm::Known).or(v.choice.map(|(c, a, b)| ChoiceArm::Choice(c, a, b)))
                };
                if let (Some(a), Some(b)) = (arm(&t), arm(&f)) {
                    e.nested = Some((truthy, a, b));
                }
            }
        }
        e.may_be = t.konst.or(t.may_be).or(f.konst).or(f.may_be);
        self.vpush_entry(VEntry::Value(e));
    }

    /// Small-int `+ - * / %` with overflow checks; other operands (BigInts, wrong types, zero
    /// divisors, overflowing results) go to `soma_rt_int_arith`, which never collects.
    pub(super) fn gen_arith(&mut self, op: ArithOp) {
        let IntBinop { a, b: bv, x, y, slow, done } = self.begin_int_binop();
        let r = match op {
            ArithOp::Add => self.b.ins().iadd(x, y),
            ArithOp::Sub => self.b.ins().isub(x, y),
            ArithOp::Mul => {
                let (r, of) = self.b.ins().smul_overflow(x, y);
                let next = self.b.create_block();
                self.b.ins().brif(of, slow, &[], next, &[]);
                self.b.switch_to_block(next);
                r
            }
            ArithOp::FloorDiv | ArithOp::Mod => {
                // Divisor zero goes to the slow path for its error.
                let next = self.b.create_block();
                self.b.ins().brif(y, next, &[], slow, &[]);
                self.b.switch_to_block(next);
                self.floor_div_mod(op, x, y, None)
            }
        };
        let fits = self.fits_small(r);
        let boxed = self.box_int(r);
        self.b.ins().brif(fits, done, &[BlockArg::Value(boxed)], slow, &[]);

        self.b.switch_to_block(slow);
        let opv = self.b.ins().iconst(I32, op as i64);
        let out = self.out_addr();
        let args = [self.vm, opv, a, bv, out];
        self.finish_int_binop(done, Helper::IntArith, &args);
    }

    /// Floor division or modulo (`op`) of two integers, as Python's (`y` is not zero): the
    /// remainder takes the divisor's sign.
    pub(super) fn floor_div_mod(&mut self, op: ArithOp, x: ir::Value, y: ir::Value, divisor: Option<i64>) -> ir::Value {
        if let Some(d) = divisor.filter(|&d| d > 0 && (d as u64).is_power_of_two()) {
            // By 2^k, floor division is an arithmetic shift and floor modulo a mask (for
            // negative `x` too: the modulo of a positive divisor is never negative).
            let k = d.trailing_zeros() as i64;
            return if op == ArithOp::FloorDiv {
                self.b.ins().sshr_imm_s(x, k)
            } else {
                self.b.ins().band_imm_s(x, d - 1)
            };
        }
        let q = self.b.ins().sdiv(x, y);
        let m = self.b.ins().srem(x, y);
        let nz = self.b.ins().icmp_imm_s(IntCC::NotEqual, m, 0);
        let sx = self.b.ins().bxor(m, y);
        let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, sx, 0);
        let adjust = self.b.ins().band(nz, neg);
        if op == ArithOp::FloorDiv {
            let one = self.b.ins().uextend(I64, adjust);
            self.b.ins().isub(q, one)
        } else {
            let zero = self.iconst(0);
            let add = self.b.ins().select(adjust, y, zero);
            self.b.ins().iadd(m, add)
        }
    }

    /// `<` on two virtual operands: inline for small ints, else `soma_rt_lt_values`.
    pub(super) fn gen_lt(&mut self) {
        let IntBinop { a, b: bv, x, y, slow, done } = self.begin_int_binop();
        let lt = self.b.ins().icmp(IntCC::SignedLessThan, x, y);
        let r = self.box_truth(lt);
        self.b.ins().jump(done, &[BlockArg::Value(r)]);

        self.b.switch_to_block(slow);
        let out = self.out_addr();
        let args = [self.vm, a, bv, out];
        self.finish_int_binop(done, Helper::LtValues, &args);
    }

    /// Start an inline binary Int op: pop its two operands and branch to a fast block (now
    /// current) when both are small ints, else to the returned cold `slow` block. Every path
    /// ends by jumping to `done` with the boxed result (see [`Self::finish_int_binop`]).
    pub(super) fn begin_int_binop(&mut self) -> IntBinop {
        let [a, b]: [VEntry; 2] = self.vs.pop_n(2).try_into().expect("2 entries");
        let (a, b) = match (a, b) {
            (VEntry::Value(a), VEntry::Value(b)) => (a, b),
            _ => {
                // The translation is abandoned; lower on with a stand-in so the caller ends.
                self.give_up("a virtual `_.` as an operand");
                let z = self.iconst(0);
                (VValue::new(z, None), VValue::new(z, None))
            }
        };
        // A constant operand's tag and integer are known at compile time.
        let (ka, kb) = (a.konst_small_int(), b.konst_small_int());
        let (a, b) = (a.val, b.val);
        let done = self.b.create_block();
        self.b.append_block_param(done, I64);
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        self.b.set_cold_block(slow);
        let checks: Vec<ir::Value> = [(a, ka), (b, kb)]
            .into_iter()
            .filter(|(_, k)| k.is_none())
            .map(|(v, _)| self.is_small_int(v))
            .collect();
        match checks[..] {
            [] => {
                self.b.ins().jump(fast, &[]);
            }
            [one] => {
                self.b.ins().brif(one, fast, &[], slow, &[]);
            }
            [p, q] => {
                let both = self.b.ins().band(p, q);
                self.b.ins().brif(both, fast, &[], slow, &[]);
            }
            _ => unreachable!("two operands"),
        }
        self.b.switch_to_block(fast);
        let x = match ka {
            Some(i) => self.iconst(i as u64),
            None => self.unbox_int(a),
        };
        let y = match kb {
            Some(i) => self.iconst(i as u64),
            None => self.unbox_int(b),
        };
        IntBinop { a, b, x, y, slow, done }
    }

    /// End an inline binary Int op in its (current) slow block: call the status helper at
    /// `helper`, which writes the result to the out slot, then continue in `done` with the
    /// result pushed on the virtual stack.
    pub(super) fn finish_int_binop(&mut self, done: ir::Block, helper: Helper, args: &[ir::Value]) {
        let st = self.helper_status(At::Aside, helper, args);
        let pending = self.pending();
        self.check(st, &pending);
        let r = self.load_out();
        self.b.ins().jump(done, &[BlockArg::Value(r)]);
        self.b.switch_to_block(done);
        let result = self.b.block_params(done)[0];
        self.vpush(result, None);
    }

    /// `>chain` as a native loop: one `jit_chain_step` call per iteration (the executed block
    /// returns before the next starts, so the native stack does not grow). A Block known at
    /// compile time is called first, directly and chained (`gen_chain_known`).
    pub(super) fn gen_chain(&mut self) {
        // A Block known to write cells (`x.step >chain`, a loop over the caller's cells):
        // the check after the chain validates again instead of leaving.
        let mut writer = false;
        let first = if let Some(top) = self.vs.pop() {
            let VEntry::Value(top) = top else {
                return self.give_up("a virtual `_.` chained");
            };
            writer = top.konst.is_some_and(|bits| self.may_write_store(bits));
            self.flush();
            if let Some(bits) = top.konst.filter(|&bits| self.chains_directly(bits)) {
                return self.gen_chain_known(bits, writer);
            }
            let exe = self.is_executable(top.val);
            let push_back = self.b.create_block();
            let start = self.b.create_block();
            let start_v = self.b.append_block_param(start, I64);
            self.b.ins().brif(exe, start, &[BlockArg::Value(top.val)], push_back, &[]);
            // A non-executable value first popped is pushed back and the chain is over.
            self.b.switch_to_block(push_back);
            self.emit_push(vec![top.val]);
            let zero = self.iconst(Value::VOID.to_bits());
            self.b.ins().jump(start, &[BlockArg::Value(zero)]);
            self.b.switch_to_block(start);
            start_v
        } else {
            let out = self.out_addr();
            let st = self.helper_status(At::Main, Helper::ChainStart, &[self.vm, out]);
            self.check(st, &[]);
            self.load_out()
        };
        self.emit_chain_rounds(first);
        self.after_chain(writer);
    }

    /// Whether `chain` of the Block with these bits calls it directly ([`Self::gen_chain_known`]).
    /// Not where speculative code leaves calls of it to generic code
    /// ([`Self::writes_heap_register`]): the rounds go through `jit_chain_step` there.
    fn chains_directly(&self, bits: u64) -> bool {
        // SAFETY: compile-time constant bits are live values (module constants, Store values).
        let block = unsafe { Value::from_bits(bits) }.as_block_obj().is_some();
        block && !(self.spec.is_some() && self.writes_heap_register(bits))
    }

    /// `chain` of Block `bits`, known at compile time (a guarded Store path: collatz's
    /// `collatz.step >chain`): its compiled code is called directly with `chained` set, as
    /// `emit_call_block` calls a Block, and runs the rounds that chain it again itself. Only
    /// when a round leaves another executable value on top does the loop of
    /// [`Self::emit_chain_rounds`] take over. Against `jit_chain_step` from the loop's first
    /// round this saves the Rust between (the helper, `call_entry`, the frame's entry and exit:
    /// about 160 instructions a `chain`), and the frames of inlined bodies stay virtual
    /// when the chain ends after the call.
    fn gen_chain_known(&mut self, bits: u64, writer: bool) {
        self.out.known_chains += 1;
        let st = self.emit_known_call(bits, 1);
        self.check(st, &[]);
        let next = self.emit_chain_next();
        let exe = self.is_executable(next);
        let more = self.b.create_block();
        let done = self.b.create_block();
        self.b.ins().brif(exe, more, &[], done, &[]);
        self.b.seal_block(more);
        self.b.switch_to_block(more);
        self.emit_chain_rounds(next);
        self.b.ins().jump(done, &[]);
        self.b.seal_block(done);
        self.b.switch_to_block(done);
        self.after_chain(writer);
    }

    /// `Vm::chain_next` inline: the AL's top, popped, when it is executable, else Void (the
    /// top stays where it is).
    fn emit_chain_next(&mut self) -> ir::Value {
        let flags = MemFlagsData::trusted();
        let none = self.iconst(Value::VOID.to_bits());
        let peek = self.b.create_block();
        let pop = self.b.create_block();
        let done = self.b.create_block();
        let next = self.b.append_block_param(done, I64);
        let len = self.b.ins().load(I64, flags, self.vm, JitLayout::AL_LEN);
        self.b.ins().brif(len, peek, &[], done, &[BlockArg::Value(none)]);
        self.b.seal_block(peek);
        self.b.switch_to_block(peek);
        let below = self.b.ins().iadd_imm_s(len, -1);
        let ptr = self.b.ins().load(I64, flags, self.vm, JitLayout::AL_PTR);
        let offset = self.b.ins().ishl_imm_s(below, 3);
        let at = self.b.ins().iadd(ptr, offset);
        let top = self.b.ins().load(I64, flags, at, 0);
        let exe = self.is_executable(top);
        self.b.ins().brif(exe, pop, &[], done, &[BlockArg::Value(none)]);
        self.b.seal_block(pop);
        self.b.switch_to_block(pop);
        self.b.ins().store(flags, below, self.vm, JitLayout::AL_LEN);
        self.b.ins().jump(done, &[BlockArg::Value(top)]);
        self.b.seal_block(done);
        self.b.switch_to_block(done);
        next
    }

    /// The rounds of a chain from `first` (Void: none): `jit_chain_step` while the value to
    /// run is executable. Under virtual frames the chain may run anything (a value its Block
    /// leaves on top, `block` or a host builtin among them): the frames are real while it
    /// runs, as for any call of a value not known here (`emit_exec_value`), once for the
    /// whole loop.
    fn emit_chain_rounds(&mut self, first: ir::Value) {
        let realized = self.emit_realize_frames();
        if realized > 0 {
            self.out.realized_chains += 1;
        }
        let head = self.b.create_block();
        let v = self.b.append_block_param(head, I64);
        let body = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(head, &[BlockArg::Value(first)]);

        self.b.switch_to_block(head);
        let exe = self.is_executable(v);
        self.b.ins().brif(exe, body, &[], exit, &[]);

        self.b.switch_to_block(body);
        let out = self.out_addr();
        let st = self.helper_status(At::Main, Helper::ChainStep, &[self.vm, v, out]);
        self.check_leaving_frames(st, &[], realized);
        let next = self.load_out();
        self.b.ins().jump(head, &[BlockArg::Value(next)]);

        self.b.switch_to_block(exit);
        self.emit_leave_realized(realized);
    }

    /// After a chain: what speculative code checks after a call (again, for a `writer`).
    fn after_chain(&mut self, writer: bool) {
        if writer {
            self.spec_after_call_revalidating();
        } else {
            self.spec_after_call();
        }
    }
}

/// The relation a `choose` of `t` or `f` by `c` is, when `c` is a relation between two small
/// Ints and `t` and `f` are each `True`, `False` or a relation between the same two: where `c`
/// holds the result is `t`, elsewhere `f`, outcome by outcome of comparing the two Ints.
fn chosen_rel(c: &VValue, t: &VValue, f: &VValue) -> Option<Rel> {
    let c = c.rel?;
    let mask = |e: &VValue| match e.konst {
        Some(k) if k == Value::TRUE.to_bits() => Some(Rel::ALWAYS),
        Some(k) if k == Value::FALSE.to_bits() => Some(0),
        _ => e.rel?.mask_on(c.x, c.y),
    };
    let (tm, fm) = (mask(t)?, mask(f)?);
    Some(Rel {
        mask: (c.mask & tm) | (!c.mask & fm & Rel::ALWAYS),
        ..c
    })
}
