//! Direct self-calls: how speculative code calls the Block it is the code of (recursion).
//!
//! An ordinary call of a compiled Block goes through memory both ways: the caller pushes the
//! arguments on the AL, the callee's leading `!_.name` instructions pop them, its pre-header
//! checks again what the caller has just checked, it pushes its result and the caller pops
//! it. When the callee is this very code, compiled against the same assumptions, most of that
//! is known to be redundant at the call:
//!
//! * **Assumptions.** Every call the caller made since its own pre-header was followed by a
//!   check of the write counter and the epoch, so what its pre-header assumed holds at the
//!   call, and the validation table describes the cells and values as they are. The callee
//!   is entered past the pre-header (`chained` = [`DIRECT`]): the table defines what the
//!   pre-header would, and only the virtual frames' depth check is made. This needs a code
//!   that writes no Store cell itself: its registers would then hold newer values than the
//!   table (writes by its callees are no obstacle, the checks after the calls refill the
//!   table or leave).
//! * **Arguments.** The top `k` virtual entries, which the callee's `k` leading `!_.name`
//!   instructions (distinct names) would pop, pass in the code's argument buffer
//!   (`Translated::direct_buf`), and the callee binds them to the names: no AL traffic.
//! * **Result.** A callee entered directly that reaches its end with entries on its virtual
//!   stack flushes all but the top one, stores that one in the buffer and returns
//!   [`DIRECT`] (or its integer and [`DIRECT_INT`], when it knows it as a small Int); the
//!   caller holds it as its own top virtual entry, as a small Int unless type feedback says
//!   otherwise (`assumes_int_results`). Handing the top entry over instead of pushing it
//!   changes nothing the executor could see.
//! * **Entries below.** What the caller holds virtually under the arguments is flushed for
//!   the call and taken back after it when the AL still holds it (`retake_flushed`).
//!
//! Everything else keeps the ordinary protocol. A callee that returns `SOMA_OK` left its
//! results on the AL (it deoptimised, or ended with nothing virtual): the caller takes the
//! top of the AL as the call's result, or leaves through a deopt exit when the AL is empty
//! (`DeoptReason::NoCallResult`). A failed check before the call (native stack, depth, room
//! in the frame stack, the poll's turn) pushes the arguments and calls `jit_exec`. The
//! callee's frame is pushed as for any call (exits and errors inside it need it), its
//! `exec_count` is not counted (it only decides tier-up, and this is the last tier).
//!
//! The buffer holds values that are neither on the AL nor in a slot, so it must never be
//! live across anything that collects or reenters the code: the caller stores the arguments
//! after its last check and calls at once, the callee loads them before any helper can run
//! (or, failing its entry checks, pushes them where the executor expects them); the callee
//! stores its result after its last helper and the caller loads it right after the call.

use super::*;

/// The `chained` argument of a direct self-call, and the status with which a callee entered
/// so returns its result in the buffer. The runtime passes only 0 and 1 and is never
/// returned this: only direct call sites make and see it.
pub(super) const DIRECT: i64 = 3;
/// The status with which a callee entered as [`DIRECT`] returns a small Int result as its
/// integer in the buffer.
pub(super) const DIRECT_INT: i64 = 4;
/// At most this many arguments pass in the buffer (more leading pops take the rest from
/// the AL, as usual).
pub(super) const MAX_DIRECT_ARGS: usize = 4;
/// At most this many entries under a direct call's arguments are taken back after it
/// (`Translator::retake_flushed`); deeper ones stay on the AL.
const MAX_RETAKEN: usize = 4;

/// A translation whose code may call itself directly.
pub(super) struct Direct {
    /// The arguments a direct call passes: level 0's leading `!_.name` instructions.
    pub args: usize,
    /// The entry of a direct call, past the pre-header; filled with it.
    pub enter: ir::Block,
    /// Where the direct entry meets the ordinary one, after the argument instructions, and
    /// the slots of their names in instruction order; made when the translation gets there.
    pub join: Option<(ir::Block, Vec<usize>)>,
    /// A direct call site was emitted.
    pub used: bool,
    /// Address of the argument buffer (`Translated::direct_buf`).
    pub buf: u64,
    /// Address of the code's own entry (`Translated::self_entry`, set at install).
    pub self_entry: u64,
    /// The branches at call sites between skipping the check after a callee that returned its
    /// result directly and making it; each becomes a jump to one of them (see
    /// [`Translator::finish_direct_checks`]).
    pub skip_branches: Vec<ir::Inst>,
    /// A check after a call that validates again (and may refill the validation table)
    /// was emitted (`spec_after_call_revalidating`).
    pub revalidates: bool,
}

