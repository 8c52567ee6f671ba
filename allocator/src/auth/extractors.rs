//! The extractors that authenticate a request before its handler runs. A handler names the
//! caller it needs as an argument ([`AdminCaller`], [`SignedIn`], [`CsrfForm`],
//! [`AuthorizedVm`], [`VmRegistration`], [`VmOrAdmin`], [`MetricsReader`]) and never calls
//! a check itself; a request that fails one is answered here (401, 403, 404, or a redirect to
//! the sign-in page), and the handler does not run.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use lablink_schema::vms::Vm;
use lablink_schema::wire::ApiTokenScope;
use lablink_schema::wire::{
    GpuHealthReport, InUseReport, LogEntry, VmLogBatch, VmStartupRequest, VmStatusReport,
};
use serde::de::DeserializeOwned;

use super::credentials::{self, Credentials};
use super::sessions::{self, NoSession, Session};
use super::{same, Caller};
use crate::error::ApiError;
use crate::state::AppState;
use crate::validate;

fn app_state(request: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    request
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("no application state".to_owned()))
}

/// The admin, by HTTP Basic (checked against the password, with the sign-in lockout), by an
/// API token, or by a dashboard session. A read-only token may make only safe requests
/// (`GET`, `HEAD`): the rule follows the method, so no write route can forget it. Cross-site
/// use of the session is refused before this
/// ([`crate::cross_site`]: a state-changing admin request needs a JSON body or a header that
/// no other site can make a browser send).
#[derive(Debug, Clone)]
pub struct AdminCaller(pub Caller);

impl FromRequest for AdminCaller {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let state = app_state(&request)?;
            match credentials::checked(&state, &request).await? {
                Credentials::Admin => Ok(AdminCaller(Caller::Admin)),
                Credentials::ApiToken(grant) => {
                    if grant.scope == ApiTokenScope::ReadOnly && !request.method().is_safe() {
                        return Err(ApiError::read_only_token().into());
                    }
                    Ok(AdminCaller(grant.caller()))
                }
                Credentials::None => match sessions::of_request(&state, &request).await {
                    Ok(_) => Ok(AdminCaller(Caller::Admin)),
                    Err(NoSession::Failed(err)) => Err(err.into()),
                    Err(NoSession::Missing | NoSession::Ended) => {
                        Err(ApiError::admin_required().into())
                    }
                },
                _ => Err(ApiError::admin_required().into()),
            }
        })
    }
}

/// A signed-in admin on the dashboard; without a valid session the browser is sent to the
/// sign-in page.
#[derive(Debug, Clone)]
pub struct SignedIn {
    session: Session,
}

impl SignedIn {
    /// The token the pages put in every form.
    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }

    pub fn session(&self) -> &Session {
        &self.session
    }
}

/// A redirect, as an extractor's refusal.
fn redirect_error(to: &str) -> actix_web::Error {
    let response = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .finish();
    actix_web::error::InternalError::from_response("not signed in", response).into()
}

impl FromRequest for SignedIn {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let state = app_state(&request).map_err(crate::page_error::PageError)?;
            match sessions::of_request(&state, &request).await {
                Ok(session) => Ok(SignedIn { session }),
                Err(NoSession::Missing) => Err(redirect_error("/admin/login")),
                Err(NoSession::Ended) => Err(redirect_error("/admin/login?expired=1")),
                Err(NoSession::Failed(err)) => Err(crate::page_error::PageError(err).into()),
            }
        })
    }
}

/// A dashboard form posted by a signed-in admin with the session's CSRF token; a form
/// without it (expired, or made elsewhere) is refused with 403.
#[derive(Debug)]
pub struct CsrfForm {
    pub session: SignedIn,
    fields: Vec<(String, String)>,
}

impl CsrfForm {
    /// The first value of `name`, if the form has it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (a list of checkboxes).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The fields of a form body, repeated keys kept (checkbox lists).
pub fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn csrf_refused() -> actix_web::Error {
    let response = HttpResponse::Forbidden()
        .content_type("text/plain; charset=utf-8")
        .body(
            "This form has expired or did not come from the dashboard. Reload the page and try \
             again.",
        );
    actix_web::error::InternalError::from_response("CSRF token missing or wrong", response).into()
}

impl FromRequest for CsrfForm {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let session = SignedIn::from_request(&request, &mut Payload::None).await?;
            let body = web::Bytes::from_request(&request, &mut payload)
                .await
                .map_err(|err| {
                    crate::page_error::PageError(ApiError::BadRequest(err.to_string()))
                })?;
            let fields = form_fields(&body);
            let given = fields
                .iter()
                .find(|(k, _)| k == "csrf_token")
                .map(|(_, v)| v.as_str())
                .unwrap_or_default();
            if !same(given.as_bytes(), session.csrf().as_bytes()) {
                return Err(csrf_refused());
            }
            Ok(CsrfForm { session, fields })
        })
    }
}

/// A JSON body that a VM sends about itself: it names the VM, and may be refused for what it
/// lacks before anyone's credentials are looked at.
pub trait VmBody: DeserializeOwned + 'static {
    /// The hostname the body acts for.
    fn hostname(&self) -> &str;

    /// What the body must hold whoever sends it.
    fn check(&self) -> Result<(), ApiError> {
        Ok(())
    }
}

