//! The agent's own log as lines to ship: a `tracing` layer that formats each event of every
//! actor (`LEVEL target: message key=value …`) and hands it to the shipper through a
//! bounded channel, never blocking the actor that logged it (a full channel counts the
//! line as dropped, and the count is shipped).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// A line of the agent's own log, with when it was logged.
pub type OwnLine = (chrono::DateTime<chrono::Utc>, String);

/// The shipper's end: the agent's own lines, and how many a full channel dropped.
#[derive(Debug)]
pub struct OwnLog {
    pub(super) lines: Receiver<OwnLine>,
    pub(super) dropped: Arc<AtomicU64>,
}

/// The layer's end; see the module documentation.
#[derive(Debug, Clone)]
pub struct ShippingLayer {
    sender: SyncSender<OwnLine>,
    dropped: Arc<AtomicU64>,
}

/// A layer and the shipper's end of it, holding up to `capacity` lines between the two.
pub fn own_log(capacity: usize) -> (ShippingLayer, OwnLog) {
    let (sender, lines) = mpsc::sync_channel(capacity);
    let dropped = Arc::new(AtomicU64::new(0));
    (
        ShippingLayer {
            sender,
            dropped: dropped.clone(),
        },
        OwnLog { lines, dropped },
    )
}

impl<S: Subscriber> Layer<S> for ShippingLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        // The shipper's own troubles stay local: shipping them would feed itself.
        if metadata.target() == module_path!().trim_end_matches("::layer") {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = format!(
            "{} {}: {}{}",
            metadata.level(),
            metadata.target(),
            fields.message,
            fields.rest
        );
        match self.sender.try_send((chrono::Utc::now(), line)) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// An event's message and its other fields as ` key=value`.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn every_event_becomes_a_line_and_a_full_channel_counts_what_it_dropped() {
        let (layer, own) = own_log(2);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(vm = "vm-1", attempt = 3, "status reported");
            tracing::error!("cannot reach the allocator");
            tracing::warn!("this one does not fit");
        });
        let lines: Vec<String> = own.lines.try_iter().map(|(_, line)| line).collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("INFO ")
                && lines[0].ends_with(": status reported vm=vm-1 attempt=3"),
            "{}",
            lines[0]
        );
        assert!(lines[1].starts_with("ERROR "), "{}", lines[1]);
        assert_eq!(own.dropped.load(Ordering::Relaxed), 1);
    }
}
