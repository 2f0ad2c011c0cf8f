//! Leaf copies: the base cases of direct recursion inlined at its call sites.
//!
//! Most calls of a doubly recursive Block are leaves: of fib's calls about 62% take the base
//! case (`n < 2`) and return at once, yet each is a whole direct call (`direct.rs`): the
//! checks before it, the frame, the callee's prologue and direct entry, its return, about
//! a hundred instructions for a compare and a copy. So at a direct self-call site,
//! speculative code inlines its own Block once (a *leaf copy*, at the site's arguments), and
//! wherever the copy would call the Block in turn, it leaves the copy instead: it jumps to a
//! direct call of the Block at the *site's* arguments, which runs the whole call again from
//! its start. The copy's paths that call nothing (the base cases) end inline; the others
//! cost the copy's prefix (the pops, the compare, the choice) once more than a plain direct
//! call would.
//!
//! Running a call's beginning twice is the same program only if nothing could observe the
//! first run. A copy's path from its entry to a point where it leaves must therefore have
//! no effect: no call, no helper (a helper may write the graph, allocate, print), no store
//! to memory (the AL, a slot, a cell). That is checked on the function built, not assumed:
//! when any instruction of a hot block emitted for the copy calls or stores, the
//! translation gives up and the compiler translates again without leaf copies
//! (`translate_with_fallbacks`). Exits are cold: a path that leaves for the executor inside
//! the copy hands it the copy's frames as any inlined body's exit does, and never comes back
//! to leave the copy. What the copy's pure prefix changed is then put back on the way to the
//! direct call: the virtual stack and the Registers' state as at the site, and the VM fields
//! speculative code keeps in variables (`vmstate.rs`): the depth of the copy's virtual
//! frames, and the entries the copy's path counted down the poll countdown, given back on
//! top of the countdown as it is (the direct call counts its entry and the callee its
//! inlined ones again, as the executor counts each once; a poll taken early inside the copy
//! re-armed the countdown, and that stays). The poll region is the site's; its bound was
//! raised by the copy's entries, which only makes the test leave sooner.
//!
//! After the copy leaves on a path, nothing more is translated on it (`Translator::dead`):
//! the merges of inlined arms (`join_paths`) go on from the arms that did not leave, and the
//! site joins the copy's end (if some path reached it) with the direct call's result.

use super::*;
use super::vmstate::VmField;

/// At most this many leaf copies in one translation (each has a budget of its own): the four
/// call sites of fib unrolled one level.
const MAX_LEAF_COPIES: usize = 4;

/// The leaf copy being translated.
#[derive(Clone, Copy)]
pub(super) struct LeafCopy {
    /// The number of levels at the site: the copy is the level above.
    site_levels: usize,
    /// The poll region at the site (`region_entries_since`).
    site_region: Option<super::polls::PollRegion>,
    /// The direct call the copy leaves for, once a path does.
    leave: Option<ir::Block>,
}

