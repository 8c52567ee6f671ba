//! The writer's API-token messages: making and revoking the admin API's tokens, each in one
//! transaction with its audit record.

use actix::{Handler, Message};
use chrono::Utc;
use lablink_schema::api_tokens::{ApiToken, NewApiToken};
use lablink_schema::audit_events::{AuditEvent, NewAuditEvent};

use crate::db_writer::{DbWriter, WriteError};

/// Store a new API token (its hash) and audit it.
#[derive(Debug, Message)]
#[rtype(result = "Result<ApiToken, WriteError>")]
pub struct CreateApiToken {
    pub token: NewApiToken,
}

impl Handler<CreateApiToken> for DbWriter {
    type Result = Result<ApiToken, WriteError>;

    fn handle(&mut self, msg: CreateApiToken, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            let token = ApiToken::create(conn, &msg.token)?;
            let mut detail = format!("name {:?}, scope {}", token.name, token.scope);
            if let Some(at) = token.expires_at {
                detail.push_str(&format!(", expires {}", at.format("%Y-%m-%d %H:%M UTC")));
            }
            AuditEvent::record(
                conn,
                &NewAuditEvent {
                    occurred_at: token.created_at,
                    actor: token.created_by.clone(),
                    action: "api_token.create".to_owned(),
                    target: Some(format!("API token {}", token.id)),
                    detail: Some(detail),
                },
            )?;
            Ok(token)
        })
    }
}

/// Revoke an API token; `None` if there is no such token.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<ApiToken>, WriteError>")]
pub struct RevokeApiToken {
    pub id: i64,
    pub actor: String,
}

impl Handler<RevokeApiToken> for DbWriter {
    type Result = Result<Option<ApiToken>, WriteError>;

    fn handle(&mut self, msg: RevokeApiToken, _: &mut Self::Context) -> Self::Result {
        self.in_transaction(None, |conn| {
            let now = Utc::now().naive_utc();
            let Some(token) = ApiToken::revoke(conn, msg.id, now)? else {
                return Ok(None);
            };
            // A token never outlives the one it was made with.
            let children = ApiToken::revoke_descendants(conn, token.id, now)?;
            AuditEvent::record(
                conn,
                &NewAuditEvent {
                    occurred_at: now,
                    actor: msg.actor.clone(),
                    action: "api_token.revoke".to_owned(),
                    target: Some(format!("API token {}", token.id)),
                    detail: Some(if children == 0 {
                        format!("name {:?}", token.name)
                    } else {
                        format!("name {:?}, and {children} tokens made with it", token.name)
                    }),
                },
            )?;
            Ok(Some(token))
        })
    }
}
