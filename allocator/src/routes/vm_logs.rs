//! VM logs over HTTP: an agent appends its lines (`POST /api/vm-logs`, the original's body
//! or lines tagged with source and time), and the admin, or the VM itself, reads them newest
//! first a page at a time with filters, or downloads all that is kept as a text file.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use lablink_actors::db_writer::AppendVmLogs;
use lablink_schema::log_text::cut_to;
use lablink_schema::vm_logs::{LogQuery, NewLogLine, VmLogLine};
use lablink_schema::wire::{LogLineView, VmLogBatch, VmLogs, VmStatus};
use serde::Deserialize;

use super::vm_api::message;
use crate::auth::{AuthorizedVm, VmOrAdmin};
use crate::error::ApiError;
use crate::state::AppState;

/// Lines in one page when the reader asks for no number.
const DEFAULT_PAGE_LINES: i64 = 2_000;
/// Most lines in one page.
const MAX_PAGE_LINES: i64 = 10_000;
/// Lines read per step while a download streams.
const DOWNLOAD_STEP: i64 = 5_000;

/// `POST /api/vm-logs`: appends lines to the VM named by `log_stream` (the extractor made
/// sure the caller may act for it).
#[utoipa::path(
    post,
    path = "/api/vm-logs",
    tag = "agents",
    request_body = VmLogBatch,
    responses(
        (status = 200, description = "Stored", body = lablink_schema::wire::MessageBody),
        (status = 400, description = "Bad input", body = lablink_schema::wire::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = lablink_schema::wire::ErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody),
        (status = 429, description = "Too many requests", body = lablink_schema::wire::ErrorBody)
    ),
    security(("vm_token" = [])),
)]
pub async fn append_logs(
    state: web::Data<AppState>,
    request: AuthorizedVm<VmLogBatch>,
) -> Result<HttpResponse, ApiError> {
    let VmLogBatch {
        log_stream,
        messages,
        entries,
        stream,
        ..
    } = request.body;
    if stream
        .as_ref()
        .is_some_and(|s| s.is_empty() || s.len() > 64)
    {
        return Err(ApiError::BadRequest(
            "stream must be 1 to 64 characters".to_owned(),
        ));
    }
    let texts = messages.iter().chain(entries.iter().map(|e| &e.text));
    // A NUL cannot be stored in PostgreSQL text; say which line has one.
    if let Some(index) = texts.clone().position(|line| line.contains('\0')) {
        return Err(ApiError::BadRequest(format!(
            "log line {index} contains a NUL character, which cannot be stored"
        )));
    }
    let bytes: usize = texts.map(String::len).sum();
    if bytes > state.max_log_bytes_per_batch {
        return Err(ApiError::PayloadTooLarge(format!(
            "this batch holds {bytes} bytes of log text; at most {} are taken at once \
             (clients.max_log_bytes_per_batch)",
            state.max_log_bytes_per_batch
        )));
    }
    if let Err(wait) = state.log_budget.spend(&log_stream, bytes) {
        return Err(ApiError::TooManyRequests {
            message: "this VM has sent as much log text as it may this minute \
                      (clients.max_log_bytes_per_minute); send the rest later"
                .to_owned(),
            retry_after: wait,
        });
    }
    let cut = |text: &str| cut_to(text, state.max_log_line_bytes).into_owned();
    let lines: Vec<NewLogLine> = messages
        .iter()
        .map(|text| NewLogLine::plain(cut(text)))
        .chain(entries.iter().map(|entry| NewLogLine {
            source: entry.source.clone(),
            logged_at: entry.logged_at.map(|at| at.naive_utc()),
            text: cut(&entry.text),
            seq: entry.seq,
        }))
        .collect();
    state
        .writer
        .send(AppendVmLogs {
            hostname: log_stream,
            stream,
            lines,
            retention: state.log_retention,
        })
        .await??;
    Ok(message("VM logs posted successfully."))
}

/// The query of `GET /api/vm-logs/{hostname}` (and of the dashboard's log page).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsParams {
    /// Lines older than this id: the previous page's `next_before`.
    pub before: Option<i64>,
    /// Lines in the page, 1 to 10,000 (2,000 when absent).
    pub limit: Option<i64>,
    pub source: Option<String>,
    /// `true`: only lines that read as errors.
    #[serde(default)]
    pub errors: bool,
    /// Only lines holding this text (any case).
    pub q: Option<String>,
}

impl LogsParams {
    /// The query and the page size, or what to fix.
    pub fn checked(&self) -> Result<(LogQuery, i64), ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_LINES);
        if !(1..=MAX_PAGE_LINES).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "limit must be between 1 and {MAX_PAGE_LINES}"
            )));
        }
        if self.before.is_some_and(|before| before < 1) {
            return Err(ApiError::BadRequest(
                "before must be a line id (1 or more)".to_owned(),
            ));
        }
        let blank_to_none = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let search = blank_to_none(&self.q);
        if search.as_ref().is_some_and(|q| q.len() > 200) {
            return Err(ApiError::BadRequest(
                "q must be at most 200 bytes".to_owned(),
            ));
        }
        Ok((
            LogQuery {
                before: self.before,
                source: blank_to_none(&self.source),
                errors_only: self.errors,
                search,
            },
            limit,
        ))
    }
}

