//! `lablink tokens …`: make (printed once), list and revoke API tokens.

use lablink_schema::wire::{ApiTokenList, ApiTokenScope, ApiTokenView, CreatedApiToken};
use serde_json::json;

use super::{idempotency_key, shown_time, Style};
use crate::api::{self, Api};
use crate::cli::{Scope, TokensCommand};
use crate::error::CliError;
use crate::{output, table};

pub async fn run(api: &Api, style: Style, command: TokensCommand) -> Result<(), CliError> {
    match command {
        TokensCommand::Create {
            name,
            scope,
            expires_in_days,
        } => {
            let scope = match scope {
                Scope::ReadOnly => ApiTokenScope::ReadOnly,
                Scope::Admin => ApiTokenScope::Admin,
            };
            let body = json!({
                "name": name,
                "scope": scope,
                "expires_in_secs": expires_in_days.map(|d| d.saturating_mul(24 * 3600)),
            });
            let answer = api
                .create("/api/admin/tokens", &body, &idempotency_key())
                .await?;
            if style.json {
                return output::json(&answer.body);
            }
            let created: CreatedApiToken = api::parse(answer.body)?;
            output::note(&format!(
                "token {} \"{}\" ({}) made; it is printed this once:",
                created.view.id, created.view.name, created.view.scope
            ));
            output::line(&created.token)
        }
        TokensCommand::Ls => {
            let answer = api.get("/api/admin/tokens").await?;
            if style.json {
                return output::json(&answer.body);
            }
            let list: ApiTokenList = api::parse(answer.body)?;
            if list.tokens.is_empty() {
                return output::line("no API tokens");
            }
            output::text(&token_table(&list.tokens))
        }
        TokensCommand::Revoke { id } => {
            let answer = api
                .post(&format!("/api/admin/tokens/{id}/revoke"), &json!({}))
                .await?;
            if style.json {
                return output::json(&answer.body);
            }
            let token: ApiTokenView = api::parse(answer.body)?;
            output::line(&format!("token {} \"{}\" revoked", token.id, token.name))
        }
    }
}

fn token_table(tokens: &[ApiTokenView]) -> String {
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                t.id.to_string(),
                t.name.clone(),
                t.scope.to_string(),
                format!("{:?}", t.state).to_lowercase(),
                shown_time(t.expires_at),
                shown_time(t.last_used_at),
                t.created_by.clone(),
            ]
        })
        .collect();
    table::render(
        &[
            "ID",
            "NAME",
            "SCOPE",
            "STATE",
            "EXPIRES (UTC)",
            "LAST USED (UTC)",
            "MADE BY",
        ],
        &rows,
    )
}
