//! The JIT's configuration: `JitConfig` and the settings it is made of (dumps, where tier-up
//! generates code, the tiers' thresholds, the main thread's budget), their defaults and how
//! the environment (`SOMA_JIT_*`) sets them.

/// What `SOMA_JIT_DUMP` asks for (a comma-separated list of `clif`, `asm`, `stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DumpFlags {
    pub clif: bool,
    pub asm: bool,
    pub stats: bool,
}

impl DumpFlags {
    pub fn parse(s: &str) -> DumpFlags {
        let mut d = DumpFlags::default();
        for part in s.split(',').map(str::trim) {
            match part {
                "clif" => d.clif = true,
                "asm" => d.asm = true,
                "stats" => d.stats = true,
                "all" => {
                    d.clif = true;
                    d.asm = true;
                    d.stats = true;
                }
                _ => {}
            }
        }
        d
    }
}

/// JIT configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JitConfig {
    /// Executions a Block runs interpreted before it is compiled (0: before the first run);
    /// `None`: never compile (`SOMA_JIT_THRESHOLD=off`).
    pub threshold: Option<u64>,
    pub dump: DumpFlags,
    /// Append `ADDR SIZE NAME` lines to `/tmp/perf-PID.map` (`SOMA_JIT_PERFMAP=1`).
    pub perf_map: bool,
    /// Run the Cranelift verifier on every function before compiling it.
    pub verify: bool,
    /// Keep dump text for [`take_dumps`](crate::compiler::take_dumps) instead of printing it
    /// to stderr.
    pub capture_dumps: bool,
    /// Account wall time in compiled code (`JitStats::native_ns`): two clock reads per
    /// outermost native call. On with `SOMA_JIT_DUMP=stats` or `SOMA_JIT_TIME=1`.
    pub time_native: bool,
    /// Where tier-up generates machine code (`SOMA_JIT_BACKGROUND`).
    pub background: Background,
    /// Executions after which a compiled Block is compiled again by the optimizing tier
    /// (`SOMA_JIT_OPT_THRESHOLD`; 0: every compile is optimized at once; `None`: never).
    pub opt_threshold: Option<u64>,
    /// The main thread's budget for background tier-up (see [`MAIN_THREAD_BUDGET_PERCENT`]):
    /// a share of the time since the JIT was created, in percent, plus an allowance. Applies
    /// to [`Background::On`] only (lockstep stays deterministic).
    pub budget_percent: u64,
    pub budget_allowance_ns: u64,
    /// The larger share (percent) of the time past [`JitConfig::budget_late_after_ns`] (see
    /// [`MAIN_THREAD_BUDGET_LATE_PERCENT`]).
    pub budget_late_percent: u64,
    pub budget_late_after_ns: u64,
    /// Executions from which a Block due for tier-up is translated even with the budget
    /// spent, once the JIT has run `budget_exempt_after_ns` (see [`BUDGET_EXEMPT_EXECUTIONS`];
    /// `SOMA_JIT_BUDGET_EXEMPT=N[,MS]`, 0: never).
    pub budget_exempt_executions: u64,
    pub budget_exempt_after_ns: u64,
    /// Use the process's code cache (`code_cache.rs`): a function equal to one generated
    /// before, by any VM of the process, gets that machine code at once (`SOMA_JIT_CODE_CACHE=0`
    /// turns it off, to debug code generation).
    pub code_cache: bool,
    /// With the code cache: a Block whose Code an earlier VM of the process compiled by the
    /// optimizing tier tiers up early (`Jit::tier_up_known`). Off in the Rust test runners
    /// whose assertions name tiers and counts (another test of the process could otherwise
    /// change them).
    pub early_tier_up: bool,
    /// With the code cache: a tier-up that a VM of the process translated before, against a
    /// Store that answers the same, is installed from that translation without building IR
    /// (`replay.rs`). `SOMA_JIT_REPLAY=0` turns it off (`SOMA_JIT_CODE_CACHE=0` too).
    pub replay: bool,
    /// Follow every replay with the translation it stands for and abort the process when the
    /// two differ (`replay.rs`, "Checked"): for tests. On in debug builds and with
    /// `SOMA_JIT_CHECK_REPLAY=1`.
    pub check_replay: bool,
    /// Routine exits (polls) of speculative code that calls itself directly after which it
    /// is compiled again with its recursion unrolled one level (`CodeEnv::unroll`):
    /// `SOMA_JIT_UNROLL=N`, `off` for never, `0` for unrolled from its first optimizing
    /// compile, as with `opt_threshold` 0 (everything optimized at once).
    pub unroll_after: Option<u32>,
    /// Inline the leaves of direct recursion at the optimizing tier's first compile
    /// (`CodeEnv::leaf_inline`): `SOMA_JIT_LEAF=0` turns it off.
    pub leaf_inline: bool,
    /// For tests of the failure path: every job panics on the compile thread.
    #[doc(hidden)]
    pub inject_worker_panic: bool,
    /// For tests of sunk Store writes (`CodeEnv::sink_always`): sink them wherever they can be.
    #[doc(hidden)]
    pub sink_always: bool,
    /// For tests of what happens while compiles are in flight: finished background code is
    /// installed only by [`wait_for_background`](crate::compiler::wait_for_background), not at
    /// safepoints.
    #[doc(hidden)]
    pub hold_installs: bool,
}

