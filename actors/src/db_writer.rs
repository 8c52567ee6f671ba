//! `DbWriter`: the allocator's only writer. A `SyncArbiter` of threads, each taking one
//! message at a time and doing its write in one transaction, so HTTP workers never block on
//! the database and a failed write leaves nothing half-done.
//!
//! On SQLite there is no NOTIFY, so the writer itself publishes a [`VmEvent`] after each
//! commit that changed a VM; on PostgreSQL the table trigger does it for every process.

use lablink_schema::connection::write_transaction;
use std::sync::Arc;

use actix::{Actor, Addr, Handler, Message, SyncArbiter, SyncContext};
use chrono::Utc;
use lablink_schema::admin_sessions::AdminSession;
use lablink_schema::app_secrets;
use lablink_schema::audit_events::{AuditEvent, NewAuditEvent};
use lablink_schema::operations::{NewOperation, Operation, OperationState};
use lablink_schema::outbox::NewEvent;
use lablink_schema::vm_logs::{Appended, NewLogLine, Retention, VmLogLine};
use lablink_schema::vm_usage;
use lablink_schema::vms::Vm;
use lablink_schema::wire::VmStatus;
use lablink_schema::{Backend, DbConnection, DbPool};

use crate::change_feed::{ChangeFeed, VmEvent};

/// Why a write did not happen. Nothing was written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The message named a VM that does not exist.
    #[error("no VM is named `{0}`")]
    UnknownVm(String),
    /// No VM can be handed out right now.
    #[error("no VM is free")]
    NoFreeVm,
    /// Free VMs exist but every attempt to claim one met concurrent claims; retrying later
    /// will work.
    #[error("VMs are being claimed concurrently; try again")]
    Contended,
    /// No connection could be had from the pool.
    #[error("database unavailable: {0}")]
    Unavailable(#[from] diesel::r2d2::PoolError),
    /// The database refused or failed the statement.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// The transaction of a batch of claims failed as a whole (see `ClaimBatcher`).
    #[error("database error in a batch of claims: {0}")]
    Batch(String),
    /// The allocator is stopping; the write was not done.
    #[error("the allocator is stopping")]
    Stopped,
}

impl WriteError {
    /// Refusals that are an answer to the client, not a fault to log.
    pub fn is_expected(&self) -> bool {
        match self {
            WriteError::UnknownVm(_) | WriteError::NoFreeVm | WriteError::Contended => true,
            WriteError::Unavailable(_)
            | WriteError::Database(_)
            | WriteError::Batch(_)
            | WriteError::Stopped => false,
        }
    }
}

/// The writer actor; see the module documentation.
pub struct DbWriter {
    pub(crate) pool: DbPool,
    backend: Backend,
    /// Publishes after commit; used on SQLite only.
    feed: Arc<dyn ChangeFeed>,
    /// The notification channels each outbox event gets a delivery for.
    pub(crate) channels: Arc<[String]>,
}

