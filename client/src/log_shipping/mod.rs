//! Shipping the VM's logs to the allocator: the agent's own log ([`layer`]), the files it is
//! told to follow (the research software's log, the boot log: [`tail`]), each line tagged
//! with its source and time, secrets masked ([`redact`]), kept in a bounded on-disk spool
//! ([`spool`]) and sent in batches (by count, or after a short delay) to `POST /api/vm-logs`
//! with the VM's token; with backoff and jitter while the allocator is away. Lines are
//! numbered in the spool, so a batch sent again is stored once.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use actix::{Actor, ActorFutureExt, AsyncContext, Context, WrapFuture};
use lablink_schema::backoff::Backoff;
use lablink_schema::wire::{LogEntry, VmLogBatch};

use crate::allocator_client::{AllocatorClient, CallError};

pub mod layer;
pub mod redact;
pub mod spool;
pub mod tail;

pub use layer::{own_log, OwnLog, ShippingLayer};
pub use redact::{KnownSecrets, Redactor};

use spool::Spool;
use tail::Tail;

/// How often new lines are gathered into the spool.
const GATHER_EVERY: Duration = Duration::from_millis(200);
/// A batch holds at most this many lines, and is sent at once when this many wait.
const BATCH_LINES: usize = 500;
/// …and at most this much text (the allocator takes 256 KiB by default).
const BATCH_BYTES: usize = 192 * 1024;
/// Own lines gathered per round at most, so a burst cannot stall the actor.
const OWN_LINES_PER_GATHER: usize = 5_000;

/// What the shipper is told to do.
#[derive(Debug, Clone)]
pub struct ShippingSettings {
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
    /// Files to follow, by source name.
    pub files: Vec<(String, PathBuf)>,
    /// Fewer lines than a batch wait at most this long.
    pub flush_delay: Duration,
    pub redact: Option<regex::Regex>,
}

/// The Chrome Remote Desktop code in `command` (`--code="…"`), to be masked once known.
pub fn remote_desktop_code(command: &str) -> Option<&str> {
    let rest = &command[command.find("--code=")? + "--code=".len()..];
    let code = match rest.chars().next()? {
        quote @ ('"' | '\'') => rest[1..].split(quote).next()?,
        _ => rest.split_whitespace().next()?,
    };
    (!code.is_empty()).then_some(code)
}

/// The actor; see the module documentation.
#[derive(Debug)]
pub struct LogShipper {
    client: AllocatorClient,
    spool: Spool,
    redactor: Redactor,
    own: Option<OwnLog>,
    tails: Vec<Tail>,
    backoff: Backoff,
    flush_delay: Duration,
    in_flight: bool,
    /// No batch is sent before this (after a failure).
    retry_at: Option<Instant>,
    /// When the oldest line waiting arrived, for the flush delay.
    waiting_since: Option<Instant>,
}

impl LogShipper {
    /// A shipper spooling in `settings.spool_dir` (opened now, so a bad directory is an
    /// error at start).
    pub fn new(
        client: AllocatorClient,
        settings: &ShippingSettings,
        own: Option<OwnLog>,
        backoff: Backoff,
    ) -> std::io::Result<LogShipper> {
        let spool = Spool::open(&settings.spool_dir, settings.spool_max_bytes)?;
        let tails = settings
            .files
            .iter()
            .map(|(source, path)| Tail::new(source, path, &settings.spool_dir))
            .collect();
        let waiting_since = spool.has_pending().then(Instant::now);
        Ok(LogShipper {
            redactor: Redactor::new(client.secrets(), settings.redact.clone()),
            client,
            spool,
            own,
            tails,
            backoff,
            flush_delay: settings.flush_delay,
            in_flight: false,
            retry_at: None,
            waiting_since,
        })
    }

