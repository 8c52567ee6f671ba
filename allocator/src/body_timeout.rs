//! The body deadline: a request's body must have arrived within `server.body_timeout_secs`
//! of its head. A body that dribbles in or never ends would otherwise hold its worker's
//! connection and its handler forever; past the deadline the body reads as timed out, which
//! the extractors answer with 408.

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use futures_util::StreamExt;

/// How long a body may take, as app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// Middleware: wraps the request's body stream in the deadline.
pub async fn limit_body_time(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if is_websocket_upgrade(&request) {
        // A WebSocket's body is its frames, for as long as the socket stays open.
        return next.call(request).await;
    }
    let limit = request
        .app_data::<BodyTimeout>()
        .map(|t| t.0)
        .unwrap_or(Duration::from_secs(30));
    let deadline = tokio::time::Instant::now() + limit;
    let body = request.take_payload();
    let timed = futures_util::stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(body))),
            Ok(None) => None,
            // The stream ends after the error, so the body is never read past the deadline.
            Err(_) => Some((Err(timed_out()), None)),
        }
    });
    let timed: std::pin::Pin<Box<dyn futures_util::Stream<Item = _>>> = Box::pin(timed);
    request.set_payload(Payload::from(timed));
    next.call(request).await
}

fn is_websocket_upgrade(request: &ServiceRequest) -> bool {
    request
        .headers()
        .get(actix_web::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn timed_out() -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the request body did not arrive in time",
    ))
}

/// Whether a body error is this deadline's.
pub fn is_timeout(err: &PayloadError) -> bool {
    matches!(err, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}
