//! An instructor's peek at a participant's browser desktop: view-only, bound to the
//! assignment it was opened for, and audited each time it opens.

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
    let ends = state.desktops.open(&vm.hostname).await?;
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
