//! Type feedback learnt from deoptimisation, per instruction site and per Store path.
//!
//! Speculative code assumes small Ints at every arithmetic and `<` site and in every Store
//! path that held one at compile time. When such an assumption fails, the deopt exit knows
//! where (the innermost level's Block and instruction) and why (`DeoptReason`); that is the
//! feedback, as HotSpot keeps a trap history per bytecode:
//!
//! * an arithmetic or `<` site whose operand was not a small Int, whose result overflowed or
//!   whose divisor was zero becomes a *wide site*: speculative code lowers it as a call of
//!   the builtin (any kinds, no exit), and speculates everywhere else as before;
//! * a Code whose speculative code assumed that only a `chain` loop enters it, and that an
//!   ordinary call entered, gets a wide site at [`ENTRY_SITE`]: its speculative code asks
//!   every round whether it runs chained;
//! * a Code whose loop was entered with a value outside the range its bound keeps later
//!   rounds in (`induction.rs`) gets a wide site at [`RANGE_SITE`]: its speculative code keeps
//!   every overflow check;
//! * a Code in which a direct self-call's callee consumed the entries under its arguments
//!   (`translate/direct.rs`) gets a wide site at [`RETAKE_SITE`]: its speculative code
//!   leaves what it flushes for such a call on the AL;
//! * a Code in which a direct self-call's result was not a small Int gets a wide site at
//!   [`INT_RESULT_SITE`]: its direct calls take results as they come;
//! * a Store path that was written something other than a small Int where speculative code
//!   assumed one, or that held something else when the code was entered, becomes a *wide
//!   path*: it is no longer assumed to hold a small Int.
//!
//! A Block whose deopts taught something new is recompiled speculative, with the feedback;
//! one whose deopts taught nothing (an entry check, a call that changed the Store) is
//! recompiled without speculation, as before. Feedback only ever widens, so a Block is
//! recompiled with feedback at most once per site and path it has, and `MAX_RECOMPILES`
//! bounds it anyway. It lives with the JIT (one per VM) and is read on the main thread only,
//! by translations.

use crate::deopt::DeoptReason;
use soma_runtime::opcodes::Opcode;
use soma_runtime::{Value, Vm};
use std::collections::HashSet;

/// The pseudo-instruction that stands for a Code's entry among the wide sites: no Code is
/// that long.
pub const ENTRY_SITE: usize = usize::MAX;

/// The pseudo-instruction that stands for a Code's loop entry guard (`induction.rs`) among
/// the wide sites.
pub const RANGE_SITE: usize = usize::MAX - 1;

/// The pseudo-instruction that stands for a Code's direct self-calls taking back the entries
/// they flushed (`translate/direct.rs`) among the wide sites.
pub const RETAKE_SITE: usize = usize::MAX - 2;

/// The pseudo-instruction that stands for a Code's direct self-calls taking their results as
/// small Ints (`translate/direct.rs`) among the wide sites.
pub const INT_RESULT_SITE: usize = usize::MAX - 3;

#[derive(Debug, Default)]
pub struct TypeFeedback {
    /// `(module, code, pc)` of builtin sites lowered generically in speculative code.
    wide_sites: HashSet<(u32, u32, usize)>,
    /// Store paths (components) not assumed to hold small Ints.
    wide_paths: HashSet<Vec<String>>,
}

impl TypeFeedback {
    /// Whether instruction `pc` of code `code` of module `module` is a wide site.
    pub fn site_is_wide(&self, module: u32, code: u32, pc: usize) -> bool {
        !self.wide_sites.is_empty() && self.wide_sites.contains(&(module, code, pc))
    }

    /// Whether speculative code must not assume the Store path `comps` holds a small Int.
    pub fn path_is_wide(&self, comps: &[String]) -> bool {
        !self.wide_paths.is_empty() && self.wide_paths.contains(comps)
    }

    /// Learn from a deopt of speculative code at instruction `pc` of `block` (the innermost
    /// level) for `reason`. True when it taught something new.
    pub fn learn(&mut self, vm: &Vm, block: Value, pc: usize, reason: DeoptReason) -> bool {
        let Some(b) = vm.block_obj(block) else { return false };
        let Some(code) = vm.module(b.module).and_then(|m| m.module.codes.get(b.code as usize)) else {
            return false;
        };
        match reason {
            DeoptReason::NotChained => return self.wide_sites.insert((b.module, b.code, ENTRY_SITE)),
            DeoptReason::InductionRange => return self.wide_sites.insert((b.module, b.code, RANGE_SITE)),
            DeoptReason::AlChangedByCall => return self.wide_sites.insert((b.module, b.code, RETAKE_SITE)),
            DeoptReason::CallResultNotSmallInt => return self.wide_sites.insert((b.module, b.code, INT_RESULT_SITE)),
            _ => {}
        }
        let Some(ins) = code.instrs.get(pc) else { return false };
        match (reason, ins.op) {
            (DeoptReason::NotSmallInt | DeoptReason::IntOverflow | DeoptReason::ZeroDivisor, Opcode::ExecStore) => {
                self.wide_sites.insert((b.module, b.code, pc))
            }
            (DeoptReason::NotSmallInt | DeoptReason::RefCellWrite, Opcode::SetStore) => {
                let Some(path) = code.paths.get(ins.operand as usize) else { return false };
                self.widen_path(path.components.iter().map(|c| c.to_string()).collect())
            }
            _ => false,
        }
    }

    /// Stop assuming the Store path `comps` holds a small Int or a CellRef (a write of another
    /// kind, or an entry that found one). True when it was assumed until now.
    pub fn widen_path(&mut self, comps: Vec<String>) -> bool {
        self.wide_paths.insert(comps)
    }
}
