//! A VM's log page (`/admin/logs/{hostname}`): the newest lines first, new ones on top as
//! they arrive, older ones a page at a time, narrowed by source, to errors or to a text, and
//! the whole kept history as a download.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use lablink_schema::vm_logs::VmLogLine;
use lablink_schema::vms::Vm;
use serde::Serialize;

use super::{page_error, render};
use crate::auth::SignedIn;
use crate::error::ApiError;
use crate::routes::vm_logs::{read_page, LogsParams};
use crate::state::AppState;
use crate::validate;

/// Lines on one page of the log page.
const PAGE_LINES: i64 = 500;

#[derive(Debug, Serialize)]
struct LogsView<'a> {
    csrf: &'a str,
    hostname: &'a str,
    lines: Vec<LineView<'a>>,
    sources: Vec<SourceChoice>,
    errors_only: bool,
    search: &'a str,
    /// Lines come live only on the newest, unfiltered page.
    live: bool,
    /// The id of the newest line shown: the live stream starts after it.
    after: i64,
    /// The query string of the page before this one, when more lines are kept.
    older: Option<String>,
}

#[derive(Debug, Serialize)]
struct LineView<'a> {
    received_at: String,
    source: &'a str,
    text: &'a str,
    is_error: bool,
}

#[derive(Debug, Serialize)]
struct SourceChoice {
    name: String,
    selected: bool,
}

/// `GET /admin/logs/{hostname}?before=&source=&errors=&q=`.
pub async fn logs_page(
    state: web::Data<AppState>,
    session: SignedIn,
    hostname: web::Path<String>,
    params: web::Query<LogsParams>,
) -> HttpResponse {
    let hostname = match validate::hostname(&hostname) {
        Ok(hostname) => hostname.to_owned(),
        Err(reason) => return page_error(ApiError::BadRequest(reason)),
    };
    let host = hostname.clone();
    let found = state
        .read(move |conn| {
            let vm = Vm::find_by_hostname(conn, &host)?;
            let sources = VmLogLine::sources(conn, &host)?;
            Ok((vm, sources))
        })
        .await;
    let sources = match found {
        Ok((Some(_), sources)) => sources,
        Ok((None, _)) => return page_error(ApiError::vm_not_found()),
        Err(err) => return page_error(err),
    };
    // A page of 500 unless asked otherwise: the API's 2,000 is more than a browser needs
    // at once, and "Older lines" reads on.
    let params = LogsParams {
        limit: params.limit.or(Some(PAGE_LINES)),
        ..params.into_inner()
    };
    let (lines, next_before) = match read_page(&state, &hostname, &params).await {
        Ok(page) => page,
        Err(err) => return page_error(err),
    };
    let search = params.q.as_deref().unwrap_or_default();
    let selected = params.source.as_deref().unwrap_or_default();
    let older = next_before.map(|before| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("before", &before.to_string());
        if !selected.is_empty() {
            query.append_pair("source", selected);
        }
        if params.errors {
            query.append_pair("errors", "true");
        }
        if !search.is_empty() {
            query.append_pair("q", search);
        }
        query.finish()
    });
    render(
        &state,
        StatusCode::OK,
        "admin_logs",
        &LogsView {
            csrf: session.csrf(),
            hostname: &hostname,
            live: params.before.is_none()
                && selected.is_empty()
                && !params.errors
                && search.is_empty(),
            after: lines.first().map_or(0, |l| l.id),
            lines: lines
                .iter()
                .map(|line| LineView {
                    received_at: crate::pages::display_time(line.received_at),
                    source: &line.source,
                    text: &line.line,
                    is_error: line.is_error,
                })
                .collect(),
            sources: sources
                .into_iter()
                .map(|name| SourceChoice {
                    selected: name == selected,
                    name,
                })
                .collect(),
            errors_only: params.errors,
            search,
            older,
        },
    )
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
