//! Flow control of a desktop stream toward the browser. The agent may send
//! [`STREAM_WINDOW`] bytes before it is granted more; the allocator grants bytes once they
//! leave its queues for the browser's connection. So whatever the browser does, a stream
//! holds at most the window in the allocator, plus the connection's own write buffer
//! ([`RESPONSE_WRITE_BUFFER`]), and a browser that stops reading stops the agent's reads
//! from the VNC server.

use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::Notify;

/// Bytes of the desktop in flight per stream, between the agent and the browser's
/// connection. At loopback round trips this still carries hundreds of MB/s.
pub const STREAM_WINDOW: u32 = 32 * 1024;

/// Grants are told to the agent once they add up to this much.
pub const CREDIT_BATCH: u32 = STREAM_WINDOW / 4;

/// The HTTP server's write buffer per connection (actix's default is 32 KiB). A stream
/// whose browser stopped reading holds at most this, one frame more, and the window.
pub const RESPONSE_WRITE_BUFFER: usize = 16 * 1024;

/// Bytes granted back to the agent and not yet told to it; shared by a stream's two sides.
#[derive(Debug, Default)]
pub struct Credits {
    granted: AtomicU32,
    told: Notify,
}

impl Credits {
    /// `bytes` left toward the browser: the agent may send as many more.
    pub fn grant(&self, bytes: usize) {
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        self.granted.fetch_add(bytes, Ordering::AcqRel);
        self.told.notify_one();
    }

    /// Waits until at least [`CREDIT_BATCH`] bytes were granted, and takes all of them:
    /// grants are told to the agent in batches, not one small frame for each small frame.
    /// The batch is a quarter of the window, so the agent never waits for a grant it is
    /// owed.
    pub async fn granted(&self) -> u32 {
        loop {
            if self.granted.load(Ordering::Acquire) >= CREDIT_BATCH {
                return self.granted.swap(0, Ordering::AcqRel);
            }
            self.told.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grants_are_told_in_batches_and_a_full_batch_wakes_the_taker() {
        let credits = std::sync::Arc::new(Credits::default());
        let batch = CREDIT_BATCH as usize;
        credits.grant(batch - 28);
        credits.grant(100);
        assert_eq!(credits.granted().await as usize, batch + 72);
        let taker = tokio::spawn({
            let credits = credits.clone();
            async move { credits.granted().await }
        });
        credits.grant(7);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!taker.is_finished(), "7 bytes are not told alone");
        credits.grant(batch);
        assert_eq!(taker.await.expect("join") as usize, batch + 7);
    }
}
