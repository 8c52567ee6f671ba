//! The admin API's tokens on the wire: what an admin asks for, what a token looks like in a
//! list (never the secret), and the one answer that carries the secret.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::UnknownValue;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ApiTokenScope {
    /// Safe requests only (`GET`): watch, list, export, follow logs.
    #[serde(rename = "read-only")]
    ReadOnly,
    /// Everything the admin may do through the API.
    #[serde(rename = "admin")]
    Admin,
}

impl ApiTokenScope {
    pub const ALL: [ApiTokenScope; 2] = [ApiTokenScope::ReadOnly, ApiTokenScope::Admin];

    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiTokenScope::ReadOnly => "read-only",
            ApiTokenScope::Admin => "admin",
        }
    }
}

spelled_as_stored!(ApiTokenScope, "read-only, admin");

impl fmt::Display for ApiTokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /api/admin/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApiTokenRequest {
    /// Who or what uses it (a script, a colleague); shown in the list and the audit trail.
    pub name: String,
    pub scope: ApiTokenScope,
    /// Seconds until it stops working; none: it never expires.
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
}

/// Whether a token still works, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ApiTokenState {
    Active,
    Expired,
    Revoked,
}

/// A token as admins see it: never the secret, which is shown once at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiTokenView {
    pub id: i64,
    pub name: String,
    pub scope: ApiTokenScope,
    pub created_by: String,
    pub created_at: chrono::NaiveDateTime,
    pub expires_at: Option<chrono::NaiveDateTime>,
    pub revoked_at: Option<chrono::NaiveDateTime>,
    /// To the minute.
    pub last_used_at: Option<chrono::NaiveDateTime>,
    pub state: ApiTokenState,
}

/// Answer to `POST /api/admin/tokens`: the secret itself, this once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApiToken {
    pub token: String,
    #[serde(flatten)]
    pub view: ApiTokenView,
}

impl fmt::Debug for CreatedApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedApiToken")
            .field("token", &"<redacted>")
            .field("view", &self.view)
            .finish()
    }
}

/// Answer to `GET /api/admin/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiTokenList {
    pub tokens: Vec<ApiTokenView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_their_spelling() {
        for scope in ApiTokenScope::ALL {
            assert_eq!(scope.as_str().parse::<ApiTokenScope>(), Ok(scope));
            assert_eq!(
                serde_json::to_value(scope).expect("json"),
                serde_json::json!(scope.as_str())
            );
        }
        assert!("root".parse::<ApiTokenScope>().is_err());
    }

    #[test]
    fn the_secret_is_never_in_debug_output() {
        let created = CreatedApiToken {
            token: "lla_secret".into(),
            view: ApiTokenView {
                id: 1,
                name: "ci".into(),
                scope: ApiTokenScope::Admin,
                created_by: "admin".into(),
                created_at: chrono::DateTime::from_timestamp(0, 0)
                    .expect("epoch")
                    .naive_utc(),
                expires_at: None,
                revoked_at: None,
                last_used_at: None,
                state: ApiTokenState::Active,
            },
        };
        assert!(!format!("{created:?}").contains("lla_secret"));
    }
}
