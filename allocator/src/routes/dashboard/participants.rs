//! The instructor's view of a workshop, `/admin/workshops/{id}/participants`: the funnel
//! (an SVG drawn here) and the participants' table, the stuck ones first, each with links to
//! its VM's logs and actions. `…/live` is the same part alone, which the page's script fetches
//! again whenever `…/events` says something changed.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use futures_util::StreamExt;
use lablink_schema::journey;
use serde::Serialize;

use super::{page_error, render};
use crate::admin_actions::participants;
use crate::auth::SignedIn;
use crate::funnel_chart;
use crate::state::AppState;
use lablink_schema::wire::ParticipantsView;

/// How often an open instructor's view looks for changed steps.
const CHANGE_POLL: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize)]
struct LiveView {
    view: ParticipantsView,
    /// The workshop's zone (name and offset from UTC in seconds), for the times shown.
    zone: Option<String>,
    offset_secs: i32,
    /// The funnel chart, drawn from fixed labels and numbers only.
    funnel_svg: String,
}

/// What the page shows of the workshop itself.
#[derive(Debug, Serialize)]
struct WorkshopHeading {
    id: i64,
    name: String,
}

#[derive(Debug, Serialize)]
struct PageView {
    workshop: WorkshopHeading,
    live: LiveView,
}

async fn live_view(
    state: &AppState,
    id: i64,
) -> Result<(WorkshopHeading, LiveView), crate::error::ApiError> {
    let (workshop, view) = participants::of_workshop(state, id).await?;
    let heading = WorkshopHeading {
        id: workshop.id,
        name: workshop.name,
    };
    let live = LiveView {
        funnel_svg: funnel_chart::svg(&view.funnel),
        zone: workshop.time_zone.clone(),
        offset_secs: workshop.utc_offset_secs,
        view,
    };
    Ok((heading, live))
}

/// `GET /admin/workshops/{id}/participants`.
pub async fn page(
    state: web::Data<AppState>,
    _session: SignedIn,
    id: web::Path<i64>,
) -> HttpResponse {
    match live_view(&state, id.into_inner()).await {
        Ok((workshop, live)) => render(
            &state,
            StatusCode::OK,
            "admin_participants",
            &PageView { workshop, live },
        ),
        Err(err) => page_error(err),
    }
}

/// `GET /admin/workshops/{id}/participants/live`: the funnel and table alone.
pub async fn live(
    state: web::Data<AppState>,
    _session: SignedIn,
    id: web::Path<i64>,
) -> HttpResponse {
    match live_view(&state, id.into_inner()).await {
        Ok((_, live)) => render(&state, StatusCode::OK, "admin_participants_live", &live),
        Err(err) => page_error(err),
    }
}

/// `GET /admin/workshops/{id}/participants/events`: `event: participants` whenever a
/// participant reaches a step or any VM changes (a VM that breaks fails its participant),
/// and at least every 30 s, so the times at each step stay current.
pub async fn events(
    state: web::Data<AppState>,
    _session: SignedIn,
    id: web::Path<i64>,
) -> HttpResponse {
    let id = id.into_inner();
    let reader = state.clone();
    let polled = futures_util::stream::unfold(
        (None::<(i64, Option<chrono::NaiveDateTime>)>, 0u32),
        move |(last, mut quiet)| {
            let state = reader.clone();
            async move {
                loop {
                    tokio::time::sleep(CHANGE_POLL).await;
                    let now = state
                        .read(move |conn| journey::last_change(conn, Some(id)))
                        .await
                        .ok();
                    if now.is_some() && now != last {
                        return Some(((), (now, 0)));
                    }
                    // 15 looks without a change: 30 s.
                    quiet += 1;
                    if quiet >= 15 {
                        return Some(((), (last, 0)));
                    }
                }
            }
        },
    );
    let mut changes = state.changes.subscribe();
    let vm_changes = futures_util::stream::poll_fn(move |cx| changes.poll_recv(cx)).map(|_| ());
    let stream = futures_util::stream::select(polled, vm_changes)
        .map(|()| "event: participants\ndata: changed\n\n".to_owned());
    crate::sse::event_stream(&state, stream)
}
