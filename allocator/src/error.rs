//! `ApiError`: every way a JSON endpoint refuses a request, and its status code. 4xx bodies
//! say what to fix; 5xx bodies say nothing about internals (the cause is logged once, here).

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use lablink_actors::db_writer::WriteError;
use lablink_actors::provisioning_queue::ProvisioningError;
use lablink_schema::wire::ErrorBody;

/// A refused or failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or its values are invalid.
    #[error("{0}")]
    BadRequest(String),
    /// No credentials, or wrong ones. `realm` decides the `WWW-Authenticate` challenge.
    #[error("{message}")]
    Unauthorized {
        message: String,
        challenge: Challenge,
    },
    /// Understood and authenticated, but not allowed (a limit is reached).
    #[error("{0}")]
    Forbidden(String),
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (e.g. needs a confirmation).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than configured.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The body did not arrive within `server.body_timeout_secs`.
    #[error("{0}")]
    RequestTimeout(String),
    /// Too many requests; try again after the given wait.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: std::time::Duration,
    },
    /// The body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Temporarily unable to serve (nothing free, contention, database down).
    #[error("{0}")]
    Unavailable(String),
    /// A fault of ours; the message is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// A refusal a script may want to tell apart from others of its status, with its own
    /// code (an expired API token, a read-only one, an idempotency key in use).
    #[error("{message}")]
    Coded {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

/// What a refusal said, kept on the response so the admin API can answer it in its own shape
/// (`{"error": {"code", "message"}}`, [`crate::error_shape`]) while the original's routes keep
/// `{"error": "…"}`.
#[derive(Debug, Clone)]
pub struct ErrorReply {
    pub code: &'static str,
    pub message: String,
}

/// Which credentials a 401 asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// Admin: HTTP Basic.
    Basic,
    /// A VM: its bearer token.
    Bearer,
}

impl ApiError {
    /// 401 asking for admin credentials.
    pub fn admin_required() -> Self {
        ApiError::Unauthorized {
            message: "admin credentials required".to_owned(),
            challenge: Challenge::Basic,
        }
    }

    /// 401 asking for the VM's token.
    pub fn vm_token_required(hostname: &str) -> Self {
        ApiError::Unauthorized {
            message: format!(
                "send `Authorization: Bearer <token>` with the token of VM `{hostname}`"
            ),
            challenge: Challenge::Bearer,
        }
    }

    /// 401 for a token-less first report: a new machine needs an enrollment token.
    pub fn enrollment_required(hostname: &str) -> Self {
        ApiError::Unauthorized {
            message: format!(
                "VM `{hostname}` is not known to this allocator: a lab's own machine joins with \
                 an enrollment token from the dashboard (`Authorization: Bearer lle_…`, \
                 LABLINK_ENROLLMENT_TOKEN for the agent)"
            ),
            challenge: Challenge::Bearer,
        }
    }

    /// 401 for an enrollment token that cannot be used, saying why.
    pub fn enrollment_refused(reason: &str) -> Self {
        ApiError::Unauthorized {
            message: reason.to_owned(),
            challenge: Challenge::Bearer,
        }
    }

    /// A failed query: a lost connection is the database being unavailable (503, worth
    /// retrying); anything else is a fault of ours.
    pub fn from_query(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => {
                tracing::warn!(error = %err, "database connection lost");
                ApiError::Unavailable("The database is unavailable; please try again.".to_owned())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }

    /// 401 for an API token that is not known.
    pub fn api_token_unknown() -> Self {
        ApiError::Coded {
            status: StatusCode::UNAUTHORIZED,
            code: "token_unknown",
            message: "this API token is not known to this allocator: check it was copied whole, \
                      or make a new one on the dashboard (API tokens)"
                .to_owned(),
        }
    }

    /// 401 for an API token past its expiry.
    pub fn api_token_expired(at: chrono::NaiveDateTime) -> Self {
        ApiError::Coded {
            status: StatusCode::UNAUTHORIZED,
            code: "token_expired",
            message: format!(
                "this API token expired at {} UTC: make a new one",
                at.format("%Y-%m-%d %H:%M")
            ),
        }
    }

    /// 401 for a revoked API token.
    pub fn api_token_revoked() -> Self {
        ApiError::Coded {
            status: StatusCode::UNAUTHORIZED,
            code: "token_revoked",
            message: "this API token was revoked: make a new one".to_owned(),
        }
    }

    /// 403 for a read-only API token on a request that changes something.
    pub fn read_only_token() -> Self {
        ApiError::Coded {
            status: StatusCode::FORBIDDEN,
            code: "read_only_token",
            message: "this API token is read-only: this request changes something and needs a \
                      token with the admin scope"
                .to_owned(),
        }
    }

    /// The code a script branches on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized { .. } => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
            ApiError::Coded { code, .. } => code,
        }
    }

    /// 404 for an unknown VM, worded as the original API did.
    pub fn vm_not_found() -> Self {
        ApiError::NotFound("VM not found.".to_owned())
    }
}

