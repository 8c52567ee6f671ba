//! LabLink-rs data model: the wire types shared with the VM agent (always built, serde only)
//! and, behind feature `db`, the diesel tables, models, queries, connections and migrations.
//!
//! The split lets the agent depend on this crate for the JSON contract without linking
//! diesel, SQLite or libpq. [`backoff`] is here too because both sides retry the same way.

pub mod backoff;
pub mod crd;
pub mod log_text;
pub mod wire;

/// Runs one diesel expression on whichever backend `conn` is, for statements the
/// multi-backend query builder cannot express (upserts, `RETURNING`, batch inserts).
/// The expression is type-checked against each backend separately.
#[cfg(feature = "db")]
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::DbConnection::Pg($c) => $body,
            $crate::DbConnection::Sqlite($c) => $body,
        }
    };
}

#[cfg(feature = "db")]
pub mod admin_sessions;
#[cfg(feature = "db")]
pub mod api_tokens;
#[cfg(feature = "db")]
pub mod app_secrets;
#[cfg(feature = "db")]
pub mod audit_events;
#[cfg(feature = "db")]
pub mod boot_failures;
#[cfg(feature = "db")]
pub mod connection;
#[cfg(feature = "db")]
pub mod desktop_presence;
#[cfg(feature = "db")]
pub mod enrollment;
#[cfg(feature = "db")]
pub mod idempotency;
#[cfg(feature = "db")]
pub mod journey;
#[cfg(feature = "db")]
pub mod leases;
#[cfg(feature = "db")]
pub mod migrations;
#[cfg(feature = "db")]
pub mod operations;
#[cfg(feature = "db")]
pub mod outbox;
#[cfg(feature = "db")]
pub mod schema;
#[cfg(feature = "db")]
pub mod vm_lifecycle;
#[cfg(feature = "db")]
pub mod vm_logs;
#[cfg(feature = "db")]
pub mod vm_usage;
#[cfg(feature = "db")]
pub mod vms;
#[cfg(feature = "db")]
pub mod workshops;

#[cfg(feature = "test-support")]
pub mod testing;

#[cfg(feature = "db")]
pub use connection::{Backend, DbConnection, DbPool, PooledDbConnection};
