//! Why compiled code left through a deoptimisation exit.
//!
//! Every deopt exit site knows its reason at compile time. Exits of the same shape share one
//! exit block that gets the *site* as an argument (see `translate/exits.rs`), so the reason
//! travels in the site's high bits beside the resume pc (and a detail for the type feedback)
//! and costs the exit nothing: the executor-side helper splits them again, counts the reason
//! in [`crate::JitStats`], teaches the feedback and resumes at the pc.

/// The reason of one deoptimisation exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DeoptReason {
    /// Speculative code's entry checks failed: a hoisted path no longer resolves, a guarded
    /// path holds another builtin or Block, a path assumed to hold a small Int holds
    /// something else, or a written path became a CellRef or an alias of another path.
    EntryCheck = 0,
    /// A call made from speculative code wrote a cell or changed the Store's shape (after a
    /// call of a Block known to write cells: the assumptions checked again failed; a detail
    /// then names the hoisted cell whose small-Int check failed, as `EntryCheck`'s does).
    StoreChangedByCall,
    /// A guarded builtin or Block site of baseline code found its path rebound.
    GuardedPathRebound,
    /// An operand speculated to be a small Int was not one.
    NotSmallInt,
    /// An integer result left the small Int range (the executor makes the BigInt).
    IntOverflow,
    /// A division or remainder by zero (the executor raises the error).
    ZeroDivisor,
    /// A CellRef written to a Store path whose writes are plain stores.
    CellRefStored,
    /// A Register write that must go through a CellRef the virtual Register holds.
    RegisterWriteThrough,
    /// The shadow stack of virtual Registers was full (deep recursion).
    ShadowStackFull,
    /// A write into a Store path assumed to hold a CellRef that plain stores cannot do: the
    /// value is no CellRef (it would write through), or a lookup has walked through the cell
    /// (replacing its CellRef must move the epoch).
    RefCellWrite,
    /// A direct self-call's callee left its results on the AL, and the AL is empty: the
    /// executor goes on after the call (see `translate/direct.rs`).
    NoCallResult,
    /// Speculative code found the poll countdown too close to zero for the inlined bodies
    /// ahead (`translate/polls.rs`): the executor enters them one by one. Routine, so it does
    /// not count toward a recompile.
    PollNear,
    /// A record field speculative code wrote (`translate/record.rs`) was a cell a Store
    /// lookup went through or watches, and the write moved the epoch or the write counter:
    /// what the code holds of cells may be stale.
    RecordFieldSeen,
    /// Speculative code whose chained rounds loop without asking whether a `chain` loop runs
    /// them (`translate/ops.rs`, `finish_body`) was entered by an ordinary call: the executor
    /// runs this call, and type feedback has the recompile ask every round again.
    NotChained,
    /// A loop's entry value lay outside the range its bound keeps the later rounds in, where
    /// speculative code dropped the overflow checks that range made unnecessary
    /// (`induction.rs`): the executor runs the round, and type feedback compiles the Code
    /// again without the guard.
    InductionRange,
    /// The AL entries speculative code pushed under a direct self-call's arguments were not
    /// on top of the AL when the call returned (a callee that ran unknown code consumed
    /// them): the executor goes on after the call with the AL as it is
    /// (`translate/direct.rs`), and type feedback leaves them there in the recompile.
    AlChangedByCall,
    /// A direct self-call whose code takes results as small Ints got something else (a
    /// BigInt the executor made after the callee left, another kind): the executor goes on
    /// after the call, and type feedback has the recompile take results as they come.
    CallResultNotSmallInt,
}

impl DeoptReason {
    /// Every reason, in the order of their numbers.
    pub const ALL: [DeoptReason; 17] = [
        DeoptReason::EntryCheck,
        DeoptReason::StoreChangedByCall,
        DeoptReason::GuardedPathRebound,
        DeoptReason::NotSmallInt,
        DeoptReason::IntOverflow,
        DeoptReason::ZeroDivisor,
        DeoptReason::CellRefStored,
        DeoptReason::RegisterWriteThrough,
        DeoptReason::ShadowStackFull,
        DeoptReason::RefCellWrite,
        DeoptReason::NoCallResult,
        DeoptReason::PollNear,
        DeoptReason::RecordFieldSeen,
        DeoptReason::NotChained,
        DeoptReason::InductionRange,
        DeoptReason::AlChangedByCall,
        DeoptReason::CallResultNotSmallInt,
    ];
    pub const COUNT: usize = Self::ALL.len();

