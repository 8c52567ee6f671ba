//! A redirect is an answer, not a failure: the dashboard's extractors send a visitor who is
//! not signed in to the sign-in form by failing with a 303, and the request logger would log
//! every such visit as an error. This middleware, inside the logger, takes the error off a
//! redirect's response (the response itself is unchanged), so only real failures are logged.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::HttpResponse;

/// Passes every response on, a redirect without the error that produced it.
pub async fn redirects_are_not_errors<B: MessageBody + 'static>(
    request: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let response = next.call(request).await?;
    if !(response.status().is_redirection() && response.response().error().is_some()) {
        return Ok(response);
    }
    let (request, answer) = response.into_parts();
    // Through the plain response type, which carries no error.
    let plain: actix_web::dev::Response<B> = answer.into();
    Ok(ServiceResponse::new(request, HttpResponse::from(plain)))
}
