//! The admin dashboard's pages: sign-in and out, instances (live), create and destroy,
//! release, per-VM logs (live), operations (live output) and the audit trail. Every page
//! needs a signed-in session; every form POST carries the session's CSRF token.

use std::net::IpAddr;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use futures_util::StreamExt;
use lablink_actors::db_writer::{EndAdminSession, StartAdminSession, UseLoginNonce};
use lablink_actors::terraform_executor::{OperationEvent, SubscribeOperations};
use lablink_schema::admin_sessions::AdminSession;
use lablink_schema::audit_events::AuditEvent;
use lablink_schema::operations::Operation;
use lablink_schema::vm_logs::VmLogLine;
use lablink_schema::vms::Vm;
use serde::Serialize;
use serde_json::json;

use crate::admin_actions::vms;
use crate::admin_auth::{random_token, same, session_id_hash, LOGIN_COOKIE, SESSION_COOKIE};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::instance_rows::instance_rows;
use crate::state::AppState;
use crate::validate;

/// How long the dashboard waits for the cloud to say whose credentials are in effect.
const CLOUD_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a live log view looks for new lines.
const LOG_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Comment lines keep idle event streams open through proxies.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// Lines shown when a log page opens.
const LOG_LINES_SHOWN: i64 = 2_000;
/// Operations and audit events listed.
const LISTED: i64 = 100;
/// The admin as the audit trail names them.
const ADMIN: &str = "admin";

/// A signed-in admin.
#[derive(Debug)]
pub struct SignedIn {
    id_hash: String,
    pub(super) csrf: String,
}

/// Pages and forms take a [`SignedIn`] argument: a request without a valid session is
/// answered with a redirect to the sign-in page before the handler runs.
impl actix_web::FromRequest for SignedIn {
    type Error = actix_web::Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
                return Err(actix_web::error::ErrorInternalServerError(
                    "no application state",
                ));
            };
            signed_in(&state, &request).await.map_err(|redirect| {
                actix_web::error::InternalError::from_response("not signed in", redirect).into()
            })
        })
    }
}

pub(super) fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish()
}

/// An error on a dashboard page, as a page.
pub(super) fn page_error(err: ApiError) -> HttpResponse {
    actix_web::ResponseError::error_response(&crate::page_error::PageError(err))
}

/// The signed-in session of this request, or a redirect to the sign-in page.
async fn signed_in(state: &AppState, request: &HttpRequest) -> Result<SignedIn, HttpResponse> {
    let Some(cookie) = request.cookie(SESSION_COOKIE) else {
        return Err(redirect("/admin/login"));
    };
    let Some(session_id) = state.signer.verify(cookie.value()) else {
        return Err(redirect("/admin/login?expired=1"));
    };
    let id_hash = session_id_hash(session_id);
    let lookup = id_hash.clone();
    let session = state
        .read(move |conn| AdminSession::find_valid(conn, &lookup, Utc::now().naive_utc()))
        .await
        .map_err(page_error)?;
    match session {
        Some(session) => Ok(SignedIn {
            id_hash,
            csrf: session.csrf_token,
        }),
        None => Err(redirect("/admin/login?expired=1")),
    }
}

/// The fields of a form body, repeated keys kept (checkbox lists).
pub(super) fn form_fields(body: &web::Bytes) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(super) fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Whether the form carries this session's CSRF token.
pub(super) fn csrf_ok(session: &SignedIn, fields: &[(String, String)]) -> bool {
    let given = field(fields, "csrf_token").unwrap_or_default();
    same(given.as_bytes(), session.csrf.as_bytes())
}

/// The answer to a form without the session's CSRF token.
pub(super) fn csrf_refused() -> HttpResponse {
    HttpResponse::Forbidden()
        .content_type("text/plain; charset=utf-8")
        .body("This form has expired or did not come from the dashboard. Reload the page and try again.")
}

