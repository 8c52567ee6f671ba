//! What every request handler can reach: the read pool and the actors' addresses.

use actix::Addr;
use lablink_actors::change_feed::ChangeHub;
use lablink_actors::db_writer::DbWriter;
use lablink_schema::{Backend, DbPool};

/// Shared by all workers; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// For reads (pages, lists) run in `web::block`; every write goes through `writer`.
    pub pool: DbPool,
    pub backend: Backend,
    pub writer: Addr<DbWriter>,
    /// VM change events, for whoever subscribes (VM actors, live pages).
    pub changes: ChangeHub,
}