/// The bodies that name their VM in `hostname` and need nothing else checked first.
macro_rules! named_by_hostname {
    ($($body:ty),+) => {
        $(impl VmBody for $body {
            fn hostname(&self) -> &str {
                &self.hostname
            }
        })+
    };
}

named_by_hostname!(
    VmStartupRequest,
    VmStatusReport,
    InUseReport,
    GpuHealthReport
);

impl VmBody for VmLogBatch {
    fn hostname(&self) -> &str {
        &self.log_stream
    }

    fn check(&self) -> Result<(), ApiError> {
        if self.log_group.is_empty()
            || self.log_stream.is_empty()
            || (self.messages.is_empty() && self.entries.is_empty())
        {
            return Err(ApiError::BadRequest(
                "Log group, stream, and messages are required.".to_owned(),
            ));
        }
        if let Some((index, entry)) = self
            .entries
            .iter()
            .enumerate()
            .find(|(_, entry)| !LogEntry::valid_source(&entry.source))
        {
            return Err(ApiError::BadRequest(format!(
                "entry {index} has the source {:?}: use letters, digits, `-` and `_`, at most {} \
                 characters",
                entry.source.chars().take(40).collect::<String>(),
                LogEntry::MAX_SOURCE_LEN
            )));
        }
        Ok(())
    }
}

/// The body, its VM's row and its caller, once the caller may act for it.
async fn vm_body<T: VmBody>(
    request: &HttpRequest,
    payload: &mut Payload,
    registration: bool,
) -> Result<(Caller, Option<Vm>, T), actix_web::Error> {
    let body = web::Json::<T>::from_request(request, payload)
        .await?
        .into_inner();
    body.check()?;
    let state = app_state(request)?;
    let hostname = validate::hostname(body.hostname()).map_err(ApiError::BadRequest)?;
    let vm = state.find_vm(hostname).await?;
    let credentials = credentials::checked(&state, request).await?;
    let caller = state
        .auth
        .authorize_vm(&credentials, hostname, vm.as_ref(), registration)?;
    Ok((caller, vm, body))
}

/// A VM acting on itself with a JSON body naming it: its own token, the admin, or a
/// token-less legacy agent when allowed. The VM exists (404 otherwise).
#[derive(Debug)]
pub struct AuthorizedVm<T> {
    pub caller: Caller,
    pub vm: Vm,
    pub body: T,
}

impl<T: VmBody> FromRequest for AuthorizedVm<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let (caller, vm, body) = vm_body::<T>(&request, &mut payload, false).await?;
            let vm = vm.ok_or_else(ApiError::vm_not_found)?;
            Ok(AuthorizedVm { caller, vm, body })
        })
    }
}

/// `POST /api/vm-status`, the one request by which a VM may be unknown: as
/// [`AuthorizedVm`], or a machine enrolling under a new hostname, or (legacy switch) a
/// token-less original agent registering.
#[derive(Debug)]
pub struct VmRegistration<T> {
    pub caller: Caller,
    pub vm: Option<Vm>,
    pub body: T,
}

impl<T: VmBody> FromRequest for VmRegistration<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let (caller, vm, body) = vm_body::<T>(&request, &mut payload, true).await?;
            Ok(VmRegistration { caller, vm, body })
        })
    }
}

/// The VM named by the path's `{hostname}`, read by the admin or by that VM with its token.
#[derive(Debug)]
pub struct VmOrAdmin {
    pub caller: Caller,
    pub vm: Vm,
}

impl FromRequest for VmOrAdmin {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = request.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let raw = web::Path::<String>::from_request(&request, &mut payload)
                .await?
                .into_inner();
            let state = app_state(&request)?;
            let hostname = validate::hostname(&raw).map_err(ApiError::BadRequest)?;
            let vm = state.find_vm(hostname).await?;
            let credentials = credentials::checked(&state, &request).await?;
            let caller = state
                .auth
                .require_admin_or_vm(&credentials, hostname, vm.as_ref())?;
            let vm = vm.ok_or_else(ApiError::vm_not_found)?;
            Ok(VmOrAdmin { caller, vm })
        })
    }
}

/// Who may read `GET /metrics`: the admin, or a scraper with the metrics token. Answers 404
/// when metrics are turned off.
#[derive(Debug)]
pub struct MetricsReader;

impl FromRequest for MetricsReader {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let state = app_state(&request)?;
            let Some(access) = &state.metrics_access else {
                return Err(ApiError::NotFound("Metrics are turned off.".to_owned()).into());
            };
            match (
                credentials::checked(&state, &request).await?,
                &access.token_hash,
            ) {
                (Credentials::Admin | Credentials::ApiToken(_), _) => Ok(MetricsReader),
                (Credentials::Bearer(token), Some(expected))
                    if same(&lablink_actors::tokens::sha256(token.as_bytes()), expected) =>
                {
                    Ok(MetricsReader)
                }
                _ => Err(ApiError::admin_required().into()),
            }
        })
    }
}