impl std::fmt::Debug for DbWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbWriter")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// How many threads one of the writers (this one, the claim and report batchers) runs:
/// `postgres` on PostgreSQL, one on SQLite, which allows one writer at a time.
pub fn writer_threads(backend: Backend, postgres: usize) -> usize {
    match backend {
        Backend::Postgres => postgres.max(1),
        Backend::Sqlite => 1,
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
        Self::start_with_channels(pool, backend, feed, postgres_threads, Vec::new())
    }

    /// [`DbWriter::start`], with the notification channels that every outbox event is
    /// delivered to (see [`crate::workshop_writes`]).
    pub fn start_with_channels(
        pool: DbPool,
        backend: Backend,
        feed: Arc<dyn ChangeFeed>,
        postgres_threads: usize,
        channels: Vec<String>,
    ) -> Addr<DbWriter> {
        let feed = crate::change_feed::for_writer(backend, feed);
        let channels: Arc<[String]> = channels.into();
        SyncArbiter::start(writer_threads(backend, postgres_threads), move || {
            DbWriter {
                pool: pool.clone(),
                backend,
                feed: feed.clone(),
                channels: channels.clone(),
            }
        })
    }

    /// Announces that `hostname` changed (where the database does not already: see
    /// [`crate::change_feed::for_writer`]).
    pub(crate) fn announce(&self, hostname: &str) {
        self.feed.publish(VmEvent::Changed {
            hostname: hostname.to_owned(),
        });
    }

    /// Runs `write` in one transaction; after it commits, announces that `changed_vm`
    /// changed (SQLite only: on PostgreSQL the trigger announces it to every process).
    pub(crate) fn in_transaction<T>(
        &self,
        changed_vm: Option<&str>,
        write: impl FnOnce(&mut DbConnection) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        let mut conn = self.pool.get()?;
        let conn: &mut DbConnection = &mut conn;
        let result = write_transaction(conn, write);
        if let (Ok(_), Some(hostname)) = (&result, changed_vm) {
            self.announce(hostname);
        }
        if let Err(err) = &result {
            if !err.is_expected() {
                tracing::error!(error = %err, "database write failed");
            }
        }
        result
    }
}

impl Actor for DbWriter {
    type Context = SyncContext<Self>;
}

/// Append log lines for a VM (`POST /api/vm-logs`), then trim its oldest lines past
/// `retention`.
#[derive(Debug, Message)]
#[rtype(result = "Result<Appended, WriteError>")]
pub struct AppendVmLogs {
    pub hostname: String,
    /// The agent's spool the lines are numbered in, if they are.
    pub stream: Option<String>,
    pub lines: Vec<NewLogLine>,
    pub retention: Retention,
}

impl Handler<AppendVmLogs> for DbWriter {
    type Result = Result<Appended, WriteError>;

    fn handle(&mut self, msg: AppendVmLogs, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            if Vm::find_by_hostname(conn, &msg.hostname)?.is_none() {
                return Err(WriteError::UnknownVm(msg.hostname.clone()));
            }
            Ok(VmLogLine::append(
                conn,
                &msg.hostname,
                msg.stream.as_deref(),
                &msg.lines,
                Utc::now().naive_utc(),
                &msg.retention,
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

/// End a VM's session (admin): the researcher is cleared and the VM is handed out again
/// once its agent reports it ready. Recorded in the audit trail in the same transaction.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vm, WriteError>")]
pub struct ReleaseVm {
    pub hostname: String,
    /// Who asked, for the audit trail.
    pub actor: String,
}

impl Handler<ReleaseVm> for DbWriter {
    type Result = Result<Vm, WriteError>;

    fn handle(&mut self, msg: ReleaseVm, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(Some(&msg.hostname), |conn| {
            let now = Utc::now().naive_utc();
            let held_by = Vm::find_by_hostname(conn, &msg.hostname)?
                .ok_or_else(|| WriteError::UnknownVm(msg.hostname.clone()))?
                .user_email;
            let vm = Vm::release(conn, &msg.hostname, now)?
                .ok_or_else(|| WriteError::UnknownVm(msg.hostname.clone()))?;
            AuditEvent::record(
                conn,
                &NewAuditEvent {
                    occurred_at: now,
                    actor: msg.actor.clone(),
                    action: "vm.release".to_owned(),
                    target: Some(msg.hostname.clone()),
                    detail: held_by.map(|email| format!("released from {email}")),
                },
            )?;
            Ok(vm)
        })
    }
}

/// Store a provisioning operation before it runs; returns it with its id.
#[derive(Debug, Message)]
#[rtype(result = "Result<Operation, WriteError>")]
pub struct QueueOperation(pub NewOperation);

impl Handler<QueueOperation> for DbWriter {
    type Result = Result<Operation, WriteError>;

    fn handle(&mut self, msg: QueueOperation, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| Ok(Operation::insert(conn, &msg.0)?))
    }
}

/// Mark an operation as started.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), WriteError>")]
pub struct StartOperation(pub i64);

impl Handler<StartOperation> for DbWriter {
    type Result = Result<(), WriteError>;

    fn handle(&mut self, msg: StartOperation, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            Operation::mark_running(conn, msg.0, Utc::now().naive_utc())?;
            Ok(())
        })
    }
}

/// Mark an operation as finished, keeping the tail of its output.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), WriteError>")]
pub struct FinishOperation {
    pub id: i64,
    pub state: OperationState,
    pub error: Option<String>,
    pub output_tail: String,
}

impl Handler<FinishOperation> for DbWriter {
    type Result = Result<(), WriteError>;

