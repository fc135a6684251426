//! Per-function fuel quotas over fixed time windows.
//!
//! A quota of `fuel` per `window` counts the fuel of every invocation that
//! ends within a window. Windows are aligned to multiples of their length
//! since the Unix epoch (an hourly quota rolls over on the hour). Usage is
//! kept in memory: a restart starts a fresh window count.
//!
//! Admission reserves the invocation's whole fuel budget (the most it can
//! use), so concurrent invocations cannot together pass the quota: a request
//! is admitted only while the window's fuel used, plus the budgets of the
//! invocations in flight, plus its own budget fit in the quota. When the
//! invocation ends its reservation is replaced by the fuel it actually used,
//! charged to the window it ends in; reservations of invocations still in
//! flight when a window rolls count against the new window. A budget larger
//! than the whole quota could never fit: such an invocation is admitted
//! alone (nothing else in flight) while the window is not used up, so a
//! window's usage passes its quota by at most that one invocation's budget,
//! and never when budgets are at most the quota. Refused requests get `429`
//! with `Retry-After`: the seconds left in the window, or (when only
//! invocations in flight stand in the way) at most the hint the caller
//! passes, e.g. the function's timeout.
//!
//! A new version of an app continues its functions' quotas: when it
//! replaces the old one (same function id, same quota), the old quota hands
//! its window over ([`Quota::hand_over`]) and from then on both count into
//! the new one, invocations still in flight on the old version included.
//! Redeploying does not reset a quota.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::manifest::QuotaDecl;

/// The live quota of one function.
#[derive(Debug)]
pub struct Quota {
    limit: u64,
    window: Duration,
    state: Mutex<Window>,
    /// The quota of the version that replaced this one: set once, under
    /// `state`'s lock, and then the one that counts.
    successor: std::sync::OnceLock<Arc<Quota>>,
}

#[derive(Debug, Default)]
struct Window {
    index: u64,
    /// Fuel of the invocations that ended in this window.
    used: u64,
    /// Budgets of the invocations in flight, whichever window they were
    /// admitted in.
    reserved: u64,
}

/// The fuel budget an admitted invocation holds against its function's
/// quota. [`Reservation::settle`] replaces it with the fuel actually used;
/// dropped unsettled (the invocation never ran), it is released.
#[derive(Debug)]
#[must_use = "dropping a reservation releases it"]
pub struct Reservation {
    quota: Arc<Quota>,
    budget: u64,
    settled: bool,
}

impl Quota {
    /// A quota of `limit` fuel per `window`.
    pub fn new(decl: QuotaDecl) -> Quota {
        Quota {
            limit: decl.fuel,
            window: decl.window.max(Duration::from_millis(1)),
            state: Mutex::new(Window::default()),
            successor: std::sync::OnceLock::new(),
        }
    }

    /// Hands this quota's window (fuel used, reservations in flight) over
    /// to `next`, the same function's quota in the version replacing this
    /// one, which counts for both from now on. Nothing happens when the
    /// quotas differ (a changed quota starts afresh) or this one was
    /// handed over already.
    pub fn hand_over(self: &Arc<Self>, next: &Arc<Quota>) {
        if self.limit != next.limit || self.window != next.window || Arc::ptr_eq(self, next) {
            return;
        }
        let old = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.successor.get().is_some() {
            return;
        }
        {
            let mut new = next.state.lock().unwrap_or_else(|e| e.into_inner());
            new.index = old.index;
            new.used = new.used.saturating_add(old.used);
            new.reserved = new.reserved.saturating_add(old.reserved);
        }
        let _ = self.successor.set(next.clone());
        drop(old);
    }