    /// A short name for statistics (`--jit-stats`, the bridge's dict, dumps).
    pub fn name(self) -> &'static str {
        match self {
            DeoptReason::EntryCheck => "entry check failed",
            DeoptReason::StoreChangedByCall => "a call changed the Store",
            DeoptReason::GuardedPathRebound => "guarded path rebound",
            DeoptReason::NotSmallInt => "not a small Int",
            DeoptReason::IntOverflow => "Int overflow",
            DeoptReason::ZeroDivisor => "zero divisor",
            DeoptReason::CellRefStored => "CellRef stored",
            DeoptReason::RegisterWriteThrough => "Register write-through",
            DeoptReason::ShadowStackFull => "shadow stack full",
            DeoptReason::RefCellWrite => "CellRef cell write",
            DeoptReason::NoCallResult => "no result after a direct call",
            DeoptReason::PollNear => "near a poll",
            DeoptReason::RecordFieldSeen => "record field seen by a lookup",
            DeoptReason::NotChained => "entered outside a chain",
            DeoptReason::InductionRange => "loop entered outside its bound",
            DeoptReason::AlChangedByCall => "AL changed under a direct call",
            DeoptReason::CallResultNotSmallInt => "direct call result not a small Int",
        }
    }

    /// Whether exits for this reason are part of how the code runs, not a sign that its
    /// assumptions fail: they are counted apart (`JitStats::poll_exits`), never toward a
    /// recompile, and teach the type feedback nothing.
    pub fn is_routine(self) -> bool {
        self == DeoptReason::PollNear
    }

    /// The reason numbered `n` (an unknown number, which no compiled code makes, counts as
    /// an entry check rather than being lost).
    pub fn from_number(n: u64) -> DeoptReason {
        Self::ALL.get(n as usize).copied().unwrap_or(DeoptReason::EntryCheck)
    }
}

/// A site: the resume pc in the low 32 bits (Codes are far shorter), a detail in the next 16,
/// the reason in the top 16.
const PC_BITS: u32 = 32;
const DETAIL_BITS: u32 = 16;
/// Where a site's detail starts (compiled code shifts a detail computed at run time there).
pub const DETAIL_SHIFT: u32 = PC_BITS;

/// The site argument of a deopt exit resuming at `pc` for `reason`. `detail` says more for
/// the type feedback: for a failed entry check, the hoisted cell whose small-Int check failed
/// (its index plus one; 0 for any other check).
pub fn encode_site(pc: usize, reason: DeoptReason, detail: usize) -> u64 {
    debug_assert!((pc as u64) < 1 << PC_BITS && (detail as u64) < 1 << DETAIL_BITS);
    pc as u64 | (detail as u64) << PC_BITS | (reason as u64) << (PC_BITS + DETAIL_BITS)
}

/// The resume pc, the reason and the detail of a deopt exit's site.
pub fn decode_site(site: u64) -> (usize, DeoptReason, usize) {
    (
        (site & ((1 << PC_BITS) - 1)) as usize,
        DeoptReason::from_number(site >> (PC_BITS + DETAIL_BITS)),
        ((site >> PC_BITS) & ((1 << DETAIL_BITS) - 1)) as usize,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_carries_its_pc_and_reason() {
        for r in DeoptReason::ALL {
            for pc in [0usize, 1, 17, 65_535, (1 << 32) - 1] {
                for detail in [0usize, 1, 300, 65_535] {
                    assert_eq!(decode_site(encode_site(pc, r, detail)), (pc, r, detail));
                }
            }
        }
    }

    #[test]
    fn reasons_are_numbered_in_order_and_named_apart() {
        for (i, r) in DeoptReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(DeoptReason::from_number(i as u64), *r);
        }
        let mut names: Vec<_> = DeoptReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DeoptReason::COUNT);
    }
}
