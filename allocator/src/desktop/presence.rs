//! What this allocator tells the others on the database about its desktops: the agents'
//! tunnels it holds and the instructors' views open through it, each a row in
//! `desktop_tunnels` or `desktop_views` that it renews while it lives. Only an allocator the
//! others can reach (see [`super::peers::DesktopPeers::home`]) lists anything.

use std::time::Duration;

use lablink_schema::desktop_presence;

use crate::state::AppState;

/// How often an allocator renews the tunnels and views it holds.
const RENEW_EVERY: Duration = Duration::from_secs(20);
/// A tunnel's or view's row not renewed for this long is gone: its allocator died.
const FRESH_FOR: Duration = Duration::from_secs(60);

/// Lists `hostname`'s new tunnel `link_id` as held here.
pub async fn tunnel_up(state: &AppState, hostname: &str, link_id: &str) {
    let Some(home) = state.peers.home().map(str::to_owned) else {
        return;
    };
    let (hostname, link_id) = (hostname.to_owned(), link_id.to_owned());
    let now = chrono::Utc::now().naive_utc();
    let listed = state
        .small_write(move |conn| desktop_presence::hold(conn, &hostname, &home, &link_id, now))
        .await;
    if let Err(err) = listed {
        tracing::warn!(%err, "cannot list the desktop tunnel for the other allocators");
    }
}

/// Takes `hostname`'s tunnel `link_id` off the list (a newer one stays).
pub async fn tunnel_down(state: &AppState, hostname: &str, link_id: &str) {
    if state.peers.home().is_none() {
        return;
    }
    let (hostname, link_id) = (hostname.to_owned(), link_id.to_owned());
    let unlisted = state
        .small_write(move |conn| desktop_presence::let_go(conn, &hostname, &link_id))
        .await;
    if let Err(err) = unlisted {
        tracing::warn!(%err, "cannot take the desktop tunnel off the list");
    }
}

/// Lists an instructor's view `id` of `hostname`'s desktop, opened here.
pub async fn view_opened(state: &AppState, hostname: &str, id: &str) {
    let Some(home) = state.peers.home().map(str::to_owned) else {
        return;
    };
    let (hostname, id) = (hostname.to_owned(), id.to_owned());
    let now = chrono::Utc::now().naive_utc();
    let listed = state
        .small_write(move |conn| desktop_presence::view_opened(conn, &id, &hostname, &home, now))
        .await;
    if let Err(err) = listed {
        tracing::warn!(%err, "cannot list the instructor's view for the other allocators");
    }
}

/// Takes view `id` off the list.
pub async fn view_closed(state: &AppState, id: &str) {
    if state.peers.home().is_none() {
        return;
    }
    let id = id.to_owned();
    let unlisted = state
        .small_write(move |conn| desktop_presence::view_closed(conn, &id))
        .await;
    if let Err(err) = unlisted {
        tracing::warn!(%err, "cannot take the instructor's view off the list");
    }
}

/// Whether an instructor's view of `hostname` is open through any allocator.
async fn is_viewed_anywhere(state: &AppState, hostname: &str) -> bool {
    if state.peers.home().is_none() {
        return false;
    }
    let hostname = hostname.to_owned();
    let fresh_after = fresh_after();
    match state
        .read(move |conn| desktop_presence::is_viewed(conn, &hostname, fresh_after))
        .await
    {
        Ok(viewed) => viewed,
        Err(err) => {
            tracing::warn!(%err, "cannot read whether a desktop is viewed");
            false
        }
    }
}

/// The other allocator holding `hostname`'s tunnel now, if any.
pub(super) async fn holder(state: &AppState, hostname: &str) -> Option<String> {
    let hostname = hostname.to_owned();
    let fresh_after = fresh_after();
    match state
        .read(move |conn| desktop_presence::holder(conn, &hostname, fresh_after))
        .await
    {
        Ok(holder) => holder.filter(|holder| Some(holder.as_str()) != state.peers.home()),
        Err(err) => {
            tracing::warn!(%err, "cannot read which allocator holds a desktop tunnel");
            None
        }
    }
}

/// Renews the tunnels and views held here until the allocator stops.
pub async fn keep_listed(state: AppState) {
    let Some(home) = state.peers.home().map(str::to_owned) else {
        return;
    };
    let mut every = tokio::time::interval(RENEW_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = state.until_stopping() => return,
        }
        let home = home.clone();
        let now = chrono::Utc::now().naive_utc();
        let renewed = state
            .small_write(move |conn| desktop_presence::refresh(conn, &home, now))
            .await;
        if let Err(err) = renewed {
            tracing::warn!(%err, "cannot renew this allocator's desktop tunnels");
        }
    }
}

/// Rows renewed after this are live.
fn fresh_after() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc() - chrono::Duration::from_std(FRESH_FOR).unwrap_or_default()
}

/// Whether an instructor is viewing `hostname`'s desktop, through this allocator or another.
pub async fn is_watched(state: &AppState, hostname: &str) -> bool {
    state.desktops.is_watched(hostname) || is_viewed_anywhere(state, hostname).await
}

/// Whether `hostname`'s agent holds a tunnel to this allocator or to another one.
pub async fn is_reachable(state: &AppState, hostname: &str) -> bool {
    state.desktops.is_connected(hostname) || holder(state, hostname).await.is_some()
}
