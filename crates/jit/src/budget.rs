//! The main thread's budget for background tier-up, applied: whether the main thread may
//! spend more on translating and installing (`JitConfig::budget_allowed`), whether a Block due
//! with the budget spent is exempt from it, and when a postponed Block is looked at again.

use crate::config::JitConfig;
use soma_runtime::heap::BlockObj;

/// Whether the main thread, having spent `spent_ns` on background tier-up, may spend more
/// after the JIT ran `elapsed_ns`.
pub fn within(config: &JitConfig, elapsed_ns: u64, spent_ns: u64) -> bool {
    spent_ns < config.budget_allowed(elapsed_ns)
}

/// Whether `b`, due for tier-up with the budget spent, is translated anyway (see
/// [`BUDGET_EXEMPT_EXECUTIONS`](crate::config::BUDGET_EXEMPT_EXECUTIONS)) after the JIT ran
/// `elapsed_ns`.
pub fn exempt(config: &JitConfig, b: &BlockObj, elapsed_ns: u64) -> bool {
    config.budget_exempt_executions > 0
        && b.exec_count.get() >= config.budget_exempt_executions
        && elapsed_ns >= config.budget_exempt_after_ns
}

/// Look at `b` again when its execution count has doubled, and past the count it was due at
/// (the hook fires at the threshold shifted by `tier_up_shift`).
pub fn postpone(b: &BlockObj, threshold: Option<u64>) {
    let threshold = threshold.unwrap_or(0);
    let next = b.exec_count.get().saturating_mul(2).max(b.tier_up_due(threshold).saturating_add(1));
    b.tier_up_shift.set(next.min(i64::MAX as u64) as i64 - threshold.min(i64::MAX as u64) as i64);
}
