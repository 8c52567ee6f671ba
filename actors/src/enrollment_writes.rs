//! The writer's enrollment messages: making and revoking enrollment tokens, and a VM joining
//! with one (or token-less under the legacy switch). Each is one transaction together with
//! its audit record, so no use of a token goes unrecorded.

use actix::{Handler, Message};
use chrono::{NaiveDateTime, Utc};
use lablink_schema::audit_events::{AuditEvent, NewAuditEvent};
use lablink_schema::connection::write_transaction;
use lablink_schema::enrollment::{
    self, EnrollRefusal, EnrollVia, EnrollmentToken, NewEnrollmentToken,
};
use lablink_schema::vms::Vm;
use lablink_schema::wire::VmStatus;

use crate::db_writer::{DbWriter, WriteError};

fn audit(
    conn: &mut lablink_schema::DbConnection,
    now: NaiveDateTime,
    actor: &str,
    action: &str,
    target: Option<String>,
    detail: Option<String>,
) -> Result<(), WriteError> {
    AuditEvent::record(
        conn,
        &NewAuditEvent {
            occurred_at: now,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target,
            detail,
        },
    )?;
    Ok(())
}

/// Store a new enrollment token (its hash) and audit it.
#[derive(Debug, Message)]
#[rtype(result = "Result<EnrollmentToken, WriteError>")]
pub struct CreateEnrollmentToken {
    pub token: NewEnrollmentToken,
}

impl Handler<CreateEnrollmentToken> for DbWriter {
    type Result = Result<EnrollmentToken, WriteError>;

    fn handle(&mut self, msg: CreateEnrollmentToken, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            let token = EnrollmentToken::create(conn, &msg.token)?;
            let mut detail = format!("label {:?}", token.label);
            if let Some(at) = token.expires_at {
                detail.push_str(&format!(", expires {}", at.format("%Y-%m-%d %H:%M UTC")));
            }
            if let Some(max) = token.max_uses {
                detail.push_str(&format!(", at most {max} uses"));
            }
            audit(
                conn,
                token.created_at,
                &token.created_by,
                "enrollment_token.create",
                Some(format!("enrollment token {}", token.id)),
                Some(detail),
            )?;
            Ok(token)
        })
    }
}

/// Revoke an enrollment token; `None` if there is no such token.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<EnrollmentToken>, WriteError>")]
pub struct RevokeEnrollmentToken {
    pub id: i64,
    pub actor: String,
}

impl Handler<RevokeEnrollmentToken> for DbWriter {
    type Result = Result<Option<EnrollmentToken>, WriteError>;

    fn handle(&mut self, msg: RevokeEnrollmentToken, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            let now = Utc::now().naive_utc();
            let Some(token) = EnrollmentToken::revoke(conn, msg.id, now)? else {
                return Ok(None);
            };
            audit(
                conn,
                now,
                &msg.actor,
                "enrollment_token.revoke",
                Some(format!("enrollment token {}", token.id)),
                Some(format!("label {:?}", token.label)),
            )?;
            Ok(Some(token))
        })
    }
}

/// A VM joins by itself. Answers the refusal (nothing written) or the new row.
#[derive(Debug, Message)]
#[rtype(result = "Result<Result<Vm, EnrollRefusal>, WriteError>")]
pub struct EnrollVm {
    pub hostname: String,
    pub status: VmStatus,
    /// The hash of the enrollment token presented; `None` for a legacy token-less agent.
    pub enrollment_token_hash: Option<String>,
    /// The hash of the VM's own new token; `None` for a legacy agent.
    pub vm_token_hash: Option<String>,
    /// Most VMs that may have joined by themselves.
    pub limit: i64,
}

/// Rolls the enrollment back while carrying the refusal out of the transaction.
enum Outcome {
    Refused(EnrollRefusal),
    Failed(WriteError),
}

impl From<diesel::result::Error> for Outcome {
    fn from(err: diesel::result::Error) -> Self {
        Outcome::Failed(err.into())
    }
}

impl Handler<EnrollVm> for DbWriter {
    type Result = Result<Result<Vm, EnrollRefusal>, WriteError>;

    fn handle(&mut self, msg: EnrollVm, _: &mut Self::Context) -> Self::Result {
        let now = Utc::now().naive_utc();
        let via = match &msg.enrollment_token_hash {
            Some(hash) => EnrollVia::Token(hash),
            None => EnrollVia::Legacy,
        };
        let mut conn = self.pool.get()?;
        let conn: &mut lablink_schema::DbConnection = &mut conn;
        let result = write_transaction::<_, Outcome>(conn, |conn| {
            let (vm, token) = enrollment::enroll(
                conn,
                via,
                &msg.hostname,
                msg.status,
                msg.vm_token_hash.as_deref(),
                msg.limit,
                now,
            )?
            .map_err(Outcome::Refused)?;
            let detail = match &token {
                Some(token) => format!(
                    "with enrollment token {} ({:?}), use {}{}",
                    token.id,
                    token.label,
                    token.uses,
                    token
                        .max_uses
                        .map(|m| format!(" of {m}"))
                        .unwrap_or_default()
                ),
                None => "token-less, under clients.legacy_unauthenticated".to_owned(),
            };
            audit(
                conn,
                now,
                &format!("vm:{}", msg.hostname),
                "vm.enroll",
                Some(msg.hostname.clone()),
                Some(detail),
            )
            .map_err(Outcome::Failed)?;
            Ok(vm)
        });
        match result {
            Ok(vm) => {
                self.announce(&vm.hostname);
                Ok(Ok(vm))
            }
            Err(Outcome::Refused(refusal)) => Ok(Err(refusal)),
            Err(Outcome::Failed(err)) => {
                tracing::error!(error = %err, "enrollment failed");
                Err(err)
            }
        }
    }
}
