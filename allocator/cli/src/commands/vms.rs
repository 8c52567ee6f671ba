//! `lablink vms …`: list, show, create, destroy, release, reboot, replace, clear-quarantine.

use lablink_schema::wire::{AdminVmView, OperationView, VmActionAnswer};
use serde_json::json;

use super::{idempotency_key, shown_time, Style};
use crate::api::{self, Api};
use crate::cli::{VmsCommand, Wait};
use crate::error::CliError;
use crate::{output, progress, table};

pub async fn run(api: &Api, style: Style, command: VmsCommand) -> Result<(), CliError> {
    match command {
        VmsCommand::Ls {
            state,
            assigned,
            free,
        } => {
            let mut query = Vec::new();
            if let Some(state) = state {
                query.push(("state", state));
            }
            if assigned || free {
                query.push(("assigned", assigned.to_string()));
            }
            let all = api
                .get_all(&api::with_query("/api/admin/vms", &query))
                .await?;
            if style.json {
                return output::json(&all);
            }
            let vms: Vec<AdminVmView> = api::parse(all)?;
            if vms.is_empty() {
                return output::line("no VMs");
            }
            output::text(&vm_table(&vms))
        }
        VmsCommand::Show { hostname } => {
            let answer = api
                .get(&format!("/api/admin/vms/{}", segment(&hostname)?))
                .await?;
            if style.json {
                return output::json(&answer.body);
            }
            let vm: AdminVmView = api::parse(answer.body)?;
            output::text(&vm_table(std::slice::from_ref(&vm)))?;
            output::line(&format!("state: {}", vm.state_reason))?;
            if let Some(next) = vm.next_action {
                output::line(&format!("next: {next}"))?;
            }
            Ok(())
        }
        VmsCommand::Create { count, wait } => {
            if count == 0 {
                return Err(CliError::Usage("create at least 1 VM".to_owned()));
            }
            let answer = api
                .create(
                    "/api/admin/vms",
                    &json!({"count": count}),
                    &idempotency_key(),
                )
                .await?;
            queued(api, style, answer.body, wait).await
        }
        VmsCommand::Destroy {
            hostnames,
            all,
            confirm_assigned,
            wait,
        } => {
            let answer = if all {
                api.post(
                    "/api/admin/vms/destroy-all",
                    &json!({"confirm_assigned": confirm_assigned}),
                )
                .await?
            } else {
                api.post(
                    "/api/admin/vms/destroy",
                    &json!({"hostnames": hostnames, "confirm_assigned": confirm_assigned}),
                )
                .await?
            };
            queued(api, style, answer.body, wait).await
        }
        VmsCommand::Release { hostname } => {
            vm_action(api, style, &hostname, "release", json!({})).await
        }
        VmsCommand::Reboot { hostname } => {
            vm_action(api, style, &hostname, "reboot", json!({})).await
        }
        VmsCommand::Replace {
            hostname,
            confirm_assigned,
            wait,
        } => {
            let answer = api
                .post(
                    &format!("/api/admin/vms/{}/replace", segment(&hostname)?),
                    &json!({"confirm_assigned": confirm_assigned}),
                )
                .await?;
            queued(api, style, answer.body, wait).await
        }
        VmsCommand::ClearQuarantine { hostname } => {
            let answer = api
                .post(
                    &format!("/api/admin/vms/{}/clear-quarantine", segment(&hostname)?),
                    &json!({}),
                )
                .await?;
            if style.json {
                return output::json(&answer.body);
            }
            let vm: AdminVmView = api::parse(answer.body)?;
            output::line(&format!(
                "{}: {} ({})",
                vm.hostname, vm.state, vm.state_reason
            ))
        }
    }
}

/// A hostname as a path segment: refused here if it could not be one.
fn segment(hostname: &str) -> Result<&str, CliError> {
    if hostname.is_empty()
        || !hostname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(CliError::Usage(format!(
            "`{hostname}` is not a VM name: use letters, digits, `-`, `.` and `_`"
        )));
    }
    Ok(hostname)
}

async fn vm_action(
    api: &Api,
    style: Style,
    hostname: &str,
    action: &str,
    body: serde_json::Value,
) -> Result<(), CliError> {
    let answer = api
        .post(
            &format!("/api/admin/vms/{}/{action}", segment(hostname)?),
            &body,
        )
        .await?;
    if style.json {
        return output::json(&answer.body);
    }
    let done: VmActionAnswer = api::parse(answer.body)?;
    output::line(&format!("{}: {}", done.hostname, done.message))
}

/// A queued operation: followed to its end unless `--no-wait`.
async fn queued(
    api: &Api,
    style: Style,
    body: serde_json::Value,
    wait: Wait,
) -> Result<(), CliError> {
    let operation: OperationView = api::parse(body.clone())?;
    if wait.no_wait {
        if style.json {
            return output::json(&body);
        }
        return output::line(&format!(
            "operation {} ({}) queued: follow it with `lablink ops wait {}`",
            operation.operation_id,
            operation.kind.as_str(),
            operation.operation_id
        ));
    }
    let finished = progress::follow(api, operation.operation_id).await?;
    if style.json {
        output::json(&serde_json::to_value(&finished).unwrap_or_default())?;
    }
    Ok(())
}

fn vm_table(vms: &[AdminVmView]) -> String {
    let rows: Vec<Vec<String>> = vms
        .iter()
        .map(|vm| {
            vec![
                vm.hostname.clone(),
                vm.state.to_string(),
                table::or_dash(vm.assigned_to.as_ref()),
                table::or_dash(vm.gpu_health.map(|g| g.as_str())),
                if vm.in_use { "yes" } else { "no" }.to_owned(),
                shown_time(vm.last_heartbeat_at),
            ]
        })
        .collect();
    table::render(
        &[
            "HOSTNAME",
            "STATE",
            "ASSIGNED TO",
            "GPU",
            "IN USE",
            "LAST HEARTBEAT (UTC)",
        ],
        &rows,
    )
}
