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

    /// `Err(wait)` while `address` is locked out.
    pub fn check(&self, address: IpAddr) -> Result<(), Duration> {
        let Ok(mut failures) = self.failures.lock() else {
            return Ok(());
        };
        match failures.get(&address) {
            Some((count, since)) if since.elapsed() >= self.window => {
                let _ = count;
                failures.remove(&address);
                Ok(())
            }
            Some((count, since)) if *count >= self.max_failures => {
                Err(self.window.saturating_sub(since.elapsed()))
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, address: IpAddr) {
        if let Ok(mut failures) = self.failures.lock() {
            let entry = failures.entry(address).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= self.window {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
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
            assert!(guard.check(address).is_ok());
            guard.record_failure(address);
        }
        assert!(guard.check(address).is_err());
        assert!(guard.check(other).is_ok(), "per address");
        guard.clear(address);
        assert!(guard.check(address).is_ok());
        let short = LoginGuard::new(1, Duration::from_millis(1));
        short.record_failure(address);
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.check(address).is_ok(), "the window passes");
    }
}
