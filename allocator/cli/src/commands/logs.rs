//! `lablink logs HOST [-f]`: a VM's newest lines, and with `-f` the new ones as they come.

use lablink_schema::wire::VmLogs;

use super::Style;
use crate::api::{self, Api};
use crate::cli::LogsArgs;
use crate::error::CliError;
use crate::output;

pub async fn run(api: &Api, style: Style, args: LogsArgs) -> Result<(), CliError> {
    let host = &args.hostname;
    if host.is_empty() || host.contains(['/', '?', '#', '%']) {
        return Err(CliError::Usage(format!("`{host}` is not a VM name")));
    }
    let limit = args.lines.clamp(1, 10_000);
    let answer = api
        .get(&format!("/api/admin/vms/{host}/logs?limit={limit}"))
        .await;
    // A VM that has sent nothing yet answers 503: nothing to print, but following may wait.
    let (newest, lines) = match answer {
        Ok(answer) => {
            if style.json && !args.follow {
                return output::json(&answer.body);
            }
            let logs: VmLogs = api::parse(answer.body)?;
            let newest = logs.lines.first().map(|l| l.id);
            let lines: Vec<String> = logs.lines.into_iter().rev().map(|l| l.text).collect();
            (newest, lines)
        }
        Err(CliError::Refused { status: 503, .. }) => (None, Vec::new()),
        Err(err) => return Err(err),
    };
    for line in &lines {
        output::line(line)?;
    }
    if !args.follow {
        return Ok(());
    }
    let after = newest.unwrap_or(0);
    let mut events = api
        .events(&format!("/api/admin/vms/{host}/logs/events?after={after}"))
        .await?;
    while let Some(event) = events.next().await? {
        output::line(&event.data)?;
    }
    Err(CliError::Connection(
        "the allocator closed the log stream (it may be restarting): run the command again"
            .to_owned(),
    ))
}
