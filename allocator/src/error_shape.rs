//! The admin API's one error shape, `{"error": {"code", "message"}}`, applied to every refusal
//! under `/api/admin/` — the handlers' own, the extractors', the cross-site check's, and
//! actix's for an unknown route or method — while the original's routes keep its
//! `{"error": "…"}`.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use lablink_schema::wire::{ApiErrorBody, ApiErrorDetail};

use crate::error::ErrorReply;

/// The path as the router matches it: percent-escapes of ordinary characters decoded
/// (`/api/%61dmin` is `/api/admin`), so that every check keyed on a path sees what the
/// router will route, whatever the spelling the client chose.
pub fn routed_path(request: &ServiceRequest) -> &str {
    request.match_info().as_str()
}

/// Whether `path` is the admin API's.
pub fn is_admin_api(path: &str) -> bool {
    path.starts_with("/api/admin/") || path == "/api/admin"
}

/// Rewrites the body of an admin API refusal into the coded shape.
pub async fn coded_admin_errors(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    let admin_api = is_admin_api(routed_path(&request));
    let method = request.method().clone();
    let path = routed_path(&request).to_owned();
    let response = next.call(request).await?;
    let status = response.status();
    if !admin_api || !(status.is_client_error() || status.is_server_error()) {
        return Ok(response
            .map_body(|_, body| BoxBody::new(body))
            .map_into_left_body());
    }
    let reply = response
        .response()
        .extensions()
        .get::<ErrorReply>()
        .cloned();
    let detail = match reply {
        Some(ErrorReply { code, message }) => ApiErrorDetail {
            code: code.to_owned(),
            message,
        },
        None => ApiErrorDetail {
            code: code_of(status).to_owned(),
            message: match status {
                StatusCode::NOT_FOUND => format!("there is no admin API route {path}"),
                StatusCode::METHOD_NOT_ALLOWED => format!("{method} is not allowed on {path}"),
                // Nothing about internals leaves the allocator.
                status if status.is_server_error() => "Internal error.".to_owned(),
                _ => response
                    .response()
                    .error()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
            },
        },
    };
    let body = serde_json::to_vec(&ApiErrorBody { error: detail })
        .map_err(actix_web::error::ErrorInternalServerError)?;
    Ok(response
        .map_body(|head, _| {
            head.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            BoxBody::new(body)
        })
        .map_into_right_body())
}

/// The code of a refusal that did not come from an [`crate::error::ApiError`].
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        status if status.is_server_error() => "internal",
        _ => "error",
    }
}
