//! No query parameter may hold a NUL character: no filter, search or name means one, and
//! PostgreSQL refuses it in text (the request would fail as a 500). Refused at the edge, for
//! every route, with a 400 saying so.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::ResponseError;

use crate::error::ApiError;
use crate::page_error::{is_page, PageError};

/// Middleware: a query string with an encoded NUL (`%00`) is answered 400.
pub async fn refuse_nul_in_query(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if holds_nul(request.query_string()) {
        let refusal = ApiError::BadRequest(
            "a query parameter holds a NUL character (%00); remove it".to_owned(),
        );
        // A page answers with a page, the API with its JSON.
        let response = if is_page(request.request()) {
            PageError(refusal).error_response()
        } else {
            refusal.error_response()
        };
        return Ok(request.into_response(response).map_into_right_body());
    }
    next.call(request)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Whether a raw query string encodes a NUL (a raw NUL byte cannot be in a URI at all).
fn holds_nul(query: &str) -> bool {
    query
        .as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_encoded_nul_is_found_anywhere_in_the_query() {
        assert!(super::holds_nul("actor=%00"));
        assert!(super::holds_nul("q=abc%00def&limit=1"));
        assert!(!super::holds_nul("q=100%25&x=%0A"));
        assert!(!super::holds_nul(""));
    }
}
