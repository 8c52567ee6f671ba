//! The OpenAPI 3 document of the allocator's HTTP API, generated from the handlers'
//! `#[utoipa::path]` annotations and the wire types' schemas, and served at
//! `GET /api/openapi.json`. Every route under `/api/` (and the health, metrics and agent
//! routes) is in it; a test checks that against the route table. The pages and the
//! dashboard's forms are not: they answer HTML.

use actix_web::HttpResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "LabLink-rs allocator",
        description = "Hands out lab VMs to participants, takes the agents' reports, and \
                       serves the admin API. The original LabLink's routes keep their \
                       `{\"error\": \"…\"}`; the admin API's refusals are \
                       `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        super::health::healthz,
        super::health::readyz,
        super::health::version,
        super::metrics::metrics,
        super::researcher::request_vm,
        super::researcher::unassigned_count,
        super::researcher::session,
        super::researcher::extend_session,
        super::researcher::workshop_notice,
        super::participant_session::journey,
        super::participant_session::journey_events,
        super::participant_session::new_vm,
        super::vm_api::vm_startup,
        super::vm_api::report_status,
        super::vm_api::list_statuses,
        super::vm_api::get_status,
        super::vm_api::report_in_use,
        super::vm_api::report_gpu_health,
        super::vm_logs::append_logs,
        super::vm_logs::get_logs,
        super::vm_logs::download_logs,
        super::vm_logs::admin_logs,
        super::admin::release_vm,
        super::admin::create_vms,
        super::admin::list_vms,
        super::admin::show_vm,
        super::admin::replace_vm,
        super::admin::clear_quarantine,
        super::admin::reboot_vm,
        super::admin::destroy_vms,
        super::admin::destroy_all_vms,
        super::admin::list_operations,
        super::admin::get_operation,
        super::admin::operation_events,
        super::admin::follow_logs,
        super::admin::audit,
        super::enrollment::create_token,
        super::enrollment::list_tokens,
        super::enrollment::show_token,
        super::enrollment::revoke_token,
        super::api_tokens::create,
        super::api_tokens::list,
        super::api_tokens::show,
        super::api_tokens::revoke,
        super::api_tokens::whoami,
        super::workshops::create,
        super::workshops::list,
        super::workshops::show,
        super::workshops::edit,
        super::workshops::end,
        super::workshops::extend,
        super::workshops::participants,
        super::workshops::notifications,
        super::workshops::all_notifications,
        super::workshops::test_send,
        super::exports::api_export,
        super::desktop::agent::agent_tunnel,
        super::desktop::agent::agent_stream,
        super::desktop::peer::ask_agent,
        super::desktop::peer::relayed_stream,
        super::dashboard::allocator_log::allocator_log_json,
        openapi_json,
    ),
    modifiers(&Credentials),
    tags(
        (name = "health", description = "Liveness, readiness, version, metrics"),
        (name = "researchers", description = "The start page's form and the participant's session"),
        (name = "agents", description = "The VM agents' reports, logs and tunnel (the original's contract)"),
        (name = "admin: VMs", description = "VMs: list, show, create, destroy, release, reboot, replace"),
        (name = "admin: operations", description = "Provisioning operations and their progress"),
        (name = "admin: logs", description = "A VM's log, read and followed"),
        (name = "admin: audit", description = "The audit trail"),
        (name = "admin: workshops", description = "Workshops from plan to teardown"),
        (name = "admin: notifications", description = "What was sent, and test sends"),
        (name = "admin: exports", description = "Participants, VMs and the audit trail as CSV or JSON"),
        (name = "admin: API tokens", description = "The admin API's own tokens"),
        (name = "admin: enrollment tokens", description = "Tokens with which a lab's machines join"),
        (name = "allocators", description = "Calls between the allocators of one deployment (browser desktops whose tunnel another allocator holds)"),
    )
)]
pub struct ApiDoc;

/// The three ways to authenticate.
#[derive(Debug)]
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("lla_ and 64 hex digits")
                    .description(Some(
                        "An API token: `read-only` may make GET requests, `admin` anything",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("The admin's user and password"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "peer",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    crate::desktop::peers::PEER_HEADER,
                    "A proof keyed with the deployment's own secret: only its allocators make it",
                ),
            )),
        );
        components.add_security_scheme(
            "vm_token",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A VM's own token (or, on its first report, an enrollment token)",
                    ))
                    .build(),
            ),
        );
    }
}

/// `GET /api/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "health",
    responses((status = 200, description = "This document", content_type = "application/json"))
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
