//! The route table: every path the allocator serves, in one place.

use actix_web::web;

mod admin;
mod assets;
mod health;
mod researcher;
mod vm_api;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        // Researchers.
        .route("/", web::get().to(researcher::home))
        .route("/api/request_vm", web::post().to(researcher::request_vm))
        .route(
            "/api/unassigned_vms_count",
            web::get().to(researcher::unassigned_count),
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
        .route("/api/vm-logs", web::post().to(vm_api::append_logs))
        .route("/api/vm-logs/{hostname}", web::get().to(vm_api::get_logs))
        // Admin API.
        .route(
            "/api/admin/vms/{hostname}/release",
            web::post().to(admin::release_vm),
        )
        .route("/api/admin/vms", web::post().to(admin::create_vms))
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
        );
}
