//! `ReportBatcher`: what agents report about their VM (status and heartbeat, GPU health, in
//! use), written in batches (group commit) like researchers' claims. Ten thousand agents
//! reporting every 30 seconds are hundreds of reports a second, each a one-row write: the
//! reports waiting in the queue, and those arriving within a short linger after the first,
//! share one transaction and one commit.
//!
//! Within a batch, reports are written in the order of their VM's hostname (and, for one VM,
//! in arrival order), so two batches committing side by side lock rows in the same order and
//! cannot deadlock. If any statement of the batch fails, the batch is rolled back and each
//! report is written again in a transaction of its own, so one bad report fails alone.

use lablink_schema::connection::write_transaction;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use diesel::QueryResult;
use lablink_schema::journey;
use lablink_schema::vms::Vm;
use lablink_schema::wire::{GpuHealth, SessionFigures, VmStatus};
use lablink_schema::{Backend, DbConnection, DbPool};
use tokio::sync::oneshot;

use crate::batch_queue::{BatchCounts, BatchQueue, Linger};
use crate::change_feed::{ChangeFeed, VmEvent};
use crate::db_writer::{writer_threads, WriteError};

/// Most reports written in one transaction; more wait for the next batch.
const MAX_BATCH: usize = 512;
/// How long a worker gathers reports. Heartbeats arrive steadily but rarely pile up (10,000
/// agents every 30 s are one every 3 ms), so without waiting nearly every report would
/// commit alone: a worker that has fewer than 8 reports keeps gathering, for at most 20 ms
/// after the first. Reports that pile up (a burst, a flat-out benchmark) are written at once.
/// An agent does not notice its report answered 20 ms later.
const LINGER: Linger = Linger {
    up_to: Duration::from_millis(20),
    enough: 8,
};

/// One report from a VM's agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmReport {
    /// Record the status an existing VM reports (`POST /api/vm-status`); this is also its
    /// heartbeat. Never adds a VM: joining is enrollment's job.
    /// `session`: the figures of the session the VM serves, recorded on that session's
    /// journey row in the same transaction (no request of its own).
    Status {
        hostname: String,
        status: VmStatus,
        session: Option<SessionFigures>,
    },
    /// Record its GPU health (`POST /api/gpu_health`).
    GpuHealth { hostname: String, health: GpuHealth },
    /// Record whether the research software runs (`POST /api/update_inuse_status`).
    InUse { hostname: String, in_use: bool },
}

impl VmReport {
    pub fn hostname(&self) -> &str {
        match self {
            VmReport::Status { hostname, .. }
            | VmReport::GpuHealth { hostname, .. }
            | VmReport::InUse { hostname, .. } => hostname,
        }
    }

    /// Writes the report; `None` when it names a VM that does not exist (only a status
    /// report may register one).
    fn write(&self, conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<Option<Vm>> {
        match self {
            VmReport::Status {
                hostname,
                status,
                session,
            } => {
                let vm = Vm::set_status(conn, hostname, *status, now)?;
                if let (Some(vm), Some(figures)) = (&vm, session) {
                    // Figures of an earlier assignment (a heartbeat crossing the release)
                    // are dropped: the statement matches the open session's assignment only.
                    if vm.user_email.is_some() && vm.assignment_seq == figures.assignment_id {
                        journey::record(conn, hostname, figures, now)?;
                    }
                }
                Ok(vm)
            }
            VmReport::GpuHealth { hostname, health } => {
                Vm::set_gpu_health(conn, hostname, *health, now)
            }
            VmReport::InUse { hostname, in_use } => Vm::set_in_use(conn, hostname, *in_use, now),
        }
    }
}

struct PendingReport {
    report: VmReport,
    reply: oneshot::Sender<Result<Vm, WriteError>>,
}

/// Hands reports to the worker threads; cheap to clone.
#[derive(Clone)]
pub struct ReportBatcher {
    queue: BatchQueue<PendingReport>,
    counts: Arc<BatchCounts>,
}

impl std::fmt::Debug for ReportBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportBatcher").finish_non_exhaustive()
    }
}

