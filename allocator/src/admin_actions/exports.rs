//! Exports for spreadsheets and scripts: the participants (every session, with each step's
//! time and the usage figures), the VMs (every column the admin sees, with boot times) and the audit trail, filtered by workshop and time range,
//! as JSON or CSV. CSV is UTF-8 with a byte-order mark (so spreadsheets read it as UTF-8),
//! every cell quoted, a header row, and times in ISO 8601 with their zone (UTC); a cell that
//! a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
//! carriage return) is prefixed with `'`.

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use lablink_schema::audit_events::AuditEvent;
use lablink_schema::vm_usage;
use lablink_schema::vms::Vm;
use lablink_schema::workshops::Workshop;
use serde_json::{json, Map, Value};

use crate::admin_actions::participants;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Most rows one export holds.
pub const MAX_ROWS: i64 = 100_000;

/// What is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    Participants,
    Vms,
    Audit,
}

impl ExportKind {
    pub fn parse(name: &str) -> Result<Self, ApiError> {
        match name {
            "participants" => Ok(ExportKind::Participants),
            "vms" => Ok(ExportKind::Vms),
            "audit" => Ok(ExportKind::Audit),
            other => Err(ApiError::NotFound(format!(
                "there is no export `{other}`: choose participants, vms or audit"
            ))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            ExportKind::Participants => "participants",
            ExportKind::Vms => "vms",
            ExportKind::Audit => "audit",
        }
    }

    fn columns(self) -> &'static [&'static str] {
        match self {
            ExportKind::Participants => &[
                "email",
                "hostname",
                "workshop_id",
                "step",
                "stuck",
                "claimed_at",
                "command_received_at",
                "desktop_up_at",
                "software_first_used_at",
                "ended_at",
                "end_reason",
                "software_secs",
                "gpu_measured",
                "gpu_active_secs",
                "gpu_peak_utilization",
                "gpu_peak_memory_mib",
                "last_activity_at",
                "vm_state",
            ],
            ExportKind::Vms => &[
                "hostname",
                "workshop_id",
                "state",
                "state_reason",
                "state_since",
                "next_action",
                "status",
                "assigned_to",
                "in_use",
                "gpu_health",
                "last_heartbeat_at",
                "recovery_attempts",
                "created_at",
                "ready_at",
                "boot_secs",
            ],
            ExportKind::Audit => &["occurred_at", "actor", "action", "target", "detail"],
        }
    }
}

/// The format asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Json,
}

/// What the caller asked for, checked.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub kind: ExportKind,
    pub format: ExportFormat,
    pub workshop: Option<i64>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
}

