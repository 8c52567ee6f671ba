//! `lablink audit ls`: the audit trail, newest first, paged through the API's cursor.

use lablink_schema::wire::{AuditEventView, AuditPage};

use super::{shown_time, Style};
use crate::api::Api;
use crate::cli::AuditCommand;
use crate::error::CliError;
use crate::{output, table};

/// Most events the API gives in one page.
const PAGE: u32 = 1000;

pub async fn run(api: &Api, style: Style, command: AuditCommand) -> Result<(), CliError> {
    let AuditCommand::Ls {
        actor,
        action,
        target,
        limit,
    } = command;
    let mut filter = String::new();
    for (name, value) in [("actor", actor), ("action", action), ("target", target)] {
        if let Some(value) = value {
            filter.push_str(&format!("&{name}={}", encode(&value)));
        }
    }
    let mut events: Vec<AuditEventView> = Vec::new();
    let mut before: Option<i64> = None;
    while events.len() < limit as usize {
        let want = (limit as usize - events.len()).min(PAGE as usize);
        let cursor = before.map(|b| format!("&before={b}")).unwrap_or_default();
        let page: AuditPage = api
            .get_as(&format!("/api/admin/audit?limit={want}{filter}{cursor}"))
            .await?;
        events.extend(page.events);
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    if style.json {
        return output::json(&serde_json::to_value(&events).unwrap_or_default());
    }
    let rows: Vec<Vec<String>> = events
        .into_iter()
        .map(|e| {
            vec![
                shown_time(Some(e.occurred_at)),
                e.actor,
                e.action,
                table::or_dash(e.target),
                table::or_dash(e.detail),
            ]
        })
        .collect();
    output::text(&table::render(
        &["WHEN (UTC)", "ACTOR", "ACTION", "TARGET", "DETAIL"],
        &rows,
    ))
}

/// `value` as a query-string value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