impl ReportBatcher {
    /// Starts the workers: `postgres_workers` on PostgreSQL, one on SQLite (one writer at a
    /// time). They stop when every `ReportBatcher` is dropped.
    pub fn start(
        pool: DbPool,
        backend: Backend,
        feed: Arc<dyn ChangeFeed>,
        postgres_workers: usize,
    ) -> ReportBatcher {
        let counts = Arc::new(BatchCounts::default());
        let writer = BatchWriter {
            pool,
            feed: crate::change_feed::for_writer(backend, feed),
            counts: counts.clone(),
        };
        let queue = BatchQueue::start(
            "report-batcher",
            writer_threads(backend, postgres_workers),
            MAX_BATCH,
            LINGER,
            counts.clone(),
            move |batch| writer.serve(batch),
        );
        ReportBatcher { queue, counts }
    }

    /// Writes the report; answers with the VM as stored once its batch has committed.
    pub async fn report(&self, report: VmReport) -> Result<Vm, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .push(PendingReport { report, reply })
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }

    /// Reports taken and transactions used so far.
    pub fn counts(&self) -> (u64, u64) {
        self.counts.snapshot()
    }
}

/// What the worker threads share to write a batch.
struct BatchWriter {
    pool: DbPool,
    /// Publishes after commit; used on SQLite only (on PostgreSQL the trigger does it).
    feed: Arc<dyn ChangeFeed>,
    counts: Arc<BatchCounts>,
}

impl BatchWriter {
    fn serve(&self, mut batch: Vec<PendingReport>) {
        // A stable sort: one VM's reports keep their order.
        batch.sort_by(|a, b| a.report.hostname().cmp(b.report.hostname()));
        let results = self.write_all(&batch);
        for (pending, result) in batch.into_iter().zip(results) {
            let result = result.and_then(|vm| {
                vm.ok_or_else(|| WriteError::UnknownVm(pending.report.hostname().to_owned()))
            });
            match &result {
                Ok(vm) => self.announce(&vm.hostname),
                Err(err) if !err.is_expected() => {
                    tracing::error!(error = %err, "VM report not written")
                }
                Err(_) => {}
            }
            // The agent may have hung up; the report is written either way.
            let _ = pending.reply.send(result);
        }
    }

    /// The whole batch in one transaction; if that fails, each report in its own.
    fn write_all(&self, batch: &[PendingReport]) -> Vec<Result<Option<Vm>, WriteError>> {
        let mut pooled = match self.pool.get() {
            Ok(pooled) => pooled,
            Err(err) => {
                let reason = err.to_string();
                return batch
                    .iter()
                    .map(|_| Err(WriteError::Batch(reason.clone())))
                    .collect();
            }
        };
        let conn: &mut DbConnection = &mut pooled;
        let now = Utc::now().naive_utc();
        if batch.len() > 1 {
            self.counts.add_transaction();
            let together = write_transaction(conn, |conn| {
                batch
                    .iter()
                    .map(|pending| pending.report.write(conn, now))
                    .collect::<QueryResult<Vec<_>>>()
            });
            match together {
                Ok(written) => return written.into_iter().map(Ok).collect(),
                Err(err) => {
                    tracing::warn!(error = %err, reports = batch.len(),
                        "a batch of VM reports failed; writing them one by one");
                }
            }
        }
        batch
            .iter()
            .map(|pending| {
                self.counts.add_transaction();
                write_transaction(conn, |conn| pending.report.write(conn, now))
                    .map_err(WriteError::from)
            })
            .collect()
    }

    /// Announces a written report (where the database does not already: see
    /// [`crate::change_feed::for_writer`]).
    fn announce(&self, hostname: &str) {
        self.feed.publish(VmEvent::Changed {
            hostname: hostname.to_owned(),
        });
    }
}
