//! The researcher's side: the start page, `POST /api/request_vm` (form `email`,
//! `crd_command`), and the live count of free VMs.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use lablink_actors::claim_batcher::AssignVm;
use lablink_actors::db_writer::WriteError;
use lablink_schema::vms::Vm;
use lablink_schema::wire::UnassignedVmCount;
use serde::Deserialize;

use crate::auth::new_pin;
use crate::error::ApiError;
use crate::metrics::Refusal;
use crate::pages::{AssignedPage, HomePage};
use crate::state::AppState;
use crate::validate;

/// The form on the start page. Missing fields read as empty and get a clear message.
#[derive(Deserialize)]
pub struct RequestVmForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    crd_command: String,
}

/// `GET /`.
pub async fn home(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let count = state.read(Vm::count_free).await?;
    render_home(
        &state,
        StatusCode::OK,
        HomePage {
            count,
            ..HomePage::default()
        },
    )
    .await
}

/// `GET /api/unassigned_vms_count`.
pub async fn unassigned_count(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let count = state.read(Vm::count_free).await?;
    Ok(HttpResponse::Ok().json(UnassignedVmCount { count }))
}

/// `POST /api/request_vm`: assigns a VM and shows its hostname and PIN, or shows the start
/// page again with what went wrong and the form still filled in.
pub async fn request_vm(
    state: web::Data<AppState>,
    form: web::Form<RequestVmForm>,
) -> Result<HttpResponse, ApiError> {
    let refuse = |status: StatusCode, reason: Refusal, error: String| {
        let state = state.clone();
        let form = &form;
        async move {
            state.metrics.refused(reason);
            let count = state.read(Vm::count_free).await?;
            render_home(
                &state,
                status,
                HomePage {
                    count,
                    error: Some(&error),
                    email: &form.email,
                    crd_command: &form.crd_command,
                },
            )
            .await
        }
    };
    let email = match validate::email(&form.email) {
        Ok(email) => email,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, Refusal::InvalidEmail, error).await,
    };
    let crd_command = match validate::crd_command(&form.crd_command) {
        Ok(command) => command,
        Err(error) => return refuse(StatusCode::BAD_REQUEST, Refusal::InvalidCommand, error).await,
    };
    let assigned = state
        .claims
        .assign(AssignVm {
            email,
            crd_command,
            pin: new_pin(),
        })
        .await;
    match assigned {
        Ok(assignment) => {
            let vm = &assignment.vm;
            tracing::info!(hostname = %vm.hostname, new = assignment.newly_assigned, "VM assigned");
            state.metrics.assigned(assignment.newly_assigned);
            let page = AssignedPage {
                hostname: &vm.hostname,
                pin: vm.pin.as_deref().unwrap_or_default(),
                existing: !assignment.newly_assigned,
            };
            let html = state
                .pages
                .render("assigned", &page)
                .map_err(|err| ApiError::Internal(err.to_string()))?;
            Ok(HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .body(html))
        }
        Err(WriteError::NoFreeVm) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            Refusal::NoFreeVm,
            "No VM is free right now. Please try again in a few minutes, or ask your instructor."
                .to_owned(),
        )
        .await,
        Err(WriteError::Contended) => {
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                Refusal::Contended,
                "Many people are asking at once; please press the button again.".to_owned(),
            )
            .await
        }
        Err(err) => Err(err.into()),
    }
}

async fn render_home(
    state: &AppState,
    status: StatusCode,
    page: HomePage<'_>,
) -> Result<HttpResponse, ApiError> {
    let html = state
        .pages
        .render("index", &page)
        .map_err(|err| ApiError::Internal(err.to_string()))?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}