pub(super) fn render(
    state: &AppState,
    status: StatusCode,
    name: &str,
    context: &impl Serialize,
) -> HttpResponse {
    match state.pages.render(name, context) {
        Ok(html) => html_page(status, html),
        Err(err) => page_error(ApiError::Internal(err.to_string())),
    }
}

/// An admin page or fragment: never cached, it shows live state.
fn html_page(status: StatusCode, html: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html)
}

pub(super) fn is_https(request: &HttpRequest) -> bool {
    request.connection_info().scheme() == "https"
}

// --- sign-in --------------------------------------------------------------------------

#[derive(Serialize)]
struct LoginPage<'a> {
    nonce: &'a str,
    user: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

fn login_page(
    state: &AppState,
    request: &HttpRequest,
    status: StatusCode,
    user: &str,
    error: Option<&str>,
) -> HttpResponse {
    // A fresh anti-forgery nonce, in a signed cookie and in the form: a sign-in form posted
    // from elsewhere has neither.
    let nonce = random_token();
    let issued = format!("{nonce}:{}", Utc::now().timestamp());
    let notice = match request.query_string() {
        q if q.contains("expired=1") => Some("Your session has ended. Please sign in again."),
        q if q.contains("logged_out=1") => Some("You are signed out."),
        _ => None,
    };
    let mut response = render(
        state,
        status,
        "admin_login",
        &LoginPage {
            nonce: &nonce,
            user,
            error,
            notice,
        },
    );
    let cookie = Cookie::build(LOGIN_COOKIE, state.signer.sign(&issued))
        .path("/admin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_https(request))
        .finish();
    let _ = response.add_cookie(&cookie);
    response
}

/// How long a sign-in form stays usable.
const LOGIN_FORM_TTL_SECS: i64 = 3600;

/// Whether the signed login cookie carries `nonce`, issued within the form's lifetime and
/// used now for the first time (recorded in the database, so every allocator knows).
async fn use_nonce(state: &AppState, signed_cookie: &str, nonce: &str) -> bool {
    let Some((issued_nonce, issued_at)) = state
        .signer
        .verify(signed_cookie)
        .and_then(|value| value.rsplit_once(':'))
    else {
        return false;
    };
    let Ok(issued_at) = issued_at.parse::<i64>() else {
        return false;
    };
    let now = Utc::now().timestamp();
    if !same(issued_nonce.as_bytes(), nonce.as_bytes())
        || !(issued_at..issued_at + LOGIN_FORM_TTL_SECS).contains(&now)
    {
        return false;
    }
    let expires_at = chrono::DateTime::from_timestamp(issued_at + LOGIN_FORM_TTL_SECS, 0)
        .map(|at| at.naive_utc())
        .unwrap_or_default();
    matches!(
        state
            .writer
            .send(UseLoginNonce {
                nonce_hash: crate::auth::hash_token(nonce),
                expires_at,
            })
            .await,
        Ok(Ok(true))
    )
}

/// `GET /admin/login`.
pub async fn login_form(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    login_page(&state, &request, StatusCode::OK, "", None)
}

/// `POST /admin/login`.
pub async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let fields = form_fields(&body);
    let user = field(&fields, "user").unwrap_or_default().to_owned();
    let password = field(&fields, "password").unwrap_or_default().to_owned();
    let nonce_ok = match (request.cookie(LOGIN_COOKIE), field(&fields, "login_nonce")) {
        (Some(cookie), Some(nonce)) => use_nonce(&state, cookie.value(), nonce).await,
        _ => false,
    };
    if !nonce_ok {
        return login_page(
            &state,
            &request,
            StatusCode::FORBIDDEN,
            &user,
            Some("The sign-in form expired. Please try again."),
        );
    }
    let address: IpAddr = state.client_addresses.of(&request);
    if let Err(wait) = state.login_guard.check(address) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return login_page(
            &state,
            &request,
            StatusCode::TOO_MANY_REQUESTS,
            &user,
            Some(&format!(
                "Too many failed sign-ins. Try again in {minutes} minutes."
            )),
        );
    }
    let auth = state.auth.clone();
    let (check_user, check_password) = (user.clone(), password);
    let verified = web::block(move || auth.admin().verify(&check_user, &check_password))
        .await
        .unwrap_or(false);
    if !verified {
        state.login_guard.record_failure(address);
        state
            .audit(
                ADMIN,
                "admin.login_failed",
                None,
                Some(format!("from {address}")),
            )
            .await;
        return login_page(
            &state,
            &request,
            StatusCode::UNAUTHORIZED,
            &user,
            Some("Wrong user name or password."),
        );
    }
    state.login_guard.clear(address);
    let session_id = random_token();
    let now = Utc::now().naive_utc();
    let ttl = chrono::Duration::from_std(state.session_ttl)
        .unwrap_or_else(|_| chrono::Duration::hours(8));
    let session = AdminSession {
        id_hash: session_id_hash(&session_id),
        csrf_token: random_token(),
        created_at: now,
        expires_at: now + ttl,
    };
    if !matches!(
        state.writer.send(StartAdminSession(session)).await,
        Ok(Ok(()))
    ) {
        return page_error(ApiError::Unavailable(
            "Cannot sign in right now; please try again.".to_owned(),
        ));
    }
    state
        .audit(ADMIN, "admin.login", None, Some(format!("from {address}")))
        .await;
    let cookie = Cookie::build(SESSION_COOKIE, state.signer.sign(&session_id))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_https(&request))
        // No Max-Age: gone when the browser closes; the server enforces the expiry.
        .finish();
    let mut response = redirect("/admin");
    let _ = response.add_cookie(&cookie);
    response
}

