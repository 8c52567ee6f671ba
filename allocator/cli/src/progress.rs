//! Following a provisioning operation to its end: a progress bar on a terminal (indicatif)
//! that shows the operation's state and latest output as its stream reports them, and, in
//! every case, one final line on standard output with the result. A failed operation fails
//! the command (exit 1).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use lablink_schema::wire::{OperationState, OperationView};

use crate::api::{self, Api};
use crate::error::CliError;
use crate::output;

/// Follows operation `id` until it finishes, then prints its result.
pub async fn follow(api: &Api, id: i64) -> Result<OperationView, CliError> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(format!("operation {id}: waiting"));
    let finished = loop {
        let mut events = api
            .events(&format!("/api/admin/operations/{id}/events"))
            .await?;
        let mut latest = None;
        while let Some(event) = events.next().await? {
            if event.name != "operation" {
                continue;
            }
            let view: OperationView = api::parse(
                serde_json::from_str(&event.data)
                    .map_err(|err| CliError::Connection(err.to_string()))?,
            )?;
            bar.set_message(progress_message(&view));
            let done = is_finished(&view);
            latest = Some(view);
            if done {
                break;
            }
        }
        match latest {
            Some(view) if is_finished(&view) => break view,
            // The stream ended early (the allocator restarting): pick it up again.
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    };
    bar.finish_and_clear();
    output::line(&final_line(&finished))?;
    if finished.state == OperationState::Failed {
        return Err(CliError::Failed(format!(
            "operation {id} failed: see `lablink ops show {id}` for its output"
        )));
    }
    Ok(finished)
}

fn is_finished(view: &OperationView) -> bool {
    matches!(
        view.state,
        OperationState::Succeeded | OperationState::Failed
    )
}

fn progress_message(view: &OperationView) -> String {
    let last = view
        .output_tail
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let last: String = last.chars().take(80).collect();
    format!(
        "operation {} ({}) {}{}{}",
        view.operation_id,
        view.kind.as_str(),
        view.state.as_str(),
        if last.is_empty() { "" } else { ": " },
        last
    )
}

/// The result, in one line.
pub fn final_line(view: &OperationView) -> String {
    let targets = view
        .targets
        .as_ref()
        .filter(|t| !t.is_empty())
        .map(|t| format!(" ({})", t.join(", ")))
        .unwrap_or_default();
    let took = match (view.started_at, view.finished_at) {
        (Some(start), Some(end)) => format!(" in {}s", (end - start).num_seconds().max(0)),
        _ => String::new(),
    };
    match view.state {
        OperationState::Failed => format!(
            "operation {} ({}) failed{took}: {}",
            view.operation_id,
            view.kind.as_str(),
            view.error.as_deref().unwrap_or("no reason given")
        ),
        state => format!(
            "operation {} ({}) {}{took}{targets}",
            view.operation_id,
            view.kind.as_str(),
            state.as_str()
        ),
    }
}
