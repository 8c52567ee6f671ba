//! Admin actions on workshops: create one (checked in [`request`], its roster read in
//! [`roster`]), list and show them ([`view`]), end one now or extend it, and send a test
//! notification through every channel. Each change is audited in its own transaction.

use std::sync::Arc;

use chrono::{Duration, Utc};
use lablink_actors::outbox_sender::NotificationChannel;
use lablink_actors::workshop_writes::{CreateWorkshop, EditWorkshop, MoveWorkshopEnd};
use lablink_schema::wire::{
    Admission, ExtendWorkshop, NotificationEvent, WorkshopChange, WorkshopCreated, WorkshopRequest,
    WorkshopState, WorkshopView,
};
use lablink_schema::workshops::plan::{self, PlanInput};
use lablink_schema::workshops::{Workshop, WorkshopEdit};

use crate::auth::Caller;
use crate::config::{DesktopMode, WorkshopsConfig};
use crate::error::ApiError;
use crate::state::AppState;

pub mod request;
pub mod roster;
pub mod view;

/// What workshops need from the configuration, resolved once at start.
pub struct WorkshopSettings {
    pub config: WorkshopsConfig,
    /// The instance type (and so the price) of a workshop that sets none.
    pub default_instance_type: String,
    /// The allocator's public URL, for the participants' link.
    pub public_url: String,
    /// The notification channels, for test sends.
    pub channels: Vec<Arc<dyn NotificationChannel>>,
    /// `desktop.mode`: a workshop's desktop mode when it sets none.
    pub desktop_mode: DesktopMode,
}

impl WorkshopSettings {
    /// How the participants of `workshop` (or of no workshop) reach their desktop: the
    /// workshop's own mode, or `desktop.mode`.
    pub fn desktop_mode_of(&self, workshop: Option<&Workshop>) -> DesktopMode {
        workshop
            .and_then(Workshop::desktop_mode)
            .unwrap_or(self.desktop_mode)
    }
}