/// `POST /admin/logout`.
pub async fn logout(
    state: web::Data<AppState>,
    session: SignedIn,
    body: web::Bytes,
) -> HttpResponse {
    if !csrf_ok(&session, &form_fields(&body)) {
        return csrf_refused();
    }
    let _ = state
        .writer
        .send(EndAdminSession {
            id_hash: session.id_hash.clone(),
        })
        .await;
    state.audit(ADMIN, "admin.logout", None, None).await;
    let mut response = redirect("/admin/login?logged_out=1");
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.make_removal();
    let _ = response.add_cookie(&gone);
    response
}

// --- instances ------------------------------------------------------------------------

async fn dashboard_page(
    state: &AppState,
    session: &SignedIn,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> HttpResponse {
    let (vms, free) = match state
        .read(|conn| Ok((Vm::list_all(conn)?, Vm::count_free(conn)?)))
        .await
    {
        Ok(read) => read,
        Err(err) => return page_error(err),
    };
    // Which cloud credentials are in effect (never the secrets), when the cloud API is on.
    let credentials = match &state.cloud {
        None => None,
        Some(cloud) => Some(
            match tokio::time::timeout(CLOUD_TIMEOUT, cloud.identity()).await {
                Ok(Ok(identity)) => format!(
                    "AWS credentials in effect: account {} as {}",
                    identity.account, identity.arn
                ),
                Ok(Err(err)) => format!("AWS credentials are not usable: {err}"),
                Err(_) => "AWS did not answer in time".to_owned(),
            },
        ),
    };
    render(
        state,
        status,
        "admin_dashboard",
        &json!({
            "csrf": session.csrf,
            "instance_rows": instance_rows(&vms, state.cloud.is_some()),
            "cloud": state.cloud.is_some(),
            "credentials": credentials,
            "total": vms.len(),
            "free": free,
            "assigned": assigned_count(&vms),
            "max_vms": state.provider_max_vms,
            "legacy": state.auth.legacy_unauthenticated(),
            "notice": notice,
            "error": error,
        }),
    )
}

/// `POST /admin/vms/{hostname}/reboot`.
pub async fn reboot_vm(
    state: web::Data<AppState>,
    session: SignedIn,
    hostname: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if !csrf_ok(&session, &form_fields(&body)) {
        return csrf_refused();
    }
    match vms::reboot(&state, &Caller::Admin, &hostname).await {
        Ok(()) => redirect("/admin?rebooted=1"),
        Err(err) => refused_on_dashboard(&state, &session, err).await,
    }
}

/// `GET /admin`.
pub async fn dashboard(
    state: web::Data<AppState>,
    session: SignedIn,
    request: HttpRequest,
) -> HttpResponse {
    let query = request.query_string();
    let notice = if query.contains("released=1") {
        Some("The VM was released.")
    } else if query.contains("rebooted=1") {
        Some("The VM is rebooting.")
    } else {
        None
    };
    dashboard_page(&state, &session, StatusCode::OK, notice, None).await
}

/// `GET /admin/instances/rows`: the table body alone, for live refreshes.
pub async fn instance_rows_fragment(
    state: web::Data<AppState>,
    _session: SignedIn,
) -> HttpResponse {
    match state.read(Vm::list_all).await {
        Ok(vms) => html_page(StatusCode::OK, instance_rows(&vms, state.cloud.is_some())),
        Err(err) => page_error(err),
    }
}

/// `GET /admin/instances/summary`: how many VMs, free and assigned, for live refreshes.
pub async fn instance_summary(state: web::Data<AppState>, _session: SignedIn) -> HttpResponse {
    match state
        .read(|conn| Ok((Vm::list_all(conn)?, Vm::count_free(conn)?)))
        .await
    {
        Ok((vms, free)) => render(
            &state,
            StatusCode::OK,
            "admin_summary",
            &json!({ "total": vms.len(), "free": free, "assigned": assigned_count(&vms) }),
        ),
        Err(err) => page_error(err),
    }
}

fn assigned_count(vms: &[Vm]) -> usize {
    vms.iter().filter(|vm| vm.user_email.is_some()).count()
}

/// An admin action's refusal, shown on the instances page with its status.
async fn refused_on_dashboard(state: &AppState, session: &SignedIn, err: ApiError) -> HttpResponse {
    if matches!(err, ApiError::Internal(_)) {
        return page_error(err);
    }
    let status = actix_web::ResponseError::status_code(&err);
    dashboard_page(state, session, status, None, Some(&err.to_string())).await
}

/// Where a queued operation is shown, or the refusal.
async fn provisioning_outcome(
    state: &AppState,
    session: &SignedIn,
    outcome: Result<Operation, ApiError>,
) -> HttpResponse {
    match outcome {
        Ok(operation) => redirect(&format!("/admin/operations#op-{}", operation.id)),
        Err(err) => refused_on_dashboard(state, session, err).await,
    }
}

/// `POST /admin/vms/create` (`count`).
pub async fn create_vms(
    state: web::Data<AppState>,
    session: SignedIn,
    body: web::Bytes,
) -> HttpResponse {
    let fields = form_fields(&body);
    if !csrf_ok(&session, &fields) {
        return csrf_refused();
    }
    let Some(count) = field(&fields, "count").and_then(|c| c.trim().parse::<u32>().ok()) else {
        return dashboard_page(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            None,
            Some("Enter how many VMs to create, as a whole number."),
        )
        .await;
    };
    let outcome = vms::create(&state, &Caller::Admin, count).await;
    provisioning_outcome(&state, &session, outcome).await
}

/// `POST /admin/vms/destroy` (`hostname`…, `confirm_assigned`).
pub async fn destroy_vms(
    state: web::Data<AppState>,
    session: SignedIn,
    body: web::Bytes,
) -> HttpResponse {
    let fields = form_fields(&body);
    if !csrf_ok(&session, &fields) {
        return csrf_refused();
    }
    let hostnames: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "hostname")
        .map(|(_, v)| v.clone())
        .collect();
    if hostnames.is_empty() {
        return dashboard_page(
            &state,
            &session,
            StatusCode::BAD_REQUEST,
            None,
            Some("Select the VMs to destroy first."),
        )
        .await;
    }
    let confirm_assigned = field(&fields, "confirm_assigned").is_some();
    let outcome = vms::destroy(&state, &Caller::Admin, hostnames, confirm_assigned).await;
    provisioning_outcome(&state, &session, outcome).await
}