    /// Moves new lines (own, followed files) into the spool, masked.
    fn gather(&mut self) {
        let mut lines: Vec<(String, chrono::DateTime<chrono::Utc>, String)> = Vec::new();
        if let Some(own) = &self.own {
            let dropped = own.dropped.swap(0, std::sync::atomic::Ordering::Relaxed);
            lines.extend(
                own.lines
                    .try_iter()
                    .take(OWN_LINES_PER_GATHER)
                    .map(|(at, line)| ("agent".to_owned(), at, self.redactor.redact(&line))),
            );
            if dropped > 0 {
                lines.push((
                    "agent".to_owned(),
                    chrono::Utc::now(),
                    format!("{dropped} lines of the agent's own log were dropped: it logged faster than they could be spooled"),
                ));
            }
        }
        let mut read_up_to = Vec::new();
        for (index, tail) in self.tails.iter_mut().enumerate() {
            match tail.read_new() {
                Ok((new, offset)) => {
                    let now = chrono::Utc::now();
                    lines.extend(
                        new.iter()
                            .map(|line| (tail.source.clone(), now, self.redactor.redact(line))),
                    );
                    read_up_to.push((index, offset));
                }
                Err(err) => {
                    tracing::debug!(source = %tail.source, error = %err, "cannot read a followed log file");
                }
            }
        }
        if lines.is_empty() && read_up_to.is_empty() {
            return;
        }
        let had_lines = !lines.is_empty();
        if let Err(err) = self.spool.append(lines) {
            tracing::warn!(error = %err, "cannot write to the log spool; these lines are lost");
            return;
        }
        // Only once spooled: a crash before this reads the same lines again.
        for (index, offset) in read_up_to {
            if let Err(err) = self.tails[index].commit(offset) {
                tracing::debug!(error = %err, "cannot record how far a log file was read");
            }
        }
        if had_lines && self.waiting_since.is_none() {
            self.waiting_since = Some(Instant::now());
        }
    }

    /// Sends the next batch when one is due: a full batch waits, or the oldest line has
    /// waited the flush delay; never two at once, never before a retry is due.
    fn ship(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight || !self.spool.has_pending() {
            return;
        }
        let now = Instant::now();
        if self.retry_at.is_some_and(|at| now < at) {
            return;
        }
        let batch = match self.spool.pending(BATCH_LINES, BATCH_BYTES) {
            Ok(batch) => batch,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the log spool");
                return;
            }
        };
        let due = batch.len() >= BATCH_LINES
            || self
                .waiting_since
                .is_none_or(|since| now.duration_since(since) >= self.flush_delay);
        let Some(last) = batch.last().map(|line| line.seq) else {
            return;
        };
        if !due {
            return;
        }
        let body = VmLogBatch {
            log_group: "lablink".to_owned(),
            log_stream: self.client.hostname().to_owned(),
            messages: Vec::new(),
            entries: batch
                .into_iter()
                .map(|line| LogEntry {
                    source: line.source,
                    logged_at: Some(line.logged_at),
                    text: line.text,
                    seq: Some(line.seq),
                })
                .collect(),
            stream: Some(self.spool.stream().to_owned()),
        };
        self.in_flight = true;
        let client = self.client.clone();
        let send = async move { client.ship_logs(&body).await };
        ctx.spawn(send.into_actor(self).map(move |sent, shipper, ctx| {
            shipper.in_flight = false;
            shipper.shipped(sent, last, ctx);
        }));
    }

    fn shipped(&mut self, sent: Result<(), CallError>, last: i64, ctx: &mut Context<Self>) {
        match sent {
            Ok(()) => {}
            // A batch the allocator will never take (it names what is wrong) is given up,
            // so it cannot block every later line.
            Err(CallError::Refused { status, message }) if matches!(status, 400 | 413) => {
                tracing::warn!(status, %message, "the allocator refused a batch of log lines; it is dropped");
            }
            Err(err) => {
                let delay = self.backoff.next_delay();
                tracing::debug!(error = %err, retry_in_ms = delay.as_millis(), "cannot ship logs yet");
                self.retry_at = Some(Instant::now() + delay);
                return;
            }
        }
        self.backoff.reset();
        self.retry_at = None;
        if let Err(err) = self.spool.mark_shipped(last) {
            tracing::warn!(error = %err, "cannot record the shipped log lines; they may be sent again");
        }
        self.waiting_since = self.spool.has_pending().then(Instant::now);
        // More may wait: a full batch goes at once.
        self.ship(ctx);
    }
}

impl Actor for LogShipper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(GATHER_EVERY, |shipper, ctx| {
            shipper.gather();
            shipper.ship(ctx);
        });
    }

    fn stopping(&mut self, _: &mut Self::Context) -> actix::Running {
        // What the last round logged is spooled for the next start.
        self.gather();
        actix::Running::Stop
    }
}

#[cfg(test)]
mod tests {
    use super::remote_desktop_code;

    #[test]
    fn the_code_is_found_in_the_command_quoted_or_not() {
        assert_eq!(
            remote_desktop_code(r#"start-host --code="4/0Aabc" --name=x"#),
            Some("4/0Aabc")
        );
        assert_eq!(
            remote_desktop_code("start-host --code=4/xyz --pin=1"),
            Some("4/xyz")
        );
        assert_eq!(remote_desktop_code("start-host"), None);
    }
}
