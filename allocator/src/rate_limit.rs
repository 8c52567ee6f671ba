//! Token buckets, refilled continuously: admission for `POST /api/request_vm` (one bucket per
//! client address and one for everyone) and each VM's budget of log bytes per minute. A
//! refusal says how long to wait. Buckets live in this process: with several allocators each
//! admits its own share, which only loosens the limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RateLimitConfig;

/// Buckets (addresses, VMs) tracked before full ones (idle keys) are forgotten.
const TRACKED_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    capacity: f64,
    per_second: f64,
}

impl Rule {
    fn refilled(self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.capacity)
    }

    /// Takes one token, or says how long until one is there.
    fn take(self, bucket: &mut Bucket, now: Instant) -> Result<(), Duration> {
        self.take_many(bucket, 1.0, now)
    }

    /// Takes `amount` tokens (at most the capacity), or says how long until they are there.
    fn take_many(self, bucket: &mut Bucket, amount: f64, now: Instant) -> Result<(), Duration> {
        let tokens = self.refilled(*bucket, now);
        if tokens >= amount {
            *bucket = Bucket {
                tokens: tokens - amount,
                at: now,
            };
            Ok(())
        } else {
            Err(Duration::from_secs_f64((amount - tokens) / self.per_second))
        }
    }

    fn full(self, now: Instant) -> Bucket {
        Bucket {
            tokens: self.capacity,
            at: now,
        }
    }
}

/// The limiter; see the module documentation.
#[derive(Debug)]
pub struct Admission {
    per_address: Rule,
    everyone: Rule,
    exempt_loopback: bool,
    state: Mutex<(Bucket, HashMap<IpAddr, Bucket>)>,
}

impl Admission {
    pub fn new(config: &RateLimitConfig) -> Self {
        let per_address = Rule {
            capacity: f64::from(config.request_vm_per_address_per_minute),
            per_second: f64::from(config.request_vm_per_address_per_minute) / 60.0,
        };
        let everyone = Rule {
            capacity: f64::from(config.request_vm_burst),
            per_second: f64::from(config.request_vm_per_second),
        };
        Admission {
            per_address,
            everyone,
            exempt_loopback: config.exempt_loopback,
            state: Mutex::new((everyone.full(Instant::now()), HashMap::new())),
        }
    }

    /// Admits one request from `client`, or answers how long it should wait. A request
    /// refused for its address uses none of everyone's allowance.
    pub fn admit(&self, client: IpAddr) -> Result<(), Duration> {
        self.admit_at(client, Instant::now())
    }

    fn admit_at(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        let (everyone, addresses) = &mut *state;
        let limited = !(self.exempt_loopback && client.is_loopback());
        if limited {
            if addresses.len() >= TRACKED_KEYS && !addresses.contains_key(&client) {
                let rule = self.per_address;
                addresses.retain(|_, bucket| rule.refilled(*bucket, now) < rule.capacity);
            }
            let mut bucket = addresses
                .get(&client)
                .copied()
                .unwrap_or_else(|| self.per_address.full(now));
            let mut trial = *everyone;
            self.per_address.take(&mut bucket, now)?;
            self.everyone.take(&mut trial, now)?;
            addresses.insert(client, bucket);
            *everyone = trial;
            Ok(())
        } else {
            self.everyone.take(everyone, now)
        }
    }
}

/// Each VM's allowance of log text: `per_minute` bytes a minute, refilled continuously.
#[derive(Debug)]
pub struct LogBudget {
    rule: Rule,
    vms: Mutex<HashMap<String, Bucket>>,
}

impl LogBudget {
    pub fn new(per_minute: usize) -> Self {
        // Log budgets are far below 2^52 bytes, so the conversion is exact.
        let per_minute = per_minute as f64;
        LogBudget {
            rule: Rule {
                capacity: per_minute,
                per_second: per_minute / 60.0,
            },
            vms: Mutex::new(HashMap::new()),
        }
    }

    /// Spends `bytes` of `hostname`'s allowance, or says how long until they are there.
    pub fn spend(&self, hostname: &str, bytes: usize) -> Result<(), Duration> {
        self.spend_at(hostname, bytes, Instant::now())
    }

    fn spend_at(&self, hostname: &str, bytes: usize, now: Instant) -> Result<(), Duration> {
        let Ok(mut vms) = self.vms.lock() else {
            return Ok(());
        };
        if vms.len() >= TRACKED_KEYS && !vms.contains_key(hostname) {
            let rule = self.rule;
            vms.retain(|_, bucket| rule.refilled(*bucket, now) < rule.capacity);
        }
        let bucket = vms
            .entry(hostname.to_owned())
            .or_insert_with(|| self.rule.full(now));
        self.rule.take_many(bucket, bytes as f64, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(per_address: u32, per_second: u32, burst: u32) -> RateLimitConfig {
        RateLimitConfig {
            request_vm_per_address_per_minute: per_address,
            request_vm_per_second: per_second,
            request_vm_burst: burst,
            exempt_loopback: true,
        }
    }

    #[test]
    fn one_address_gets_its_burst_then_waits() {
        let admission = Admission::new(&config(3, 1000, 1000));
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let now = Instant::now();
        for _ in 0..3 {
            assert!(admission.admit_at(a, now).is_ok());
        }
        let wait = admission.admit_at(a, now).expect_err("limited");
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(admission.admit_at(b, now).is_ok(), "per address");
        assert!(
            admission.admit_at(a, now + Duration::from_secs(20)).is_ok(),
            "refilled"
        );
    }

    #[test]
    fn everyone_shares_the_global_rate_and_loopback_skips_only_its_own_limit() {
        let admission = Admission::new(&config(1, 10, 2));
        let now = Instant::now();
        let loopback: IpAddr = [127, 0, 0, 1].into();
        assert!(admission.admit_at(loopback, now).is_ok());
        assert!(
            admission.admit_at(loopback, now).is_ok(),
            "no per-address limit"
        );
        let wait = admission
            .admit_at([10, 0, 0, 9].into(), now)
            .expect_err("global burst used");
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
    }

    #[test]
    fn a_vm_spends_its_log_budget_and_waits_for_it_to_refill() {
        let budget = LogBudget::new(6_000);
        let now = Instant::now();
        assert!(budget.spend_at("vm-1", 5_000, now).is_ok());
        let wait = budget
            .spend_at("vm-1", 2_000, now)
            .expect_err("over budget");
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert!(budget.spend_at("vm-2", 6_000, now).is_ok(), "per VM");
        assert!(budget
            .spend_at("vm-1", 2_000, now + Duration::from_secs(10))
            .is_ok());
    }

    #[test]
    fn the_defaults_let_a_class_behind_one_address_through() {
        let admission = Admission::new(&RateLimitConfig::default());
        let nat: IpAddr = [192, 0, 2, 1].into();
        let start = Instant::now();
        for i in 0..500u32 {
            let at = start + Duration::from_millis(u64::from(i) * 120);
            assert!(admission.admit_at(nat, at).is_ok(), "person {i}");
        }
        let script = start + Duration::from_secs(60);
        let refused = (0..2_000)
            .filter(|_| admission.admit_at(nat, script).is_err())
            .count();
        assert!(refused > 1_000, "thousands a minute are stopped: {refused}");
    }
}
