//! Resource limits of a run: the step budget, the time limit, the interrupt flag, and the
//! machine-derived default of the memory limit (docs/semantics.md, "Limits").
//!
//! # Steps
//! A *step* is one block execution: every `>` of a Block and every round of `chain`, whoever
//! runs it (the executor, a helper, compiled code, or the body of a Block compiled code
//! inlined into its caller). Top-level programs and builtins are not steps. Every tier counts
//! exactly these, so a step budget stops a program at the same statement on every tier.
//!
//! All step counting rides on the VM's poll countdown (`Vm::poll_countdown`), which block
//! entries already decrement (compiled code inline): the countdown is armed with at most
//! [`POLL_INTERVAL`] entries and never more than the steps left plus one, so the
//! poll that runs when it reaches zero is exactly the entry that exceeds the budget. That poll
//! also reads the clock (time limit), the interrupt flag and the AL's size (memory limit). No
//! check costs anything on the paths between two polls.
//!
//! # Interrupt
//! [`Budget::interrupt_handle`] is an `Arc<AtomicBool>` another thread may set at any time
//! (the only state of a VM that crosses threads: a flag, read with `swap` at poll points, so
//! a set is seen by the next poll and consumed by the run it stops).

use crate::error::msg;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Block entries between two polls (the host poll hook, the step and time checks).
pub const POLL_INTERVAL: u32 = 1 << 12;

/// The largest default memory limit, whatever the machine (bytes).
pub const DEFAULT_MEMORY_CAP: usize = 512 << 20;

/// The default memory limit: a quarter of physical memory, at most [`DEFAULT_MEMORY_CAP`]
/// (and that cap when the machine's size is unknown), so that by default a program cannot
/// take its host's memory, and the largest allocations it may make are still quick to fail.
pub fn default_max_memory() -> usize {
    physical_memory().map_or(DEFAULT_MEMORY_CAP, |m| (m / 4).min(DEFAULT_MEMORY_CAP))
}

/// Return the allocator's free memory to the operating system (glibc keeps freed blocks of a
/// few MiB in its heap): after a memory limit error, so that the host's resident memory
/// comes back, not only the heap's accounting. A no-op where the allocator has no such call.
pub fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(unix)]
fn physical_memory() -> Option<usize> {
    // SAFETY: sysconf only reads system configuration.
    let (pages, size) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    if pages <= 0 || size <= 0 {
        return None;
    }
    (pages as usize).checked_mul(size as usize)
}

#[cfg(not(unix))]
fn physical_memory() -> Option<usize> {
    None
}

