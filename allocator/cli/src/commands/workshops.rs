//! `lablink workshop …`: create one from a file, list, show, end, extend.

use std::path::Path;

use lablink_schema::wire::{WorkshopCreated, WorkshopRequest, WorkshopView};
use serde_json::json;

use super::{idempotency_key, Style};
use crate::api::{self, Api};
use crate::cli::WorkshopCommand;
use crate::error::CliError;
use crate::{output, table};

pub async fn run(api: &Api, style: Style, command: WorkshopCommand) -> Result<(), CliError> {
    match command {
        WorkshopCommand::Create { file } => {
            let request = read_workshop_file(&file)?;
            let answer = api
                .create("/api/admin/workshops", &request, &idempotency_key())
                .await?;
            if style.json {
                return output::json(&answer.body);
            }
            let created: WorkshopCreated = api::parse(answer.body)?;
            let workshop = &created.workshop;
            output::line(&format!(
                "workshop {} \"{}\" created: {}, {} participants, starts {}; link {}",
                workshop.id,
                workshop.name,
                workshop.state,
                workshop.headcount,
                workshop.starts_at.to_rfc3339(),
                workshop.link
            ))?;
            if let Some(code) = created.invite_code {
                output::line(&format!("invite code (shown this once): {code}"))?;
            }
            Ok(())
        }
        WorkshopCommand::Ls => {
            let all = api.get_all("/api/admin/workshops").await?;
            if style.json {
                return output::json(&all);
            }
            let workshops: Vec<WorkshopView> = api::parse(all)?;
            if workshops.is_empty() {
                return output::line("no workshops");
            }
            output::text(&workshop_table(&workshops))
        }
        WorkshopCommand::Show { id } => {
            let answer = api.get(&format!("/api/admin/workshops/{id}")).await?;
            if style.json {
                return output::json(&answer.body);
            }
            let workshop: WorkshopView = api::parse(answer.body)?;
            output::text(&workshop_table(std::slice::from_ref(&workshop)))?;
            for action in &workshop.actions {
                output::line(&format!(
                    "  {} {} {}{}",
                    action.due_at.format("%Y-%m-%d %H:%M UTC"),
                    spelled(&action.kind),
                    spelled(&action.state),
                    action
                        .outcome
                        .as_deref()
                        .map(|o| format!(": {o}"))
                        .unwrap_or_default()
                ))?;
            }
            Ok(())
        }
        WorkshopCommand::End { id } => {
            let answer = api
                .post(&format!("/api/admin/workshops/{id}/end"), &json!({}))
                .await?;
            if style.json {
                return output::json(&answer.body);
            }
            let workshop: WorkshopView = api::parse(answer.body)?;
            output::line(&format!(
                "workshop {} ended at {}: participants are refused from now on, and its VMs \
                 are destroyed after its keep time ({} s)",
                workshop.id,
                workshop.ends_at.to_rfc3339(),
                workshop.keep_after_end_secs
            ))
        }
        WorkshopCommand::Extend { id, until } => {
            let answer = api
                .post(
                    &format!("/api/admin/workshops/{id}/extend"),
                    &json!({"ends_at": until}),
                )
                .await?;
            if style.json {
                return output::json(&answer.body);
            }
            let workshop: WorkshopView = api::parse(answer.body)?;
            output::line(&format!(
                "workshop {} extended: {}, ends {}",
                workshop.id,
                workshop.state,
                workshop.ends_at.to_rfc3339()
            ))
        }
    }
}

/// A wire enum as the API spells it.
fn spelled(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The workshop a file describes, checked here so a mistake names its line and field.
pub fn read_workshop_file(path: &Path) -> Result<WorkshopRequest, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| CliError::Usage(format!("cannot read {}: {err}", path.display())))?;
    // YAML is a superset of JSON, so one parser reads both.
    serde_yaml::from_str(&text).map_err(|err| {
        let place = err
            .location()
            .map(|at| format!(" line {}, column {}:", at.line(), at.column()))
            .unwrap_or_default();
        CliError::Usage(format!(
            "{}:{place} {}",
            path.display(),
            strip_location(&err.to_string())
        ))
    })
}

/// serde_yaml ends its messages with " at line L column C", which is said first instead.
fn strip_location(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |at| &message[..at])
}

fn workshop_table(workshops: &[WorkshopView]) -> String {
    let rows: Vec<Vec<String>> = workshops
        .iter()
        .map(|w| {
            vec![
                w.id.to_string(),
                w.name.clone(),
                w.state.to_string(),
                w.starts_at.format("%Y-%m-%d %H:%M %:z").to_string(),
                w.ends_at.format("%Y-%m-%d %H:%M %:z").to_string(),
                w.headcount.to_string(),
                format!("{}/{}/{}", w.vms.total, w.vms.free, w.vms.assigned),
            ]
        })
        .collect();
    table::render(
        &[
            "ID",
            "NAME",
            "STATE",
            "STARTS",
            "ENDS",
            "HEADCOUNT",
            "VMS (ALL/FREE/ASSIGNED)",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        std::io::Write::write_all(&mut file, text.as_bytes()).expect("write");
        file
    }

    #[test]
    fn a_mistake_in_a_workshop_file_names_its_line_and_field() {
        let bad = file(
            "name: SLEAP\nstarts_at: 2030-01-01T09:00:00Z\nends_at: 2030-01-01T17:00:00Z\n\
             headcount: 10\nwarmup_lead_secs: 600\ncolour: blue\n",
        );
        let message = read_workshop_file(bad.path())
            .expect_err("refused")
            .to_string();
        assert!(message.contains("line 6"), "{message}");
        assert!(message.contains("colour"), "{message}");
        let missing = file("name: SLEAP\nheadcount: 10\n");
        let message = read_workshop_file(missing.path())
            .expect_err("refused")
            .to_string();
        assert!(message.contains("starts_at"), "{message}");
        let good = file(
            "name: SLEAP\nstarts_at: 2030-01-01T09:00:00-08:00\nends_at: 2030-01-01T17:00:00-08:00\n\
             headcount: 10\nwarmup_lead_secs: 600\nvm_settings:\n  instance_type: g5.xlarge\n",
        );
        let request = read_workshop_file(good.path()).expect("read");
        assert_eq!(request.headcount, 10);
    }
}
