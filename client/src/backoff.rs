//! Capped exponential backoff with jitter: every retry loop in the agent waits this way, so
//! an allocator that is down or restarting never sees a tight loop, and a fleet of agents
//! does not retry in lock-step.

use std::time::Duration;

/// Retry delays: `initial`, doubling up to `max`, each with up to 25 % added at random.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            next: initial,
        }
    }

    /// The delay before the next attempt; each call doubles the one after, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay + jitter(delay)
    }

    /// Back to the initial delay, after a success.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// Up to a quarter of `delay`, from the clock's nanoseconds (good enough to spread agents).
fn jitter(delay: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    delay.mul_f64(f64::from(nanos % 1_000) / 4_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_the_cap_with_bounded_jitter_and_reset() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let bases = [100u64, 200, 400, 500, 500];
        for base in bases {
            let delay = backoff.next_delay();
            assert!(
                delay >= Duration::from_millis(base),
                "{delay:?} < {base} ms"
            );
            assert!(
                delay <= Duration::from_millis(base * 5 / 4),
                "{delay:?} > {base} ms + 25 %"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() < Duration::from_millis(126));
    }
}