    /// Runs `f` on the window of the quota that counts now (this one, or
    /// the last it was handed over to), under that window's lock.
    fn with_live<R>(self: &Arc<Self>, f: impl FnOnce(&Arc<Quota>, &mut Window) -> R) -> R {
        let mut quota = self.clone();
        loop {
            let next = {
                let mut state = quota.state.lock().unwrap_or_else(|e| e.into_inner());
                match quota.successor.get() {
                    Some(next) => next.clone(),
                    None => return f(&quota, &mut state),
                }
            };
            quota = next;
        }
    }

    fn index_and_rest(&self, now: SystemTime) -> (u64, Duration) {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let window = self.window.as_nanos().max(1);
        let index = since.as_nanos() / window;
        let into = since.as_nanos() % window;
        let rest = u64::try_from(window - into).unwrap_or(u64::MAX);
        (
            u64::try_from(index).unwrap_or(u64::MAX),
            Duration::from_nanos(rest),
        )
    }

    /// Rolls `state` over to the window of `now` if its time has come (the
    /// fuel used starts again at 0, reservations in flight are kept);
    /// returns the time left in that window.
    fn roll(&self, state: &mut Window, now: SystemTime) -> Duration {
        let (index, rest) = self.index_and_rest(now);
        if state.index != index {
            state.index = index;
            state.used = 0;
        }
        rest
    }

    /// Admits an invocation that may use up to `budget` fuel, reserving it,
    /// or `Err(retry_after)`: the rest of the window when the window's usage
    /// leaves no room for `budget`, at most `busy` when invocations in
    /// flight do.
    pub fn reserve(
        self: &Arc<Self>,
        now: SystemTime,
        budget: u64,
        busy: Duration,
    ) -> Result<Reservation, Duration> {
        self.with_live(|quota, state| {
            let rest = quota.roll(state, now);
            let fits = |reserved: u64| {
                let total = state.used.saturating_add(reserved).saturating_add(budget);
                // A budget over the whole quota runs alone, in a window
                // not used up: the one overshoot allowed.
                total <= quota.limit
                    || (budget > quota.limit && reserved == 0 && state.used < quota.limit)
            };
            if fits(state.reserved) {
                state.reserved = state.reserved.saturating_add(budget);
                return Ok(Reservation {
                    quota: quota.clone(),
                    budget,
                    settled: false,
                });
            }
            if state.reserved > 0 && fits(0) {
                Err(rest.min(busy))
            } else {
                Err(rest)
            }
        })
    }

    /// Fuel used in the window of `now`, and fuel reserved in flight.
    #[cfg(test)]
    pub fn usage(self: &Arc<Self>, now: SystemTime) -> (u64, u64) {
        self.with_live(|quota, state| {
            quota.roll(state, now);
            (state.used, state.reserved)
        })
    }
}

