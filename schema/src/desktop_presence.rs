//! What allocators that share a database tell each other about desktops: `desktop_tunnels`,
//! which allocator holds each VM agent's desktop tunnel (so the allocator a participant's
//! browser reached can ask the holder for a stream), and `desktop_views`, the instructors'
//! views open now (so the participant's page says so, whichever allocator it asks). Rows
//! are hints under a lease: their allocator renews them while it lives, and a stale row
//! counts as nothing.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::{desktop_tunnels, desktop_views};
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
    if !vm_exists(conn, hostname)? {
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

fn vm_exists(conn: &mut DbConnection, hostname: &str) -> QueryResult<bool> {
    let count: i64 = crate::schema::vms::table
        .find(hostname)
        .count()
        .get_result(conn)?;
    Ok(count > 0)
}

/// Renews every tunnel and view `allocator_url` holds, a statement each: how many.
pub fn refresh(
    conn: &mut DbConnection,
    allocator_url: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let tunnels = diesel::update(
        desktop_tunnels::table.filter(desktop_tunnels::allocator_url.eq(allocator_url)),
    )
    .set(desktop_tunnels::seen_at.eq(now))
    .execute(conn)?;
    let views =
        diesel::update(desktop_views::table.filter(desktop_views::allocator_url.eq(allocator_url)))
            .set(desktop_views::seen_at.eq(now))
            .execute(conn)?;
    Ok(tunnels + views)
}

/// An instructor's view `id` of `hostname`'s desktop opened through `allocator_url`.
pub fn view_opened(
    conn: &mut DbConnection,
    id: &str,
    hostname: &str,
    allocator_url: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if vm_exists(conn, hostname)? {
        diesel::insert_into(desktop_views::table)
            .values((
                desktop_views::id.eq(id),
                desktop_views::hostname.eq(hostname),
                desktop_views::allocator_url.eq(allocator_url),
                desktop_views::seen_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// View `id` closed.
pub fn view_closed(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    diesel::delete(desktop_views::table.find(id)).execute(conn)?;
    Ok(())
}

/// Whether a view of `hostname`'s desktop seen after `fresh_after` is open.
pub fn is_viewed(
    conn: &mut DbConnection,
    hostname: &str,
    fresh_after: NaiveDateTime,
) -> QueryResult<bool> {
    let open = desktop_views::table
        .filter(desktop_views::hostname.eq(hostname))
        .filter(desktop_views::seen_at.gt(fresh_after))
        .count()
        .get_result::<i64>(conn)?;
    Ok(open > 0)
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