impl<'e> Translator<'_, 'e> {
    /// Whether a direct self-call here gets a leaf copy: speculative code with leaf copies on
    /// (`CodeEnv::leaf_inline`), not inside a copy. With recursion unrolled (`CodeEnv::unroll`),
    /// the sites inside the unrolled copy get them.
    pub(super) fn leaf_inlines_here(&self) -> bool {
        self.env.leaf_inline && self.spec.is_some() && self.leaf.is_none()
    }

    /// Whether the translation is inside a leaf copy (its level or deeper).
    pub(super) fn in_leaf_copy(&self) -> bool {
        self.leaf.is_some_and(|l| self.levels.len() > l.site_levels)
    }

    /// Whether the code's own Block is being inlined as a leaf copy right now (the site's
    /// level is the top one): it may be, once.
    pub(super) fn leaf_copy_starts(&self) -> bool {
        self.leaf.is_some_and(|l| self.levels.len() == l.site_levels)
    }

    /// A direct self-call of Block `bits` (this code's), its arguments on the virtual stack,
    /// with a leaf copy (see the module docs).
    pub(super) fn emit_leaf_site(&mut self, bits: u64) {
        let site_vs = self.vs.clone();
        let site_regs = self.reg_snapshot();
        let fields = [VmField::Depth, VmField::MaxDepth];
        let site_fields = fields.map(|f| self.load_vm_field(f));
        self.leaf = Some(LeafCopy { site_levels: self.levels.len(), site_region: self.poll_region, leave: None });
        // A copy has an inlining budget of its own (the paths that leave it are not
        // translated past that point, and an unrolled copy has used most of the code's).
        let outer_budget = std::mem::replace(&mut self.inlined_instrs, 0);
        if self.leaf_tried >= MAX_LEAF_COPIES || !self.inlinable(bits) {
            // A plain direct call.
            self.leaf = None;
            self.inlined_instrs = outer_budget;
            return self.emit_direct_self_call(bits);
        }
        let first_inst = self.b.func.dfg.num_insts();
        self.leaf_tried += 1;
        self.inline_block(bits);
        self.inlined_instrs = outer_budget;
        let copy = self.leaf.take().expect("the copy being translated");
        let copy_left = std::mem::take(&mut self.dead);
        if self.bail.is_some() {
            return;
        }
        let Some(leave) = copy.leave else {
            // No path calls the Block again: the copy is the whole call.
            return;
        };
        if self.copy_has_effects(first_inst) {
            return self.give_up("a leaf copy calls or stores before it leaves");
        }
        self.out.leaf_copies += 1;
        let mut ends = Vec::with_capacity(2);
        if !copy_left {
            ends.push(self.end_path());
        }
        self.b.seal_block(leave);
        self.b.switch_to_block(leave);
        self.vs = site_vs;
        self.restore_regs(&site_regs);
        self.poll_region = copy.site_region;
        // The countdown as each leaving path gave it back (see `leave_leaf_copy`); the depth
        // as at the site (the copy's frames are gone).
        let countdown = self.b.block_params(leave)[0];
        self.store_vm_field(VmField::Countdown, countdown);
        for (f, v) in fields.into_iter().zip(site_fields) {
            self.store_vm_field(f, v);
        }
        self.emit_direct_self_call(bits);
        if self.bail.is_some() {
            return;
        }
        ends.push(self.end_path());
        self.join_paths(ends);
    }

    /// Inside a leaf copy, a call of the code's own Block: this path leaves the copy for the
    /// direct call at the site, and is dead from here on. The countdown it takes along is
    /// the one it has with the copy's entries on this path given back, which the direct call
    /// and its callee count again: not the site's, since a poll taken early inside the copy
    /// (`emit_poll_ahead`) re-armed it, and the site's would bring the next poll an interval
    /// early and charge a step budget with entries never run.
    pub(super) fn leave_leaf_copy(&mut self) {
        let copy = self.leaf.expect("in a leaf copy");
        let leave = match copy.leave {
            Some(b) => b,
            None => {
                let b = self.b.create_block();
                self.b.append_block_param(b, I32);
                self.leaf.as_mut().expect("in a leaf copy").leave = Some(b);
                b
            }
        };
        let entries = self.region_entries_since(copy.site_region);
        let now = self.load_vm_field(VmField::Countdown);
        let back = self.plus_folded(now, i64::from(entries));
        self.b.ins().jump(leave, &[BlockArg::Value(back)]);
        let dead = self.b.create_block();
        self.b.seal_block(dead);
        self.b.switch_to_block(dead);
        self.dead = true;
    }

    /// Whether an instruction emitted since `first` (the copy's) could be seen: in a block
    /// that is not cold, any call or store; in a cold one, a call. The copy's cold blocks
    /// branch to exits, which leave and never come back to leave the copy (the exits' own
    /// calls and stores are in their shared blocks, filled at the end); the one cold path that
    /// comes back is a poll taken early (a quiet call of `jit_poll_ahead`, its countdown stored
    /// for it), whose only effect, the re-armed countdown, the leave keeps
    /// (`leave_leaf_copy`). Any other call there would be an effect on a path that can still
    /// leave.
    fn copy_has_effects(&self, first: usize) -> bool {
        let func = &*self.b.func;
        (first..func.dfg.num_insts()).any(|i| {
            let inst = ir::Inst::from_u32(i as u32);
            let Some(block) = func.layout.inst_block(inst) else { return false };
            let op = func.dfg.insts[inst].opcode();
            if func.layout.is_cold(block) {
                return op.is_call() && !crate::quiet_calls::is_quiet_call(func, inst);
            }
            op.is_call() || op.can_store()
        })
    }
}
