//! The audit trail on the admin API (`GET /api/admin/audit`), and the allocator's version
//! (`GET /api/version`), with which the CLI tells whether it speaks the same API.

use serde::{Deserialize, Serialize};

/// One recorded action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEventView {
    pub id: i64,
    pub occurred_at: chrono::NaiveDateTime,
    /// `admin`, `token:{id}:{name}`, `vm:{hostname}`, `researcher:{email}`, `system`.
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// One page of the audit trail, newest first; `next_before` reads the page before it
/// (`null` at the oldest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    pub next_before: Option<i64>,
}

/// The admin API's version: `api` changes only when a change would break a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionView {
    /// The allocator's release, e.g. `0.1.0`.
    pub version: String,
    pub api: u32,
}

/// The admin API version this build serves and speaks.
pub const ADMIN_API_VERSION: u32 = 1;

/// `GET /api/admin/whoami`: who the credentials act as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WhoAmI {
    /// As the audit trail names it: `admin`, or `token:{id}:{name}`.
    pub actor: String,
    pub scope: super::ApiTokenScope,
}

/// One event of the allocator's own recent log (`GET /api/admin/allocator-log`), masked as
/// the dashboard's log page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllocatorLogEvent {
    pub at: chrono::NaiveDateTime,
    /// `ERROR`, `WARN`, `INFO`, …
    pub level: String,
    pub target: String,
    pub text: String,
}