    fn handle(&mut self, msg: FinishOperation, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            let now = Utc::now().naive_utc();
            let finished = Operation::finish(
                conn,
                msg.id,
                msg.state,
                msg.error.as_deref(),
                &msg.output_tail,
                now,
            )?;
            if finished == 1 && msg.state == OperationState::Failed {
                let operation = Operation::find_by_id(conn, msg.id)?;
                let mut event = NewEvent::new(
                    "provisioning.failed",
                    format!(
                        "Provisioning operation {} failed: {}",
                        msg.id,
                        msg.error.as_deref().unwrap_or("no reason given")
                    ),
                )
                .with_details(serde_json::json!({
                    "operation_id": msg.id,
                    "kind": operation.as_ref().map(|o| o.kind.clone()),
                    "error": msg.error,
                }));
                if let Some(workshop) = operation.and_then(|o| o.workshop_id) {
                    event = event.for_workshop(workshop);
                }
                self.notify(conn, &event, now)?;
            }
            Ok(())
        })
    }
}

/// Take over the unfinished operations nobody holds: no lease, a lease that ran out, or a
/// holder on this machine that is gone. They are leased to `owner` until `until`; returns
/// them, to be run again.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Operation>, WriteError>")]
pub struct TakeOverAbandonedOperations {
    pub owner: String,
    pub until: chrono::NaiveDateTime,
}

impl Handler<TakeOverAbandonedOperations> for DbWriter {
    type Result = Result<Vec<Operation>, WriteError>;

    fn handle(&mut self, msg: TakeOverAbandonedOperations, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            Ok(Operation::take_over_abandoned(
                conn,
                &msg.owner,
                msg.until,
                Utc::now().naive_utc(),
                &crate::lease::may_be_alive,
            )?)
        })
    }
}

/// Give these VMs new token hashes (a resumed creation re-mints the tokens of the VMs the
/// interrupted run had not made yet: their tokens were never kept).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), WriteError>")]
pub struct SetVmTokens {
    pub vms: Vec<(String, String)>,
}

impl Handler<SetVmTokens> for DbWriter {
    type Result = Result<(), WriteError>;

    fn handle(&mut self, msg: SetVmTokens, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            for (hostname, hash) in &msg.vms {
                Vm::set_token_hash(conn, hostname, hash)?;
            }
            Ok(())
        })
    }
}

/// Extend this allocator's leases on the operations it holds (queued or running).
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, WriteError>")]
pub struct RenewOperationLeases {
    pub owner: String,
    pub ids: Vec<i64>,
    pub until: chrono::NaiveDateTime,
}

impl Handler<RenewOperationLeases> for DbWriter {
    type Result = Result<usize, WriteError>;

    fn handle(&mut self, msg: RenewOperationLeases, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            Ok(Operation::renew_leases(
                conn, &msg.owner, &msg.ids, msg.until,
            )?)
        })
    }
}

/// Record the hostnames an operation works on.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), WriteError>")]
pub struct RecordOperationTargets {
    pub id: i64,
    pub hostnames: Vec<String>,
}

impl Handler<RecordOperationTargets> for DbWriter {
    type Result = Result<(), WriteError>;

    fn handle(&mut self, msg: RecordOperationTargets, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            Operation::set_targets(conn, msg.id, &msg.hostnames)?;
            Ok(())
        })
    }
}