impl<'e> Translator<'_, 'e> {
    /// When the code being translated (speculatively) may call itself directly, how many
    /// arguments such a call passes (see the module docs). `writes_no_store_cell`: what
    /// [`Self::writes_no_store_cell`] says of it.
    pub(super) fn direct_arity(&self, writes_no_store_cell: bool) -> Option<usize> {
        let l = &self.levels[0];
        if !self.env.speculate || l.is_program || !matches!(l.reg, RegMode::Virtual(_)) {
            return None;
        }
        let me = self.env.vm.block_obj(self.env.block)?;
        if !writes_no_store_cell
            || !runs_block(
                &|c| self.env.code(me.module, c).map(|(code, _)| code),
                &|p| self.store_value_at_compile_time(p),
                me.code,
                self.env.block.to_bits(),
                SPECULATIVE_INLINE_DEPTH,
            )
        {
            return None;
        }
        let mut names: Vec<&str> = Vec::new();
        for ins in l.code.instrs.iter().take(MAX_DIRECT_ARGS) {
            let p = &l.code.paths[ins.operand as usize];
            if ins.op != Opcode::SetReg || p.components.len() != 1 || names.contains(&&*p.components[0]) {
                break;
            }
            names.push(&p.components[0]);
        }
        Some(names.len())
    }

    /// The start of a translation that may call itself directly: the buffers, and the entry
    /// split (`chained` = [`DIRECT`] goes past the pre-header `pre`).
    pub(super) fn begin_direct(&mut self, args: usize) {
        self.out.direct_buf = (0..MAX_DIRECT_ARGS.max(1)).map(|_| std::cell::Cell::new(0)).collect();
        let enter = self.b.create_block();
        self.direct = Some(Direct {
            args,
            enter,
            join: None,
            used: false,
            buf: self.out.direct_buf.as_ptr() as u64,
            self_entry: &*self.out.self_entry as *const std::cell::Cell<u64> as u64,
            skip_branches: Vec::new(),
            revalidates: false,
        });
    }

    /// Whether this run is a direct call (an `i8`).
    fn is_direct_run(&mut self) -> ir::Value {
        self.b.ins().icmp_imm_s(IntCC::Equal, self.chained, DIRECT)
    }

    /// Branch to the direct entry when this run is a direct call, else to `ordinary`.
    pub(super) fn emit_direct_split(&mut self, ordinary: ir::Block) {
        let enter = self.direct.as_ref().expect("a direct translation").enter;
        let is_direct = self.is_direct_run();
        self.b.ins().brif(is_direct, enter, &[], ordinary, &[]);
    }

    /// The arguments a direct call left in the buffer (bottom first).
    fn load_direct_args(&mut self) -> Vec<ir::Value> {
        let d = self.direct.as_ref().expect("a direct translation");
        let (buf, n) = (d.buf, d.args);
        let buf = self.vm_const(buf);
        (0..n)
            .map(|i| self.b.ins().load(I64, MemFlagsData::trusted(), buf, (8 * i) as i32))
            .collect()
    }

    /// On a path that runs the Code from instruction 0 in the executor: when this run is a
    /// direct call, push its arguments, which the executor's first instructions pop.
    pub(super) fn emit_direct_args_to_al(&mut self) {
        if self.direct.is_none() {
            return;
        }
        let is_direct = self.is_direct_run();
        let push = self.b.create_block();
        let cont = self.b.create_block();
        self.b.ins().brif(is_direct, push, &[], cont, &[]);
        self.seal_blocks(&[push]);
        self.b.switch_to_block(push);
        let args = self.load_direct_args();
        self.emit_push(args);
        self.b.ins().jump(cont, &[]);
        self.seal_blocks(&[cont]);
        self.b.switch_to_block(cont);
    }

    /// At level 0's instruction `pc`: when the argument instructions are behind, the direct
    /// entry joins here (see `finish_direct_entry`). The names they wrote now hold what
    /// either entry gave them.
    pub(super) fn join_direct_entry(&mut self, pc: usize) {
        let Some(d) = self.direct.as_ref() else { return };
        if d.args != pc || d.join.is_some() {
            return;
        }
        let code = self.levels[0].code;
        let mut slots = Vec::with_capacity(pc);
        for ins in &code.instrs[..pc] {
            let name = &*code.paths[ins.operand as usize].components[0];
            let RegMode::Virtual(names) = &self.levels[0].reg else {
                return self.give_up("direct self-call arguments without virtual names");
            };
            let Some(n) = names.iter().find(|n| &*n.name == name && n.defined) else {
                return self.give_up("direct self-call arguments without virtual names");
            };
            slots.push(n.slot);
        }
        let join = self.b.create_block();
        self.b.ins().jump(join, &[]);
        // Sealed at the end, when the direct entry jumps here too.
        self.b.switch_to_block(join);
        for &slot in &slots {
            let v = self.read_slot(slot);
            let RegMode::Virtual(names) = &mut self.levels[0].reg else { unreachable!("checked above") };
            let n = names.iter_mut().find(|n| n.slot == slot).expect("found above");
            n.info = Some(VValue::new(v, None));
        }
        self.direct.as_mut().expect("checked above").join = Some((join, slots));
    }

    /// Fill the direct entry (with the pre-header, when the validation table and the frames'
    /// nesting are known): the virtual frames' depth check (failing, the arguments go on the
    /// AL and the pre-header's exit `fail` runs the Code in the executor), the counters the
    /// checks after calls compare with, the table's cells and values, the arguments bound to
    /// their names, then the join.
    pub(super) fn finish_direct_entry(&mut self, spec: &speculate::Speculation, table_addr: u64, fail: ir::Block) {
        let Some(d) = self.direct.as_ref() else { return };
        let enter = d.enter;
        let Some((join, slots)) = d.join.clone() else {
            // Every translation that finishes passed the join (see `translate`).
            return self.give_up("a direct entry without its join");
        };
        if d.used && spec.writes_cells() {
            // `direct_arity` rules this out; were it wrong, the table could be stale.
            return self.give_up("a direct self-call in code that writes Store cells");
        }
        self.b.switch_to_block(enter);
        // Memory is current (the caller made it so and pushed the frame), and the variables
        // were loaded at entry; nothing ran since.
        let args = self.load_direct_args();
        if let Some(too_deep) = self.frames_too_deep(spec) {
            let deep = self.b.create_block();
            let go_on = self.b.create_block();
            self.b.set_cold_block(deep);
            self.b.ins().brif(too_deep, deep, &[], go_on, &[]);
            self.seal_blocks(&[deep, go_on]);
            self.b.switch_to_block(deep);
            let vs = std::mem::take(&mut self.vs);
            self.emit_push(args.clone());
            self.vs = vs;
            let other = self.iconst(1);
            self.b.ins().jump(fail, &[BlockArg::Value(other)]);
            self.b.switch_to_block(go_on);
        }
        self.define_counters_of(spec);
        let tab = self.vm_const(table_addr);
        self.define_from_table(&spec.cells, tab);
        // Instruction i pops the i-th entry from the top.
        for (i, &slot) in slots.iter().enumerate() {
            self.write_slot(slot, args[args.len() - 1 - i]);
        }
        self.b.ins().jump(join, &[]);
    }

    /// At the end of the body, when this run is a direct call and something is on the virtual
    /// stack: the top entry goes back in the buffer, the rest on the AL. Otherwise the code
    /// goes on to the ordinary return.
    pub(super) fn emit_direct_return(&mut self) {
        let Some(d) = self.direct.as_ref() else { return };
        let buf = d.buf;
        let entries = self.pending();
        let Some((VEntry::Value(top), rest)) = entries.split_last() else { return };
        let is_direct = self.is_direct_run();
        let direct = self.b.create_block();
        let ordinary = self.b.create_block();
        self.b.ins().brif(is_direct, direct, &[], ordinary, &[]);
        self.seal_blocks(&[direct, ordinary]);
        self.b.switch_to_block(direct);
        self.emit_flush(rest);
        let buf = self.vm_const(buf);
        // A small Int known as one goes as its integer: the caller need not test or unbox it.
        let (word, status) = match top.int {
            Some(i) => (i, DIRECT_INT),
            None => (top.val, DIRECT),
        };
        self.b.ins().store(MemFlagsData::trusted(), word, buf, 0);
        let st = self.b.ins().iconst(I32, status);
        self.emit_return(st);
        self.b.switch_to_block(ordinary);
    }

    /// Whether a call of Block `bits` here can be a direct self-call: it is this code's Block
    /// and the arguments are on the virtual stack.
    pub(super) fn can_call_direct(&self, bits: u64) -> bool {
        let Some(d) = self.direct.as_ref() else { return false };
        bits == self.env.block.to_bits()
            && d.join.is_some()
            && self.vs.len() >= d.args
            && self.vs.entries()[self.vs.len() - d.args..].iter().all(|e| e.value().is_some())
    }

    /// A direct self-call (see the module docs): the checks and the frame of a direct call,
    /// the arguments in the buffer, the result from it (or from the AL).
    pub(super) fn emit_direct_self_call(&mut self, bits: u64) {
        let d = self.direct.as_mut().expect("can_call_direct");
        d.used = true;
        self.out.direct_call_sites += 1;
        let (k, buf, self_entry) = (d.args, d.buf, d.self_entry);
        let args: Vec<ir::Value> = self.vs.pop_n(k).iter().map(|e| e.value().expect("can_call_direct").val).collect();
        let below = self.retakeable_below();
        let int_result = self.assumes_int_results();
        self.flush();
        let flags = MemFlagsData::trusted();
        // The entry is 0 once newer code of this Block is installed (the recursion unrolled,
        // a recompile): the call then goes to that code through `jit_exec`, so a deep
        // recursion moves over at its next call rather than when it returns.
        let entry_addr = self.vm_const(self_entry);
        let entry = self.b.ins().load(I64, flags, entry_addr, 0);
        let current = self.b.ins().icmp_imm_s(IntCC::NotEqual, entry, 0);
        let slow = self.b.create_block();
        let as_int = self.b.create_block();
        let not_int = self.b.create_block();
        let as_value = self.b.create_block();
        let ordinary = self.b.create_block();
        let st = self.b.append_block_param(ordinary, I32);
        // The result reaches `to_word` as a value (bits), `done` and `after` as the call's
        // word: its integer when the code assumes small-Int results, else its bits.
        let to_word = self.b.create_block();
        let value = self.b.append_block_param(to_word, I64);
        let done = self.b.create_block();
        let done_word = self.b.append_block_param(done, I64);
        let after = self.b.create_block();
        let after_word = self.b.append_block_param(after, I64);
        self.b.set_cold_block(slow);
        let checks = self.emit_call_checks(current, slow);
        self.b.seal_block(slow);

        let buf = self.vm_const(buf);
        for (i, &v) in args.iter().enumerate() {
            self.b.ins().store(flags, v, buf, (8 * i) as i32);
        }
        let status = self.emit_enter_and_call(entry, DIRECT, &checks, bits);
        self.reload_vm_state();
        let returned_int = self.b.ins().icmp_imm_s(IntCC::Equal, status, DIRECT_INT);
        self.b.ins().brif(returned_int, as_int, &[], not_int, &[]);
        self.seal_blocks(&[as_int, not_int]);

        // An integer in the buffer (the callee's result was a small Int it knew as one).
        self.b.switch_to_block(as_int);
        let i = self.b.ins().load(I64, flags, buf, 0);
        let word = if int_result { i } else { self.box_int(i) };
        // Becomes a jump to `after` when the callee, this very code, makes no check that
        // validates again, else to `checked` (`finish_direct_checks`): the check after the
        // call is skipped here or made, with no test left in the code.
        let undecided = self.b.ins().iconst(types::I8, 0);
        let checked = self.b.create_block();
        let branch = self.b.ins().brif(undecided, after, &[BlockArg::Value(word)], checked, &[]);
        self.direct.as_mut().expect("can_call_direct").skip_branches.push(branch);
        self.seal_blocks(&[checked]);
        self.b.switch_to_block(checked);
        self.b.ins().jump(done, &[BlockArg::Value(word)]);

        // A value in the buffer, or the ordinary protocol.
        self.b.switch_to_block(not_int);
        let returned = self.b.ins().icmp_imm_s(IntCC::Equal, status, DIRECT);
        self.b.ins().brif(returned, as_value, &[], ordinary, &[BlockArg::Value(status)]);
        self.seal_blocks(&[as_value]);
        self.b.switch_to_block(as_value);
        let r = self.b.ins().load(I64, flags, buf, 0);
        self.b.ins().jump(to_word, &[BlockArg::Value(r)]);

        self.b.switch_to_block(slow);
        // Mark superseded code that handed a call over (3, `JitStats::calls_moved`).
        let superseded_at = self.vm_const(&*self.out.superseded as *const std::cell::Cell<u64> as u64);
        let flag = self.b.ins().load(I64, flags, superseded_at, 0);
        let three = self.iconst(3);
        let marked = self.b.ins().select(flag, three, flag);
        self.b.ins().store(flags, marked, superseded_at, 0);
        self.emit_push(args);
        let v = self.value_const(bits);
        let status = self.helper_status(At::Main, Helper::Exec, &[self.vm, v]);
        self.b.ins().jump(ordinary, &[BlockArg::Value(status)]);
        self.seal_blocks(&[ordinary]);

        // The results are on the AL: the top one is the call's.
        self.b.switch_to_block(ordinary);
        self.check(st, &[]);
        let top = self.emit_take(1, |t| {
            let next = t.lvl().pc + 1;
            t.emit_deopt_at(next, DeoptReason::NoCallResult);
        });
        self.b.ins().jump(to_word, &[BlockArg::Value(top[0])]);
        self.seal_blocks(&[to_word]);

        self.b.switch_to_block(to_word);
        if int_result {
            // Not a small Int (a BigInt the executor made, a string): the executor goes on
            // after the call, and type feedback has the recompile take results as they come.
            let is_int = self.is_small_int(value);
            let next = self.lvl().pc + 1;
            self.deopt_unless_at(is_int, &[VEntry::new(value, None)], next, DeoptReason::CallResultNotSmallInt);
            let i = self.unbox_int(value);
            self.b.ins().jump(done, &[BlockArg::Value(i)]);
        } else {
            self.b.ins().jump(done, &[BlockArg::Value(value)]);
        }
        self.seal_blocks(&[done]);

        self.b.switch_to_block(done);
        let e = self.call_result(done_word, int_result);
        self.vs.push(VEntry::Value(e));
        self.spec_after_call();
        // The deopt exit of the check above left with the result on the AL; past it, the
        // result comes from either path.
        self.vs.pop();
        self.b.ins().jump(after, &[BlockArg::Value(done_word)]);
        self.seal_blocks(&[after]);
        self.b.switch_to_block(after);
        let e = self.call_result(after_word, int_result);
        self.retake_flushed(&below, e);
    }

    /// A direct call's result from its word: an integer when `int` (the code assumes small
    /// Int results; its boxed form is dead code unless it escapes), else the value's bits.
    fn call_result(&mut self, word: ir::Value, int: bool) -> VValue {
        if !int {
            return VValue::new(word, None);
        }
        let mut e = VValue::new(self.box_int(word), None);
        e.int = Some(word);
        e
    }

    /// Whether direct self-calls here take their results as small Ints (unless type
    /// feedback says one here returned something else): the integer a callee that knew its
    /// result as one hands over, and any other result tag-tested once, at the call.
    fn assumes_int_results(&mut self) -> bool {
        let Some(b) = self.env.vm.block_obj(self.lvl().block) else { return false };
        !self.env.site_is_wide(b.module, b.code, crate::feedback::INT_RESULT_SITE)
    }

    /// The entries under a direct self-call's arguments that the call takes back after it
    /// (see [`Self::retake_flushed`]): the top [`MAX_RETAKEN`] of the virtual stack, unless
    /// type feedback says a callee here consumed them before.
    fn retakeable_below(&mut self) -> Vec<VValue> {
        let Some(b) = self.env.vm.block_obj(self.lvl().block) else { return Vec::new() };
        if self.vs.is_empty() || self.env.site_is_wide(b.module, b.code, crate::feedback::RETAKE_SITE) {
            return Vec::new();
        }
        let entries = self.vs.entries();
        let from = entries.len().saturating_sub(MAX_RETAKEN);
        // A virtual `_.` cannot be flushed (the flush gives up): nothing to take back then.
        entries[from..].iter().map(|e| e.value().copied()).collect::<Option<Vec<_>>>().unwrap_or_default()
    }

    /// After a direct self-call whose result is `result`: the call flushed the virtual
    /// entries under its arguments to the AL (the callee may leave for the executor, which
    /// must find them there), and the code would pop them back with a check of each one's
    /// kind. Where the AL's top entries still have the bits of `below` (the entries flushed,
    /// bottom first), they are popped back into the virtual entries they were, with all that
    /// was known of them: equal bits are an equal value, so the AL and the virtual stack say
    /// what they said before the call. A callee that consumed them (it ran unknown code
    /// that pops more than it pushed) leaves them changed: then the code leaves, the executor
    /// going on after the call with the AL as it is and the result on top
    /// ([`DeoptReason::AlChangedByCall`]). fib's second call flushed the first one's result:
    /// both the leaf copy's path and the call's now hold it virtually, and their join no
    /// longer pushes and pops it.
    fn retake_flushed(&mut self, below: &[VValue], result: VValue) {
        if below.is_empty() {
            return self.vpush_entry(VEntry::Value(result));
        }
        self.out.retaken_entries += below.len();
        let flags = MemFlagsData::trusted();
        let n = below.len();
        // Changed: leave with the AL as it is and the result on top.
        let taken = [VEntry::Value(result)];
        let next = self.lvl().pc + 1;
        let len = self.b.ins().load(I64, flags, self.vm, JitLayout::AL_LEN);
        let enough = self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, len, n as i64);
        self.deopt_unless_at(enough, &taken, next, DeoptReason::AlChangedByCall);
        let new_len = self.b.ins().iadd_imm_s(len, -(n as i64));
        let ptr = self.b.ins().load(I64, flags, self.vm, JitLayout::AL_PTR);
        let offset = self.b.ins().ishl_imm_s(new_len, 3);
        let at = self.b.ins().iadd(ptr, offset);
        let mut all_same = None;
        for (i, e) in below.iter().enumerate() {
            let bits = self.b.ins().load(I64, flags, at, (i * 8) as i32);
            let eq = self.b.ins().icmp(IntCC::Equal, bits, e.val);
            all_same = Some(match all_same {
                Some(acc) => self.b.ins().band(acc, eq),
                None => eq,
            });
        }
        self.deopt_unless_at(all_same.expect("below is not empty"), &taken, next, DeoptReason::AlChangedByCall);
        self.b.ins().store(flags, new_len, self.vm, JitLayout::AL_LEN);
        for e in below {
            self.vs.push(VEntry::Value(*e));
        }
        self.vpush_entry(VEntry::Value(result));
    }

    /// A direct callee that returned its result directly ([`DIRECT`]) ran this very code to
    /// its end without leaving it. Every check that code makes after a call leaves when the
    /// write counter or the epoch moved, unless it is one that validates again, which may
    /// refill the table and go on. So when the code has none of those, a callee that returned
    /// directly found the counters unchanged after its last call (a leaf makes no call, and
    /// the code writes no cell: that is what allows direct calls), and they are still the
    /// values its caller checks against (the callee took them from the same table, entered
    /// past the pre-header): the caller's check after the call cannot fail, and is skipped.
    /// A callee that deoptimised, or was called through `jit_exec`, returns otherwise, and the
    /// check stays on that path.
    pub(super) fn finish_direct_checks(&mut self) {
        let Some(d) = self.direct.as_ref() else { return };
        // The branch's first destination skips the check, the second makes it.
        let take = if d.revalidates { 1 } else { 0 };
        for &inst in &d.skip_branches {
            if !crate::clif::take_branch(&mut self.b.func.dfg, inst, take) {
                return self.give_up("a direct call's skip branch is no brif");
            }
        }
    }
}

/// Whether Code `code` (or a block literal in it, `depth` levels down) executes a Store path
/// that holds the Block with bits `target` now: a direct self-call is possible. `code_of`
/// gives a Code of the same module, `value_at` the value at a path (as `CodeEnv::code` and
/// `CodeEnv::store_value` do; the compiler asks before any translation, `Jit::env_settings`).
pub(crate) fn runs_block<'c>(
    code_of: &dyn Fn(u32) -> Option<&'c Code>,
    value_at: &dyn Fn(&Path) -> Option<Value>,
    code: u32,
    target: u64,
    depth: usize,
) -> bool {
    let Some(c) = code_of(code) else { return false };
    c.instrs.iter().any(|ins| {
        let k = ins.operand as usize;
        match ins.op {
            Opcode::ExecStore => value_at(&c.paths[k]).is_some_and(|v| v.to_bits() == target),
            Opcode::Const => match c.consts[k] {
                soma_runtime::decode::Const::Block(inner) => depth > 0 && runs_block(code_of, value_at, inner, target, depth - 1),
                _ => false,
            },
            _ => false,
        }
    })
}
