//! The allocator's own recent log, for an operator without shell access: a bounded ring of
//! its `tracing` events in memory, each masked as it is recorded (fields that name a secret,
//! `Bearer` credentials, the password in a URL), shown newest first on `/admin/log`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use regex::Regex;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Events kept; the oldest go first.
pub const KEPT_EVENTS: usize = 2_000;
/// Shown instead of a secret.
const HIDDEN: &str = "[hidden]";
/// A field whose name holds one of these is never kept (the generated admin password, a
/// token, a PIN, a remote desktop command, a hash, a cookie).
const SECRET_FIELD_WORDS: [&str; 9] = [
    "password",
    "token",
    "secret",
    "pin",
    "command",
    "hash",
    "cookie",
    "key",
    "authorization",
];

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentEvent {
    pub at: chrono::NaiveDateTime,
    pub level: Level,
    pub target: String,
    pub text: String,
}

/// The ring; see the module documentation.
#[derive(Debug)]
pub struct RecentLog {
    events: Mutex<VecDeque<RecentEvent>>,
    capacity: usize,
}

impl RecentLog {
    pub fn new(capacity: usize) -> Self {
        RecentLog {
            events: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity,
        }
    }

    fn push(&self, event: RecentEvent) {
        let mut events = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if events.len() == self.capacity {
            events.pop_front();
        }
        events.push_back(event);
    }

    /// The recorded events, newest first; with `errors_only`, warnings and errors only.
    pub fn newest_first(&self, errors_only: bool) -> Vec<RecentEvent> {
        let events = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        events
            .iter()
            .rev()
            .filter(|e| !errors_only || e.level <= Level::WARN)
            .cloned()
            .collect()
    }
}

/// The ring this process records into (installed by [`crate::telemetry::init`]).
pub fn global() -> &'static RecentLog {
    static RING: OnceLock<RecentLog> = OnceLock::new();
    RING.get_or_init(|| RecentLog::new(KEPT_EVENTS))
}

/// The layer that records every event into a ring.
#[derive(Debug)]
pub struct RecordingLayer {
    ring: &'static RecentLog,
}

impl RecordingLayer {
    pub fn new(ring: &'static RecentLog) -> Self {
        RecordingLayer { ring }
    }
}

impl<S: Subscriber> Layer<S> for RecordingLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let metadata = event.metadata();
        self.ring.push(RecentEvent {
            at: chrono::Utc::now().naive_utc(),
            level: *metadata.level(),
            target: metadata.target().to_owned(),
            text: mask(&format!("{}{}", fields.message, fields.rest)),
        });
    }
}

/// Masks `Bearer` credentials and the password of a URL in `text`.
fn mask(text: &str) -> String {
    static SHAPES: OnceLock<[Regex; 2]> = OnceLock::new();
    let [bearer, url_password] = SHAPES.get_or_init(|| {
        [
            Regex::new(r"(?i)(bearer\s+)[^\s,;]+").expect("pattern"),
            Regex::new(r"(://[^:/@\s]+:)[^@/\s]+@").expect("pattern"),
        ]
    });
    let text = bearer.replace_all(text, format!("${{1}}{HIDDEN}").as_str());
    url_password
        .replace_all(&text, format!("${{1}}{HIDDEN}@").as_str())
        .into_owned()
}

fn is_secret(field: &Field) -> bool {
    let name = field.name().to_ascii_lowercase();
    SECRET_FIELD_WORDS.iter().any(|word| name.contains(word))
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else if is_secret(field) {
            let _ = write!(self.rest, " {}={HIDDEN}", field.name());
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else if is_secret(field) {
            let _ = write!(self.rest, " {}={HIDDEN}", field.name());
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
    fn events_are_kept_newest_first_within_the_cap_and_masked() {
        let ring: &'static RecentLog = Box::leak(Box::new(RecentLog::new(3)));
        let subscriber = tracing_subscriber::registry().with(RecordingLayer::new(ring));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("first, soon gone");
            tracing::warn!(
                password = "hunter2-generated",
                user = "admin",
                "no admin password was configured"
            );
            tracing::error!(
                database = "postgres://lablink:s3cret@db:5432/lablink",
                "provisioning failed: terraform said no"
            );
            tracing::info!("sent Authorization: Bearer abc.def.ghi");
        });
        let events = ring.newest_first(false);
        assert_eq!(events.len(), 3, "only the newest fit");
        assert_eq!(events[0].text, "sent Authorization: Bearer [hidden]");
        assert_eq!(
            events[1].text,
            "provisioning failed: terraform said no database=postgres://lablink:[hidden]@db:5432/lablink"
        );
        assert_eq!(
            events[2].text,
            "no admin password was configured password=[hidden] user=admin"
        );
        let serious = ring.newest_first(true);
        assert_eq!(serious.len(), 2);
        assert!(serious.iter().all(|e| e.level <= Level::WARN));
    }
}
