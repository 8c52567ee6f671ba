//! The instructor's view of a workshop's participants: how many are at each step now (the
//! funnel) and each participant's latest session with its step, time at it and usage, the
//! stuck ones first. The same rows, one per session, make the participants export.

use std::collections::{HashMap, HashSet};

use chrono::{NaiveDateTime, Utc};
use lablink_schema::journey::steps::{self, UsualTimes};
use lablink_schema::journey::{self, ParticipantSession};
use lablink_schema::wire::{
    utc_iso8601 as iso, FunnelCount, GpuFigures, JourneyStep, LifecycleState, ParticipantRow,
    ParticipantsView,
};
use lablink_schema::workshops::Workshop;

use crate::error::ApiError;
use crate::state::AppState;

/// The funnel's bars, in the order a participant meets them.
pub const FUNNEL_STEPS: [JourneyStep; 6] = [
    JourneyStep::Assigned,
    JourneyStep::CommandReceived,
    JourneyStep::DesktopUp,
    JourneyStep::Ready,
    JourneyStep::Failed,
    JourneyStep::Ended,
];

/// One session's row; `vm_state` is its VM's lifecycle state while the session is open.
pub fn row(
    session: &ParticipantSession,
    vm_state: Option<LifecycleState>,
    usual: &UsualTimes,
    now: NaiveDateTime,
) -> ParticipantRow {
    let broken = vm_state.is_some_and(|s| LifecycleState::BLOCKS_ASSIGNMENT.contains(&s));
    let step = steps::step_of(session, broken);
    let since = steps::reached_at(session, step).unwrap_or(session.claimed_at);
    ParticipantRow {
        email: session.email.clone(),
        hostname: session.hostname.clone(),
        workshop_id: session.workshop_id,
        step,
        step_since: iso(since),
        secs_at_step: (now - since).num_seconds().max(0),
        stuck: steps::is_stuck(session, step, usual, now),
        vm_state: vm_state
            .filter(|_| session.ended_at.is_none())
            .map(|s| s.as_str().to_owned()),
        claimed_at: iso(session.claimed_at),
        command_received_at: session.command_received_at.map(iso),
        desktop_up_at: session.desktop_up_at.map(iso),
        software_first_used_at: session.software_first_used_at.map(iso),
        ended_at: session.ended_at.map(iso),
        end_reason: session.end_reason.clone(),
        software_secs: session.software_secs,
        gpu: session.gpu_measured.then(|| GpuFigures {
            active_secs: u64::try_from(session.gpu_active_secs).unwrap_or(0),
            peak_utilization: u32::try_from(session.gpu_peak_utilization).unwrap_or(0),
            peak_memory_mib: u64::try_from(session.gpu_peak_memory_mib).unwrap_or(0),
        }),
        last_activity_at: session.last_activity_at.map(iso),
    }
}

/// The view from a workshop's sessions (oldest first) and its VMs' states (pure): each
/// participant counts once, by their latest session.
pub fn build(
    workshop_id: Option<i64>,
    sessions: &[ParticipantSession],
    vm_states: &HashMap<String, LifecycleState>,
    usual: &UsualTimes,
    now: NaiveDateTime,
) -> ParticipantsView {
    let mut seen = HashSet::new();
    let mut rows: Vec<ParticipantRow> = sessions
        .iter()
        .rev()
        .filter(|s| seen.insert(s.email.as_str()))
        .map(|s| row(s, vm_state_of(s, vm_states), usual, now))
        .collect();
    // The stuck first, the longest stuck on top; then by step, the furthest behind first.
    rows.sort_by(|a, b| {
        b.stuck
            .cmp(&a.stuck)
            .then(a.step.cmp(&b.step))
            .then(b.secs_at_step.cmp(&a.secs_at_step))
            .then(a.email.cmp(&b.email))
    });
    let funnel = FUNNEL_STEPS
        .iter()
        .map(|&step| FunnelCount {
            step,
            label: step.staff_label().to_owned(),
            count: u32::try_from(rows.iter().filter(|r| r.step == step).count()).unwrap_or(0),
        })
        .collect();
    ParticipantsView {
        workshop_id,
        participants: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        stuck: u32::try_from(rows.iter().filter(|r| r.stuck).count()).unwrap_or(0),
        funnel,
        rows,
    }
}

/// The state of `session`'s VM while the session is open; an ended session has none.
fn vm_state_of(
    session: &ParticipantSession,
    vm_states: &HashMap<String, LifecycleState>,
) -> Option<LifecycleState> {
    if session.ended_at.is_some() {
        return None;
    }
    vm_states.get(&session.hostname).copied()
}

/// The lifecycle states of the VMs of the open sessions among `sessions`.
fn open_vm_states(
    conn: &mut lablink_schema::DbConnection,
    sessions: &[ParticipantSession],
) -> diesel::QueryResult<HashMap<String, LifecycleState>> {
    let open: Vec<String> = sessions
        .iter()
        .filter(|s| s.ended_at.is_none())
        .map(|s| s.hostname.clone())
        .collect();
    Ok(journey::vm_states(conn, &open)?
        .into_iter()
        .filter_map(|(hostname, state)| Some((hostname, state.parse().ok()?)))
        .collect())
}

/// The instructor's view of workshop `id`, with the workshop's row (the page needs its name,
/// and one read gives both); 404 for an unknown workshop.
pub async fn of_workshop(
    state: &AppState,
    id: i64,
) -> Result<(Workshop, ParticipantsView), ApiError> {
    let usual = state.usual_times.get(state).await?;
    let found = state
        .read(move |conn| {
            let Some(workshop) = Workshop::find(conn, id)? else {
                return Ok(None);
            };
            let sessions = journey::of_workshop(conn, Some(id))?;
            let states = open_vm_states(conn, &sessions)?;
            Ok(Some((workshop, sessions, states)))
        })
        .await?;
    let (workshop, sessions, states) =
        found.ok_or_else(|| ApiError::NotFound(format!("there is no workshop {id}")))?;
    let view = build(Some(id), &sessions, &states, &usual, Utc::now().naive_utc());
    Ok((workshop, view))
}

/// Every session claimed in the range, of one workshop or all, as export rows.
pub async fn sessions_between(
    state: &AppState,
    workshop_id: Option<i64>,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> Result<Vec<ParticipantRow>, ApiError> {
    let usual = state.usual_times.get(state).await?;
    let (sessions, states) = state
        .read(move |conn| {
            let sessions = journey::claimed_between(conn, workshop_id, from, to)?;
            let states = open_vm_states(conn, &sessions)?;
            Ok((sessions, states))
        })
        .await?;
    let now = Utc::now().naive_utc();
    Ok(sessions
        .iter()
        .map(|s| row(s, vm_state_of(s, &states), &usual, now))
        .collect())
}