/// Add VMs that provisioning is about to create, each with the hash of the token it will
/// be given, so their agents can act from their first request.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), WriteError>")]
pub struct AddProvisionedVms {
    /// (hostname, token hash)
    pub vms: Vec<(String, String)>,
    /// The workshop they are made for.
    pub workshop_id: Option<i64>,
}

impl Handler<AddProvisionedVms> for DbWriter {
    type Result = Result<(), WriteError>;

    fn handle(&mut self, msg: AddProvisionedVms, _: &mut Self::Context) -> Self::Result {
        let result = self.in_transaction(None, |conn| {
            let now = Utc::now().naive_utc();
            for (hostname, token_hash) in &msg.vms {
                Vm::upsert_status(
                    conn,
                    hostname,
                    VmStatus::Initializing,
                    Some(token_hash),
                    now,
                )?;
                Vm::set_workshop(conn, hostname, msg.workshop_id)?;
            }
            let names: Vec<String> = msg.vms.iter().map(|(name, _)| name.clone()).collect();
            vm_usage::made(conn, &names, msg.workshop_id, now)?;
            Ok(())
        });
        for (hostname, _) in &msg.vms {
            if result.is_ok() {
                self.announce(hostname);
            }
        }
        result
    }
}

/// Remove VMs that provisioning destroyed (or never created); their log lines go with them.
#[derive(Debug, Message)]
#[rtype(result = "Result<usize, WriteError>")]
pub struct RemoveVms {
    pub hostnames: Vec<String>,
}

impl Handler<RemoveVms> for DbWriter {
    type Result = Result<usize, WriteError>;

    fn handle(&mut self, msg: RemoveVms, _: &mut Self::Context) -> Self::Result {
        let result = self.in_transaction(None, |conn| {
            let mut removed = 0;
            for hostname in &msg.hostnames {
                removed += usize::from(Vm::delete(conn, hostname)?);
            }
            vm_usage::gone(conn, &msg.hostnames, Utc::now().naive_utc())?;
            Ok(removed)
        });
        if result.is_ok() {
            for hostname in &msg.hostnames {
                self.announce(hostname);
            }
        }
        result
    }
}

/// Store a generated secret unless one is stored already; answers the stored value.
#[derive(Message)]
#[rtype(result = "Result<String, WriteError>")]
pub struct StoreSecret {
    pub name: &'static str,
    pub value: String,
}

impl std::fmt::Debug for StoreSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSecret")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Handler<StoreSecret> for DbWriter {
    type Result = Result<String, WriteError>;

    fn handle(&mut self, msg: StoreSecret, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            Ok(app_secrets::get_or_insert(
                conn,
                msg.name,
                &msg.value,
                Utc::now().naive_utc(),
            )?)
        })
    }
}

/// Store a new signed-in admin session (and forget expired ones).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), WriteError>")]
pub struct StartAdminSession(pub AdminSession);

impl Handler<StartAdminSession> for DbWriter {
    type Result = Result<(), WriteError>;

    fn handle(&mut self, msg: StartAdminSession, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            AdminSession::delete_expired(conn, Utc::now().naive_utc())?;
            Ok(AdminSession::create(conn, &msg.0)?)
        })
    }
}

/// Use a sign-in nonce once; answers `false` if it was used before.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, WriteError>")]
pub struct UseLoginNonce {
    pub nonce_hash: String,
    pub expires_at: chrono::NaiveDateTime,
}

impl Handler<UseLoginNonce> for DbWriter {
    type Result = Result<bool, WriteError>;

    fn handle(&mut self, msg: UseLoginNonce, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            Ok(lablink_schema::admin_sessions::use_login_nonce(
                conn,
                &msg.nonce_hash,
                msg.expires_at,
                Utc::now().naive_utc(),
            )?)
        })
    }
}

/// End an admin session (logout).
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, WriteError>")]
pub struct EndAdminSession {
    pub id_hash: String,
}

impl Handler<EndAdminSession> for DbWriter {
    type Result = Result<bool, WriteError>;

    fn handle(&mut self, msg: EndAdminSession, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| Ok(AdminSession::delete(conn, &msg.id_hash)?))
    }
}
