//! Admin actions on VMs: create, destroy selected, destroy all, release. Recovery actions
//! (reboot, replace, clear a quarantine) are in [`super::recovery`].

use lablink_actors::db_writer::ReleaseVm;
use lablink_actors::provisioning_queue::{CreateVms, DestroyAllVms, DestroyVms};
use lablink_schema::operations::Operation;
use lablink_schema::vms::Vm;

use crate::auth::Caller;
use crate::config::ReleasePolicy;
use crate::error::ApiError;
use crate::state::AppState;
use crate::validate;

/// Queues the creation of `count` more VMs (within `provider.max_vms`).
pub async fn create(state: &AppState, caller: &Caller, count: u32) -> Result<Operation, ApiError> {
    state.check_launchable().await?;
    let operation = state
        .executor
        .send(CreateVms {
            count,
            requested_by: caller.audit_name(),
            workshop_id: None,
        })
        .await??;
    state
        .audit(
            &caller.audit_name(),
            "vms.create",
            None,
            Some(format!("{count} VMs, operation {}", operation.id)),
        )
        .await;
    Ok(operation)
}

/// Queues the destruction of these VMs only; assigned ones need `confirm_assigned`.
pub async fn destroy(
    state: &AppState,
    caller: &Caller,
    hostnames: Vec<String>,
    confirm_assigned: bool,
) -> Result<Operation, ApiError> {
    if hostnames.is_empty() {
        return Err(ApiError::BadRequest(
            "name the VMs to destroy (none were selected)".to_owned(),
        ));
    }
    for hostname in &hostnames {
        validate::hostname(hostname).map_err(ApiError::BadRequest)?;
    }
    let targets = hostnames.join(", ");
    let operation = state
        .executor
        .send(DestroyVms {
            hostnames,
            confirm_assigned,
            requested_by: caller.audit_name(),
        })
        .await??;
    state
        .audit(
            &caller.audit_name(),
            "vms.destroy",
            Some(targets),
            Some(format!("operation {}", operation.id)),
        )
        .await;
    Ok(operation)
}

/// Queues the destruction of every VM; assigned ones need `confirm_assigned`.
pub async fn destroy_all(
    state: &AppState,
    caller: &Caller,
    confirm_assigned: bool,
) -> Result<Operation, ApiError> {
    let operation = state
        .executor
        .send(DestroyAllVms {
            confirm_assigned,
            requested_by: caller.audit_name(),
        })
        .await??;
    state
        .audit(
            &caller.audit_name(),
            "vms.destroy_all",
            None,
            Some(format!("operation {}", operation.id)),
        )
        .await;
    Ok(operation)
}

/// Ends the VM's session; audited in the release's own transaction. Under the `replace`
/// release policy (and always for an original agent) the VM is then replaced.
pub async fn release(state: &AppState, caller: &Caller, hostname: &str) -> Result<Vm, ApiError> {
    let hostname = validate::hostname(hostname).map_err(ApiError::BadRequest)?;
    let vm = state
        .writer
        .send(ReleaseVm {
            hostname: hostname.to_owned(),
            actor: caller.audit_name(),
        })
        .await??;
    tracing::info!(hostname = %vm.hostname, "VM released by admin");
    // An original agent cannot reset itself, and it never reports `running` again after a
    // session: its VM is replaced, as every VM is where the policy says so.
    let legacy = vm.token_hash.is_none();
    if legacy || state.release_policy == ReleasePolicy::Replace {
        let why = if legacy {
            "released; its original agent cannot reset itself"
        } else {
            "released; lifecycle.release is replace"
        };
        super::recovery::replace_released(state, &vm, why).await?;
    }
    Ok(vm)
}