/// A page of `hostname`'s lines, newest first, and the `before` of the page after it.
pub async fn read_page(
    state: &AppState,
    hostname: &str,
    params: &LogsParams,
) -> Result<(Vec<VmLogLine>, Option<i64>), ApiError> {
    let (query, limit) = params.checked()?;
    let hostname = hostname.to_owned();
    // One more than asked says whether a page follows.
    let mut lines = state
        .read(move |conn| VmLogLine::newest_first(conn, &hostname, &query, limit + 1))
        .await?;
    let more = lines.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    lines.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_before = if more {
        lines.last().map(|l| l.id)
    } else {
        None
    };
    Ok((lines, next_before))
}

/// `GET /api/vm-logs/{hostname}` (admin, or the VM itself): the newest page of its lines,
/// as [`VmLogs`] says.
#[utoipa::path(
    get,
    path = "/api/vm-logs/{hostname}",
    tag = "agents",
    params(
        ("hostname" = String, Path, description = "The VM's hostname"),
        LogsParams
    ),
    responses(
        (status = 200, description = "The newest page of the VM's lines", body = VmLogs),
        (status = 400, description = "Bad input", body = lablink_schema::wire::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = lablink_schema::wire::ErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody),
        (status = 503, description = "Unavailable", body = lablink_schema::wire::ErrorBody)
    ),
    security(("vm_token" = []), ("bearer" = []), ("basic" = [])),
)]
pub async fn get_logs(
    state: web::Data<AppState>,
    reader: VmOrAdmin,
    params: web::Query<LogsParams>,
) -> Result<HttpResponse, ApiError> {
    let vm = reader.vm;
    let (lines, next_before) = read_page(&state, &vm.hostname, &params).await?;
    if lines.is_empty() && params.before.is_none() && vm.status() == VmStatus::Initializing {
        return Err(ApiError::Unavailable(
            "VM is installing CloudWatch agent.".to_owned(),
        ));
    }
    let logs = (!lines.is_empty()).then(|| {
        lines
            .iter()
            .rev()
            .map(|l| l.line.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    });
    let lines = lines
        .into_iter()
        .map(|line| LogLineView {
            id: line.id,
            source: line.source,
            logged_at: line.logged_at,
            received_at: line.received_at,
            text: line.line,
            is_error: line.is_error,
        })
        .collect();
    Ok(HttpResponse::Ok().json(VmLogs {
        hostname: vm.hostname,
        logs,
        lines,
        next_before,
    }))
}

/// `GET /api/admin/vms/{hostname}/logs`: the same page under the admin API (its error shape).
#[utoipa::path(
    get,
    path = "/api/admin/vms/{hostname}/logs",
    tag = "admin: logs",
    params(
        ("hostname" = String, Path, description = "The VM's hostname"),
        LogsParams
    ),
    responses(
        (status = 200, description = "The newest page of the VM's lines", body = VmLogs),
        (status = 400, description = "Bad input: what to fix", body = lablink_schema::wire::ApiErrorBody),
        (status = 401, description = "No, wrong, expired or revoked credentials", body = lablink_schema::wire::ApiErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ApiErrorBody),
        (status = 503, description = "Unavailable (database, provider)", body = lablink_schema::wire::ApiErrorBody)
    ),
    security(("bearer" = []), ("basic" = [])),
)]
pub async fn admin_logs(
    state: web::Data<AppState>,
    reader: VmOrAdmin,
    params: web::Query<LogsParams>,
) -> Result<HttpResponse, ApiError> {
    get_logs(state, reader, params).await
}

/// `GET /api/vm-logs/{hostname}/download` (admin, or the VM itself): every kept line, oldest
/// first, as `<received> <source> <text>` lines of a text file, read a step at a time.
#[utoipa::path(
    get,
    path = "/api/vm-logs/{hostname}/download",
    tag = "agents",
    params(
        ("hostname" = String, Path, description = "The VM's hostname")
    ),
    responses(
        (status = 200, description = "Every kept line, oldest first", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or wrong token", body = lablink_schema::wire::ErrorBody),
        (status = 404, description = "Not found", body = lablink_schema::wire::ErrorBody)
    ),
    security(("vm_token" = []), ("bearer" = []), ("basic" = [])),
)]
pub async fn download_logs(
    state: web::Data<AppState>,
    reader: VmOrAdmin,
) -> Result<HttpResponse, ApiError> {
    let hostname = reader.vm.hostname;
    let filename = format!("{hostname}-{}.log", Utc::now().format("%Y%m%dT%H%M%SZ"));
    let state = state.into_inner();
    let chunks = futures_util::stream::try_unfold(Some(0i64), move |after| {
        let (state, hostname) = (state.clone(), hostname.clone());
        async move {
            let Some(after) = after else {
                return Ok::<_, ApiError>(None);
            };
            let lines = state
                .read(move |conn| {
                    VmLogLine::list_for_host(conn, &hostname, Some(after), DOWNLOAD_STEP)
                })
                .await?;
            let Some(last) = lines.last().map(|l| l.id) else {
                return Ok(None);
            };
            let mut text = String::new();
            for line in &lines {
                text.push_str(&format!(
                    "{} {} {}\n",
                    line.received_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                    line.source,
                    line.line
                ));
            }
            let next = (lines.len() as i64 == DOWNLOAD_STEP).then_some(last);
            Ok(Some((web::Bytes::from(text), next)))
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .streaming(chunks))
}
