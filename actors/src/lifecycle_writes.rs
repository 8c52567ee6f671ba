//! The writer's lifecycle messages: a VM's state change as its supervisor or an admin
//! decided it, each a compare-and-set on the state it was decided on (see
//! [`lablink_schema::vm_lifecycle`]), and an admin's change recorded in the audit trail in
//! the same transaction.

use actix::{Handler, Message};
use chrono::Utc;
use lablink_schema::audit_events::{AuditEvent, NewAuditEvent};
use lablink_schema::boot_failures::{settings_key, BootFailureStreak};
use lablink_schema::outbox::NewEvent;
use lablink_schema::vm_lifecycle::{ReadState, Transition};
use lablink_schema::vm_usage;
use lablink_schema::vms::Vm;
use lablink_schema::wire::LifecycleState;

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
            if let Some(vm) = &vm {
                if change.to == LifecycleState::Ready {
                    vm_usage::ready(conn, &hostname, now)?;
                    // A VM of these settings boots: failed boots no longer count in a row.
                    BootFailureStreak::reset(conn, &settings_key(vm.workshop_id))?;
                }
                if let Some(event) = lifecycle_event(vm, read.state, &change) {
                    self.notify(conn, &event, now)?;
                }
            }
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

/// The notification a state change causes, if any: a VM that broke, came back, or is being
/// replaced.
fn lifecycle_event(vm: &Vm, from: LifecycleState, change: &Transition) -> Option<NewEvent> {
    let to = change.to;
    let (kind, subject) = if to.blocks_assignment() && !from.blocks_assignment() {
        match to {
            LifecycleState::Replacing => {
                ("vm.replaced", format!("{} is being replaced", vm.hostname))
            }
            LifecycleState::Recovering | LifecycleState::Destroyed => return None,
            _ => (
                "vm.failed",
                format!("{} is {}: {}", vm.hostname, to.as_str(), change.reason),
            ),
        }
    } else if to == LifecycleState::Replacing {
        ("vm.replaced", format!("{} is being replaced", vm.hostname))
    } else if from.blocks_assignment()
        && matches!(
            to,
            LifecycleState::Ready | LifecycleState::Assigned | LifecycleState::InUse
        )
    {
        (
            "vm.recovered",
            format!("{} recovered: {}", vm.hostname, change.reason),
        )
    } else {
        return None;
    };
    let mut event = NewEvent::new(kind, subject)
        .for_vm(&vm.hostname)
        .with_details(serde_json::json!({
            "from": from.as_str(),
            "to": to.as_str(),
            "reason": change.reason,
            "assigned": vm.user_email.is_some(),
        }));
    if let Some(workshop) = vm.workshop_id {
        event = event.for_workshop(workshop);
    }
    Some(event)
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

/// Set (or clear) the warning of the session of assignment `assignment_seq`; answers whether
/// that assignment still holds the VM.
#[derive(Debug, Message)]
#[rtype(result = "Result<bool, WriteError>")]
pub struct SetSessionNotice {
    pub hostname: String,
    pub assignment_seq: i64,
    pub notice: Option<String>,
}

impl Handler<SetSessionNotice> for DbWriter {
    type Result = Result<bool, WriteError>;

    fn handle(&mut self, msg: SetSessionNotice, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            Ok(Vm::set_session_notice(
                conn,
                &msg.hostname,
                msg.assignment_seq,
                msg.notice.as_deref(),
            )?)
        })
    }
}

/// End a session its limits ended (idle, or its time is up), if nothing happened since it
/// was judged (see [`Vm::release_session`]); audited and notified in the same transaction.
/// Answers the released row, or `None` when the participant was active meanwhile.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Vm>, WriteError>")]
pub struct ReleaseSession {
    pub hostname: String,
    pub assignment_seq: i64,
    pub last_active_at: Option<chrono::NaiveDateTime>,
    pub why: String,
}

impl Handler<ReleaseSession> for DbWriter {
    type Result = Result<Option<Vm>, WriteError>;

    fn handle(&mut self, msg: ReleaseSession, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(Some(&msg.hostname), |conn| {
            let now = Utc::now().naive_utc();
            let Some(before) = Vm::find_by_hostname(conn, &msg.hostname)? else {
                return Ok(None);
            };
            let Some(released) = Vm::release_session(
                conn,
                &msg.hostname,
                msg.assignment_seq,
                msg.last_active_at,
                now,
            )?
            else {
                return Ok(None);
            };
            let held_by = before.user_email.unwrap_or_default();
            AuditEvent::record(
                conn,
                &NewAuditEvent {
                    occurred_at: now,
                    actor: crate::vm_actor::SUPERVISOR.to_owned(),
                    action: "vm.release".to_owned(),
                    target: Some(msg.hostname.clone()),
                    detail: Some(format!("released from {held_by}: {}", msg.why)),
                },
            )?;
            let mut event = NewEvent::new(
                "vm.session_released",
                format!(
                    "{}: the session of {held_by} was released ({})",
                    msg.hostname, msg.why
                ),
            )
            .for_vm(&msg.hostname)
            .with_details(serde_json::json!({ "why": msg.why }));
            if let Some(workshop) = released.workshop_id {
                event = event.for_workshop(workshop);
            }
            self.notify(conn, &event, now)?;
            Ok(Some(released))
        })
    }
}

/// The participant of the browser with this claimer says they are still there: the idle
/// clock starts again and the warning goes. Answers their VM, or `None` when they hold none.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Vm>, WriteError>")]
pub struct ExtendSession {
    pub claimed_by: String,
}

impl Handler<ExtendSession> for DbWriter {
    type Result = Result<Option<Vm>, WriteError>;

    fn handle(&mut self, msg: ExtendSession, _: &mut Self::Context) -> Self::Result {
        let extended = self.in_transaction(None, |conn| {
            Ok(Vm::extend_session(
                conn,
                &msg.claimed_by,
                Utc::now().naive_utc(),
            )?)
        });
        // Its actor looks again: the release it planned is off.
        if let Ok(Some(vm)) = &extended {
            self.announce(&vm.hostname);
        }
        extended
    }
}

/// An admin takes a free VM over for a browser desktop of their own, until `until`; audited
/// in the same transaction. Answers the VM, or `None` when it is not free (any more).
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Vm>, WriteError>")]
pub struct TakeOverVm {
    pub hostname: String,
    /// Who holds it, as the dashboard shows it in place of a participant's email.
    pub holder: String,
    pub pin: String,
    pub until: chrono::NaiveDateTime,
    /// The admin, as the audit trail names them.
    pub actor: String,
}

impl Handler<TakeOverVm> for DbWriter {
    type Result = Result<Option<Vm>, WriteError>;

    fn handle(&mut self, msg: TakeOverVm, _: &mut Self::Context) -> Self::Result {
        let now = Utc::now().naive_utc();
        let taken = self.in_transaction(None, |conn| {
            let Some(vm) =
                Vm::take_over(conn, &msg.hostname, &msg.holder, &msg.pin, msg.until, now)?
            else {
                return Ok(None);
            };
            AuditEvent::record(
                conn,
                &NewAuditEvent {
                    occurred_at: now,
                    actor: msg.actor.clone(),
                    action: "vm.desktop.take_over".to_owned(),
                    target: Some(vm.hostname.clone()),
                    detail: Some(format!(
                        "until {}",
                        msg.until.format("%Y-%m-%d %H:%M:%S UTC")
                    )),
                },
            )?;
            Ok(Some(vm))
        });
        // Its actor reads the row, and with it the end of the take-over.
        if let Ok(Some(vm)) = &taken {
            self.announce(&vm.hostname);
        }
        taken
    }
}
