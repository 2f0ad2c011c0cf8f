//! Executing values: direct calls of known Blocks, inlined bodies (virtual or real frames),
//! `choose` between two inlined Blocks.

use super::*;
use super::vmstate::VmField;
use super::register::merge_regs;

impl<'e> Translator<'_, 'e> {
    /// The value at a Store path now, if any.
    pub(super) fn store_value_at_compile_time(&self, path: &Path) -> Option<Value> {
        self.env.store_value(path)
    }

    /// Whether the Block with these bits (if it is one) is inlined where it is executed.
    pub(super) fn inlinable(&self, bits: u64) -> bool {
        self.inline_frame(bits).is_some()
    }

    /// How the Block with these bits would be inlined here: `Some(true)` with a virtual
    /// frame, `Some(false)` with a real one, `None` not at all (too big, too deep, recursive,
    /// the program, or needing a real frame under a virtual one).
    pub(super) fn inline_frame(&self, bits: u64) -> Option<bool> {
        let (max_depth, budget) = if self.spec.is_some() {
            (SPECULATIVE_INLINE_DEPTH, SPECULATIVE_INLINE_BUDGET)
        } else {
            (MAX_INLINE_DEPTH, INLINE_BUDGET)
        };
        // The levels of an unrolled copy of the code (see `unrolls_here`) count from the copy.
        let copy = self.own_copy_level().unwrap_or(0);
        if !self.env.inline || self.depth() >= max_depth + copy {
            return None;
        }
        // SAFETY: compile-time bits are live values of this VM (constants, Store values).
        let v = unsafe { Value::from_bits(bits) };
        let b = self.env.vm.block_obj(v)?;
        let (code, _) = self.env.code(b.module, b.code)?;
        if b.code == 0
            || self.inlined_instrs + code.instrs.len() > budget
            || self.recursive(v, copy)
        {
            return None;
        }
        let optional = self.frame_is_optional(code);
        if !optional && self.lvl().virtual_frame {
            return None;
        }
        Some(optional)
    }

    /// Whether inlining the Block `v` here would recurse: it runs at a level since `copy` (the
    /// level of the code's unrolled copy, else 0). The code's own Block may be inlined once,
    /// when this translation unrolls (`unrolls_here`).
    fn recursive(&self, v: Value, copy: usize) -> bool {
        if v == self.levels[0].block && self.leaf_copy_starts() {
            return false;
        }
        if v == self.levels[0].block && copy == 0 {
            return !self.unrolls_here();
        }
        self.levels[copy..].iter().any(|l| l.block == v)
    }

    /// The innermost level at which the code's own Block was inlined into itself (an unrolled
    /// copy, or a leaf copy, possibly inside an unrolled one), if it was.
    fn own_copy_level(&self) -> Option<usize> {
        let me = self.levels[0].block;
        self.levels.iter().skip(1).rposition(|l| l.block == me).map(|i| i + 1)
    }

    /// Whether a site executing the code's own Block inlines it (once): recursion unrolled
    /// one level, so that a recursive Block's calls of itself are made half as often, each
    /// running two levels of its body (`CodeEnv::unroll`). Only in speculative code that
    /// calls itself directly past its argument instructions: the copy's own calls of the
    /// Block are then direct calls of this code.
    fn unrolls_here(&self) -> bool {
        self.env.unroll && self.spec.is_some() && self.direct.as_ref().is_some_and(|d| d.join.is_some())
    }

    /// Whether an inlined Code can run without a real frame: nothing in it can observe the
    /// frame stack. Its Register must be able to stay virtual, and every site it executes
    /// must be known at compile time to be a Block (which pushes its own frame on top) or a
    /// specialised builtin other than `chain`. An executed Register name is decided during
    /// translation: an unknown value is called with the virtual frames made real around it.
    pub(super) fn frame_is_optional(&self, code: &Code) -> bool {
        reg_eligible(code)
            && code.instrs.iter().all(|ins| {
                if ins.op != Opcode::ExecStore {
                    return true;
                }
                match self.store_value_at_compile_time(&code.paths[ins.operand as usize]) {
                    Some(v) if v.as_block_obj().is_some() => true,
                    // `chain` makes the frames real while it runs (`gen_chain`).
                    Some(v) => v.as_builtin_obj().is_some_and(|p| {
                        // SAFETY: builtin objects are VM roots for the VM's whole life.
                        is_specialised(unsafe { (*p.as_ptr()).id })
                    }),
                    None => false,
                }
            })
    }

    /// Blocks of the levels whose frames are virtual, outermost first.
    pub(super) fn virtual_frames(&self) -> Vec<u64> {
        self.levels
            .iter()
            .filter(|l| l.virtual_frame)
            .map(|l| l.block.to_bits())
            .collect()
    }

    /// Push real frames for the levels whose frames are virtual (a slow path about to need
    /// them); returns how many. Inline where the frame stack has room for them all (a store
    /// per field, as [`Self::emit_push_frame`]), else `jit_frames_enter` (which grows it):
    /// the helper cost more than the call it let `gen_chain` inline (about 110 instructions
    /// for three frames against 20).
    pub(super) fn emit_realize_frames(&mut self) -> usize {
        let blocks = self.virtual_frames();
        if blocks.is_empty() {
            return 0;
        }
        let n = blocks.len();
        let flags = MemFlagsData::trusted();
        let len = self.b.ins().load(I64, flags, self.vm, JitLayout::FRAMES_LEN);
        let cap = self.b.ins().load(I64, flags, self.vm, JitLayout::FRAMES_CAP);
        let pushed = self.b.ins().iadd_imm_s(len, n as i64);
        let fits = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, pushed, cap);
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        let done = self.b.create_block();
        self.b.set_cold_block(slow);
        self.b.ins().brif(fits, fast, &[], slow, &[]);
        self.seal_blocks(&[fast, slow]);

        self.b.switch_to_block(fast);
        let first = self.frame_at(len);
        for (i, &bits) in blocks.iter().enumerate() {
            let frame = self.b.ins().iadd_imm_s(first, i as i64 * JitLayout::FRAME_SIZE as i64);
            self.emit_store_frame(frame, bits);
        }
        self.b.ins().store(flags, pushed, self.vm, JitLayout::FRAMES_LEN);
        self.b.ins().jump(done, &[]);

        self.b.switch_to_block(slow);
        let list: Box<[u64]> = blocks.into_boxed_slice();
        let p = self.vm_const(list.as_ptr() as u64);
        self.out.frame_lists.push(list);
        let count = self.iconst(n as u64);
        self.helper_status(At::Main, Helper::FramesEnter, &[self.vm, p, count]);
        self.b.ins().jump(done, &[]);
        self.b.seal_block(done);
        self.b.switch_to_block(done);
        n
    }

    /// Make virtual again the `realized` frames [`Self::emit_realize_frames`] pushed (the
    /// innermost ones: what ran meanwhile left the frame stack as it found it).
    pub(super) fn emit_leave_realized(&mut self, realized: usize) {
        if realized > 0 {
            let flags = MemFlagsData::trusted();
            let len = self.b.ins().load(I64, flags, self.vm, JitLayout::FRAMES_LEN);
            let popped = self.b.ins().iadd_imm_s(len, -(realized as i64));
            self.b.ins().store(flags, popped, self.vm, JitLayout::FRAMES_LEN);
        }
    }

    /// Call the exec helper on `v` (the AL flushed). Under virtual frames the value may be
    /// anything (`block`, a host builtin): they are made real for the call.
    pub(super) fn emit_exec_value(&mut self, v: ir::Value) {
        let realized = self.emit_realize_frames();
        let st = self.helper_status(At::Main, Helper::Exec, &[self.vm, v]);
        self.emit_leave_realized(realized);
        self.check(st, &[]);
        self.spec_after_call();
    }

    /// Execute a virtual entry: inline the Block when it is known, branch to both inlined
    /// Blocks of a known `choose`, else flush and call the exec helper.
    pub(super) fn exec_entry(&mut self, e: VEntry) {
        let VEntry::Value(e) = e else {
            return self.give_up("a virtual `_.` executed");
        };
        if let Some(bits) = e.konst.filter(|&b| self.inlinable(b)) {
            return self.inline_block(bits);
        }
        // SAFETY: compile-time constant bits are live values (module constants).
        if let Some(bits) = e.konst.filter(|&b| unsafe { Value::from_bits(b) }.as_block_obj().is_some()) {
            return self.emit_call_block(bits);
        }
        // A known `choose` of two Blocks, one of them inlinable: a branch, each arm inlined or
        // called directly (`inline_block` calls what it cannot inline).
        // SAFETY: the choice's bits are compile-time constants, live values of this VM.
        let is_block = |b: u64| unsafe { Value::from_bits(b) }.as_block_obj().is_some();
        if let Some((truthy, t, f)) = e
            .choice
            .filter(|&(_, t, f)| is_block(t) && is_block(f) && (self.inlinable(t) || self.inlinable(f)))
        {
            return self.inline_choice(truthy, t, f);
        }
        // A nested one: every Block it may select known, one of them inlinable.
        if let Some((truthy, t, f)) = e.nested.filter(|&(_, t, f)| {
            let leaves: Vec<u64> = t.leaves().into_iter().chain(f.leaves()).collect();
            leaves.iter().all(|&b| is_block(b)) && leaves.iter().any(|&b| self.inlinable(b))
        }) {
            return self.inline_nested_choice(truthy, t, f);
        }
        self.flush();
        self.emit_exec_value(e.val);
    }

    /// Call Block `bits`, known at compile time, directly: the checks and bookkeeping of
    /// `exec::run_native` inline (native stack, depth limit, room in the frame stack, the
    /// poll's turn, `exec_count`, the frame) around a native call of its compiled entry. A
    /// Block not compiled yet, and any check that fails, take `jit_exec`, which does the same
    /// with every detail (tier-up, growing the frame stack, the poll hook, the errors). A
    /// Block pushes its own frame, so no virtual frame of this code needs to be real.
    pub(super) fn emit_call_block(&mut self, bits: u64) {
        if self.can_call_direct(bits) {
            if self.in_leaf_copy() {
                return self.leave_leaf_copy();
            }
            if self.leaf_inlines_here() {
                return self.emit_leaf_site(bits);
            }
            return self.emit_direct_self_call(bits);
        }
        if self.spec.is_some() && self.writes_heap_register(bits) {
            return self.give_up("a call of a Block that writes a heap Register in speculative code");
        }
        self.flush();
        let st = self.emit_known_call(bits, 0);
        self.check(st, &[]);
        if self.spec.is_some() && self.may_write_store(bits) {
            self.spec_after_call_revalidating();
        } else {
            self.spec_after_call();
        }
    }

    /// Call Block `bits`, known at compile time, with the AL flushed: its compiled entry with
    /// `chained` (0 or 1) where it has one and the inline checks pass, else the helper that
    /// does the same with every detail (`jit_exec`, `jit_chain_round`). Returns the status,
    /// the VM state reloaded.
    pub(super) fn emit_known_call(&mut self, bits: u64, chained: i64) -> ir::Value {
        let flags = MemFlagsData::trusted();
        // SAFETY: compile-time constant bits are live values (module constants).
        let obj = unsafe { Value::from_bits(bits) }.as_block_obj().expect("a Block").as_ptr() as u64;
        let entry_addr = self.vm_const(obj + std::mem::offset_of!(BlockObj, native_entry) as u64);
        let entry = self.b.ins().load(I64, flags, entry_addr, 0);
        let compiled = self.b.ins().icmp_imm_s(IntCC::NotEqual, entry, 0);
        let slow = self.b.create_block();
        let done = self.b.create_block();
        let st = self.b.append_block_param(done, I32);
        self.b.set_cold_block(slow);
        let checks = self.emit_call_checks(compiled, slow);
        self.b.seal_block(slow);
        self.emit_count_execution(obj);
        let status = self.emit_enter_and_call(entry, chained, &checks, bits);
        self.b.ins().jump(done, &[BlockArg::Value(status)]);

        self.b.switch_to_block(slow);
        let v = self.value_const(bits);
        let helper = if chained == 1 { Helper::ChainRound } else { Helper::Exec };
        let status = self.helper_status(At::Main, helper, &[self.vm, v]);
        self.b.ins().jump(done, &[BlockArg::Value(status)]);
        self.b.seal_block(done);

        self.b.switch_to_block(done);
        self.reload_vm_state();
        st
    }

    /// The checks `exec::run_native` makes before it calls a compiled Block, inline: the native
    /// stack, the depth limit, room in the frame stack, not the poll's turn. What the call may
    /// read is made current first (it may collect: the slots the collector must see are
    /// stored, and the code's own writes added to the write counter); the virtual AL is the
    /// caller's to flush. The frame-stack length, the depth and the countdown read come
    /// with the result, for [`Self::emit_enter_and_call`].
    ///
    /// `first` (an `i8`, the callee's entry found) is tested first. Each check is a compare and
    /// a branch to the cold `slow` block, which the caller seals: four compares combined into
    /// one truth took a `setcc` and an `and` each, and kept their operands live together
    /// (about a dozen instructions more per call of fib). Returns in the block where all passed.
    pub(super) fn emit_call_checks(&mut self, first: ir::Value, slow: ir::Block) -> CallChecks {
        // The countdown and the depth are not stored here: the call stores both (one less, one
        // more) where the checks pass, and the slow path's helper makes memory current itself.
        self.sync_write_count(false);
        let slots = self.root_slots();
        self.sync_slots(&slots);
        let flags = MemFlagsData::trusted();
        self.pass_or(first, slow);
        let sp = self.b.ins().get_stack_pointer(I64);
        let limit = self.b.ins().load(I64, flags, self.vm, JitLayout::STACK_LIMIT);
        let stack_ok = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, sp, limit);
        self.pass_or(stack_ok, slow);
        let depth = self.load_vm_field(VmField::Depth);
        let max = self.load_vm_field(VmField::MaxDepth);
        let depth_ok = self.b.ins().icmp(IntCC::UnsignedLessThan, depth, max);
        self.pass_or(depth_ok, slow);
        let len = self.b.ins().load(I64, flags, self.vm, JitLayout::FRAMES_LEN);
        let cap = self.b.ins().load(I64, flags, self.vm, JitLayout::FRAMES_CAP);
        let room = self.b.ins().icmp(IntCC::UnsignedLessThan, len, cap);
        self.pass_or(room, slow);
        let countdown = self.load_vm_field(VmField::Countdown);
        let not_polling = self.b.ins().icmp_imm_s(IntCC::NotEqual, countdown, 1);
        self.pass_or(not_polling, slow);
        CallChecks { len, depth, countdown }
    }

    /// Go on in a new block where `ok` (an `i8`) holds, else to `fail`.
    fn pass_or(&mut self, ok: ir::Value, fail: ir::Block) {
        let next = self.b.create_block();
        self.b.ins().brif(ok, next, &[], fail, &[]);
        self.b.seal_block(next);
        self.b.switch_to_block(next);
    }

    /// Where the checks passed: the block entry's step, the frame of Block `bits`, a native
    /// call of `entry` with `chained`, the frame left again; returns the callee's status.
    pub(super) fn emit_enter_and_call(&mut self, entry: ir::Value, chained: i64, checks: &CallChecks, bits: u64) -> ir::Value {
        let CallChecks { len, depth, countdown, .. } = *checks;
        let countdown = self.b.ins().iadd_imm_s(countdown, -1);
        self.b.ins().store(MemFlagsData::trusted(), countdown, self.vm, JitLayout::POLL_COUNTDOWN);
        self.emit_push_frame(len, depth, bits);
        let sig = self.sig(&[I64, I32], Some(I32));
        let chained = self.b.ins().iconst(I32, chained);
        let call = self.b.ins().call_indirect(sig, entry, &[self.vm, chained]);
        let status = self.b.inst_results(call)[0];
        self.emit_pop_frame(len, depth);
        status
    }

    /// Push the frame of a call of Block `bits` (`len` frames and `depth` before it), inline:
    /// the frame stack has room (checked).
    fn emit_push_frame(&mut self, len: ir::Value, depth: ir::Value, bits: u64) {
        let flags = MemFlagsData::trusted();
        let frame = self.frame_at(len);
        self.emit_store_frame(frame, bits);
        let pushed = self.b.ins().iadd_imm_s(len, 1);
        self.b.ins().store(flags, pushed, self.vm, JitLayout::FRAMES_LEN);
        let deeper = self.b.ins().iadd_imm_s(depth, 1);
        self.b.ins().store(flags, deeper, self.vm, JitLayout::BLOCK_DEPTH);
    }

    /// The address of frame `index` of the frame stack (loaded now: a call may have grown it).
    fn frame_at(&mut self, index: ir::Value) -> ir::Value {
        let frames = self.b.ins().load(I64, MemFlagsData::trusted(), self.vm, JitLayout::FRAMES_PTR);
        let offset = self.b.ins().imul_imm_s(index, JitLayout::FRAME_SIZE as i64);
        self.b.ins().iadd(frames, offset)
    }

    /// Fill the frame at `frame` (within the frame stack's capacity) as `Frame::for_block`
    /// of Block `bits` does: no Register yet, not a top-level alias.
    fn emit_store_frame(&mut self, frame: ir::Value, bits: u64) {
        let flags = MemFlagsData::trusted();
        let null = self.iconst(0);
        let block = self.value_const(bits);
        let no = self.b.ins().iconst(types::I8, 0);
        self.b.ins().store(flags, null, frame, JitLayout::FRAME_REGISTER);
        self.b.ins().store(flags, block, frame, JitLayout::FRAME_BLOCK);
        self.b.ins().store(flags, no, frame, JitLayout::FRAME_ALIAS);
    }

    /// Leave the frame [`Self::emit_push_frame`] pushed: the callee left the frame stack and
    /// the depth as it found them.
    fn emit_pop_frame(&mut self, len: ir::Value, depth: ir::Value) {
        let flags = MemFlagsData::trusted();
        self.b.ins().store(flags, len, self.vm, JitLayout::FRAMES_LEN);
        self.b.ins().store(flags, depth, self.vm, JitLayout::BLOCK_DEPTH);
    }

    /// Whether the Block with these bits writes the cells of a Register that cannot be
    /// virtual. A heap Register's cells are not watched, so calling such a Block is safe to
    /// speculate across; it is still left to generic code because it did not pay: with those
    /// calls allowed, bst and dict_workload ran as many instructions outside the compiler and
    /// compiled 10-30% more (callgrind, synchronous compiles).
    pub(super) fn writes_heap_register(&self, bits: u64) -> bool {
        let Some(code) = self.code_of(bits) else { return false };
        !reg_eligible(code) && code.instrs.iter().any(|ins| matches!(ins.op, Opcode::SetReg | Opcode::SetrefReg))
    }

    /// Whether running the Block with these bits may write Store cells: its code writes a Store
    /// path (`!p`, `!p.`), or it may run a Block that does: a block literal of its code, or a
    /// Block a Store path it reads or executes holds now (`x.step >chain`), looked through
    /// [`STORE_WRITER_DEPTH`] levels. Such a call is followed by a check that validates the
    /// assumptions again rather than leaving ([`Self::spec_after_call_revalidating`]): its
    /// writes would move the write counter after every call. A writer this misses (a Block
    /// reached otherwise) only costs deopts: the plain check after the call still catches it.
    pub(super) fn may_write_store(&self, bits: u64) -> bool {
        // SAFETY: compile-time bits are live values of this VM (constants, Store values).
        let v = unsafe { Value::from_bits(bits) };
        let Some(b) = self.env.vm.block_obj(v) else { return false };
        let mut seen = Vec::new();
        self.code_may_write_store(b.module, b.code, STORE_WRITER_DEPTH, &mut seen)
    }

    pub(super) fn code_may_write_store(&self, module: u32, code: u32, depth: usize, seen: &mut Vec<(u32, u32)>) -> bool {
        if seen.contains(&(module, code)) {
            return false;
        }
        seen.push((module, code));
        let Some((c, _)) = self.env.code(module, code) else { return false };
        c.instrs.iter().any(|ins| {
            let k = ins.operand as usize;
            let reached = match ins.op {
                Opcode::SetStore | Opcode::SetrefStore => return true,
                Opcode::Const => match c.consts[k] {
                    soma_runtime::decode::Const::Block(inner) => Some((module, inner)),
                    _ => None,
                },
                Opcode::LoadStore | Opcode::ExecStore => self
                    .store_value_at_compile_time(&c.paths[k])
                    .and_then(|v| self.env.vm.block_obj(v))
                    .map(|b| (b.module, b.code)),
                _ => None,
            };
            reached.is_some_and(|(m, c)| depth > 0 && self.code_may_write_store(m, c, depth - 1, seen))
        })
    }

    /// The Code of the Block with these bits.
    fn code_of(&self, bits: u64) -> Option<&'e Code> {
        // SAFETY: compile-time bits are live values of this VM (constants, Store values).
        let v = unsafe { Value::from_bits(bits) };
        let b = self.env.vm.block_obj(v)?;
        self.env.code(b.module, b.code).map(|(c, _)| c)
    }

    /// Run the body of Block `bits` here, in a frame entered for it, with the virtual stack
    /// carried through.
    pub(super) fn inline_block(&mut self, bits: u64) {
        // SAFETY: `inlinable` checked these are the bits of a live Block.
        let v = unsafe { Value::from_bits(bits) };
        let b = self.env.vm.block_obj(v).expect("inlinable Block");
        let (code, consts) = self.env.code(b.module, b.code).expect("loaded module");
        let Some(virtual_frame) = self.inline_frame(bits) else {
            // The budget ran out (inside the other branch of a `choose`): a call.
            return self.emit_call_block(bits);
        };
        // Speculative code: the depth before the frame, which its leave restores.
        let mut entry_depth = None;
        if virtual_frame {
            entry_depth = self.emit_count_frame();
        } else {
            let block = self.value_const(bits);
            let st = self.helper_status(At::Main, Helper::EnterInlined, &[self.vm, block]);
            let pending = self.pending();
            self.check(st, &pending);
        }
        let call_pc = self.lvl().pc;
        let reg = if reg_eligible(code) {
            RegMode::Virtual(Vec::new())
        } else {
            RegMode::Heap
        };
        self.levels.push(Level {
            code,
            consts,
            block: v,
            module: b.module,
            code_index: b.code,
            is_program: false,
            pc: 0,
            call_pc,
            reg,
            virtual_frame,
        });
        self.out.inlined += 1;
        if !self.out.inlined_codes.contains(&(b.module, b.code)) {
            self.out.inlined_codes.push((b.module, b.code));
        }
        self.out.unrolled |= v == self.levels[0].block && self.leaf.is_none();
        self.inlined_instrs += code.instrs.len();
        for (pc, &ins) in code.instrs.iter().enumerate() {
            self.levels.last_mut().expect("level").pc = pc;
            if self.lowered_already() {
                continue;
            }
            self.gen_instr(ins);
            if self.bail.is_some() || self.dead {
                // Abandoned, or this path left a leaf copy (`leaf.rs`): emit nothing more
                // (the current block may be filled).
                self.levels.pop();
                return;
            }
        }
        let here = self.depth();
        if self.vs.entries().iter().any(|e| e.register_root() == Some(here)) {
            self.give_up("a virtual `_.` outlives its Block");
        }
        if let Some(depth) = entry_depth {
            self.restore_depth(depth);
        } else if self.lvl().virtual_frame {
            self.emit_uncount_frame();
        } else {
            self.emit_leave_inlined(1);
        }
        self.levels.pop();
    }

    /// Enter a virtual frame: the step, depth check and count of `Vm::enter_inlined`, inline
    /// (a limit or recursion error is the executing instruction's, here in the calling level).
    /// Speculative code checks the depth of its deepest frame once, in its pre-header; it
    /// keeps the depth in a variable and gets the depth before the entry back.
    pub(super) fn emit_count_frame(&mut self) -> Option<ir::Value> {
        let nesting = self.depth();
        if let Some(spec) = self.spec.as_mut() {
            spec.frame_nesting = Some(spec.frame_nesting.map_or(nesting, |n| n.max(nesting)));
            // The step, in a poll region (`polls.rs`).
            self.emit_region_step();
            let before = self.load_vm_field(VmField::Depth);
            let depth = self.plus_folded(before, 1);
            self.store_vm_field(VmField::Depth, depth);
            return Some(before);
        }
        // A step (limits.rs): the poll countdown; at zero, the limits (not the host) are
        // checked by `jit_poll_inlined`.
        self.emit_countdown_poll(Helper::PollInlined, |t, st| {
            let pending = t.pending();
            t.emit_error_return(st, &pending);
        });
        let depth = self.load_vm_field(VmField::Depth);
        let max = self.load_vm_field(VmField::MaxDepth);
        let full = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, depth, max);
        let fail = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(fail);
        self.b.ins().brif(full, fail, &[], cont, &[]);
        self.b.switch_to_block(fail);
        let st = self.helper_status(At::Main, Helper::RecursionError, &[self.vm]);
        let pending = self.pending();
        self.emit_error_return(st, &pending);
        self.b.switch_to_block(cont);
        let depth = self.b.ins().iadd_imm_s(depth, 1);
        self.store_vm_field(VmField::Depth, depth);
        None
    }

    /// Leave a virtual frame of speculative code entered at depth `entry`. Virtual frames nest
    /// statically and every call in the body returned to this depth, so the depth is `entry`
    /// again: the same value whatever path the body took (after an inlined `choose`, not each
    /// arm's own subtraction). But a value `reload_vm_state` loaded is taken for what memory
    /// holds (`sync_vm_state` does not store it), and a sync in the body may have stored
    /// another depth since: such an `entry` comes back as a copy, which the next sync stores.
    fn restore_depth(&mut self, entry: ir::Value) {
        if self.env.check_invariants {
            let now = self.load_vm_field(VmField::Depth);
            let back = self.b.ins().iadd_imm_s(now, -1);
            let wrong = self.b.ins().icmp(IntCC::NotEqual, back, entry);
            self.b.ins().trapnz(wrong, ir::TrapCode::unwrap_user(TRAP_DEPTH_UNBALANCED));
        }
        let depth = if self.is_reload_of(entry, VmField::Depth) {
            self.b.ins().iadd_imm_s(entry, 0)
        } else {
            entry
        };
        self.store_vm_field(VmField::Depth, depth);
    }

    pub(super) fn emit_uncount_frame(&mut self) {
        let depth = self.load_vm_field(VmField::Depth);
        let depth = self.plus_folded(depth, -1);
        self.store_vm_field(VmField::Depth, depth);
    }

    /// `v + k`, folded into the addition that made `v` when there is one. Virtual frames
    /// nest statically, so in speculative code (which keeps the depth in a variable) a frame's
    /// leave undoes its entry's add and the depth after an inlined body is the value before
    /// it: no instruction per frame, only one add where the depth is stored for a helper or an
    /// exit. The steps of a poll region's entries fold the same way. (The optimizing tier runs
    /// without Cranelift's optimizer.)
    pub(super) fn plus_folded(&mut self, depth: ir::Value, k: i64) -> ir::Value {
        let dfg = &self.b.func.dfg;
        if let ir::ValueDef::Result(inst, 0) = dfg.value_def(dfg.resolve_aliases(depth)) {
            if let ir::InstructionData::Binary { opcode: ir::Opcode::Iadd, args: [base, c] } = dfg.insts[inst] {
                // `base` dominates the add, which dominates this point.
                if let Some(c) = self.known_iconst(c) {
                    return match c + k {
                        0 => base,
                        total => self.b.ins().iadd_imm_s(base, total),
                    };
                }
            }
        }
        self.b.ins().iadd_imm_s(depth, k)
    }

    /// Execute a `choose` between Blocks `t` and `f` (by `truthy`, an `i8`): both bodies are
    /// inlined on their own branch and the branches meet again with the same virtual stack
    /// depth (or what one holds below the other's entries flushed, see [`Self::join_paths`])
    /// and the same Register states (else the translation bails).
    pub(super) fn inline_choice(&mut self, truthy: ir::Value, t: u64, f: u64) {
        self.inline_branches(truthy, [ChoiceArm::Known(t), ChoiceArm::Known(f)], Chosen::Pair((truthy, t, f)));
    }

    /// Execute a nested `choose` (`VValue::nested`): a branch on the outer condition, and in
    /// an arm that is itself a choice, [`Self::inline_choice`] of it; three Blocks, each
    /// inlined or called directly, instead of a call of `jit_exec` with the selected one.
    pub(super) fn inline_nested_choice(&mut self, truthy: ir::Value, t: ChoiceArm, f: ChoiceArm) {
        self.out.nested_choices += 1;
        self.inline_branches(truthy, [t, f], Chosen::Nested((truthy, t, f)));
    }

    /// The two branches of a choice (`arms`, by `truthy`) and their merge (see
    /// [`Self::inline_choice`]). `chosen`: the choice itself, which a Register name may hold.
    fn inline_branches(&mut self, truthy: ir::Value, choices: [ChoiceArm; 2], chosen: Chosen) {
        let before_vs = self.vs.clone();
        let before_regs = self.reg_snapshot();
        let before_region = self.poll_region;
        let tb = self.b.create_block();
        let fb = self.b.create_block();
        self.b.ins().brif(truthy, tb, &[], fb, &[]);
        // Each block of the choice is sealed as soon as its predecessors are all there, so that
        // a variable read after the merge is the value both arms left (the inlined frames'
        // depth, say), not a block parameter resolved only at the end: `plus_folded` and the
        // other folds then see what it is.
        self.seal_blocks(&[tb, fb]);

        let mut arms = Vec::with_capacity(2);
        for (entry, arm) in [(tb, choices[0]), (fb, choices[1])] {
            self.vs = before_vs.clone();
            self.restore_regs(&before_regs);
            self.poll_region = before_region;
            self.b.switch_to_block(entry);
            self.know_choice_in_arm(chosen, arm);
            match arm {
                ChoiceArm::Known(bits) => self.inline_block(bits),
                ChoiceArm::Choice(c, x, y) => self.inline_choice(c, x, y),
            }
            if self.bail.is_some() {
                return;
            }
            if std::mem::take(&mut self.dead) {
                // The arm left a leaf copy on every path (`leaf.rs`): nothing to merge.
                continue;
            }
            arms.push(self.end_path());
        }
        self.join_paths(arms);
    }

    /// End the path being translated in a pristine exit block of its own: what it does (jump
    /// with values, or flush first) is decided when [`Self::join_paths`] knows every path.
    pub(super) fn end_path(&mut self) -> PathEnd {
        let exit = self.b.create_block();
        self.b.ins().jump(exit, &[]);
        self.b.seal_block(exit);
        PathEnd { exit, vs: self.vs.clone(), regs: self.reg_snapshot(), region: self.poll_region }
    }

    /// Go on from the ends of the paths `ends` (each jumps to its pristine `exit` block): where
    /// there are two, merged as the arms of an inlined `choose` are (see
    /// [`Self::inline_choice`]); where one, in its state; where none, on a dead path.
    pub(super) fn join_paths(&mut self, mut ends: Vec<PathEnd>) {
        if ends.len() < 2 {
            let Some(end) = ends.pop() else {
                self.dead = true;
                return;
            };
            self.b.switch_to_block(end.exit);
            self.vs = end.vs;
            self.restore_regs(&end.regs);
            self.poll_region = end.region;
            return;
        }
        let [t, f]: [PathEnd; 2] = ends.try_into().ok().expect("two paths");
        self.poll_region = Self::merge_poll_regions(t.region, f.region);
        let (t_exit, t_vs, t_regs) = (t.exit, t.vs, t.regs);
        let (f_exit, f_vs, f_regs) = (f.exit, f.vs, f.regs);
        let Some(regs) = merge_regs(&t_regs, &f_regs) else {
            return self.give_up("inlined branches leave the Registers differently");
        };
        let merge = self.b.create_block();
        // The top entries both paths hold virtually merge; below them, the longer path's
        // entries go to the AL (a call on one path, say, flushed what the other still holds),
        // so that the AL is the same either way. Top-aligned: the paths may leave stacks of
        // different depths, and what they share at the top is what follows reads first.
        let same_shape = t_vs.len() == f_vs.len();
        let kept = t_vs.len().min(f_vs.len());
        let top = |vs: &VStack| -> Option<Vec<VValue>> {
            vs.entries()[vs.len() - kept..].iter().map(|e| e.value().copied()).collect()
        };
        let (kept, t_vals, f_vals) = match (top(&t_vs), top(&f_vs)) {
            (Some(t), Some(f)) => (kept, t, f),
            _ if same_shape => return self.give_up("a virtual `_.` across inlined branches"),
            _ => (0, Vec::new(), Vec::new()),
        };
        if !same_shape && kept > 0 {
            self.out.partial_flushes += 1;
        }
        let vars: Vec<_> = (0..kept).map(|_| self.b.declare_var(I64)).collect();
        // An entry that is a small Int on both arms stays one (its integer merges too). Where
        // both arms boxed it themselves, only the integer merges, boxed again after the merge:
        // what uses the boxed form there is mostly an exit, where the boxing then goes
        // (`cold::sink_into_cold`), instead of both arms boxing every time. An arm that had
        // it boxed already (an argument, fib's `_.n`) merges the boxed form as well.
        let int_vars: Vec<Option<(_, bool)>> = (0..kept)
            .map(|i| {
                let (t, f) = (t_vals[i], f_vals[i]);
                let (Some(ti), Some(fi)) = (t.int, f.int) else { return None };
                let int_only = self.is_boxing_of(t.val, ti) && self.is_boxing_of(f.val, fi);
                Some((self.b.declare_var(I64), int_only))
            })
            .collect();
        for (exit, vs, vals) in [(t_exit, &t_vs, &t_vals), (f_exit, &f_vs, &f_vals)] {
            self.b.switch_to_block(exit);
            self.emit_flush(&vs.entries()[..vs.len() - kept]);
            for ((var, int_var), e) in vars.iter().zip(&int_vars).zip(vals) {
                if let (Some((iv, _)), Some(i)) = (int_var, e.int) {
                    self.b.def_var(*iv, i);
                }
                if !matches!(int_var, Some((_, true))) {
                    self.b.def_var(*var, e.val);
                }
            }
            self.b.ins().jump(merge, &[]);
        }
        self.b.seal_block(merge);
        self.b.switch_to_block(merge);
        self.vs = VStack::default();
        for (i, var) in vars.iter().enumerate() {
            let (a, b) = (t_vals[i], f_vals[i]);
            let konst = if a.konst == b.konst { a.konst } else { None };
            let mut e = match int_vars[i] {
                Some((iv, true)) => {
                    let int = self.b.use_var(iv);
                    VValue::new(self.box_int(int), konst)
                }
                _ => VValue::new(self.b.use_var(*var), konst),
            };
            e.int = int_vars[i].map(|(iv, _)| self.b.use_var(iv));
            self.vs.push(VEntry::Value(e));
        }
        self.restore_regs(&regs);
    }

    /// In the arm of `chosen` that runs Block `bits`: a virtual Register name holding that
    /// very choice (`!_.go` of `ifelse`, `!_.f` of `^`) holds `bits` here. Its variable is
    /// given the constant, so the select the choice made is left to the paths that still
    /// need it (none, usually): it was computed and kept live through a loop's rounds only
    /// for the exits inside the arms. Speculative code only, where the names live in
    /// variables (elsewhere this would be one more store).
    /// In an arm that is itself a choice (of a nested one), such a name holds that inner
    /// choice: what the inner branches then know of it in turn.
    fn know_choice_in_arm(&mut self, chosen: Chosen, arm: ChoiceArm) {
        if self.slot_vars.is_none() {
            return;
        }
        for level in 0..self.levels.len() {
            let RegMode::Virtual(names) = &self.levels[level].reg else { continue };
            let holding: Vec<(usize, usize, VValue)> = names
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    let e = n.info.filter(|_| n.defined)?;
                    let held = match chosen {
                        Chosen::Pair(c) => e.choice == Some(c),
                        Chosen::Nested(c) => e.nested == Some(c),
                    };
                    held.then_some((i, n.slot, e))
                })
                .collect();
            for (i, slot, e) in holding {
                let info = match arm {
                    ChoiceArm::Known(bits) => {
                        let v = self.value_const(bits);
                        self.write_slot(slot, v);
                        self.out.known_choices += 1;
                        VValue::new(v, Some(bits))
                    }
                    // The outer select picked the inner one's value: the slot holds it already.
                    ChoiceArm::Choice(c, x, y) => {
                        let mut inner = VValue::new(e.val, None);
                        inner.choice = Some((c, x, y));
                        inner
                    }
                };
                if let RegMode::Virtual(names) = &mut self.levels[level].reg {
                    names[i].info = Some(info);
                }
            }
        }
    }

    pub(super) fn reg_snapshot(&self) -> RegSnapshot {
        self.levels.iter().map(|l| l.reg.clone()).collect()
    }

    pub(super) fn restore_regs(&mut self, snap: &RegSnapshot) {
        for (l, r) in self.levels.iter_mut().zip(snap) {
            l.reg = r.clone();
        }
    }

}

/// Where a path being translated ended, for [`Translator::join_paths`]: its pristine exit
/// block (sealed, its only predecessor the path's end) and the translation state there.
pub(super) struct PathEnd {
    pub exit: ir::Block,
    pub vs: VStack,
    pub regs: RegSnapshot,
    pub region: Option<polls::PollRegion>,
}

/// The choice whose arms [`Translator::inline_branches`] is translating, as a Register name
/// holding it would record it (`VValue::choice`, `VValue::nested`).
#[derive(Clone, Copy, PartialEq)]
enum Chosen {
    Pair((ir::Value, u64, u64)),
    Nested((ir::Value, ChoiceArm, ChoiceArm)),
}

/// The user trap code of a failed depth check (`CodeEnv::check_invariants`): the frame's body
/// changed the depth it should have left as it found it.
const TRAP_DEPTH_UNBALANCED: u8 = 1;
