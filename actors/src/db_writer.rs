//! `DbWriter`: the allocator's only writer. A `SyncArbiter` of threads, each taking one
//! message at a time and doing its write in one transaction, so HTTP workers never block on
//! the database and a failed write leaves nothing half-done.
//!
//! On SQLite there is no NOTIFY, so the writer itself publishes a [`VmEvent`] after each
//! commit that changed a VM; on PostgreSQL the table trigger does it for every process.

use std::sync::Arc;

use actix::{Actor, Addr, Handler, Message, SyncArbiter, SyncContext};
use chrono::Utc;
use diesel::Connection;
use lablink_schema::audit_events::{AuditEvent, NewAuditEvent};
use lablink_schema::vm_logs::VmLogLine;
use lablink_schema::vms::Vm;
use lablink_schema::wire::{GpuHealth, VmStatus};
use lablink_schema::{Backend, DbConnection, DbPool};

use crate::change_feed::{ChangeFeed, VmEvent};

/// Why a write did not happen. Nothing was written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The message named a VM that does not exist.
    #[error("no VM is named `{0}`")]
    UnknownVm(String),
    /// No connection could be had from the pool.
    #[error("database unavailable: {0}")]
    Unavailable(#[from] diesel::r2d2::PoolError),
    /// The database refused or failed the statement.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
}

/// The writer actor; see the module documentation.
pub struct DbWriter {
    pool: DbPool,
    backend: Backend,
    /// Publishes after commit; used on SQLite only.
    feed: Arc<dyn ChangeFeed>,
}

impl std::fmt::Debug for DbWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbWriter")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl DbWriter {
    /// Starts the writer threads. On SQLite there is exactly one, because SQLite allows one
    /// writer at a time and a single thread serialises writes without lock contention.
    pub fn start(
        pool: DbPool,
        backend: Backend,
        feed: Arc<dyn ChangeFeed>,
        postgres_threads: usize,
    ) -> Addr<DbWriter> {
        let threads = match backend {
            Backend::Postgres => postgres_threads.max(1),
            Backend::Sqlite => 1,
        };
        SyncArbiter::start(threads, move || DbWriter {
            pool: pool.clone(),
            backend,
            feed: feed.clone(),
        })
    }

    /// Runs `write` in one transaction; after it commits, announces that `changed_vm`
    /// changed (SQLite only: on PostgreSQL the trigger announces it to every process).
    fn in_transaction<T>(
        &self,
        changed_vm: Option<&str>,
        write: impl FnOnce(&mut DbConnection) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        let mut conn = self.pool.get()?;
        let conn: &mut DbConnection = &mut conn;
        let result = conn.transaction(write);
        if let (Ok(_), Some(hostname), Backend::Sqlite) = (&result, changed_vm, self.backend) {
            self.feed.publish(VmEvent::Changed {
                hostname: hostname.to_owned(),
            });
        }
        if let Err(err) = &result {
            if !matches!(err, WriteError::UnknownVm(_)) {
                tracing::error!(error = %err, "database write failed");
            }
        }
        result
    }
}

impl Actor for DbWriter {
    type Context = SyncContext<Self>;
}

/// Register a VM, or record the status it reports (`POST /api/vm-status`).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vm, WriteError>")]
pub struct ReportVmStatus {
    pub hostname: String,
    pub status: VmStatus,
}

impl Handler<ReportVmStatus> for DbWriter {
    type Result = Result<Vm, WriteError>;

    fn handle(&mut self, msg: ReportVmStatus, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(Some(&msg.hostname), |conn| {
            Ok(Vm::upsert_status(
                conn,
                &msg.hostname,
                msg.status,
                Utc::now().naive_utc(),
            )?)
        })
    }
}

/// Record a VM's GPU health (`POST /api/gpu_health`).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vm, WriteError>")]
pub struct ReportGpuHealth {
    pub hostname: String,
    pub health: GpuHealth,
}

impl Handler<ReportGpuHealth> for DbWriter {
    type Result = Result<Vm, WriteError>;

    fn handle(&mut self, msg: ReportGpuHealth, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(Some(&msg.hostname), |conn| {
            Vm::set_gpu_health(conn, &msg.hostname, msg.health, Utc::now().naive_utc())?
                .ok_or_else(|| WriteError::UnknownVm(msg.hostname.clone()))
        })
    }
}

/// Record whether the research software runs on a VM (`POST /api/update_inuse_status`).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vm, WriteError>")]
pub struct ReportInUse {
    pub hostname: String,
    pub in_use: bool,
}

impl Handler<ReportInUse> for DbWriter {
    type Result = Result<Vm, WriteError>;

    fn handle(&mut self, msg: ReportInUse, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(Some(&msg.hostname), |conn| {
            Vm::set_in_use(conn, &msg.hostname, msg.in_use, Utc::now().naive_utc())?
                .ok_or_else(|| WriteError::UnknownVm(msg.hostname.clone()))
        })
    }
}

/// Append log lines for a VM (`POST /api/vm-logs`). Returns how many were stored.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, WriteError>")]
pub struct AppendVmLogs {
    pub hostname: String,
    pub lines: Vec<String>,
}

impl Handler<AppendVmLogs> for DbWriter {
    type Result = Result<usize, WriteError>;

    fn handle(&mut self, msg: AppendVmLogs, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            if Vm::find_by_hostname(conn, &msg.hostname)?.is_none() {
                return Err(WriteError::UnknownVm(msg.hostname.clone()));
            }
            Ok(VmLogLine::append(
                conn,
                &msg.hostname,
                &msg.lines,
                Utc::now().naive_utc(),
            )?)
        })
    }
}

/// Record an action in the audit trail.
#[derive(Debug, Message)]
#[rtype(result = "Result<AuditEvent, WriteError>")]
pub struct RecordAuditEvent(pub NewAuditEvent);

impl Handler<RecordAuditEvent> for DbWriter {
    type Result = Result<AuditEvent, WriteError>;

    fn handle(&mut self, msg: RecordAuditEvent, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| Ok(AuditEvent::record(conn, &msg.0)?))
    }
}
