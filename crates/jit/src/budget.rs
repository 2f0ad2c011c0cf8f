//! The main thread's budget for background tier-up.
//!
//! Background tier-up still costs the main thread the translation and the install. That
//! spending is held to a [`Rate`]: a share of the time since an account was opened, plus a
//! fixed allowance (so that a program's first hot Blocks compile before the share has grown).
//! Two accounts must both have room:
//!
//! * the VM's own, opened with its JIT: a short program cannot lose more than the share of
//!   its run plus the allowance;
//! * the process's, opened with the first JIT of that rate and charged by every JIT of it: a
//!   process that makes many VMs one after another (`soma test` makes one per test) gets the
//!   allowance once, not once per VM. Measured before this account existed: the 36 VMs of
//!   tests/soma/05_dict_random.soma each spent their allowance and their share (0.25 ms +
//!   5%), 18 ms of main-thread time in a 182 ms run, for code that landed too late in each
//!   short VM to win it back: the file ran 10% slower with the JIT on.
//!
//! For a process with one VM the two accounts agree. A long-lived process that makes a VM now
//! and then has a large process account; the VM's own account still bounds each VM.
//!
//! Accounts are per rate, so that JITs configured with another budget (tests that want every
//! tier-up postponed, or none) neither draw on nor fill the default's account.
//!
//! The process's accounts sit behind a `Mutex` (VMs may live on several threads); it is taken
//! only when a Block reaches its tier-up threshold and when code is translated or installed,
//! never on a path compiled code runs.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

/// How much main-thread time an account allows: `percent` of the time since it was opened,
/// plus `allowance_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    pub percent: u64,
    pub allowance_ns: u64,
}

impl Rate {
    /// Nanoseconds allowed to an account opened at `opened`, now.
    fn allowed(self, opened: Instant) -> u64 {
        let elapsed = opened.elapsed().as_nanos() as u64;
        (elapsed / 100).saturating_mul(self.percent).saturating_add(self.allowance_ns)
    }
}

struct Account {
    opened: Instant,
    spent_ns: u64,
}

impl Account {
    fn new() -> Account {
        Account { opened: Instant::now(), spent_ns: 0 }
    }

    fn has_room(&self, rate: Rate) -> bool {
        self.spent_ns < rate.allowed(self.opened)
    }
}

fn process_accounts() -> MutexGuard<'static, HashMap<Rate, Account>> {
    static ACCOUNTS: OnceLock<Mutex<HashMap<Rate, Account>>> = OnceLock::new();
    // A poisoned lock means a panic while it was held; the map holds plain numbers that every
    // step leaves consistent.
    ACCOUNTS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner())
}

/// One JIT's budget: its own account, and its share in the process's account of its rate.
pub struct Budget {
    rate: Rate,
    own: Account,
}

impl Budget {
    /// Open the JIT's account (and the process's for `rate`, if this is its first JIT).
    pub fn open(rate: Rate) -> Budget {
        process_accounts().entry(rate).or_insert_with(Account::new);
        Budget { rate, own: Account::new() }
    }

    /// Whether both accounts have room for more tier-up work.
    pub fn has_room(&self) -> bool {
        self.own.has_room(self.rate)
            && process_accounts().get(&self.rate).is_none_or(|a| a.has_room(self.rate))
    }

    /// Charge `ns` of main-thread time to both accounts.
    pub fn charge(&mut self, ns: u64) {
        self.own.spent_ns = self.own.spent_ns.saturating_add(ns);
        let mut accounts = process_accounts();
        let a = accounts.entry(self.rate).or_insert_with(Account::new);
        a.spent_ns = a.spent_ns.saturating_add(ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each test uses a rate of its own: the process's accounts are shared by every test.

    #[test]
    fn a_later_jit_of_the_same_rate_finds_the_allowance_spent_by_an_earlier_one() {
        let rate = Rate { percent: 0, allowance_ns: 1_000 };
        let mut first = Budget::open(rate);
        assert!(first.has_room());
        first.charge(1_000);
        assert!(!first.has_room(), "its own account is spent");
        drop(first);
        let second = Budget::open(rate);
        assert!(!second.has_room(), "the process's account of the rate is spent too");
    }

    #[test]
    fn jits_of_other_rates_keep_apart() {
        let spent = Rate { percent: 0, allowance_ns: 2_000 };
        let mut a = Budget::open(spent);
        a.charge(5_000);
        let other = Budget::open(Rate { percent: 0, allowance_ns: 2_001 });
        assert!(other.has_room());
        assert!(!a.has_room());
    }

    #[test]
    fn the_share_grows_with_time() {
        let rate = Rate { percent: 100, allowance_ns: 0 };
        let mut b = Budget::open(rate);
        b.charge(1);
        // Spending is allowed again once as much time has passed as was spent (100%).
        let t = Instant::now();
        while t.elapsed().as_nanos() < 10_000 {
            std::hint::spin_loop();
        }
        assert!(b.has_room());
    }
}
