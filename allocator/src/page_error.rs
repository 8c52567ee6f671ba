//! [`PageError`]: an [`ApiError`] met while serving a web page, answered as a small HTML page
//! with the same status (and `Retry-After`), not as the JSON body an API client would get.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

use crate::error::{retry_after_secs, ApiError};

/// A failure of a page handler; see the module documentation.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct PageError(#[from] pub ApiError);

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let (title, message) = match &self.0 {
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "page failed");
                (
                    "Something went wrong",
                    "Something went wrong on our side. Please try again; if it keeps happening, \
                     tell your instructor."
                        .to_owned(),
                )
            }
            ApiError::Unavailable(message) => (
                "Please try again",
                format!("{message} Reload this page in a minute."),
            ),
            ApiError::TooManyRequests { message, .. } => ("Please wait", message.clone()),
            other => ("That did not work", other.to_string()),
        };
        let mut response = HttpResponse::build(self.status_code());
        response
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"));
        if let ApiError::TooManyRequests { retry_after, .. } = &self.0 {
            response.insert_header((header::RETRY_AFTER, retry_after_secs(*retry_after)));
        }
        response.body(error_page(title, &message))
    }
}

/// Whether `request` is for a page (the start page, the dashboard), whose errors are pages,
/// rather than for the API (`/api/…`, `/vm_startup`, `/metrics`, the health checks).
pub fn is_page(request: &actix_web::HttpRequest) -> bool {
    let path = request.match_info().as_str();
    path == "/" || path == "/admin" || path.starts_with("/admin/")
}

/// A page that needs nothing that could itself be failing (no template, no database).
fn error_page(title: &str, message: &str) -> String {
    let title = handlebars::html_escape(title);
    let message = handlebars::html_escape(message);
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n  <meta charset=\"utf-8\">\n  \
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n  \
         <title>{title} · LabLink</title>\n  <link rel=\"stylesheet\" href=\"/static/lablink.css\">\n\
         </head>\n<body>\n  <header class=\"site\"><a class=\"brand\" href=\"/\">LabLink</a></header>\n  \
         <main>\n    <h1>{title}</h1>\n    <p class=\"alert\" role=\"alert\" id=\"error\">{message}</p>\n    \
         <p><a href=\"/\">Back to the start page</a></p>\n  </main>\n</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_on_pages_are_html_with_their_status() {
        let response = PageError(ApiError::Unavailable(
            "The database is unavailable; please try again.".into(),
        ))
        .error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("text/html; charset=utf-8")
        );
        let limited = PageError(ApiError::TooManyRequests {
            message: "wait".into(),
            retry_after: std::time::Duration::from_millis(1_500),
        })
        .error_response();
        assert_eq!(
            limited
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("2")
        );
        assert!(error_page("<t>", "a & b").contains("a &amp; b"));
    }
}