/// The step budget, time limit and interrupt flag of the run in progress.
#[derive(Debug)]
pub struct Budget {
    /// Block executions allowed per run (`u64::MAX`: no limit).
    max_steps: u64,
    /// Steps counted by earlier armings of the countdown in this run.
    counted: u64,
    /// What the countdown was last armed with.
    armed: u32,
    /// When the run must stop, if it has a time limit.
    deadline: Option<Instant>,
    interrupt: Arc<AtomicBool>,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            max_steps: u64::MAX,
            counted: 0,
            armed: POLL_INTERVAL,
            deadline: None,
            interrupt: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Budget {
    /// Start a run with these limits (`None`: unlimited). Returns the countdown to arm.
    pub fn begin(&mut self, max_steps: Option<u64>, time_limit: Option<Duration>) -> u32 {
        self.max_steps = max_steps.unwrap_or(u64::MAX);
        self.counted = 0;
        self.deadline = time_limit.map(|t| Instant::now().checked_add(t).unwrap_or_else(far_future));
        self.arm(POLL_INTERVAL)
    }

    /// The step limit of the current run, if any.
    pub fn max_steps(&self) -> Option<u64> {
        (self.max_steps != u64::MAX).then_some(self.max_steps)
    }

    /// Steps taken in this run, given the countdown's current value.
    pub fn steps_taken(&self, countdown: u32) -> u64 {
        self.counted + u64::from(self.armed.saturating_sub(countdown))
    }

    /// The flag [`Budget::poll`] reads; set it (from any thread) to stop the run.
    pub fn interrupt_handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.interrupt)
    }

    /// The countdown reached zero: count the steps it measured, check every limit, and
    /// return the countdown to arm next (at most `interval`), or the limit's error (the
    /// countdown to arm then is `1`: the run is over, and its next entry stops again).
    pub fn poll(&mut self, interval: u32) -> Result<u32, (crate::SomaError, u32)> {
        self.counted = self.counted.saturating_add(u64::from(self.armed));
        if self.counted > self.max_steps {
            let limit = self.max_steps;
            return Err((msg::step_limit(limit), self.arm(1)));
        }
        if self.interrupt.load(Ordering::Relaxed) && self.interrupt.swap(false, Ordering::Relaxed) {
            return Err((msg::interrupted(), self.arm(1)));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err((msg::time_limit(), self.arm(1)));
        }
        Ok(self.arm(interval))
    }

    /// Take the poll that is due `countdown` entries from now, now (compiled code about to run
    /// that many entries and more without looking at the countdown, see `Vm::poll_ahead`).
    /// Only when it could stop nothing: the interrupt flag clear, the deadline not passed, and
    /// the step budget good for the whole next interval after it. Then the steps taken so far
    /// are counted and the countdown is re-armed with `countdown + interval`, so the poll after
    /// lands on the entry it would have (the step limit stays exact, and a later poll's checks
    /// happen where they would have). `None`: nothing changed, the poll stays due.
    pub fn poll_early(&mut self, countdown: u32, interval: u32) -> Option<u32> {
        let taken = self.counted.saturating_add(u64::from(self.armed.saturating_sub(countdown)));
        let rearm = countdown.checked_add(interval)?;
        if taken.saturating_add(u64::from(rearm)) > self.max_steps {
            return None;
        }
        if self.interrupt.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        self.counted = taken;
        self.armed = rearm;
        Some(rearm)
    }

    /// Arm the countdown with `interval` entries, or fewer when the step budget ends sooner
    /// (the entry that exceeds it must find the countdown at zero).
    fn arm(&mut self, interval: u32) -> u32 {
        let left = self.max_steps.saturating_sub(self.counted).saturating_add(1);
        let n = left.min(u64::from(interval.max(1))) as u32;
        self.armed = n;
        n
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drive the countdown as block entries do; returns the entry number that failed.
    fn run_entries(b: &mut Budget, mut countdown: u32, entries: u64) -> Option<u64> {
        for i in 1..=entries {
            countdown -= 1;
            if countdown == 0 {
                match b.poll(POLL_INTERVAL) {
                    Ok(n) => countdown = n,
                    Err((_, n)) => {
                        assert_eq!(n, 1);
                        return Some(i);
                    }
                }
            }
            assert_eq!(b.steps_taken(countdown), i);
        }
        None
    }

    #[test]
    fn the_entry_after_the_budget_fails_exactly() {
        for max in [0u64, 1, 2, 4095, 4096, 4097, 10_000] {
            let mut b = Budget::default();
            let c = b.begin(Some(max), None);
            assert_eq!(run_entries(&mut b, c, max + 10), Some(max + 1), "max_steps {max}");
        }
        let mut b = Budget::default();
        let c = b.begin(None, None);
        assert_eq!(run_entries(&mut b, c, 20_000), None);
    }

    /// Run `entries` block entries, taking each poll `early` entries before it is due when
    /// `poll_early` lets it (as compiled code does), and return the entries where polls came
    /// due (an early one at the entry it replaced), the last one the failing poll if any.
    fn polls_of(max: Option<u64>, early: Option<u32>, entries: u64) -> (Vec<u64>, usize) {
        let mut b = Budget::default();
        let mut countdown = b.begin(max, None);
        let (mut polls, mut taken_early) = (Vec::new(), 0);
        for i in 1..=entries {
            if Some(countdown) == early {
                if let Some(n) = b.poll_early(countdown, POLL_INTERVAL) {
                    polls.push(i + u64::from(countdown) - 1);
                    taken_early += 1;
                    countdown = n;
                }
            }
            countdown -= 1;
            if countdown == 0 {
                polls.push(i);
                match b.poll(POLL_INTERVAL) {
                    Ok(n) => countdown = n,
                    Err(_) => break,
                }
            }
            assert_eq!(b.steps_taken(countdown), i, "max {max:?}, early {early:?}");
        }
        (polls, taken_early)
    }

    #[test]
    fn an_early_poll_keeps_the_step_count_and_the_later_polls_where_they_were() {
        for (max, early) in [(None, 3u32), (Some(10_000u64), 3), (Some(8_193), 7), (Some(4_100), 1), (Some(20), 5)] {
            let (plain, _) = polls_of(max, None, 20_000);
            let (with_early, taken_early) = polls_of(max, Some(early), 20_000);
            assert_eq!(with_early, plain, "max {max:?}, early {early}");
            if max.is_none_or(|m| m > 3 * u64::from(POLL_INTERVAL)) {
                assert!(taken_early > 0, "max {max:?}: some poll was taken early");
            }
        }
    }

    #[test]
    fn an_early_poll_leaves_a_set_interrupt_and_a_passed_deadline_to_the_due_poll() {
        let mut b = Budget::default();
        b.begin(None, None);
        b.interrupt_handle().store(true, Ordering::SeqCst);
        assert_eq!(b.poll_early(5, 8), None);
        assert!(b.poll(8).is_err(), "the due poll still stops");
        let mut b = Budget::default();
        b.begin(None, Some(Duration::ZERO));
        assert_eq!(b.poll_early(5, 8), None);
    }

    #[test]
    fn interrupt_is_consumed_by_the_poll_it_stops() {
        let mut b = Budget::default();
        b.begin(None, None);
        b.interrupt_handle().store(true, Ordering::SeqCst);
        let (e, _) = b.poll(8).unwrap_err();
        assert_eq!(e.message, "Interrupted");
        assert!(b.poll(8).is_ok());
    }

    #[test]
    fn a_passed_deadline_stops_the_next_poll() {
        let mut b = Budget::default();
        b.begin(None, Some(Duration::ZERO));
        let (e, _) = b.poll(8).unwrap_err();
        assert_eq!(e.message, "Time limit exceeded");
        assert_eq!(e.class, crate::ErrorClass::Limit);
    }

    #[test]
    fn default_memory_limit_is_bounded() {
        let m = default_max_memory();
        assert!(m > 0 && m <= DEFAULT_MEMORY_CAP);
    }
}
