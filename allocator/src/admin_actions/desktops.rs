//! An instructor's peek at a participant's browser desktop (view-only, bound to the
//! assignment it was opened for, audited each time it opens), and an admin's take-over of a
//! free VM (held for `desktop.take_over_secs`, then released by the VM's actor; audited).

use lablink_schema::vms::Vm;

use crate::auth::Caller;
use crate::desktop::StreamEnds;
use crate::error::ApiError;
use crate::state::AppState;
use crate::validate;

/// The VM to peek at, while it still serves assignment `assignment_seq`.
pub async fn peek_target(
    state: &AppState,
    hostname: &str,
    assignment_seq: Option<i64>,
) -> Result<Vm, ApiError> {
    let hostname = validate::hostname(hostname).map_err(ApiError::BadRequest)?;
    let vm = state
        .find_vm(hostname)
        .await?
        .ok_or_else(ApiError::vm_not_found)?;
    if vm.user_email.is_none() {
        return Err(ApiError::Conflict(format!(
            "nobody is using {hostname} now: there is no participant's desktop to view"
        )));
    }
    if assignment_seq.is_some_and(|seq| seq != vm.assignment_seq) {
        return Err(ApiError::Conflict(format!(
            "the session this view was opened for has ended; {hostname} serves another now"
        )));
    }
    Ok(vm)
}

/// Opens a view-only stream to the desktop of `hostname`'s current assignment, and audits it.
pub async fn peek(
    state: &AppState,
    caller: &Caller,
    hostname: &str,
    assignment_seq: i64,
) -> Result<(Vm, StreamEnds), ApiError> {
    let vm = peek_target(state, hostname, Some(assignment_seq)).await?;
    let ends = crate::desktop::peers::open_stream(state, &vm.hostname).await?;
    state
        .audit(
            &caller.audit_name(),
            "vm.desktop.peek",
            Some(vm.hostname.clone()),
            Some(format!(
                "view-only, assignment {} of {}",
                vm.assignment_seq,
                vm.user_email.as_deref().unwrap_or_default()
            )),
        )
        .await;
    Ok((vm, ends))
}

/// Who holds a VM an admin took over, where a participant's email would be.
pub const TAKE_OVER_HOLDER: &str = "admin (take-over)";

/// Takes the free VM `hostname` over for `state.take_over_for`: it is assigned to the admin
/// with no command, so its desktop opens in the browser; its actor releases it at the end.
pub async fn take_over(state: &AppState, caller: &Caller, hostname: &str) -> Result<Vm, ApiError> {
    let hostname = validate::hostname(hostname).map_err(ApiError::BadRequest)?;
    let until = chrono::Utc::now().naive_utc()
        + chrono::Duration::from_std(state.take_over_for)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    let taken = state
        .writer
        .send(lablink_actors::lifecycle_writes::TakeOverVm {
            hostname: hostname.to_owned(),
            holder: TAKE_OVER_HOLDER.to_owned(),
            pin: crate::assignment_proof::new_pin(),
            until,
            actor: caller.audit_name(),
        })
        .await??;
    match taken {
        Some(vm) => Ok(vm),
        None => match state.find_vm(hostname).await? {
            None => Err(ApiError::vm_not_found()),
            Some(_) => Err(ApiError::Conflict(format!(
                "{hostname} is not free (in use, not ready, or being recovered): only a free VM \
                 can be taken over"
            ))),
        },
    }
}
