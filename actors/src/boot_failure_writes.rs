//! The writer's side of the replacements' back-off ([`lablink_schema::boot_failures`]): before
//! the supervisor replaces a VM that never became ready, one transaction decides whether the
//! replacement is made now (and counted), later (the VM waits, out of the pool, until then),
//! or not at all (the VM is quarantined with the reason, the settings' banner is raised and the
//! admins are notified). VMs that were ready once are replaced as always.

use std::time::Duration;

use actix::{Handler, Message};
use chrono::Utc;
use lablink_schema::boot_failures::{
    defer_replacement, never_ready, settings_key, BootFailureStreak, ReplacementGate,
};
use lablink_schema::operations::{NewOperation, Operation, OperationKind, OperationState};
use lablink_schema::outbox::NewEvent;
use lablink_schema::vm_lifecycle::{ReadState, Transition};
use lablink_schema::vms::Vm;
use lablink_schema::wire::LifecycleState;

use crate::db_writer::{DbWriter, WriteError};

/// What became of a replacement the supervisor asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplacementDecision {
    /// Replace it now.
    Proceed,
    /// The VM waits until then (written).
    Deferred(chrono::NaiveDateTime),
    /// No more replacements (written: the VM is quarantined, the admins notified).
    GaveUp,
    /// The VM is gone or its state changed meanwhile: nothing to do.
    Stale,
}

/// Decide, and record, whether the replacing VM `hostname` (read as `read`) is replaced now.
#[derive(Debug, Message)]
#[rtype(result = "Result<ReplacementDecision, WriteError>")]
pub struct GateReplacement {
    pub hostname: String,
    pub read: ReadState,
    pub boot_timeout: Duration,
    pub max_replacements: u32,
}

impl Handler<GateReplacement> for DbWriter {
    type Result = Result<ReplacementDecision, WriteError>;

    fn handle(&mut self, msg: GateReplacement, _: &mut Self::Context) -> Self::Result {
        let hostname = msg.hostname.clone();
        self.in_transaction(Some(&hostname), |conn| {
            let now = Utc::now().naive_utc();
            let Some(vm) = Vm::find_by_hostname(conn, &msg.hostname)? else {
                return Ok(ReplacementDecision::Stale);
            };
            if ReadState::of(&vm) != msg.read {
                return Ok(ReplacementDecision::Stale);
            }
            if !never_ready(conn, &vm.hostname)? {
                return Ok(ReplacementDecision::Proceed);
            }
            let key = settings_key(vm.workshop_id);
            let gate =
                BootFailureStreak::gate(conn, &key, msg.boot_timeout, msg.max_replacements, now)?;
            let why = vm
                .state_reason
                .strip_prefix("replaced: ")
                .unwrap_or(&vm.state_reason)
                .to_owned();
            match gate {
                ReplacementGate::Now => {
                    BootFailureStreak::count_replacement(conn, &key, &why, now)?;
                    Ok(ReplacementDecision::Proceed)
                }
                ReplacementGate::NotBefore(at) => {
                    let change = Transition {
                        to: LifecycleState::BootFailed,
                        reason: why,
                        recovery_attempts: vm.recovery_attempts,
                        next_action: Some(format!(
                            "replace it at {} UTC: VMs like it keep failing to boot, so each \
                             replacement waits twice as long as the one before",
                            at.format("%H:%M:%S")
                        )),
                    };
                    if Vm::transition(conn, &vm.hostname, msg.read, &change, now)?.is_none() {
                        return Ok(ReplacementDecision::Stale);
                    }
                    defer_replacement(conn, &vm.hostname, at)?;
                    Ok(ReplacementDecision::Deferred(at))
                }
                ReplacementGate::GiveUp { replacements } => {
                    let reason = format!(
                        "replacements stopped: {replacements} VMs in a row never became ready; \
                         the last failed with: {why}"
                    );
                    let change = Transition {
                        to: LifecycleState::Quarantined,
                        reason: reason.clone(),
                        recovery_attempts: vm.recovery_attempts,
                        next_action: Some(
                            "fix the image or the agent, then replace or destroy this VM; the \
                             count starts again when a VM becomes ready"
                                .to_owned(),
                        ),
                    };
                    if Vm::transition(conn, &vm.hostname, msg.read, &change, now)?.is_none() {
                        return Ok(ReplacementDecision::Stale);
                    }
                    if BootFailureStreak::give_up(conn, &key, &why, now)? {
                        // Said once, when they stop: the replacement not made, as a failed
                        // operation, and a notification.
                        let mut failed = NewOperation::queued(
                            OperationKind::Replace,
                            crate::vm_actor::SUPERVISOR,
                            now,
                        );
                        failed.targets = serde_json::to_string(&[&vm.hostname]).ok();
                        failed.workshop_id = vm.workshop_id;
                        let operation = Operation::insert(conn, &failed)?;
                        Operation::finish(
                            conn,
                            operation.id,
                            OperationState::Failed,
                            Some(&reason),
                            &reason,
                            now,
                        )?;
                        let mut event = NewEvent::new(
                            "vm.replacements_stopped",
                            format!("{}: {reason}", vm.hostname),
                        )
                        .for_vm(&vm.hostname)
                        .with_details(serde_json::json!({
                            "replacements": replacements,
                            "reason": why,
                        }));
                        if let Some(workshop) = vm.workshop_id {
                            event = event.for_workshop(workshop);
                        }
                        self.notify(conn, &event, now)?;
                    }
                    Ok(ReplacementDecision::GaveUp)
                }
            }
        })
    }
}