/// `POST /admin/vms/destroy-all` (`confirm_assigned`).
pub async fn destroy_all_vms(
    state: web::Data<AppState>,
    session: SignedIn,
    body: web::Bytes,
) -> HttpResponse {
    let fields = form_fields(&body);
    if !csrf_ok(&session, &fields) {
        return csrf_refused();
    }
    let confirm_assigned = field(&fields, "confirm_assigned").is_some();
    let outcome = vms::destroy_all(&state, &Caller::Admin, confirm_assigned).await;
    provisioning_outcome(&state, &session, outcome).await
}

/// `POST /admin/vms/{hostname}/release`.
pub async fn release_vm(
    state: web::Data<AppState>,
    session: SignedIn,
    hostname: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if !csrf_ok(&session, &form_fields(&body)) {
        return csrf_refused();
    }
    match vms::release(&state, &Caller::Admin, &hostname).await {
        Ok(_) => redirect("/admin?released=1"),
        Err(err) => refused_on_dashboard(&state, &session, err).await,
    }
}

// --- live streams -----------------------------------------------------------------------

fn event_stream<S>(state: &AppState, events: S) -> HttpResponse
where
    S: futures_util::Stream<Item = String> + 'static,
{
    // Ends when the allocator stops, so a graceful stop need not wait for open pages.
    let stopping = {
        let state = state.clone();
        async move { state.until_stopping().await }
    };
    let keepalive = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(KEEPALIVE_INTERVAL).await;
        Some((": keepalive\n\n".to_owned(), ()))
    });
    let body = futures_util::stream::select(events, keepalive)
        .take_until(stopping)
        .map(|chunk| Ok::<_, actix_web::Error>(web::Bytes::from(chunk)));
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body)
}

