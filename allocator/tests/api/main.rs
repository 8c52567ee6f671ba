//! HTTP tests against an allocator started in-process on port 0 with its own database.
//! One test binary for all of them, so they build once.

mod admin_actions;
mod api_tokens;
mod auth;
mod cloud;
mod dashboard;
mod enrollment;
mod exports;
mod hardening;
mod health;
mod helpers;
mod journey;
mod lifecycle;
mod long_poll;
mod metrics;
mod openapi;
mod provisioning;
mod researcher;
mod rush;
mod vm_api;
mod vm_logs;
mod workshops;
