//! `lablink ops …`: the provisioning operations.

use lablink_schema::wire::OperationView;

use super::{shown_time, Style};
use crate::api::{self, Api};
use crate::cli::OpsCommand;
use crate::error::CliError;
use crate::{output, progress, table};

pub async fn run(api: &Api, style: Style, command: OpsCommand) -> Result<(), CliError> {
    match command {
        OpsCommand::Ls => {
            let answer = api.get("/api/admin/operations").await?;
            if style.json {
                return output::json(&answer.body);
            }
            let operations: Vec<OperationView> = api::parse(answer.body)?;
            let rows: Vec<Vec<String>> = operations
                .iter()
                .map(|op| {
                    vec![
                        op.operation_id.to_string(),
                        op.kind.as_str().to_owned(),
                        op.state.as_str().to_owned(),
                        table::or_dash(op.requested_count),
                        op.requested_by.clone(),
                        shown_time(Some(op.created_at)),
                        shown_time(op.finished_at),
                    ]
                })
                .collect();
            output::text(&table::render(
                &[
                    "ID",
                    "KIND",
                    "STATE",
                    "COUNT",
                    "BY",
                    "ASKED (UTC)",
                    "FINISHED (UTC)",
                ],
                &rows,
            ))
        }
        OpsCommand::Show { id } => {
            let answer = api.get(&format!("/api/admin/operations/{id}")).await?;
            if style.json {
                return output::json(&answer.body);
            }
            let op: OperationView = api::parse(answer.body)?;
            output::line(&progress::final_line(&op))?;
            if !op.output_tail.is_empty() {
                output::text(&op.output_tail)?;
                if !op.output_tail.ends_with('\n') {
                    output::line("")?;
                }
            }
            Ok(())
        }
        OpsCommand::Wait { id } => progress::follow(api, id).await.map(|_| ()),
    }
}
