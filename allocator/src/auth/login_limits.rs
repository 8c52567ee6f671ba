//! [`LoginGuard`]: how many failed sign-ins (form or HTTP Basic) one client address may make
//! before it has to wait.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits failed sign-ins per client address.
#[derive(Debug)]
pub struct LoginGuard {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginGuard {
    /// At most `max_failures` failed attempts per address within `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        LoginGuard {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a sign-in attempt from `address`: `Err(wait)` while it is locked out; else the
    /// attempt is counted as a failure *before* the password is checked, in the same lock, so
    /// a burst of concurrent guesses gets no more checks than the limit allows. A success
    /// then calls [`LoginGuard::clear`].
    pub fn begin_attempt(&self, address: IpAddr) -> Result<(), Duration> {
        let Ok(mut failures) = self.failures.lock() else {
            return Ok(());
        };
        let entry = failures.entry(address).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        if entry.0 >= self.max_failures {
            return Err(self.window.saturating_sub(entry.1.elapsed()));
        }
        entry.0 += 1;
        Ok(())
    }

    pub fn clear(&self, address: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&address);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_guard_locks_out_after_repeated_failures() {
        let guard = LoginGuard::new(3, Duration::from_secs(60));
        let address: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..3 {
            assert!(guard.begin_attempt(address).is_ok());
        }
        assert!(guard.begin_attempt(address).is_err());
        assert!(guard.begin_attempt(other).is_ok(), "per address");
        guard.clear(address);
        assert!(guard.begin_attempt(address).is_ok());
        let short = LoginGuard::new(1, Duration::from_millis(1));
        assert!(short.begin_attempt(address).is_ok());
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.begin_attempt(address).is_ok(), "the window passes");
    }

    #[test]
    fn attempts_are_counted_before_they_are_checked() {
        let guard = LoginGuard::new(3, Duration::from_secs(60));
        let address: IpAddr = [10, 0, 0, 1].into();
        // Three begun at once, none finished: the fourth is refused already.
        for _ in 0..3 {
            assert!(guard.begin_attempt(address).is_ok());
        }
        assert!(guard.begin_attempt(address).is_err());
        guard.clear(address);
        assert!(guard.begin_attempt(address).is_ok(), "a success clears");
    }
}
