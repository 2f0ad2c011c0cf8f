//! What the JIT counts: `JitStats`, the statistics the bridge exposes, and `BlockStat`, the
//! record of one compile.

use crate::deopt::DeoptReason;

/// Per-block compile record.
#[derive(Clone, Debug)]
pub struct BlockStat {
    pub name: String,
    pub module: u32,
    pub code: u32,
    pub instrs: usize,
    /// Translation plus code generation (not the time queued).
    pub compile_us: u64,
    pub code_size: usize,
    /// Whether the code was generated on the compile thread.
    pub background: bool,
    /// 1: the baseline tier; 2: the optimizing tier.
    pub tier: u8,
    /// Speculative code (the optimizing tier's, see docs/jit.md).
    pub speculative: bool,
    /// Time the job waited in the queue (background only).
    pub queue_wait_us: u64,
}

/// JIT statistics the bridge can expose.
#[derive(Clone, Debug, Default)]
pub struct JitStats {
    pub blocks_compiled: u64,
    pub compile_failures: u64,
    pub total_compile_ns: u64,
    pub total_code_bytes: u64,
    /// Wall time in compiled code, counted from the outermost compiled frame (so including
    /// the helpers and interpreted blocks it calls). Measured when `JitConfig::time_native`
    /// was on when the code was compiled; 0 otherwise.
    pub native_ns: u64,
    /// Deoptimisation exits taken, in all and by reason (indexed by `DeoptReason` number).
    pub deopts: u64,
    pub deopt_reasons: [u64; DeoptReason::COUNT],
    /// Exits of speculative code where a poll was near (`DeoptReason::PollNear`): the
    /// executor entered the inlined bodies ahead. Routine, so not among the deopts.
    pub poll_exits: u64,
    /// Polls speculative code took a few entries early instead of leaving where a poll was
    /// near (`jit_poll_ahead`; the rest, where a limit could stop the run, are poll exits).
    pub early_polls: u64,
    /// Blocks recompiled after repeated deopts.
    pub recompiles: u64,
    /// Block executions inlined into compiled code (counted per compile).
    pub inlined: u64,
    /// Calls compiled as direct self-calls (arguments and result in registers, see
    /// docs/jit.md), counted per compile.
    pub direct_call_sites: u64,
    /// `choose`s of truth values that compare the same two Ints (the stdlib's `==`, `not`,
    /// `and`, `or` over `<`) folded into one compare, counted per compile.
    pub folded_compares: u64,
    /// `_.x.name` reads below a Register name compiled as a leaf lookup of the child
    /// (`jit_child_cell`), counted per compile.
    pub child_read_sites: u64,
    /// `!_.n.f` and `_.n.` of Register names kept as the cell compiled code made
    /// (`translate/record.rs`), counted per compile.
    pub record_sites: u64,
    /// Runs of consecutive field writes into a fresh record made by one call
    /// (`translate/record.rs`), counted per compile.
    pub record_batches: u64,
    /// `>isNil` and `>isVoid` sites compiled inline (`translate/ops.rs`), counted per compile.
    pub singleton_tests: u64,
    /// Store cells whose writes speculative code keeps in registers until something else
    /// could look (`translate/speculate.rs`, "Sunk writes"), counted per compile.
    pub sunk_cells: u64,
    /// Speculative loops whose rounds re-enter inside their poll region, with no test of
    /// their own (`translate/speculate.rs`, `emit_reenter_spec`), counted per compile.
    pub region_reentries: u64,
    /// Overflow checks in speculative loops that the loop's own bound made unnecessary
    /// (`induction.rs`), counted per compile.
    pub bounded_checks: u64,
    /// Overflow checks of a product by a small constant and the constant added right after
    /// it made one check of the sum (`3 >* 1 >+`, `translate/speculate.rs`), counted per
    /// compile.
    pub fused_checks: u64,
    /// Installed functions whose chained loop header was put on a line boundary
    /// (`loop_align.rs`), counted per install.
    pub aligned_loops: u64,
    /// Nested `choose`s of known Blocks (bst's three-way walk) executed as branches, counted
    /// per compile.
    pub nested_choices: u64,
    /// `chain` loops inside inlined bodies with virtual frames, which make the frames real
    /// while the loop runs (`gen_chain`), counted per compile.
    pub realized_chains: u64,
    /// `chain`s of a Block known at compile time, which call its compiled code directly
    /// and chained (`gen_chain_known`), counted per compile.
    pub known_chains: u64,
    /// AL entries a direct self-call flushed under its arguments and takes back after it
    /// when the AL still holds them (`retake_flushed`), counted per compile.
    pub retaken_entries: u64,
    /// Compiles whose shadow slots the exits reserve, not the entry (`translate/register.rs`,
    /// "Slots reserved by the exits").
    pub exit_reserved_slots: u64,
    /// Register names that held a `choose`'s select given the arm's Block inside each arm
    /// (`!_.go` of `ifelse`, `!_.f` of `^`), counted per compile.
    pub known_choices: u64,
    /// Translations retried with less ambition (see `translate_with_fallbacks`).
    pub retranslations: u64,
    /// Jobs handed to the compile thread.
    pub background_queued: u64,
    /// Background jobs whose code was installed.
    pub background_installed: u64,
    /// Background jobs dropped at install time because a Store identity they speculated on
    /// had changed, or the Block had code already.
    pub dropped_stale: u64,
    /// Panics caught on the compile thread (the Block stays interpreted).
    pub worker_panics: u64,
    /// Compiles whose machine code came from the process's code cache (generated for an
    /// equal function before, in this VM or another): installed at once, no code generation.
    pub code_cache_hits: u64,
    /// Tier-ups installed from a translation made before in the process (`replay.rs`): no
    /// IR built, machine code from the template.
    pub replayed: u64,
    /// Blocks set to tier up early because an earlier VM of the process compiled their Code
    /// (`Jit::tier_up_known`).
    pub known_hot: u64,
    /// Time jobs waited in the queue, and the compile thread's time generating code.
    pub queue_wait_ns: u64,
    pub background_generate_ns: u64,
    /// Main-thread time translating Blocks whose code was generated in the background.
    pub background_translate_ns: u64,
    /// Main-thread time installing background code.
    pub background_install_ns: u64,
    /// Tier-ups postponed because the main thread's compile budget was spent.
    pub postponed: u64,
    /// Baseline tier-ups postponed because an optimizing compile was in flight.
    pub deferred: u64,
    /// Blocks whose optimized code (tier 2) was installed.
    pub optimized: u64,
    /// Of those, how many speculate (see docs/jit.md, "Speculative code").
    pub speculative: u64,
    /// Recompiles of speculative code that speculate again, with type feedback from its deopts.
    pub respecialized: u64,
    /// Checks after calls of Blocks that may write cells that found the cells written, checked
    /// every assumption again and went on speculating (see docs/jit.md, "Speculative code").
    pub revalidated: u64,
    /// Chained loops that left older code for newer code of their Block at a back edge.
    pub loops_moved: u64,
    /// Compiles whose recursion was unrolled one level (`JitConfig::unroll_after`).
    pub unrolled: u64,
    /// Merges of inlined paths that kept the entries both hold at the top virtual and
    /// flushed only what one path held below them, counted per compile.
    pub partial_flushes: u64,
    /// Direct self-call sites compiled with a leaf copy (docs/jit.md, "Leaf copies"), counted
    /// per compile.
    pub leaf_copies: u64,
    /// Superseded code whose direct self-calls went to the newer code of their Block.
    pub calls_moved: u64,
    pub blocks: Vec<BlockStat>,
}

impl JitStats {
    /// Median compile time per block in µs (0 when nothing was compiled).
    pub fn median_compile_us(&self) -> u64 {
        let mut v: Vec<u64> = self.blocks.iter().map(|b| b.compile_us).collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    }

    /// The deopts taken, by reason, most frequent first (reasons never taken left out).
    pub fn deopts_by_reason(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<(&'static str, u64)> = DeoptReason::ALL
            .iter()
            .map(|&r| (r.name(), self.deopt_reasons[r as usize]))
            .filter(|&(_, n)| n > 0)
            .collect();
        v.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        v
    }
}
