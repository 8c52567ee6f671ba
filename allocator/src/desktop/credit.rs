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

    /// Waits until something was granted, and takes all of it (grants made meanwhile are
    /// told together).
    pub async fn granted(&self) -> u32 {
        loop {
            let granted = self.granted.swap(0, Ordering::AcqRel);
            if granted > 0 {
                return granted;
            }
            self.told.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grants_add_up_until_taken_and_a_grant_wakes_the_taker() {
        let credits = std::sync::Arc::new(Credits::default());
        credits.grant(100);
        credits.grant(28);
        assert_eq!(credits.granted().await, 128);
        let taker = tokio::spawn({
            let credits = credits.clone();
            async move { credits.granted().await }
        });
        tokio::task::yield_now().await;
        credits.grant(7);
        assert_eq!(taker.await.expect("join"), 7);
    }
}
