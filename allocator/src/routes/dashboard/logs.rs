//! A VM's log page (`/admin/logs/{hostname}`): the newest lines, then new ones live.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use lablink_schema::vm_logs::VmLogLine;
use lablink_schema::vms::Vm;
use serde::Serialize;

use super::{page_error, render};
use crate::auth::SignedIn;
use crate::error::ApiError;
use crate::state::AppState;
use crate::validate;

/// Lines shown when a log page opens.
const LOG_LINES_SHOWN: i64 = 2_000;

#[derive(Debug, Serialize)]
struct LogsView<'a> {
    csrf: &'a str,
    hostname: &'a str,
    lines: Vec<&'a str>,
    /// The id of the last line shown: the live stream starts after it.
    after: i64,
}

/// `GET /admin/logs/{hostname}`.
pub async fn logs_page(
    state: web::Data<AppState>,
    session: SignedIn,
    hostname: web::Path<String>,
) -> HttpResponse {
    let hostname = match validate::hostname(&hostname) {
        Ok(hostname) => hostname.to_owned(),
        Err(reason) => return page_error(ApiError::BadRequest(reason)),
    };
    let host = hostname.clone();
    let read = state
        .read(move |conn| {
            let vm = Vm::find_by_hostname(conn, &host)?;
            let lines = VmLogLine::list_for_host(conn, &host, None, LOG_LINES_SHOWN)?;
            Ok((vm, lines))
        })
        .await;
    match read {
        Ok((Some(_), lines)) => render(
            &state,
            StatusCode::OK,
            "admin_logs",
            &LogsView {
                csrf: session.csrf(),
                hostname: &hostname,
                lines: lines.iter().map(|l| l.line.as_str()).collect(),
                after: lines.last().map_or(0, |l| l.id),
            },
        ),
        Ok((None, _)) => page_error(ApiError::vm_not_found()),
        Err(err) => page_error(err),
    }
}

/// `GET /admin/logs/{hostname}/stream?after=ID`: new log lines as they arrive.
pub async fn log_stream(
    state: web::Data<AppState>,
    _session: SignedIn,
    request: HttpRequest,
    hostname: web::Path<String>,
) -> HttpResponse {
    let hostname = match validate::hostname(&hostname) {
        Ok(hostname) => hostname.to_owned(),
        Err(reason) => return page_error(ApiError::BadRequest(reason)),
    };
    let after: i64 =
        web::Query::<std::collections::HashMap<String, String>>::from_query(request.query_string())
            .ok()
            .and_then(|q| q.get("after").and_then(|a| a.parse().ok()))
            .unwrap_or(0);
    crate::sse::log_lines(&state, hostname, after)
}
