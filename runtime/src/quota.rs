//! Per-function fuel quotas over fixed time windows.
//!
//! A quota of `fuel` per `window` counts the fuel of every invocation that
//! ends within a window. Windows are aligned to multiples of their length
//! since the Unix epoch (an hourly quota rolls over on the hour). Once a
//! window's usage reaches the quota, requests to the function get `429` with
//! `Retry-After` set to the seconds left in the window. Usage is kept in
//! memory: a restart starts a fresh window count.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

/// `quota = { fuel = N, window = "1h" }` in a function's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaDecl {
    /// Fuel allowed per window.
    pub fuel: u64,
    /// Window length, e.g. `"1h"`, `"1m"`.
    #[serde(deserialize_with = "crate::manifest::duration")]
    pub window: Duration,
}

/// The live quota of one function.
#[derive(Debug)]
pub struct Quota {
    limit: u64,
    window: Duration,
    state: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    index: u64,
    used: u64,
}

impl Quota {
    /// A quota of `limit` fuel per `window`.
    pub fn new(decl: QuotaDecl) -> Quota {
        Quota {
            limit: decl.fuel,
            window: decl.window.max(Duration::from_millis(1)),
            state: Mutex::new(Window::default()),
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

    /// `Err(retry_after)` when the window's quota is used up.
    pub fn check(&self, now: SystemTime) -> Result<(), Duration> {
        let (index, rest) = self.index_and_rest(now);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.index != index {
            *state = Window { index, used: 0 };
        }
        if state.used >= self.limit {
            Err(rest)
        } else {
            Ok(())
        }
    }

    /// Adds an ended invocation's fuel to the window it ended in.
    pub fn charge(&self, now: SystemTime, fuel: u64) {
        let (index, _) = self.index_and_rest(now);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.index != index {
            *state = Window { index, used: 0 };
        }
        state.used = state.used.saturating_add(fuel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn quota_blocks_until_the_window_rolls() {
        let q = Quota::new(QuotaDecl {
            fuel: 100,
            window: Duration::from_secs(60),
        });
        assert_eq!(q.check(at(600)), Ok(()));
        q.charge(at(600), 60);
        assert_eq!(q.check(at(610)), Ok(()));
        q.charge(at(610), 60);
        // 120 >= 100: blocked for the remaining 50 s of [600, 660).
        assert_eq!(q.check(at(610)), Err(Duration::from_secs(50)));
        assert_eq!(q.check(at(659)), Err(Duration::from_secs(1)));
        // The next window starts empty.
        assert_eq!(q.check(at(660)), Ok(()));
    }
}