impl std::fmt::Debug for WorkshopSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkshopSettings")
            .field("config", &self.config)
            .field("default_instance_type", &self.default_instance_type)
            .field("desktop_mode", &self.desktop_mode)
            .field(
                "channels",
                &self.channels.iter().map(|c| c.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Creates a workshop with its roster and plan; the answer carries a generated invite code
/// this once.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    request: WorkshopRequest,
) -> Result<WorkshopCreated, ApiError> {
    let settings = state.workshops.clone();
    let boot_settings = settings.clone();
    let boot_estimate = state
        .read(move |conn| view::boot_estimate(conn, &boot_settings))
        .await?;
    let context = request::Context {
        settings: &settings,
        max_vms: state.provider_max_vms,
        boot_estimate,
        now: Utc::now().naive_utc(),
        created_by: caller.audit_name(),
    };
    let checked = request::check(request, &context).map_err(ApiError::BadRequest)?;
    let invite_code = checked.invite_code.clone();
    let workshop = state
        .writer
        .send(CreateWorkshop {
            workshop: checked.workshop,
            roster: checked.roster,
            plan: checked.plan,
        })
        .await??;
    tracing::info!(workshop_id = workshop.id, name = %workshop.name, "workshop created");
    let workshop = show_row(state, workshop).await?;
    Ok(WorkshopCreated {
        workshop,
        invite_code,
    })
}

async fn show_row(state: &AppState, workshop: Workshop) -> Result<WorkshopView, ApiError> {
    let settings = state.workshops.clone();
    state
        .read(move |conn| view::read(conn, workshop, &settings))
        .await
}

async fn find(state: &AppState, id: i64) -> Result<Workshop, ApiError> {
    state
        .read(move |conn| Workshop::find(conn, id))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no workshop {id}")))
}

/// One workshop with its state, plan, VMs and spend.
pub async fn show(state: &AppState, id: i64) -> Result<WorkshopView, ApiError> {
    let workshop = find(state, id).await?;
    show_row(state, workshop).await
}

/// Every workshop, the latest start first.
pub async fn list(state: &AppState) -> Result<Vec<WorkshopView>, ApiError> {
    let settings = state.workshops.clone();
    state
        .read(move |conn| {
            Workshop::list(conn)?
                .into_iter()
                .map(|workshop| view::read(conn, workshop, &settings))
                .collect()
        })
        .await
}

/// The plan's inputs for a workshop as stored, with a new end.
fn plan_input(state: &AppState, workshop: &Workshop, ends_at: chrono::NaiveDateTime) -> PlanInput {
    PlanInput {
        starts_at: workshop.starts_at,
        ends_at,
        warmup_lead: Duration::seconds(i64::from(workshop.warmup_lead_secs)),
        vm_target: i32::try_from(workshop.vm_target()).unwrap_or(i32::MAX),
        batch_size: i32::try_from(state.workshops.config.warmup_batch_size).unwrap_or(10),
        boot_estimate: Duration::zero(),
        warning_minutes: workshop.warning_minutes(),
        keep_after_end: Duration::seconds(i64::from(workshop.keep_after_end_secs)),
    }
}

/// Changes a workshop's name, time zone label, headcount, spare VMs or roster. A new
/// headcount replans the warm-up: before it began, its batches anew; once under way, one
/// batch at once up to the new number. A lower number makes no VMs and destroys none.
pub async fn edit(
    state: &AppState,
    caller: &Caller,
    id: i64,
    change: WorkshopChange,
) -> Result<WorkshopView, ApiError> {
    let workshop = find(state, id).await?;
    if workshop.state().is_over() {
        return Err(ApiError::Conflict(format!(
            "workshop {id} has ended ({}); it can no longer be changed",
            workshop.state()
        )));
    }
    let bad = ApiError::BadRequest;
    let name = match &change.name {
        Some(name) => request::check_name(name).map_err(bad)?,
        None => workshop.name.clone(),
    };
    let time_zone = match change.time_zone.clone() {
        Some(zone) => request::check_time_zone(Some(zone)).map_err(bad)?,
        None => workshop.time_zone.clone(),
    };
    let max = state.provider_max_vms;
    let headcount = change
        .headcount
        .unwrap_or(u32::try_from(workshop.headcount).unwrap_or(0));
    request::check_headcount(headcount, max).map_err(bad)?;
    let spare = change
        .spare_vms
        .unwrap_or(u32::try_from(workshop.spare_vms).unwrap_or(0));
    if headcount + spare > max {
        return Err(ApiError::BadRequest(format!(
            "spare_vms: {headcount} participants and {spare} spare VMs are above \
             provider.max_vms ({max})"
        )));
    }
    let roster = match &change.roster {
        None => None,
        Some(_) if workshop.admission() != Admission::Roster => {
            return Err(ApiError::BadRequest(format!(
                "roster: workshop {id} admits by {}, not by a roster",
                workshop.admission().as_str()
            )))
        }
        Some(text) => Some(roster::parse(text).map_err(bad)?),
    };
    let invite_code_hash = match &change.invite_code {
        None => None,
        Some(_) if workshop.admission() != Admission::Invite => {
            return Err(ApiError::BadRequest(format!(
                "invite_code: workshop {id} admits by {}, not by an invite code",
                workshop.admission().as_str()
            )))
        }
        Some(code) => Some(request::invite_hash(
            &request::check_invite_code(code).map_err(bad)?,
        )),
    };
    let target = i32::try_from(headcount + spare).unwrap_or(i32::MAX);
    let now = Utc::now().naive_utc();
    let warm_up = if i64::from(target) == workshop.vm_target() {
        None
    } else if workshop.state() == WorkshopState::Scheduled {
        let settings = state.workshops.clone();
        let boot = state
            .read(move |conn| view::boot_estimate(conn, &settings))
            .await?;
        let input = PlanInput {
            vm_target: target,
            boot_estimate: boot,
            ..plan_input(state, &workshop, workshop.ends_at)
        };
        Some(plan::warm_up(&input))
    } else {
        Some(vec![plan::PlannedAction {
            kind: lablink_schema::wire::WorkshopActionKind::WarmUp,
            due_at: now,
            amount: target,
        }])
    };
    let mut detail: Vec<String> = Vec::new();
    if name != workshop.name {
        detail.push(format!("name \"{name}\""));
    }
    if i64::from(target) != workshop.vm_target() {
        detail.push(format!("{headcount} participants + {spare} spare"));
    }
    if let Some(roster) = &roster {
        detail.push(format!("roster of {}", roster.len()));
    }
    if invite_code_hash.is_some() {
        detail.push("a new invite code".to_owned());
    }
    let edited = state
        .writer
        .send(EditWorkshop {
            id,
            edit: WorkshopEdit {
                name,
                time_zone,
                headcount: i32::try_from(headcount).unwrap_or(i32::MAX),
                spare_vms: i32::try_from(spare).unwrap_or(0),
                invite_code_hash,
            },
            roster,
            warm_up,
            actor: caller.audit_name(),
            detail: if detail.is_empty() {
                "no change".to_owned()
            } else {
                detail.join(", ")
            },
        })
        .await??
        .ok_or_else(|| ApiError::NotFound(format!("no workshop {id}")))?;
    show_row(state, edited).await
}

/// Ends the workshop now: participants are refused from now on and its VMs are torn down
/// (after the straggler time, if it has one). Planned warnings are cancelled.
pub async fn end_now(state: &AppState, caller: &Caller, id: i64) -> Result<WorkshopView, ApiError> {
    let workshop = find(state, id).await?;
    if workshop.state().is_over() {
        return Err(ApiError::Conflict(format!(
            "workshop {id} has already ended ({})",
            workshop.state()
        )));
    }
    let now = Utc::now().naive_utc();
    let input = plan_input(state, &workshop, now);
    let moved = state
        .writer
        .send(MoveWorkshopEnd {
            id,
            ends_at: now,
            cancel_start: now < workshop.starts_at,
            plan: plan::closing(&input, now + Duration::seconds(1)),
            actor: caller.audit_name(),
            action: "workshop.end".to_owned(),
        })
        .await??
        .ok_or_else(|| ApiError::NotFound(format!("no workshop {id}")))?;
    show_row(state, moved).await
}

/// Moves the workshop's end later; the warnings, end and teardown are planned anew.
pub async fn extend(
    state: &AppState,
    caller: &Caller,
    id: i64,
    change: ExtendWorkshop,
) -> Result<WorkshopView, ApiError> {
    let workshop = find(state, id).await?;
    let ends_at = change.ends_at.naive_utc();
    let now = Utc::now().naive_utc();
    if workshop.state() == WorkshopState::TornDown {
        return Err(ApiError::Conflict(format!(
            "workshop {id} is torn down: its VMs are gone; create a new workshop"
        )));
    }
    if ends_at <= workshop.ends_at {
        return Err(ApiError::BadRequest(format!(
            "ends_at ({}) must be later than the current end ({}); to end now, use end",
            change.ends_at.to_rfc3339(),
            view::local(&workshop, workshop.ends_at).to_rfc3339()
        )));
    }
    if ends_at <= now {
        return Err(ApiError::BadRequest(
            "ends_at must be in the future".to_owned(),
        ));
    }
    if ends_at - workshop.starts_at > Duration::days(14) {
        return Err(ApiError::BadRequest(
            "ends_at: a workshop may last at most 14 days".to_owned(),
        ));
    }
    let input = plan_input(state, &workshop, ends_at);
    let moved = state
        .writer
        .send(MoveWorkshopEnd {
            id,
            ends_at,
            cancel_start: false,
            plan: plan::closing(&input, now),
            actor: caller.audit_name(),
            action: "workshop.extend".to_owned(),
        })
        .await??
        .ok_or_else(|| ApiError::NotFound(format!("no workshop {id}")))?;
    show_row(state, moved).await
}

/// What a test send to one channel gave.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TestSend {
    pub channel: String,
    /// `None`: accepted.
    pub error: Option<String>,
}