impl Reservation {
    /// Ends the invocation: its reservation is replaced by the `fuel` it
    /// used, charged to the window of `now` (the one it ended in).
    pub fn settle(mut self, now: SystemTime, fuel: u64) {
        let budget = self.budget;
        self.quota.with_live(|quota, state| {
            quota.roll(state, now);
            state.reserved = state.reserved.saturating_sub(budget);
            state.used = state.used.saturating_add(fuel);
        });
        self.settled = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            let budget = self.budget;
            self.quota.with_live(|_, state| {
                state.reserved = state.reserved.saturating_sub(budget);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn quota(fuel: u64) -> Arc<Quota> {
        Arc::new(Quota::new(QuotaDecl {
            fuel,
            window: Duration::from_secs(60),
        }))
    }

    const BUSY: Duration = Duration::from_secs(5);

    #[test]
    fn quota_blocks_until_the_window_rolls() {
        let q = quota(100);
        q.reserve(at(600), 60, BUSY).unwrap().settle(at(600), 60);
        // 60 used + 60 budget > 100: no room left in [600, 660).
        assert_eq!(
            q.reserve(at(610), 60, BUSY).err(),
            Some(Duration::from_secs(50))
        );
        q.reserve(at(610), 40, BUSY).unwrap().settle(at(610), 40);
        assert_eq!(
            q.reserve(at(659), 1, BUSY).err(),
            Some(Duration::from_secs(1))
        );
        // The next window starts empty.
        assert!(q.reserve(at(660), 60, BUSY).is_ok());
        assert_eq!(q.usage(at(660)), (0, 0));
    }

    #[test]
    fn budgets_in_flight_hold_their_place_until_settled() {
        let q = quota(100);
        let a = q.reserve(at(600), 40, BUSY).unwrap();
        let b = q.reserve(at(600), 40, BUSY).unwrap();
        // 80 reserved: a third 40 would pass the quota; it is worth
        // retrying once those in flight end.
        assert_eq!(q.reserve(at(600), 40, BUSY).err(), Some(BUSY));
        assert_eq!(q.usage(at(600)), (0, 80));
        // Replaced by the fuel actually used, so room comes back.
        a.settle(at(601), 10);
        assert_eq!(q.usage(at(601)), (10, 40));
        let c = q.reserve(at(601), 40, BUSY).unwrap();
        // Dropped unsettled (it never ran): released, nothing charged.
        drop(c);
        assert_eq!(q.usage(at(601)), (10, 40));
        b.settle(at(602), 40);
        assert_eq!(q.usage(at(602)), (50, 0));
    }

    #[test]
    fn reservations_in_flight_count_against_the_next_window() {
        let q = quota(100);
        let a = q.reserve(at(650), 70, BUSY).unwrap();
        // The window rolled while `a` runs: it still holds 70.
        assert_eq!(q.reserve(at(661), 40, BUSY).err(), Some(BUSY));
        // Its fuel goes to the window it ends in.
        a.settle(at(662), 70);
        assert_eq!(q.usage(at(662)), (70, 0));
        assert_eq!(
            q.reserve(at(662), 40, BUSY).err(),
            Some(Duration::from_secs(58))
        );
    }

    #[test]
    fn a_budget_over_the_quota_runs_alone() {
        let q = quota(100);
        let small = q.reserve(at(600), 10, BUSY).unwrap();
        // Never fits: waits until nothing else is in flight.
        assert_eq!(q.reserve(at(600), 500, BUSY).err(), Some(BUSY));
        small.settle(at(600), 10);
        let big = q.reserve(at(600), 500, BUSY).unwrap();
        // Nothing else while it runs.
        assert_eq!(q.reserve(at(600), 1, BUSY).err(), Some(BUSY));
        assert!(q.reserve(at(600), 500, BUSY).is_err());
        // At most one budget over the quota: 10 + 500.
        big.settle(at(601), 500);
        assert_eq!(q.usage(at(601)), (510, 0));
        assert_eq!(
            q.reserve(at(601), 500, BUSY).err(),
            Some(Duration::from_secs(59))
        );
    }

    #[test]
    fn a_new_version_continues_the_quota_in_flight_included() {
        let old = quota(100);
        let in_flight = old.reserve(at(600), 30, BUSY).unwrap();
        old.reserve(at(600), 40, BUSY).unwrap().settle(at(600), 40);
        let new = quota(100);
        old.hand_over(&new);
        assert_eq!(new.usage(at(601)), (40, 30));
        // The old version's invocation ends: charged to the new quota.
        in_flight.settle(at(602), 20);
        assert_eq!(new.usage(at(602)), (60, 0));
        // Reserving through the old one counts in the new one too.
        assert!(old.reserve(at(603), 50, BUSY).is_err());
        new.reserve(at(603), 40, BUSY).unwrap().settle(at(603), 40);
        assert_eq!(new.usage(at(603)), (100, 0));
        // A different quota starts afresh.
        let changed = Arc::new(Quota::new(QuotaDecl {
            fuel: 500,
            window: Duration::from_secs(60),
        }));
        new.hand_over(&changed);
        assert_eq!(changed.usage(at(604)), (0, 0));
    }
}
