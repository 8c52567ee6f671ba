//! LabLink-rs allocator: configuration, start-up and shutdown, and the HTTP routes that turn
//! requests into messages for the actors of `lablink-actors`.

pub mod admin_actions;
pub mod assignment_proof;
pub mod auth;
#[cfg(feature = "aws")]
pub mod aws;
pub mod body_timeout;
pub mod client_address;
pub mod config;
pub mod cross_site;
pub mod desktop;
pub mod error;
pub mod error_shape;
pub mod funnel_chart;
pub mod idempotency;
pub mod instance_rows;
pub mod metrics;
pub mod notifications;
pub mod page_error;
pub mod page_time;
pub mod pages;
pub mod paging;
pub mod participant_journey;
pub mod provider_setup;
pub mod query_nul;
pub mod quiet_redirects;
pub mod rate_limit;
pub mod recent_log;
pub mod routes;
pub mod sse;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod validate;
pub mod workshop_admission;
pub mod workshop_setup;