/// `GET /admin/events`: an `event: vms` whenever a VM changes.
pub async fn vm_events(state: web::Data<AppState>, _session: SignedIn) -> HttpResponse {
    let mut changes = state.changes.subscribe();
    // What changed between rendering the page and subscribing would be lost, so the stream
    // starts with one event: the page re-reads once, after the subscription exists.
    let stream = futures_util::stream::once(std::future::ready(()))
        .chain(futures_util::stream::poll_fn(move |cx| changes.poll_recv(cx)).map(|_| ()))
        .map(|()| "event: vms\ndata: changed\n\n".to_owned());
    event_stream(&state, stream)
}

/// `GET /admin/operations/events`: each operation event as JSON.
pub async fn operation_events(state: web::Data<AppState>, _session: SignedIn) -> HttpResponse {
    let Ok(receiver) = state.executor.send(SubscribeOperations).await else {
        return page_error(ApiError::Unavailable(
            "Provisioning is unavailable.".to_owned(),
        ));
    };
    // What changed between rendering the page and subscribing would be lost: so the stream
    // starts with where each listed operation stands now (read after subscribing, so nothing
    // falls between the two).
    let current = match state
        .read(|conn| Operation::list_recent(conn, LISTED))
        .await
    {
        Ok(operations) => operations,
        Err(err) => return page_error(err),
    };
    let snapshot: Vec<String> = current
        .iter()
        .filter_map(current_state_event)
        .map(|event| {
            let data = serde_json::to_string(&event).unwrap_or_default();
            format!("data: {data}\n\n")
        })
        .collect();
    let live = futures_util::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => {
                    let data = serde_json::to_string(&event).unwrap_or_default();
                    return Some((format!("data: {data}\n\n"), receiver));
                }
                // A slow viewer skips ahead; the stored tail has everything.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let stream = futures_util::stream::iter(snapshot).chain(live);
    event_stream(&state, stream)
}