impl From<WriteError> for ApiError {
    fn from(err: WriteError) -> Self {
        match err {
            WriteError::UnknownVm(_) => ApiError::vm_not_found(),
            WriteError::NoFreeVm => ApiError::Unavailable("No VM is free right now.".to_owned()),
            WriteError::Contended => {
                ApiError::Unavailable("Busy assigning VMs; please try again.".to_owned())
            }
            WriteError::Unavailable(_) => {
                ApiError::Unavailable("The database is unavailable; please try again.".to_owned())
            }
            WriteError::Database(err) => ApiError::from_query(err),
            WriteError::Batch(reason) => ApiError::Internal(reason),
            WriteError::Stopped => {
                ApiError::Unavailable("The allocator is restarting; please retry.".to_owned())
            }
        }
    }
}

impl From<ProvisioningError> for ApiError {
    fn from(err: ProvisioningError) -> Self {
        match err {
            ProvisioningError::InvalidCount { .. }
            | ProvisioningError::TooMany { .. }
            | ProvisioningError::NothingToDestroy => ApiError::BadRequest(err.to_string()),
            ProvisioningError::UnknownVms(_) => ApiError::NotFound(err.to_string()),
            ProvisioningError::AssignedVms(_) => ApiError::Conflict(err.to_string()),
            ProvisioningError::Database(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(err: actix::MailboxError) -> Self {
        ApiError::Internal(format!("actor unavailable: {err}"))
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(err: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(format!("blocking task failed: {err}"))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Coded { status, .. } => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                "Internal error.".to_owned()
            }
            other => other.to_string(),
        };
        let mut response = HttpResponse::build(self.status_code());
        if let ApiError::TooManyRequests { retry_after, .. } = self {
            response.insert_header((header::RETRY_AFTER, retry_after_secs(*retry_after)));
        }
        if matches!(self, ApiError::RequestTimeout(_)) {
            // The rest of that body may still be on its way: the connection cannot be reused.
            response.force_close();
        }
        if let ApiError::Unauthorized { challenge, .. } = self {
            let value = match challenge {
                Challenge::Basic => r#"Basic realm="LabLink admin""#,
                Challenge::Bearer => r#"Bearer realm="LabLink VM""#,
            };
            response.insert_header((header::WWW_AUTHENTICATE, value));
        }
        let mut response = response.json(ErrorBody {
            error: message.clone(),
        });
        response.extensions_mut().insert(ErrorReply {
            code: self.code(),
            message,
        });
        response
    }
}

/// Whole seconds to wait, rounded up, for `Retry-After`.
pub fn retry_after_secs(wait: std::time::Duration) -> String {
    wait.as_secs_f64().ceil().max(1.0).to_string()
}

fn body_timed_out() -> ApiError {
    ApiError::RequestTimeout("the request body did not arrive in time".to_owned())
}

/// Turns actix-web's JSON extraction failures into clear 4xx answers.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &err {
        E::ContentType => ApiError::UnsupportedMediaType(
            "send the body as `Content-Type: application/json`".to_owned(),
        ),
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge(format!("the body is larger than {limit} bytes"))
        }
        E::Deserialize(cause) => ApiError::BadRequest(format!("invalid JSON body: {cause}")),
        E::Payload(cause) if crate::body_timeout::is_timeout(cause) => body_timed_out(),
        _ => ApiError::BadRequest(format!("unreadable body: {err}")),
    };
    api.into()
}

/// Turns failures to read a path parameter into a 400: a page on a page's path, JSON on the
/// API's.
pub fn path_error(
    err: actix_web::error::PathError,
    request: &actix_web::HttpRequest,
) -> actix_web::Error {
    let api = ApiError::BadRequest(format!("invalid path: {err}"));
    if crate::page_error::is_page(request) {
        crate::page_error::PageError(api).into()
    } else {
        api.into()
    }
}

/// Turns query-string extraction failures into clear 400 answers (a page for pages).
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    request: &actix_web::HttpRequest,
) -> actix_web::Error {
    let api = ApiError::BadRequest(format!("invalid query: {err}"));
    if crate::page_error::is_page(request) {
        crate::page_error::PageError(api).into()
    } else {
        api.into()
    }
}

/// Turns form extraction failures into clear 4xx answers. Forms are posted from pages, so
/// the answer is a page.
pub fn form_error(
    err: actix_web::error::UrlencodedError,
    _: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::UrlencodedError as E;
    let api = match &err {
        E::Overflow { limit, .. } => {
            ApiError::PayloadTooLarge(format!("the form is larger than {limit} bytes"))
        }
        E::Payload(cause) if crate::body_timeout::is_timeout(cause) => body_timed_out(),
        E::ContentType => ApiError::UnsupportedMediaType(
            "send the form as `application/x-www-form-urlencoded`".to_owned(),
        ),
        _ => ApiError::BadRequest(format!("unreadable form: {err}")),
    };
    crate::page_error::PageError(api).into()
}
