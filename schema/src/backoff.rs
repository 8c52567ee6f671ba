//! Capped exponential backoff with jitter, the one used by every retry loop on both sides
//! (the agent's calls to the allocator, the allocator's reconnecting listener and its wait
//! for the database at start): a peer that is down or restarting never sees a tight loop,
//! and a fleet of agents or allocators does not retry in lock-step.

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

/// Up to a quarter of `delay`, at random (the thread's generator, seeded by the OS: two
/// processes started together draw differently, where the clock's nanoseconds need not).
fn jitter(delay: Duration) -> Duration {
    use rand::Rng;
    delay.mul_f64(rand::rng().random_range(0.0..=0.25))
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

    #[test]
    fn jitter_adds_at_most_a_quarter_and_varies() {
        let delays: std::collections::HashSet<Duration> = (0..100)
            .map(|_| Backoff::new(Duration::from_secs(1), Duration::from_secs(1)).next_delay())
            .collect();
        assert!(delays
            .iter()
            .all(|d| (Duration::from_millis(1_000)..=Duration::from_millis(1_250)).contains(d)));
        assert!(delays.len() > 50, "jitter repeats: {}", delays.len());
    }
}
