//! The instances page (`/admin`): the VM table with live refreshes, and its forms (create,
//! destroy selected, destroy all, release, reboot), each an admin action.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use lablink_schema::boot_failures::BootFailureStreak;
use lablink_schema::operations::Operation;
use lablink_schema::vms::Vm;
use lablink_schema::workshops::Workshop;
use serde::Serialize;

use super::{html_page, page_error, redirect, render};
use crate::admin_actions::{desktops, recovery, vms};
use crate::auth::{Caller, CsrfForm, SignedIn};
use crate::config::DesktopMode;
use crate::error::ApiError;
use crate::instance_rows::instance_rows;
use crate::state::AppState;

/// How long the dashboard waits for the cloud to say whose credentials are in effect.
const CLOUD_TIMEOUT: Duration = Duration::from_secs(3);

/// How many VMs there are, free and assigned (the page's summary and its live refresh).
#[derive(Debug, Serialize)]
struct Summary {
    total: usize,
    free: i64,
    assigned: usize,
}

impl Summary {
    fn of(vms: &[Vm], free: i64) -> Self {
        Summary {
            total: vms.len(),
            free,
            assigned: vms.iter().filter(|vm| vm.user_email.is_some()).count(),
        }
    }
}

/// What `admin_dashboard` shows.
#[derive(Debug, Serialize)]
struct DashboardView<'a> {
    csrf: &'a str,
    /// Already-escaped rows ([`instance_rows`]).
    instance_rows: String,
    cloud: bool,
    credentials: Option<String>,
    #[serde(flatten)]
    summary: Summary,
    max_vms: u32,
    legacy: bool,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    /// Workshops not over yet, with their state.
    workshops: Vec<WorkshopLine>,
    /// Provider settings whose failed boots stopped the replacements: one banner each.
    replacements_stopped: Vec<StoppedReplacements>,
}

/// A banner: VMs of these settings never became ready, so no more are made.
#[derive(Debug, Serialize)]
struct StoppedReplacements {
    /// "VMs of workshop SLEAP course" or "VMs of no workshop".
    whose: String,
    replacements: i32,
    reason: String,
}

/// A workshop in the dashboard's summary.
#[derive(Debug, Serialize)]
struct WorkshopLine {
    id: i64,
    name: String,
    state: String,
    vms: String,
}

async fn dashboard_page(
    state: &AppState,
    session: &SignedIn,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> HttpResponse {
    let (vms, free, workshops, stopped) = match state
        .read(|conn| {
            Ok((
                Vm::list_all(conn)?,
                Vm::count_free(conn)?,
                Workshop::list(conn)?,
                BootFailureStreak::list_given_up(conn)?,
            ))
        })
        .await
    {
        Ok(read) => read,
        Err(err) => return page_error(err),
    };
    render(
        state,
        status,
        "admin_dashboard",
        &DashboardView {
            csrf: session.csrf(),
            instance_rows: instance_rows(
                &vms,
                state.can_reboot,
                state.workshops.desktop_mode == DesktopMode::Browser,
            ),
            cloud: state.cloud.is_some(),
            credentials: cloud_credentials(state).await,
            summary: Summary::of(&vms, free),
            max_vms: state.provider_max_vms,
            legacy: state.auth.legacy_unauthenticated(),
            notice,
            error,
            replacements_stopped: stopped
                .into_iter()
                .map(|streak| StoppedReplacements {
                    whose: match streak.settings_key.strip_prefix("workshop:") {
                        Some(id) => workshops
                            .iter()
                            .find(|w| w.id.to_string() == id)
                            .map_or_else(
                                || format!("VMs of workshop {id}"),
                                |w| format!("VMs of workshop {}", w.name),
                            ),
                        None => "VMs of no workshop".to_owned(),
                    },
                    replacements: streak.replacements,
                    reason: streak.reason,
                })
                .collect(),
            workshops: workshops
                .into_iter()
                .filter(|w| !w.state().is_over())
                .map(|w| WorkshopLine {
                    vms: format!(
                        "{} of {} VMs",
                        vms.iter().filter(|vm| vm.workshop_id == Some(w.id)).count(),
                        w.vm_target()
                    ),
                    id: w.id,
                    state: w.state().as_str().to_owned(),
                    name: w.name,
                })
                .collect(),
        },
    )
}

/// Which cloud credentials are in effect (never the secrets), when the cloud API is on.
async fn cloud_credentials(state: &AppState) -> Option<String> {
    let cloud = state.cloud.as_ref()?;
    Some(
        match tokio::time::timeout(CLOUD_TIMEOUT, cloud.identity()).await {
            Ok(Ok(identity)) => format!(
                "AWS credentials in effect: account {} as {}",
                identity.account, identity.arn
            ),
            Ok(Err(err)) => format!("AWS credentials are not usable: {err}"),
            Err(_) => "AWS did not answer in time".to_owned(),
        },
    )
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
        Ok(vms) => html_page(
            StatusCode::OK,
            instance_rows(
                &vms,
                state.can_reboot,
                state.workshops.desktop_mode == DesktopMode::Browser,
            ),
        ),
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
            &Summary::of(&vms, free),
        ),
        Err(err) => page_error(err),
    }
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
pub async fn create_vms(state: web::Data<AppState>, form: CsrfForm) -> HttpResponse {
    let Some(count) = form
        .field("count")
        .and_then(|c| c.trim().parse::<u32>().ok())
    else {
        return dashboard_page(
            &state,
            &form.session,
            StatusCode::BAD_REQUEST,
            None,
            Some("Enter how many VMs to create, as a whole number."),
        )
        .await;
    };
    let outcome = vms::create(&state, &Caller::Admin, count).await;
    provisioning_outcome(&state, &form.session, outcome).await
}