/// Where tier-up runs Cranelift's code generation. Translation (reading the VM) is always on
/// the main thread; explicit compiles ([`compile_block`](crate::compiler::compile_block),
/// threshold 0, `run_module`) are always synchronous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Background {
    /// On the compile thread; the Block keeps running interpreted until its code is installed
    /// at a later safepoint (`SOMA_JIT_BACKGROUND=1`, the default).
    On,
    /// On the main thread, before the Block runs (`SOMA_JIT_BACKGROUND=0`: for debugging).
    Off,
    /// On the compile thread, but the next safepoint waits for it: the background path with a
    /// deterministic install point, for tests (`SOMA_JIT_BACKGROUND=lockstep`).
    Lockstep,
}

impl Background {
    /// `1`/`on`, `0`/`off`, `lockstep`; anything else: `None` (ignored).
    pub fn parse(s: &str) -> Option<Background> {
        match s.trim().to_ascii_lowercase().as_str() {
            "1" | "on" => Some(Background::On),
            "0" | "off" => Some(Background::Off),
            "lockstep" => Some(Background::Lockstep),
            _ => None,
        }
    }
}

/// Default tier-up threshold when `SOMA_JIT_THRESHOLD` is unset. Chosen by measurement
/// (docs/jit.md, "Choosing the default threshold"): long-running programs take the same time
/// anywhere from 0 to 1,000, while short programs pay for compiling blocks that run only a
/// few times; from about 50 up that cost is gone. 100 interpreted runs of a block cost about
/// what compiling it does (~200 µs).
pub const DEFAULT_THRESHOLD: u64 = 100;

/// Default executions (block entries, chained rounds) after which compiled code is compiled
/// again by the optimizing tier. The optimized compile costs about 2.5 times the baseline's
/// and runs on the compile thread; at 10,000 executions a Block has run long enough for the
/// main thread's share (translating again, ~0.1 ms) to be under 1% of its time.
pub const DEFAULT_OPT_THRESHOLD: u64 = 10_000;

impl Default for JitConfig {
    fn default() -> JitConfig {
        JitConfig {
            threshold: Some(DEFAULT_THRESHOLD),
            dump: DumpFlags::default(),
            perf_map: false,
            verify: cfg!(debug_assertions),
            capture_dumps: false,
            time_native: false,
            background: Background::On,
            opt_threshold: Some(DEFAULT_OPT_THRESHOLD),
            budget_percent: MAIN_THREAD_BUDGET_PERCENT,
            budget_allowance_ns: MAIN_THREAD_BUDGET_ALLOWANCE_NS,
            budget_late_percent: MAIN_THREAD_BUDGET_LATE_PERCENT,
            budget_late_after_ns: MAIN_THREAD_BUDGET_LATE_AFTER_NS,
            budget_exempt_executions: BUDGET_EXEMPT_EXECUTIONS,
            budget_exempt_after_ns: BUDGET_EXEMPT_AFTER_NS,
            code_cache: true,
            early_tier_up: true,
            replay: true,
            check_replay: cfg!(debug_assertions),
            unroll_after: Some(DEFAULT_UNROLL_AFTER),
            leaf_inline: true,
            inject_worker_panic: false,
            sink_always: false,
            hold_installs: false,
        }
    }
}

