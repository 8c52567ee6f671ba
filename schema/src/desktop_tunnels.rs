//! The `desktop_tunnels` table: which allocator holds each VM agent's desktop tunnel, so an
//! allocator that a participant's browser reached can ask the holder for a stream. A row is
//! a hint under a lease: its holder refreshes it while it lives, and a stale row counts as
//! no tunnel.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::desktop_tunnels;
use crate::DbConnection;

/// Records that `allocator_url` now holds `hostname`'s tunnel `link_id`, replacing whatever
/// tunnel the VM had before, here or elsewhere. A VM that no longer exists gets no row.
pub fn hold(
    conn: &mut DbConnection,
    hostname: &str,
    allocator_url: &str,
    link_id: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let exists = crate::schema::vms::table
        .find(hostname)
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if !exists {
        return Ok(());
    }
    on_backend!(conn, |c| diesel::insert_into(desktop_tunnels::table)
        .values((
            desktop_tunnels::hostname.eq(hostname),
            desktop_tunnels::allocator_url.eq(allocator_url),
            desktop_tunnels::link_id.eq(link_id),
            desktop_tunnels::seen_at.eq(now),
        ))
        .on_conflict(desktop_tunnels::hostname)
        .do_update()
        .set((
            desktop_tunnels::allocator_url.eq(allocator_url),
            desktop_tunnels::link_id.eq(link_id),
            desktop_tunnels::seen_at.eq(now),
        ))
        .execute(c))?;
    Ok(())
}

/// Renews every tunnel `allocator_url` holds, in one statement.
pub fn refresh(
    conn: &mut DbConnection,
    allocator_url: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(desktop_tunnels::table.filter(desktop_tunnels::allocator_url.eq(allocator_url)))
        .set(desktop_tunnels::seen_at.eq(now))
        .execute(conn)
}

/// Tunnel `link_id` of `hostname` ended; a newer tunnel of the VM stays listed.
pub fn let_go(conn: &mut DbConnection, hostname: &str, link_id: &str) -> QueryResult<()> {
    diesel::delete(
        desktop_tunnels::table
            .find(hostname)
            .filter(desktop_tunnels::link_id.eq(link_id)),
    )
    .execute(conn)?;
    Ok(())
}

/// The allocator that holds `hostname`'s tunnel, if its row was seen after `fresh_after`.
pub fn holder(
    conn: &mut DbConnection,
    hostname: &str,
    fresh_after: NaiveDateTime,
) -> QueryResult<Option<String>> {
    desktop_tunnels::table
        .find(hostname)
        .filter(desktop_tunnels::seen_at.gt(fresh_after))
        .select(desktop_tunnels::allocator_url)
        .first(conn)
        .optional()
}
