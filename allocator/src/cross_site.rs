//! No cross-site request can change state through the admin API. A browser that holds the
//! admin's Basic credentials sends them with any request, also one another site makes it
//! send; such a request can carry neither a JSON body nor a custom header without a CORS
//! preflight, which this allocator never grants. So a state-changing `/api/admin/` request
//! must have one of them, and must not say (`Sec-Fetch-Site`, `Origin`) it came from
//! elsewhere.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::ResponseError;

use crate::error::ApiError;
use crate::error_shape::{is_admin_api, routed_path};

/// The header a script may send instead of a JSON body (any value).
pub const CLIENT_HEADER: &str = "x-lablink-client";

/// Middleware: refuses cross-site state changes on the admin API with 403.
pub async fn refuse_cross_site(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(reason) = cross_site_reason(&request) {
        tracing::warn!(path = %routed_path(&request), reason, "cross-site admin request refused");
        let response = ApiError::Forbidden(format!(
            "refused as a possible cross-site request: {reason}"
        ))
        .error_response();
        return Ok(request.into_response(response).map_into_right_body());
    }
    next.call(request)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Whether a request's `Origin` is this allocator, as the request reached it (`host`, with
/// the port; behind a trusted proxy, the host the browser asked for).
pub fn is_own_origin(origin: &str, host: &str) -> bool {
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    origin != "null" && origin_host.eq_ignore_ascii_case(host)
}

fn cross_site_reason(request: &ServiceRequest) -> Option<&'static str> {
    let changes_state = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    // The path the router will route, never the raw one: `/api/%61dmin/…` reaches the
    // admin handlers too.
    if !changes_state || !is_admin_api(routed_path(request)) {
        return None;
    }
    let headers = request.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        if site != "same-origin" && site != "none" {
            return Some("Sec-Fetch-Site says it came from another site");
        }
    }
    if let Some(origin) = text(header::ORIGIN) {
        if !is_own_origin(origin, request.connection_info().host()) {
            return Some("its Origin is another site");
        }
    }
    let json = text(header::CONTENT_TYPE).is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    });
    if !json && !headers.contains_key(CLIENT_HEADER) {
        return Some(
            "send a JSON body (Content-Type: application/json) or an X-LabLink-Client header",
        );
    }
    None
}