impl JitConfig {
    /// `SOMA_JIT_THRESHOLD` (N or `off`), `SOMA_JIT_DUMP`, `SOMA_JIT_PERFMAP=1`.
    pub fn from_env() -> JitConfig {
        let mut c = JitConfig::default();
        if let Ok(t) = std::env::var("SOMA_JIT_THRESHOLD") {
            c.threshold = parse_threshold(&t).unwrap_or(c.threshold);
        }
        if let Ok(d) = std::env::var("SOMA_JIT_DUMP") {
            c.dump = DumpFlags::parse(&d);
        }
        c.perf_map = std::env::var("SOMA_JIT_PERFMAP").is_ok_and(|v| v == "1");
        c.time_native = c.dump.stats || std::env::var("SOMA_JIT_TIME").is_ok_and(|v| v == "1");
        if let Some(b) = std::env::var("SOMA_JIT_BACKGROUND").ok().and_then(|v| Background::parse(&v)) {
            c.background = b;
        }
        // `SOMA_JIT_BUDGET=PERCENT,ALLOWANCE_US[,LATE_PERCENT,LATE_AFTER_MS]` overrides the
        // main-thread budget (experiments).
        if let Some(b) = std::env::var("SOMA_JIT_BUDGET").ok().and_then(|v| parse_budget(&v)) {
            (c.budget_percent, c.budget_allowance_ns) = (b[0], b[1].saturating_mul(1000));
            if b.len() == 4 {
                (c.budget_late_percent, c.budget_late_after_ns) = (b[2], b[3].saturating_mul(1_000_000));
            } else {
                (c.budget_late_percent, c.budget_late_after_ns) = (b[0], 0);
            }
        }
        if let Some(b) = std::env::var("SOMA_JIT_BUDGET_EXEMPT").ok().and_then(|v| parse_numbers(&v)) {
            c.budget_exempt_executions = b[0];
            if let Some(&ms) = b.get(1) {
                c.budget_exempt_after_ns = ms.saturating_mul(1_000_000);
            }
        }
        if let Ok(t) = std::env::var("SOMA_JIT_OPT_THRESHOLD") {
            c.opt_threshold = parse_threshold(&t).unwrap_or(c.opt_threshold);
        }
        if let Ok(v) = std::env::var("SOMA_JIT_UNROLL") {
            c.unroll_after = parse_unroll(&v).unwrap_or(c.unroll_after);
        }
        if let Ok(v) = std::env::var("SOMA_JIT_LEAF") {
            c.leaf_inline = !matches!(v.trim(), "0" | "off");
        }
        if let Ok(v) = std::env::var("SOMA_JIT_CODE_CACHE") {
            c.code_cache = !matches!(v.trim(), "0" | "off");
            c.early_tier_up = c.code_cache;
        }
        if let Ok(v) = std::env::var("SOMA_JIT_REPLAY") {
            c.replay = !matches!(v.trim(), "0" | "off");
        }
        if std::env::var("SOMA_JIT_CHECK_REPLAY").is_ok_and(|v| v == "1") {
            c.check_replay = true;
        }
        c
    }
}

/// `"off"` → `Some(None)`, `"N"` → `Some(Some(N))`, anything else → `None` (ignored).
pub fn parse_threshold(s: &str) -> Option<Option<u64>> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") {
        Some(None)
    } else {
        s.parse().ok().map(Some)
    }
}

/// A [`JitConfig::unroll_after`] setting: as [`parse_threshold`], the count capped to a `u32`.
pub fn parse_unroll(s: &str) -> Option<Option<u32>> {
    parse_threshold(s).map(|n| n.map(|n| n.min(u64::from(u32::MAX)) as u32))
}

/// Default poll exits (one per [`soma_runtime::limits::POLL_INTERVAL`] block entries) of
/// speculative code calling itself directly before its recursion is unrolled. The unrolled
/// compile translates about twice the IR on the main thread (0.4 ms for fib) and generates
/// for about twice as long in the background (4.6 ms). 256 polls is about a million block
/// entries, 4-5 ms of compiled recursion, so the translation is under a tenth of the time
/// the recursion has already run. Measured: at 32 polls fib at its benchmark size (109
/// polls, 1.7 ms) unrolled near its end and took 2.0 ms; fib(30) gains the same either way
/// (the main thread's budget still decides when, `Jit::consider_unrolling`).
pub const DEFAULT_UNROLL_AFTER: u32 = 256;

