//! Poll regions: speculative code checks the poll countdown once for a run of inlined bodies.
//!
//! Every block entry is a step: it decrements the VM's poll countdown, and the entry that
//! brings it to zero polls (the step budget, the memory limit, the host), exactly there, so
//! that a limit stops every tier at the same statement. Baseline code tests the countdown at
//! every inlined body's entry, each test with a cold path of its own (a helper call, an error
//! exit): seven per round of collatz's loop.
//!
//! Speculative code instead opens a *region* at the first inlined entry after a point where
//! the countdown is known (the body's start, any helper or call, which may change it): one
//! test that the countdown is above the most entries any path through the region makes,
//! before the first of them. The entries then only decrement it; none can reach zero. The
//! bound is patched in when the translation is done (the region grows as it is translated;
//! through the two arms of an inlined `choose` it takes the longer). Where the test fails,
//! once every 4,096 entries or so and near a step limit, the code leaves for the executor at
//! that instruction (`DeoptReason::PollNear`, a routine exit that does not count toward a
//! recompile), which enters the bodies one by one and polls where the countdown says. In a
//! chained loop's body, and in code that calls itself directly, it first asks
//! `jit_poll_ahead` to take that poll early, which it does when the poll could stop nothing
//! (see `emit_poll_ahead`), and then stays.
//!
//! A region ends at anything that reloads the countdown from the VM (a helper, a call) and
//! where two inlined arms meet unless both continue the region opened before them.

use super::*;
use super::vmstate::VmField;

/// The region being translated: its number and the entries made in it so far on this path.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) struct PollRegion {
    id: usize,
    entries: u32,
}

/// Every region's bound (the constant its test compares the countdown with, patched in at the
/// end) and the most entries a path through it made.
#[derive(Default)]
pub(super) struct PollBounds {
    tests: Vec<(ir::Inst, u32)>,
}

impl<'e> Translator<'_, 'e> {
    /// A virtual frame's step in speculative code: open a region if none is (its test leaves
    /// for the executor at this instruction when the countdown is too low), and count down.
    pub(super) fn emit_region_step(&mut self) {
        let region = match self.poll_region {
            Some(r) => r,
            None => self.open_poll_region(),
        };
        let entries = region.entries + 1;
        let max = &mut self.poll_bounds.tests[region.id].1;
        *max = (*max).max(entries);
        self.poll_region = Some(PollRegion { entries, ..region });
        let n = self.load_vm_field(VmField::Countdown);
        let n = self.plus_folded(n, -1);
        self.store_vm_field(VmField::Countdown, n);
    }

    fn open_poll_region(&mut self) -> PollRegion {
        let n = self.load_vm_field(VmField::Countdown);
        // Patched with the region's bound (see `finish_poll_regions`).
        let (bound, test) = self.placeholder_iconst(I32);
        let above = self.b.ins().icmp(IntCC::UnsignedGreaterThan, n, bound);
        let id = self.poll_bounds.tests.len();
        self.poll_bounds.tests.push((test, 0));
        // Offered to chained loop bodies and to code that may call itself directly
        // (`Jit::env_settings`); used by those and by code that does.
        let trampoline = self.env.quiet_poll_ahead.filter(|_| continues_a_chain(self.levels[0].code) || self.direct.is_some());
        let Some(trampoline) = trampoline else {
            self.deopt_unless(above, &[], DeoptReason::PollNear);
            return PollRegion { id, entries: 0 };
        };
        let ahead = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(ahead);
        self.b.ins().brif(above, cont, &[], ahead, &[]);
        self.b.seal_block(ahead);
        self.b.switch_to_block(ahead);
        self.emit_poll_ahead(n, bound, trampoline);
        self.b.ins().jump(cont, &[]);
        self.b.seal_block(cont);
        self.b.switch_to_block(cont);
        PollRegion { id, entries: 0 }
    }

    /// The region's test failed: the countdown `n` is at most `bound`, so the poll falls due
    /// inside the region or soon after it. `jit_poll_ahead` takes it now when it can stop
    /// nothing, and re-arms the countdown with `n` plus a whole interval (far above any
    /// bound); otherwise, near a step limit or with an interrupt, deadline or memory limit to
    /// report, the code leaves for the executor here, which polls at the exact entry. The
    /// helper reads only the countdown (stored for it) and changes only the countdown, so
    /// nothing else is synced and the region stays open.
    ///
    /// The call is a quiet one, through `trampoline` (`quiet_calls.rs`, the function's index in
    /// the module the code goes into): it clobbers no register, so that the loop around it
    /// keeps its values in registers. (Where no trampoline could be made the region test
    /// leaves as outside loops: a plain C call here made the allocator spill the loop's
    /// values every round.)
    fn emit_poll_ahead(&mut self, n: ir::Value, bound: ir::Value, trampoline: u32) {
        let flags = MemFlagsData::trusted();
        self.b.ins().store(flags, n, self.vm, VmField::Countdown.offset());
        let callee = crate::quiet_calls::import(self.b.func, trampoline);
        self.b.ins().call(callee, &[self.vm]);
        // The helper left the countdown re-armed, or as it was (at most `bound`).
        let rearmed = self.b.ins().load(I32, flags, self.vm, VmField::Countdown.offset());
        // The variable follows memory before the exit's sync could store `n` back over it.
        self.store_vm_field(VmField::Countdown, rearmed);
        let ok = self.b.ins().icmp(IntCC::UnsignedGreaterThan, rearmed, bound);
        self.deopt_unless(ok, &[], DeoptReason::PollNear);
    }

    /// The entries made since `site`'s region state on this path, all in the region open now:
    /// the same region counts on from `site`, a region opened since (`site` had none, or a
    /// call closed it) counts from its first entry. 0 without an open region.
    pub(super) fn region_entries_since(&self, site: Option<PollRegion>) -> u32 {
        match (site, self.poll_region) {
            (Some(s), Some(now)) if s.id == now.id => now.entries - s.entries,
            (_, Some(now)) => now.entries,
            (_, None) => 0,
        }
    }

    /// The countdown may have changed (reloaded after a helper or a call): no region.
    pub(super) fn close_poll_region(&mut self) {
        self.poll_region = None;
    }

    /// Where two inlined arms meet: the region both continued, with the longer count, or none.
    pub(super) fn merge_poll_regions(a: Option<PollRegion>, b: Option<PollRegion>) -> Option<PollRegion> {
        match (a, b) {
            (Some(x), Some(y)) if x.id == y.id => Some(PollRegion { id: x.id, entries: x.entries.max(y.entries) }),
            _ => None,
        }
    }

    /// Patch every region's test with its bound.
    pub(super) fn finish_poll_regions(&mut self) {
        for &(bound, max) in &self.poll_bounds.tests {
            patch_iconst(self.b.func, bound, max as i64);
        }
    }
}
