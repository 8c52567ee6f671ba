//! The admin API's error body, `{"error": {"code", "message"}}`: a code a script can branch
//! on, and a sentence saying what to fix. (The original's routes keep `{"error": "…"}`,
//! [`super::ErrorBody`].)

use serde::{Deserialize, Serialize};

/// A refused or failed admin API request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiErrorBody {
    pub error: ApiErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiErrorDetail {
    /// Stable, snake_case: `bad_request`, `not_found`, `token_expired`, `read_only_token`, …
    pub code: String,
    pub message: String,
}