/// `POST /admin/vms/destroy` (`hostname`…, `confirm_assigned`).
pub async fn destroy_vms(state: web::Data<AppState>, form: CsrfForm) -> HttpResponse {
    let hostnames = form.all("hostname");
    if hostnames.is_empty() {
        return dashboard_page(
            &state,
            &form.session,
            StatusCode::BAD_REQUEST,
            None,
            Some("Select the VMs to destroy first."),
        )
        .await;
    }
    let confirm_assigned = form.field("confirm_assigned").is_some();
    let outcome = vms::destroy(&state, &Caller::Admin, hostnames, confirm_assigned).await;
    provisioning_outcome(&state, &form.session, outcome).await
}

/// `POST /admin/vms/destroy-all` (`confirm_assigned`).
pub async fn destroy_all_vms(state: web::Data<AppState>, form: CsrfForm) -> HttpResponse {
    let confirm_assigned = form.field("confirm_assigned").is_some();
    let outcome = vms::destroy_all(&state, &Caller::Admin, confirm_assigned).await;
    provisioning_outcome(&state, &form.session, outcome).await
}

/// `POST /admin/vms/{hostname}/release`.
pub async fn release_vm(
    state: web::Data<AppState>,
    form: CsrfForm,
    hostname: web::Path<String>,
) -> HttpResponse {
    match vms::release(&state, &Caller::Admin, &hostname).await {
        Ok(_) => redirect("/admin?released=1"),
        Err(err) => refused_on_dashboard(&state, &form.session, err).await,
    }
}

/// `POST /admin/vms/{hostname}/take-over`: the admin holds the free VM for a while and gets
/// its desktop, in full control.
pub async fn take_over_vm(
    state: web::Data<AppState>,
    form: CsrfForm,
    request: HttpRequest,
    hostname: web::Path<String>,
) -> HttpResponse {
    match desktops::take_over(&state, &Caller::Admin, &hostname).await {
        Ok(vm) => crate::routes::desktop::to_desktop(&state, &request, &vm),
        Err(err) => refused_on_dashboard(&state, &form.session, err).await,
    }
}

/// `POST /admin/vms/{hostname}/reboot`.
pub async fn reboot_vm(
    state: web::Data<AppState>,
    form: CsrfForm,
    hostname: web::Path<String>,
) -> HttpResponse {
    match recovery::reboot(&state, &Caller::Admin, &hostname).await {
        Ok(_) => redirect("/admin?rebooted=1"),
        Err(err) => refused_on_dashboard(&state, &form.session, err).await,
    }
}

/// `POST /admin/vms/{hostname}/replace` (`confirm_assigned`).
pub async fn replace_vm(
    state: web::Data<AppState>,
    form: CsrfForm,
    hostname: web::Path<String>,
) -> HttpResponse {
    let confirm_assigned = form.field("confirm_assigned").is_some();
    let outcome = recovery::replace(&state, &Caller::Admin, &hostname, confirm_assigned).await;
    provisioning_outcome(&state, &form.session, outcome).await
}

/// `POST /admin/vms/{hostname}/clear-quarantine`.
pub async fn clear_quarantine(
    state: web::Data<AppState>,
    form: CsrfForm,
    hostname: web::Path<String>,
) -> HttpResponse {
    match recovery::clear_quarantine(&state, &Caller::Admin, &hostname).await {
        Ok(_) => redirect("/admin?cleared=1"),
        Err(err) => refused_on_dashboard(&state, &form.session, err).await,
    }
}

/// `GET /admin/events`: an `event: vms` whenever a VM changes.
pub async fn vm_events(state: web::Data<AppState>, _session: SignedIn) -> HttpResponse {
    crate::sse::vm_changes(&state)
}