impl ExportRequest {
    /// Checks the query's values; each error says what to fix.
    pub fn check(
        kind: &str,
        format: Option<&str>,
        workshop: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Self, ApiError> {
        let bad = |m: String| ApiError::BadRequest(m);
        let format = match format.unwrap_or("json") {
            "json" => ExportFormat::Json,
            "csv" => ExportFormat::Csv,
            other => return Err(bad(format!("format: `{other}` is not csv or json"))),
        };
        let time = |name: &str, value: Option<&str>| -> Result<Option<NaiveDateTime>, ApiError> {
            value
                .map(|text| {
                    DateTime::<FixedOffset>::parse_from_rfc3339(text)
                        .map(|t| t.naive_utc())
                        .map_err(|_| {
                            bad(format!(
                                "{name}: `{text}` is not a time with its offset, e.g. \
                                 2027-03-12T09:00:00-08:00"
                            ))
                        })
                })
                .transpose()
        };
        let (from, to) = (time("from", from)?, time("to", to)?);
        if let (Some(from), Some(to)) = (from, to) {
            if to < from {
                return Err(bad(
                    "to: the end of the time range is before its start".to_owned()
                ));
            }
        }
        let workshop = workshop
            .map(|id| {
                id.parse::<i64>()
                    .map_err(|_| bad(format!("workshop: `{id}` is not a workshop's number")))
            })
            .transpose()?;
        Ok(ExportRequest {
            kind: ExportKind::parse(kind)?,
            format,
            workshop,
            from,
            to,
        })
    }

    /// The file name the export is offered as.
    pub fn file_name(&self) -> String {
        let extension = match self.format {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
        };
        match self.workshop {
            Some(id) => format!("lablink-{}-workshop-{id}.{extension}", self.kind.name()),
            None => format!("lablink-{}.{extension}", self.kind.name()),
        }
    }
}

fn iso(at: Option<NaiveDateTime>) -> Value {
    at.map_or(Value::Null, |at| {
        Value::String(lablink_schema::wire::utc_iso8601(at))
    })
}

fn within(at: Option<NaiveDateTime>, request: &ExportRequest) -> bool {
    let Some(at) = at else {
        return request.from.is_none() && request.to.is_none();
    };
    request.from.is_none_or(|from| at >= from) && request.to.is_none_or(|to| at <= to)
}

/// The export's rows. An export that holds participants' emails (participants, VMs) is
/// recorded in the audit trail first (who, which export, which filter): it is personal data,
/// so no record, no export. The audit trail's own export is not, so it reads back the same
/// twice.
pub async fn audited_rows(
    state: &AppState,
    caller: &Caller,
    request: &ExportRequest,
) -> Result<Vec<Value>, ApiError> {
    if request.kind == ExportKind::Audit {
        return rows(state, request).await;
    }
    let detail = format!(
        "format {}, workshop {}, from {}, to {}",
        match request.format {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
        },
        request
            .workshop
            .map_or_else(|| "any".to_owned(), |id| id.to_string()),
        request
            .from
            .map_or_else(|| "the start".to_owned(), |at| at.to_string()),
        request
            .to
            .map_or_else(|| "now".to_owned(), |at| at.to_string()),
    );
    let event = lablink_schema::audit_events::NewAuditEvent {
        occurred_at: chrono::Utc::now().naive_utc(),
        actor: caller.audit_name(),
        action: format!("export.{}", request.kind.name()),
        target: None,
        detail: Some(detail),
    };
    state
        .writer
        .send(lablink_actors::db_writer::RecordAuditEvent(event))
        .await
        .map_err(|err| ApiError::Internal(err.to_string()))?
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    rows(state, request).await
}

/// The export's rows, each an object with the kind's columns.
pub async fn rows(state: &AppState, request: &ExportRequest) -> Result<Vec<Value>, ApiError> {
    if let Some(id) = request.workshop {
        let known = state.read(move |conn| Workshop::find(conn, id)).await?;
        if known.is_none() {
            return Err(ApiError::BadRequest(format!(
                "workshop: there is no workshop {id}"
            )));
        }
    }
    let request = request.clone();
    match request.kind {
        ExportKind::Participants => {
            let rows =
                participants::sessions_between(state, request.workshop, request.from, request.to)
                    .await?;
            Ok(rows
                .into_iter()
                .map(|r| {
                    json!({
                        "email": r.email,
                        "hostname": r.hostname,
                        "workshop_id": r.workshop_id,
                        "step": r.step,
                        "stuck": r.stuck,
                        "claimed_at": r.claimed_at,
                        "command_received_at": r.command_received_at,
                        "desktop_up_at": r.desktop_up_at,
                        "software_first_used_at": r.software_first_used_at,
                        "ended_at": r.ended_at,
                        "end_reason": r.end_reason,
                        "software_secs": r.software_secs,
                        "gpu_measured": r.gpu.is_some(),
                        "gpu_active_secs": r.gpu.map(|g| g.active_secs),
                        "gpu_peak_utilization": r.gpu.map(|g| g.peak_utilization),
                        "gpu_peak_memory_mib": r.gpu.map(|g| g.peak_memory_mib),
                        "last_activity_at": r.last_activity_at,
                        "vm_state": r.vm_state,
                    })
                })
                .collect())
        }
        ExportKind::Vms => {
            let (vms, boots) = state
                .read(|conn| Ok((Vm::list_all(conn)?, vm_usage::live_boots(conn)?)))
                .await?;
            let boots: std::collections::HashMap<String, (NaiveDateTime, Option<NaiveDateTime>)> =
                boots
                    .into_iter()
                    .map(|(hostname, made, ready)| (hostname, (made, ready)))
                    .collect();
            let vms = vms
                .into_iter()
                .filter(|vm| request.workshop.is_none_or(|id| vm.workshop_id == Some(id)));
            Ok({
                vms.filter(|vm| within(Some(vm.created_at), &request))
                    .map(|vm| {
                        let ready = boots.get(&vm.hostname).and_then(|(_, ready)| *ready);
                        let boot_secs = boots.get(&vm.hostname).and_then(|(made, ready)| {
                            ready.map(|ready| (ready - *made).num_seconds().max(0))
                        });
                        json!({
                            "ready_at": iso(ready),
                            "boot_secs": boot_secs,
                            "hostname": vm.hostname,
                            "workshop_id": vm.workshop_id,
                            "state": vm.state,
                            "state_reason": vm.state_reason,
                            "state_since": iso(Some(vm.state_since)),
                            "next_action": vm.next_action,
                            "status": vm.status,
                            "assigned_to": vm.user_email,
                            "in_use": vm.in_use,
                            "gpu_health": vm.gpu_health,
                            "last_heartbeat_at": iso(vm.last_heartbeat_at),
                            "recovery_attempts": vm.recovery_attempts,
                            "created_at": iso(Some(vm.created_at)),
                        })
                    })
                    .collect()
            })
        }
        ExportKind::Audit => {
            let target = request.workshop.map(|id| format!("workshop {id}"));
            let (from, to) = (request.from, request.to);
            let events = state
                .read(move |conn| {
                    AuditEvent::list_between(conn, from, to, target.as_deref(), MAX_ROWS)
                })
                .await?;
            Ok(events
                .into_iter()
                .map(|e| {
                    json!({
                        "occurred_at": iso(Some(e.occurred_at)),
                        "actor": e.actor,
                        "action": e.action,
                        "target": e.target,
                        "detail": e.detail,
                    })
                })
                .collect())
        }
    }
}

/// A cell as a spreadsheet must see it: never a formula.
pub fn neutralised(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// The rows as CSV (see the module documentation).
pub fn to_csv(kind: ExportKind, rows: &[Value]) -> Result<Vec<u8>, ApiError> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    {
        let mut writer = csv::WriterBuilder::new()
            .quote_style(csv::QuoteStyle::Always)
            .from_writer(&mut out);
        let columns = kind.columns();
        let internal = |e: csv::Error| ApiError::Internal(e.to_string());
        writer.write_record(columns).map_err(internal)?;
        for row in rows {
            let empty = Map::new();
            let cells = row.as_object().unwrap_or(&empty);
            let record: Vec<String> = columns
                .iter()
                .map(|column| match cells.get(*column) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(text)) => neutralised(text),
                    Some(other) => other.to_string(),
                })
                .collect();
            writer.write_record(&record).map_err(internal)?;
        }
        writer
            .flush()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_plain_text_is_not() {
        for formula in ["=1+1", "+41 79", "-2", "@SUM(A1)", "\tx"] {
            assert!(neutralised(formula).starts_with('\''), "{formula}");
        }
        assert_eq!(neutralised("ada@lab.example"), "ada@lab.example");
    }
}
