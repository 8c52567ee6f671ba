//! The writer's lifecycle messages: a VM's state change as its supervisor or an admin
//! decided it, each a compare-and-set on the state it was decided on (see
//! [`lablink_schema::vm_lifecycle`]), and an admin's change recorded in the audit trail in
//! the same transaction.

use actix::{Handler, Message};
use chrono::Utc;
use lablink_schema::audit_events::{AuditEvent, NewAuditEvent};
use lablink_schema::vm_lifecycle::{ReadState, Transition};
use lablink_schema::vms::Vm;

use crate::db_writer::{DbWriter, WriteError};

/// Who asked for a change, when an admin did: recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAsked {
    pub actor: String,
    /// The audit action, e.g. `vm.replace`.
    pub action: String,
}

/// Change a VM's lifecycle state if it is still as `read`. Answers the new row, or `None`
/// when the VM is gone or its state changed meanwhile (nothing written then).
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Vm>, WriteError>")]
pub struct ChangeVmState {
    pub hostname: String,
    pub read: ReadState,
    pub change: Transition,
    pub asked_by: Option<AdminAsked>,
}

impl Handler<ChangeVmState> for DbWriter {
    type Result = Result<Option<Vm>, WriteError>;

    fn handle(&mut self, msg: ChangeVmState, _: &mut Self::Context) -> Self::Result {
        let ChangeVmState {
            hostname,
            read,
            change,
            asked_by,
        } = msg;
        self.in_transaction(Some(&hostname), |conn| {
            let now = Utc::now().naive_utc();
            let vm = Vm::transition(conn, &hostname, read, &change, now)?;
            if let (Some(_), Some(asked)) = (&vm, asked_by) {
                AuditEvent::record(
                    conn,
                    &NewAuditEvent {
                        occurred_at: now,
                        actor: asked.actor,
                        action: asked.action,
                        target: Some(hostname.clone()),
                        detail: Some(change.reason.clone()),
                    },
                )?;
            }
            Ok(vm)
        })
    }
}

/// Lift a VM's GPU quarantine (admin). Answers the new row, or `None` when the VM is not
/// quarantined; audited in the same transaction.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Vm>, WriteError>")]
pub struct ClearQuarantine {
    pub hostname: String,
    pub actor: String,
}

impl Handler<ClearQuarantine> for DbWriter {
    type Result = Result<Option<Vm>, WriteError>;

    fn handle(&mut self, msg: ClearQuarantine, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(Some(&msg.hostname), |conn| {
            let now = Utc::now().naive_utc();
            let reason = format!(
                "quarantine cleared by {}; waiting for the GPU to report healthy",
                msg.actor
            );
            let vm = Vm::clear_quarantine(conn, &msg.hostname, &reason, now)?;
            if vm.is_some() {
                AuditEvent::record(
                    conn,
                    &NewAuditEvent {
                        occurred_at: now,
                        actor: msg.actor.clone(),
                        action: "vm.clear_quarantine".to_owned(),
                        target: Some(msg.hostname.clone()),
                        detail: None,
                    },
                )?;
            }
            Ok(vm)
        })
    }
}