/// The main thread's default budget for background tier-up (translating and installing):
/// this share of the time since the JIT was created, in percent, plus a fixed allowance. A
/// Block that reaches its threshold with the budget spent is looked at again when its
/// execution count has doubled: a short program cannot lose more than this to tier-up, and in
/// a long one the hottest Blocks come back first.
pub const MAIN_THREAD_BUDGET_PERCENT: u64 = 5;
pub const MAIN_THREAD_BUDGET_ALLOWANCE_NS: u64 = 250_000;

/// Past this much time the budget grows by this larger share of the time beyond it. A
/// program that has run this long will likely run as long again (tier-up's own bet), so its
/// compiles have time to pay back; short runs (a test's VM, a few milliseconds) keep the
/// small share. Measured (one process per run, median of 5, first VM): dict_workload
/// 156 -> 116 ms and list_map_fold 53 -> 49 ms with 20% instead of 5% throughout.
pub const MAIN_THREAD_BUDGET_LATE_PERCENT: u64 = 20;
pub const MAIN_THREAD_BUDGET_LATE_AFTER_NS: u64 = 20_000_000;

/// A Block due for tier-up that has run this many times is translated even when the budget is
/// spent (and the translation is charged to it, so lukewarm Blocks wait longer). The budget
/// bets on the program ending soon; a Block this hot has already lost that bet for itself:
/// interpreted, each of its executions costs about a microsecond more than compiled, and by
/// tier-up's own bet it runs about as many times again, several times what translating it
/// costs the main thread (about 0.1 ms). With the threshold at 100 a postponed Block comes
/// due at 200, 400 and 800 executions: the third time it is translated. Measured
/// (2026-12-06, best of 5 VMs in one process): dict_workload 72 -> 55 ms, bst 43 -> 38 ms;
/// `benches/tierup.py` 10 rows past the bar against 11 before, within its noise, the
/// `soma test` files of dicts 1.11-1.16x of native either way.
pub const BUDGET_EXEMPT_EXECUTIONS: u64 = 800;
/// The exemption applies once the JIT has run this long: a `soma test` file makes a VM per
/// test, each a few milliseconds long, whose Blocks can pass 800 executions just before
/// the VM ends.
pub const BUDGET_EXEMPT_AFTER_NS: u64 = 5_000_000;

impl JitConfig {
    /// The main thread's background tier-up budget (ns) after `elapsed` ns: the allowance,
    /// the small share of the time up to `budget_late_after_ns`, the late share of the rest.
    pub fn budget_allowed(&self, elapsed: u64) -> u64 {
        let early = elapsed.min(self.budget_late_after_ns);
        let late = elapsed - early;
        (early / 100)
            .saturating_mul(self.budget_percent)
            .saturating_add((late / 100).saturating_mul(self.budget_late_percent))
            .saturating_add(self.budget_allowance_ns)
    }
}

/// Comma-separated numbers (`SOMA_JIT_BUDGET`, `SOMA_JIT_BUDGET_EXEMPT`): at least one, and
/// `None` when any part is not a number (an empty text is one empty part).
fn parse_numbers(v: &str) -> Option<Vec<u64>> {
    v.split(',').map(|p| p.trim().parse().ok()).collect()
}

/// `SOMA_JIT_BUDGET`: `PERCENT,ALLOWANCE_US` or `PERCENT,ALLOWANCE_US,LATE_PERCENT,LATE_AFTER_MS`.
fn parse_budget(v: &str) -> Option<Vec<u64>> {
    parse_numbers(v).filter(|p| p.len() == 2 || p.len() == 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_grows_by_the_late_share_only_past_its_start() {
        let c = JitConfig::default();
        let ms = 1_000_000u64;
        // 5% of 10 ms plus the 0.25 ms allowance.
        assert_eq!(c.budget_allowed(10 * ms), ms / 2 + 250_000);
        // 5% of the first 20 ms, 20% of the 30 ms after them.
        assert_eq!(c.budget_allowed(50 * ms), ms + 6 * ms + 250_000);
        let flat = JitConfig { budget_late_percent: 5, ..JitConfig::default() };
        assert_eq!(flat.budget_allowed(50 * ms), 5 * ms / 2 + 250_000);
    }

    #[test]
    fn the_budget_switch_takes_two_or_four_numbers() {
        assert_eq!(parse_budget("5,250"), Some(vec![5, 250]));
        assert_eq!(parse_budget(" 5, 250 ,20, 10"), Some(vec![5, 250, 20, 10]));
        assert_eq!(parse_budget("5"), None);
        assert_eq!(parse_budget("5,250,20"), None);
        assert_eq!(parse_budget("5,x"), None);
    }
}
