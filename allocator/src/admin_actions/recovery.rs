//! Admin actions that recover a VM: see every VM's lifecycle, force a reboot, force a
//! replacement, clear a GPU quarantine. Each records the VM's new state and its audit
//! record in one transaction, a compare-and-set on the state the admin's request found, so an
//! action that races the VM's supervisor (or another admin) is refused instead of doubled.

use lablink_actors::lifecycle_writes::{AdminAsked, ChangeVmState, ClearQuarantine};
use lablink_actors::provisioning_queue::{RebootVm, ReplaceVm};
use lablink_schema::operations::Operation;
use lablink_schema::vm_lifecycle::{ReadState, Transition};
use lablink_schema::vms::Vm;
use lablink_schema::wire::{AdminVmView, LifecycleState};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::validate;

/// Every VM as the admin sees it, ordered by hostname.
pub async fn list(state: &AppState) -> Result<Vec<AdminVmView>, ApiError> {
    let vms = state.read(Vm::list_all).await?;
    Ok(vms.iter().map(Vm::admin_view).collect())
}

/// One VM as the admin sees it.
pub async fn show(state: &AppState, hostname: &str) -> Result<AdminVmView, ApiError> {
    Ok(existing(state, hostname).await?.admin_view())
}

async fn existing(state: &AppState, hostname: &str) -> Result<Vm, ApiError> {
    let hostname = validate::hostname(hostname).map_err(ApiError::BadRequest)?;
    state
        .find_vm(hostname)
        .await?
        .ok_or_else(ApiError::vm_not_found)
}

/// Refuses an action on a VM that is already going away.
fn refuse_if_leaving(vm: &Vm, action: &str) -> Result<(), ApiError> {
    match vm.state() {
        LifecycleState::Replacing | LifecycleState::Destroyed => Err(ApiError::Conflict(format!(
            "cannot {action} {}: it is {} ({})",
            vm.hostname,
            vm.state(),
            vm.state_reason
        ))),
        _ => Ok(()),
    }
}

/// Records `change` on `vm` if it is still as read, with the audit record; 409 when the
/// VM changed meanwhile.
async fn change_state(
    state: &AppState,
    caller: &Caller,
    vm: &Vm,
    change: Transition,
    action: &str,
) -> Result<Vm, ApiError> {
    state
        .writer
        .send(ChangeVmState {
            hostname: vm.hostname.clone(),
            read: ReadState::of(vm),
            change,
            asked_by: Some(AdminAsked {
                actor: caller.audit_name(),
                action: action.to_owned(),
            }),
        })
        .await??
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "{} changed state while this was asked; look again and retry",
                vm.hostname
            ))
        })
}

/// Reboots the VM now (the cloud's API, or the local provider's restart of the agent). The
/// VM is recovering until its agent reports again; the reboot counts as a recovery attempt.
pub async fn reboot(state: &AppState, caller: &Caller, hostname: &str) -> Result<Vm, ApiError> {
    let vm = existing(state, hostname).await?;
    refuse_if_leaving(&vm, "reboot")?;
    let change = Transition {
        to: LifecycleState::Recovering,
        reason: format!("reboot asked by {}", caller.audit_name()),
        recovery_attempts: vm.recovery_attempts.saturating_add(1),
        next_action: Some("wait for the agent to report again".to_owned()),
    };
    let rebooting = change_state(state, caller, &vm, change, "vm.reboot").await?;
    let rebooted = state
        .executor
        .send(RebootVm {
            hostname: vm.hostname.clone(),
        })
        .await?;
    if let Err(err) = rebooted {
        // Recorded on the VM too; its supervisor goes on from there.
        let failed = Transition {
            to: LifecycleState::Recovering,
            reason: format!("the reboot failed: {err}"),
            recovery_attempts: rebooting.recovery_attempts,
            next_action: Some("try again after the reboot timeout".to_owned()),
        };
        let _ = state
            .writer
            .send(ChangeVmState {
                hostname: vm.hostname.clone(),
                read: ReadState::of(&rebooting),
                change: failed,
                asked_by: None,
            })
            .await;
        return Err(ApiError::Unavailable(format!("the reboot failed: {err}")));
    }
    Ok(rebooting)
}

/// Replaces the VM: a new VM is created and this one destroyed, in one queued operation. An
/// assigned VM needs `confirm_assigned` (its participant loses it).
pub async fn replace(
    state: &AppState,
    caller: &Caller,
    hostname: &str,
    confirm_assigned: bool,
) -> Result<Operation, ApiError> {
    let vm = existing(state, hostname).await?;
    refuse_if_leaving(&vm, "replace")?;
    if let (Some(email), false) = (&vm.user_email, confirm_assigned) {
        return Err(ApiError::Conflict(format!(
            "{} is assigned to {email}; confirm to replace it anyway",
            vm.hostname
        )));
    }
    let change = Transition {
        to: LifecycleState::Replacing,
        reason: format!("replacement asked by {}", caller.audit_name()),
        recovery_attempts: vm.recovery_attempts,
        next_action: Some("create a new VM, then destroy this one".to_owned()),
    };
    change_state(state, caller, &vm, change, "vm.replace").await?;
    let operation = state
        .executor
        .send(ReplaceVm {
            hostname: vm.hostname.clone(),
            requested_by: caller.audit_name(),
        })
        .await??;
    Ok(operation)
}

/// Queues the replacement of a VM just released, so that the next participant gets a fresh
/// VM. A VM already broken is left to its supervisor.
pub(super) async fn replace_released(state: &AppState, vm: &Vm, why: &str) -> Result<(), ApiError> {
    // The VM's supervisor may record the release (back to booting) at the same moment: then
    // read again and decide on the newer state.
    let mut vm = vm.clone();
    for _ in 0..5 {
        if vm.state().blocks_assignment() {
            return Ok(());
        }
        let change = Transition {
            to: LifecycleState::Replacing,
            reason: why.to_owned(),
            recovery_attempts: vm.recovery_attempts,
            next_action: Some("create a new VM, then destroy this one".to_owned()),
        };
        let changed = state
            .writer
            .send(ChangeVmState {
                hostname: vm.hostname.clone(),
                read: ReadState::of(&vm),
                change,
                asked_by: None,
            })
            .await??;
        if changed.is_some() {
            state
                .executor
                .send(ReplaceVm {
                    hostname: vm.hostname.clone(),
                    requested_by: "release".to_owned(),
                })
                .await??;
            return Ok(());
        }
        match state.find_vm(&vm.hostname).await? {
            Some(newer) => vm = newer,
            None => return Ok(()),
        }
    }
    Err(ApiError::Conflict(format!(
        "{} was released, but it kept changing state, so it was not replaced; replace it from \
         its row",
        vm.hostname
    )))
}

/// Lifts the VM's GPU quarantine: it is assigned again once its GPU reports healthy.
pub async fn clear_quarantine(
    state: &AppState,
    caller: &Caller,
    hostname: &str,
) -> Result<Vm, ApiError> {
    let vm = existing(state, hostname).await?;
    if vm.state() != LifecycleState::Quarantined {
        return Err(ApiError::Conflict(format!(
            "{} is not quarantined (it is {})",
            vm.hostname,
            vm.state()
        )));
    }
    state
        .writer
        .send(ClearQuarantine {
            hostname: vm.hostname.clone(),
            actor: caller.audit_name(),
        })
        .await??
        .ok_or_else(|| ApiError::Conflict(format!("{} is no longer quarantined", vm.hostname)))
}