/// The event that brings a live page up to `operation`'s current state.
fn current_state_event(operation: &Operation) -> Option<OperationEvent> {
    match operation.state.as_str() {
        "queued" => None,
        "running" => Some(OperationEvent::Started {
            operation_id: operation.id,
        }),
        _ => Some(OperationEvent::Finished {
            operation_id: operation.id,
            state: operation.state.clone(),
            error: operation.error.clone(),
        }),
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
    let state = state.into_inner();
    let streaming_state = state.clone();
    let stream = futures_util::stream::unfold(
        (after, Vec::<String>::new().into_iter()),
        move |(mut after, mut pending)| {
            let state = state.clone();
            let hostname = hostname.clone();
            async move {
                loop {
                    if let Some(line) = pending.next() {
                        return Some((crate::sse::data_event(&line), (after, pending)));
                    }
                    tokio::time::sleep(LOG_POLL_INTERVAL).await;
                    let host = hostname.clone();
                    let since = after;
                    let lines = state
                        .read(move |conn| VmLogLine::list_for_host(conn, &host, Some(since), 500))
                        .await
                        .unwrap_or_default();
                    if let Some(last) = lines.last() {
                        after = last.id;
                    }
                    pending = lines
                        .into_iter()
                        .map(|l| l.line)
                        .collect::<Vec<_>>()
                        .into_iter();
                }
            }
        },
    );
    event_stream(&streaming_state, stream)
}

// --- reading pages -----------------------------------------------------------------------

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
        Ok((Some(_), lines)) => {
            let after = lines.last().map_or(0, |l| l.id);
            let text: Vec<&str> = lines.iter().map(|l| l.line.as_str()).collect();
            render(
                &state,
                StatusCode::OK,
                "admin_logs",
                &json!({ "csrf": session.csrf, "hostname": hostname, "lines": text, "after": after }),
            )
        }
        Ok((None, _)) => page_error(ApiError::vm_not_found()),
        Err(err) => page_error(err),
    }
}

/// `GET /admin/operations`.
pub async fn operations_page(state: web::Data<AppState>, session: SignedIn) -> HttpResponse {
    match state
        .read(|conn| Operation::list_recent(conn, LISTED))
        .await
    {
        Ok(operations) => {
            let listed: Vec<serde_json::Value> = operations
                .iter()
                .map(|op| {
                    json!({
                        "id": op.id, "kind": op.kind, "state": op.state,
                        "requested_count": op.requested_count,
                        "targets": Some(op.target_hostnames().join(", ")).filter(|t| !t.is_empty()),
                        "requested_by": op.requested_by, "error": op.error,
                        "output_tail": op.output_tail,
                        "created_at": op.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        "finished_at": op.finished_at.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
                    })
                })
                .collect();
            render(
                &state,
                StatusCode::OK,
                "admin_operations",
                &json!({ "csrf": session.csrf, "operations": listed }),
            )
        }
        Err(err) => page_error(err),
    }
}

/// `GET /admin/audit`.
pub async fn audit_page(state: web::Data<AppState>, session: SignedIn) -> HttpResponse {
    match state
        .read(|conn| AuditEvent::list_recent(conn, LISTED))
        .await
    {
        Ok(events) => {
            let listed: Vec<serde_json::Value> = events
                .iter()
                .map(|e| {
                    json!({
                        "occurred_at": e.occurred_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        "actor": e.actor, "action": e.action, "target": e.target, "detail": e.detail,
                    })
                })
                .collect();
            render(
                &state,
                StatusCode::OK,
                "admin_audit",
                &json!({ "csrf": session.csrf, "events": listed }),
            )
        }
        Err(err) => page_error(err),
    }
}
