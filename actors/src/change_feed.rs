//! "A VM changed" events and where they go: the [`ChangeFeed`] trait that the listener and
//! the SQLite writer publish through, and [`ChangeHub`], which fans events out to every
//! subscriber (VM actors, live dashboard streams).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use lablink_schema::vms::Vm;
use lablink_schema::Backend;

use tokio::sync::mpsc;

/// Something about the VMs changed in the database.
#[derive(Debug, Clone, PartialEq, Eq, actix::Message)]
#[rtype(result = "()")]
pub enum VmEvent {
    /// This VM's row was inserted, updated or deleted: re-read it.
    Changed { hostname: String },
    /// Changes may have been missed (the listener was disconnected): every VM in `hostnames`
    /// may have changed, and a VM that is not listed no longer exists.
    Resynced { hostnames: Vec<String> },
    /// A researcher was just given this VM, in this process: `row` is what the claim's
    /// transaction committed, `claim_started` when that transaction began. Agents that were
    /// already waiting can be answered from it without reading the row again; the database's
    /// own notification follows as for any change.
    Claimed {
        row: Box<Vm>,
        claim_started: Instant,
    },
}

/// Where VM events are published.
pub trait ChangeFeed: Send + Sync + 'static {
    /// Hands `event` on. Never blocks and never fails: a gone subscriber is simply dropped.
    fn publish(&self, event: VmEvent);
}

impl ChangeFeed for actix::Recipient<VmEvent> {
    fn publish(&self, event: VmEvent) {
        self.do_send(event);
    }
}

impl ChangeFeed for mpsc::UnboundedSender<VmEvent> {
    fn publish(&self, event: VmEvent) {
        // A closed receiver means nobody listens any more; nothing to do.
        let _ = self.send(event);
    }
}

/// The feed a database writer publishes its changes through, chosen once for the backend.
/// On PostgreSQL a row's change reaches every process through the table's trigger and the
/// [`crate::notification_listener`], so a writer's own `Changed` would only repeat it and is
/// dropped here; on SQLite nothing else tells anyone, so it is passed on. Other events (a
/// claim's committed row) always pass.
pub fn for_writer(backend: Backend, feed: Arc<dyn ChangeFeed>) -> Arc<dyn ChangeFeed> {
    match backend {
        Backend::Sqlite => feed,
        Backend::Postgres => Arc::new(AnnouncedByTrigger(feed)),
    }
}

/// See [`for_writer`].
struct AnnouncedByTrigger(Arc<dyn ChangeFeed>);

impl ChangeFeed for AnnouncedByTrigger {
    fn publish(&self, event: VmEvent) {
        if !matches!(event, VmEvent::Changed { .. }) {
            self.0.publish(event);
        }
    }
}

/// Fans events out to any number of subscribers, each with its own unbounded queue, so a
/// slow subscriber never loses an event or slows the others.
#[derive(Debug, Clone, Default)]
pub struct ChangeHub {
    subscribers: Arc<Mutex<Vec<mpsc::UnboundedSender<VmEvent>>>>,
}

impl ChangeHub {
    /// A hub with no subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// A queue that receives every event published from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<VmEvent> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.lock().push(sender);
        receiver
    }

    /// How many subscribers are still listening.
    pub fn subscriber_count(&self) -> usize {
        let mut subscribers = self.lock();
        subscribers.retain(|s| !s.is_closed());
        subscribers.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::UnboundedSender<VmEvent>>> {
        // The list stays valid whatever a panicking holder was doing, so poisoning is ignored.
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl ChangeFeed for ChangeHub {
    fn publish(&self, event: VmEvent) {
        self.lock()
            .retain(|subscriber| subscriber.send(event.clone()).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writers_own_changes_are_announced_only_where_no_trigger_does_it() {
        let changed = || VmEvent::Changed {
            hostname: "vm-1".to_owned(),
        };
        let resynced = || VmEvent::Resynced { hostnames: vec![] };
        for (backend, expected) in [
            (Backend::Sqlite, vec![changed(), resynced()]),
            (Backend::Postgres, vec![resynced()]),
        ] {
            let (sender, mut receiver) = mpsc::unbounded_channel();
            let feed = for_writer(backend, Arc::new(sender));
            feed.publish(changed());
            feed.publish(resynced());
            drop(feed);
            let mut got = Vec::new();
            while let Ok(event) = receiver.try_recv() {
                got.push(event);
            }
            assert_eq!(got, expected, "{backend:?}");
        }
    }

    #[test]
    fn every_subscriber_gets_every_event_and_gone_ones_are_dropped() {
        let hub = ChangeHub::new();
        let mut first = hub.subscribe();
        let second = hub.subscribe();
        let changed = VmEvent::Changed {
            hostname: "vm-1".into(),
        };
        hub.publish(changed.clone());
        assert_eq!(first.try_recv().ok(), Some(changed.clone()));
        drop(second);
        hub.publish(changed.clone());
        assert_eq!(hub.subscriber_count(), 1);
        assert_eq!(first.try_recv().ok(), Some(changed));
    }
}