/// Sends a test notification through every channel now, bypassing the outbox, and says what
/// each answered; audited.
pub async fn test_send(state: &AppState, caller: &Caller) -> Result<Vec<TestSend>, ApiError> {
    let now = Utc::now().naive_utc();
    let event = NotificationEvent {
        event: "test".to_owned(),
        subject: format!(
            "Test notification from LabLink, sent by {}",
            caller.audit_name()
        ),
        delivery_key: format!("lablink-test-{}", now.and_utc().timestamp_millis()),
        occurred_at: now,
        workshop_id: None,
        hostname: None,
        details: serde_json::Value::Null,
    };
    let sends = state.workshops.channels.iter().map(|channel| {
        let sent = channel.send(&event);
        let name = channel.name().to_owned();
        async move {
            TestSend {
                channel: name,
                error: sent.await.err(),
            }
        }
    });
    let results = futures_util::future::join_all(sends).await;
    let summary = results
        .iter()
        .map(|r| {
            format!(
                "{}: {}",
                r.channel,
                r.error.as_deref().unwrap_or("accepted")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    state
        .audit(
            &caller.audit_name(),
            "notifications.test",
            None,
            Some(if summary.is_empty() {
                "no channels configured".to_owned()
            } else {
                summary
            }),
        )
        .await;
    Ok(results)
}
