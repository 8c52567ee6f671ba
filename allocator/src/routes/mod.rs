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
pub mod openapi;
mod participant_session;
mod researcher;
mod vm_api;
mod vm_logs;
mod workshops;

/// One route as registered: its method and path pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// `get`, `post`, `patch`, …
    pub method: &'static str,
    pub path: &'static str,
}

/// Declares a file's routes once, as data (`ROUTES`, which the OpenAPI check reads) and as
/// their registration (`register`), so the two can never differ.
macro_rules! route_table {
    ($($method:ident $path:literal => $handler:path,)*) => {
        /// This file's routes, in the order they are registered.
        pub const ROUTES: &[$crate::routes::Route] = &[
            $($crate::routes::Route { method: stringify!($method), path: $path },)*
        ];

        fn register(cfg: &mut actix_web::web::ServiceConfig) {
            $(cfg.route($path, actix_web::web::$method().to($handler));)*
        }
    };
}
pub(crate) use route_table;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    desktop::configure(cfg);
    register(cfg);
}

/// Every route: the desktop's and the rest.
pub fn table() -> Vec<Route> {
    desktop::ROUTES.iter().chain(ROUTES).copied().collect()
}

route_table! {
    get "/healthz" => health::healthz,
    get "/readyz" => health::readyz,
    get "/metrics" => metrics::metrics,
    get "/api/version" => health::version,
    get "/api/openapi.json" => openapi::openapi_json,
    // Researchers.
    get "/" => researcher::home,
    post "/api/request_vm" => researcher::request_vm,
    get "/api/unassigned_vms_count" => researcher::unassigned_count,
    get "/w/{id}" => researcher::workshop_home,
    get "/api/session" => researcher::session,
    post "/api/session/extend" => researcher::extend_session,
    get "/session" => participant_session::session_page,
    get "/api/session/journey" => participant_session::journey,
    get "/api/session/journey/events" => participant_session::journey_events,
    post "/api/session/new_vm" => participant_session::new_vm,
    get "/api/workshops/{id}/notice" => researcher::workshop_notice,
    get "/static/{file}" => assets::asset,
    // VM agents (the original clients' contract).
    post "/vm_startup" => vm_api::vm_startup,
    post "/api/vm-status" => vm_api::report_status,
    get "/api/vm-status" => vm_api::list_statuses,
    get "/api/vm-status/{hostname}" => vm_api::get_status,
    post "/api/update_inuse_status" => vm_api::report_in_use,
    post "/api/gpu_health" => vm_api::report_gpu_health,
    post "/api/vm-logs" => vm_logs::append_logs,
    get "/api/vm-logs/{hostname}" => vm_logs::get_logs,
    get "/api/vm-logs/{hostname}/download" => vm_logs::download_logs,
    // Admin API.
    post "/api/admin/vms/{hostname}/release" => admin::release_vm,
    post "/api/admin/vms" => admin::create_vms,
    get "/api/admin/vms" => admin::list_vms,
    get "/api/admin/vms/{hostname}" => admin::show_vm,
    post "/api/admin/vms/{hostname}/replace" => admin::replace_vm,
    post "/api/admin/vms/{hostname}/clear-quarantine" => admin::clear_quarantine,
    post "/api/admin/vms/{hostname}/reboot" => admin::reboot_vm,
    post "/api/admin/vms/destroy" => admin::destroy_vms,
    post "/api/admin/vms/destroy-all" => admin::destroy_all_vms,
    get "/api/admin/operations" => admin::list_operations,
    get "/api/admin/operations/{id}" => admin::get_operation,
    get "/api/admin/operations/{id}/events" => admin::operation_events,
    get "/api/admin/vms/{hostname}/logs/events" => admin::follow_logs,
    get "/api/admin/audit" => admin::audit,
    get "/api/admin/allocator-log" => dashboard::allocator_log::allocator_log_json,
    post "/api/admin/enrollment-tokens" => enrollment::create_token,
    get "/api/admin/enrollment-tokens" => enrollment::list_tokens,
    get "/api/admin/enrollment-tokens/{id}" => enrollment::show_token,
    post "/api/admin/tokens" => api_tokens::create,
    get "/api/admin/tokens" => api_tokens::list,
    get "/api/admin/whoami" => api_tokens::whoami,
    get "/api/admin/vms/{hostname}/logs" => vm_logs::admin_logs,
    get "/api/admin/tokens/{id}" => api_tokens::show,
    post "/api/admin/tokens/{id}/revoke" => api_tokens::revoke,
    post "/api/admin/enrollment-tokens/{id}/revoke" => enrollment::revoke_token,
    post "/api/admin/workshops" => workshops::create,
    get "/api/admin/workshops" => workshops::list,
    get "/api/admin/workshops/{id}" => workshops::show,
    patch "/api/admin/workshops/{id}" => workshops::edit,
    post "/api/admin/workshops/{id}/end" => workshops::end,
    post "/api/admin/workshops/{id}/extend" => workshops::extend,
    get "/api/admin/workshops/{id}/participants" => workshops::participants,
    get "/api/admin/workshops/{id}/notifications" => workshops::notifications,
    get "/api/admin/export/{kind}" => exports::api_export,
    get "/admin/export/{kind}" => exports::dashboard_export,
    get "/api/admin/notifications" => workshops::all_notifications,
    post "/api/admin/notifications/test" => workshops::test_send,
    // Admin dashboard.
    get "/admin/login" => dashboard::sign_in::login_form,
    post "/admin/login" => dashboard::sign_in::login,
    post "/admin/logout" => dashboard::sign_in::logout,
    get "/admin" => dashboard::instances::dashboard,
    get "/admin/instances/rows" => dashboard::instances::instance_rows_fragment,
    get "/admin/instances/summary" => dashboard::instances::instance_summary,
    get "/admin/events" => dashboard::instances::vm_events,
    post "/admin/vms/create" => dashboard::instances::create_vms,
    post "/admin/vms/destroy" => dashboard::instances::destroy_vms,
    post "/admin/vms/destroy-all" => dashboard::instances::destroy_all_vms,
    post "/admin/vms/{hostname}/release" => dashboard::instances::release_vm,
    post "/admin/vms/{hostname}/reboot" => dashboard::instances::reboot_vm,
    post "/admin/vms/{hostname}/take-over" => dashboard::instances::take_over_vm,
    post "/admin/vms/{hostname}/replace" => dashboard::instances::replace_vm,
    post "/admin/vms/{hostname}/clear-quarantine" => dashboard::instances::clear_quarantine,
    get "/admin/logs/{hostname}" => dashboard::logs::logs_page,
    get "/admin/logs/{hostname}/stream" => dashboard::logs::log_stream,
    get "/admin/operations" => dashboard::operations::operations_page,
    get "/admin/operations/events" => dashboard::operations::operation_events,
    get "/admin/audit" => dashboard::audit::audit_page,
    get "/admin/log" => dashboard::allocator_log::allocator_log_page,
    get "/admin/workshops" => dashboard::workshops::list,
    post "/admin/workshops/create" => dashboard::workshops::create,
    get "/admin/workshops/{id}" => dashboard::workshops::detail,
    get "/admin/workshops/{id}/participants" => dashboard::participants::page,
    get "/admin/workshops/{id}/participants/live" => dashboard::participants::live,
    get "/admin/workshops/{id}/participants/events" => dashboard::participants::events,
    post "/admin/workshops/{id}/edit" => dashboard::workshops::edit,
    post "/admin/workshops/{id}/end" => dashboard::workshops::end,
    post "/admin/workshops/{id}/extend" => dashboard::workshops::extend,
    post "/admin/notifications/test" => dashboard::workshops::test_send,
    get "/admin/enrollment" => dashboard::enrollment::page,
    post "/admin/enrollment/create" => dashboard::enrollment::create_from_form,
    get "/admin/tokens" => dashboard::api_tokens::page,
    post "/admin/tokens/create" => dashboard::api_tokens::create_from_form,
    post "/admin/tokens/{id}/revoke" => dashboard::api_tokens::revoke_from_form,
    post "/admin/enrollment/{id}/revoke" => dashboard::enrollment::revoke_from_form,
}
