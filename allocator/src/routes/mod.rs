//! The route table: every path the allocator serves, in one place.

use actix_web::web;

mod admin;
mod api_tokens;
mod assets;
mod dashboard;
mod desktop;
mod enrollment;
mod exports;
mod health;
mod metrics;
mod participant_session;
mod researcher;
mod vm_api;
mod vm_logs;
mod workshops;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    desktop::configure(cfg);
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/api/version", web::get().to(health::version))
        // Researchers.
        .route("/", web::get().to(researcher::home))
        .route("/api/request_vm", web::post().to(researcher::request_vm))
        .route(
            "/api/unassigned_vms_count",
            web::get().to(researcher::unassigned_count),
        )
        .route("/w/{id}", web::get().to(researcher::workshop_home))
        .route("/api/session", web::get().to(researcher::session))
        .route(
            "/api/session/extend",
            web::post().to(researcher::extend_session),
        )
        .route("/session", web::get().to(participant_session::session_page))
        .route(
            "/api/session/journey",
            web::get().to(participant_session::journey),
        )
        .route(
            "/api/session/journey/events",
            web::get().to(participant_session::journey_events),
        )
        .route(
            "/api/session/new_vm",
            web::post().to(participant_session::new_vm),
        )
        .route(
            "/api/workshops/{id}/notice",
            web::get().to(researcher::workshop_notice),
        )
        .route("/static/{file}", web::get().to(assets::asset))
        // VM agents (the original clients' contract).
        .route("/vm_startup", web::post().to(vm_api::vm_startup))
        .route("/api/vm-status", web::post().to(vm_api::report_status))
        .route("/api/vm-status", web::get().to(vm_api::list_statuses))
        .route(
            "/api/vm-status/{hostname}",
            web::get().to(vm_api::get_status),
        )
        .route(
            "/api/update_inuse_status",
            web::post().to(vm_api::report_in_use),
        )
        .route("/api/gpu_health", web::post().to(vm_api::report_gpu_health))
        .route("/api/vm-logs", web::post().to(vm_logs::append_logs))
        .route("/api/vm-logs/{hostname}", web::get().to(vm_logs::get_logs))
        .route(
            "/api/vm-logs/{hostname}/download",
            web::get().to(vm_logs::download_logs),
        )
        // Admin API.
        .route(
            "/api/admin/vms/{hostname}/release",
            web::post().to(admin::release_vm),
        )
        .route("/api/admin/vms", web::post().to(admin::create_vms))
        .route("/api/admin/vms", web::get().to(admin::list_vms))
        .route("/api/admin/vms/{hostname}", web::get().to(admin::show_vm))
        .route(
            "/api/admin/vms/{hostname}/replace",
            web::post().to(admin::replace_vm),
        )
        .route(
            "/api/admin/vms/{hostname}/clear-quarantine",
            web::post().to(admin::clear_quarantine),
        )
        .route(
            "/api/admin/vms/{hostname}/reboot",
            web::post().to(admin::reboot_vm),
        )
        .route("/api/admin/vms/destroy", web::post().to(admin::destroy_vms))
        .route(
            "/api/admin/vms/destroy-all",
            web::post().to(admin::destroy_all_vms),
        )
        .route(
            "/api/admin/operations",
            web::get().to(admin::list_operations),
        )
        .route(
            "/api/admin/operations/{id}",
            web::get().to(admin::get_operation),
        )
        .route(
            "/api/admin/operations/{id}/events",
            web::get().to(admin::operation_events),
        )
        .route(
            "/api/admin/vms/{hostname}/logs/events",
            web::get().to(admin::follow_logs),
        )
        .route("/api/admin/audit", web::get().to(admin::audit))
        .route(
            "/api/admin/enrollment-tokens",
            web::post().to(enrollment::create_token),
        )
        .route(
            "/api/admin/enrollment-tokens",
            web::get().to(enrollment::list_tokens),
        )
        .route(
            "/api/admin/enrollment-tokens/{id}",
            web::get().to(enrollment::show_token),
        )
        .route("/api/admin/tokens", web::post().to(api_tokens::create))
        .route("/api/admin/tokens", web::get().to(api_tokens::list))
        .route("/api/admin/whoami", web::get().to(api_tokens::whoami))
        .route(
            "/api/admin/vms/{hostname}/logs",
            web::get().to(vm_logs::get_logs),
        )
        .route("/api/admin/tokens/{id}", web::get().to(api_tokens::show))
        .route(
            "/api/admin/tokens/{id}/revoke",
            web::post().to(api_tokens::revoke),
        )
        .route(
            "/api/admin/enrollment-tokens/{id}/revoke",
            web::post().to(enrollment::revoke_token),
        )
        .route("/api/admin/workshops", web::post().to(workshops::create))
        .route("/api/admin/workshops", web::get().to(workshops::list))
        .route("/api/admin/workshops/{id}", web::get().to(workshops::show))
        .route(
            "/api/admin/workshops/{id}",
            web::patch().to(workshops::edit),
        )
        .route(
            "/api/admin/workshops/{id}/end",
            web::post().to(workshops::end),
        )
        .route(
            "/api/admin/workshops/{id}/extend",
            web::post().to(workshops::extend),
        )
        .route(
            "/api/admin/workshops/{id}/participants",
            web::get().to(workshops::participants),
        )
        .route(
            "/api/admin/workshops/{id}/notifications",
            web::get().to(workshops::notifications),
        )
        .route(
            "/api/admin/export/{kind}",
            web::get().to(exports::api_export),
        )
        .route(
            "/admin/export/{kind}",
            web::get().to(exports::dashboard_export),
        )
        .route(
            "/api/admin/notifications",
            web::get().to(workshops::all_notifications),
        )
        .route(
            "/api/admin/notifications/test",
            web::post().to(workshops::test_send),
        )
        // Admin dashboard.
        .route(
            "/admin/login",
            web::get().to(dashboard::sign_in::login_form),
        )
        .route("/admin/login", web::post().to(dashboard::sign_in::login))
        .route("/admin/logout", web::post().to(dashboard::sign_in::logout))
        .route("/admin", web::get().to(dashboard::instances::dashboard))
        .route(
            "/admin/instances/rows",
            web::get().to(dashboard::instances::instance_rows_fragment),
        )
        .route(
            "/admin/instances/summary",
            web::get().to(dashboard::instances::instance_summary),
        )
        .route(
            "/admin/events",
            web::get().to(dashboard::instances::vm_events),
        )
        .route(
            "/admin/vms/create",
            web::post().to(dashboard::instances::create_vms),
        )
        .route(
            "/admin/vms/destroy",
            web::post().to(dashboard::instances::destroy_vms),
        )
        .route(
            "/admin/vms/destroy-all",
            web::post().to(dashboard::instances::destroy_all_vms),
        )
        .route(
            "/admin/vms/{hostname}/release",
            web::post().to(dashboard::instances::release_vm),
        )
        .route(
            "/admin/vms/{hostname}/reboot",
            web::post().to(dashboard::instances::reboot_vm),
        )
        .route(
            "/admin/vms/{hostname}/take-over",
            web::post().to(dashboard::instances::take_over_vm),
        )
        .route(
            "/admin/vms/{hostname}/replace",
            web::post().to(dashboard::instances::replace_vm),
        )
        .route(
            "/admin/vms/{hostname}/clear-quarantine",
            web::post().to(dashboard::instances::clear_quarantine),
        )
        .route(
            "/admin/logs/{hostname}",
            web::get().to(dashboard::logs::logs_page),
        )
        .route(
            "/admin/logs/{hostname}/stream",
            web::get().to(dashboard::logs::log_stream),
        )
        .route(
            "/admin/operations",
            web::get().to(dashboard::operations::operations_page),
        )
        .route(
            "/admin/operations/events",
            web::get().to(dashboard::operations::operation_events),
        )
        .route("/admin/audit", web::get().to(dashboard::audit::audit_page))
        .route(
            "/admin/log",
            web::get().to(dashboard::allocator_log::allocator_log_page),
        )
        .route(
            "/admin/workshops",
            web::get().to(dashboard::workshops::list),
        )
        .route(
            "/admin/workshops/create",
            web::post().to(dashboard::workshops::create),
        )
        .route(
            "/admin/workshops/{id}",
            web::get().to(dashboard::workshops::detail),
        )
        .route(
            "/admin/workshops/{id}/participants",
            web::get().to(dashboard::participants::page),
        )
        .route(
            "/admin/workshops/{id}/participants/live",
            web::get().to(dashboard::participants::live),
        )
        .route(
            "/admin/workshops/{id}/participants/events",
            web::get().to(dashboard::participants::events),
        )
        .route(
            "/admin/workshops/{id}/edit",
            web::post().to(dashboard::workshops::edit),
        )
        .route(
            "/admin/workshops/{id}/end",
            web::post().to(dashboard::workshops::end),
        )
        .route(
            "/admin/workshops/{id}/extend",
            web::post().to(dashboard::workshops::extend),
        )
        .route(
            "/admin/notifications/test",
            web::post().to(dashboard::workshops::test_send),
        )
        .route(
            "/admin/enrollment",
            web::get().to(dashboard::enrollment::page),
        )
        .route(
            "/admin/enrollment/create",
            web::post().to(dashboard::enrollment::create_from_form),
        )
        .route("/admin/tokens", web::get().to(dashboard::api_tokens::page))
        .route(
            "/admin/tokens/create",
            web::post().to(dashboard::api_tokens::create_from_form),
        )
        .route(
            "/admin/tokens/{id}/revoke",
            web::post().to(dashboard::api_tokens::revoke_from_form),
        )
        .route(
            "/admin/enrollment/{id}/revoke",
            web::post().to(dashboard::enrollment::revoke_from_form),
        );
}
