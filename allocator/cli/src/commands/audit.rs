//! `lablink audit ls`: the audit trail, newest first, paged through the API's cursor.

use lablink_schema::wire::{AuditEventView, AuditPage};

use super::{shown_time, Style};
use crate::api::{self, Api};
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
    let mut filter = Vec::new();
    for (name, value) in [("actor", actor), ("action", action), ("target", target)] {
        filter.extend(value.map(|value| (name, value)));
    }
    let mut events: Vec<AuditEventView> = Vec::new();
    let mut before: Option<i64> = None;
    while events.len() < limit as usize {
        let want = (limit as usize - events.len()).min(PAGE as usize);
        let mut query = filter.clone();
        query.push(("limit", want.to_string()));
        query.extend(before.map(|b| ("before", b.to_string())));
        let page: AuditPage = api
            .get_as(&api::with_query("/api/admin/audit", &query))
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
