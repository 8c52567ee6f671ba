//! Workshops on the wire: the admin API's request and answer types, the participant's notice,
//! and the notification events the outbox sends.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::UnknownValue;

/// Where a workshop stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WorkshopState {
    /// Defined; nothing made yet.
    Scheduled,
    /// Its VMs are being made ahead of the start.
    WarmingUp,
    /// Participants may ask for VMs.
    Open,
    /// Past its end: participants are refused; VMs kept for stragglers, if so configured.
    Ended,
    /// Ended and its VMs destroyed.
    TornDown,
}

impl WorkshopState {
    pub const ALL: [WorkshopState; 5] = [
        WorkshopState::Scheduled,
        WorkshopState::WarmingUp,
        WorkshopState::Open,
        WorkshopState::Ended,
        WorkshopState::TornDown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkshopState::Scheduled => "scheduled",
            WorkshopState::WarmingUp => "warming_up",
            WorkshopState::Open => "open",
            WorkshopState::Ended => "ended",
            WorkshopState::TornDown => "torn_down",
        }
    }

    /// Whether the workshop is over (nothing more is made for it).
    pub fn is_over(self) -> bool {
        matches!(self, WorkshopState::Ended | WorkshopState::TornDown)
    }
}

impl fmt::Display for WorkshopState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

spelled_as_stored!(
    WorkshopState,
    "scheduled, warming_up, open, ended, torn_down"
);

/// Who may ask for a VM in a workshop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Admission {
    /// Anyone with the workshop's link.
    Open,
    /// Anyone with the link and the invite code.
    Invite,
    /// Only the emails on the roster.
    Roster,
}

impl Admission {
    pub const ALL: [Admission; 3] = [Admission::Open, Admission::Invite, Admission::Roster];

    pub fn as_str(self) -> &'static str {
        match self {
            Admission::Open => "open",
            Admission::Invite => "invite",
            Admission::Roster => "roster",
        }
    }
}

spelled_as_stored!(Admission, "open, invite, roster");

/// What a planned action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WorkshopActionKind {
    /// Make VMs so the workshop has `amount` of them.
    WarmUp,
    /// Let participants in.
    Open,
    /// Warn participants and admins: `amount` minutes left.
    Warning,
    /// Refuse new participants from now on.
    End,
    /// Destroy the workshop's VMs.
    Teardown,
}

impl WorkshopActionKind {
    pub const ALL: [WorkshopActionKind; 5] = [
        WorkshopActionKind::WarmUp,
        WorkshopActionKind::Open,
        WorkshopActionKind::Warning,
        WorkshopActionKind::End,
        WorkshopActionKind::Teardown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkshopActionKind::WarmUp => "warm_up",
            WorkshopActionKind::Open => "open",
            WorkshopActionKind::Warning => "warning",
            WorkshopActionKind::End => "end",
            WorkshopActionKind::Teardown => "teardown",
        }
    }
}

spelled_as_stored!(WorkshopActionKind, "warm_up, open, warning, end, teardown");

/// Where a planned action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WorkshopActionState {
    Planned,
    Done,
    /// Its time passed while no allocator ran and it no longer made sense (see `outcome`).
    Skipped,
    /// Replaced by a new plan (the workshop was extended or ended early).
    Cancelled,
    Failed,
}

impl WorkshopActionState {
    pub const ALL: [WorkshopActionState; 5] = [
        WorkshopActionState::Planned,
        WorkshopActionState::Done,
        WorkshopActionState::Skipped,
        WorkshopActionState::Cancelled,
        WorkshopActionState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkshopActionState::Planned => "planned",
            WorkshopActionState::Done => "done",
            WorkshopActionState::Skipped => "skipped",
            WorkshopActionState::Cancelled => "cancelled",
            WorkshopActionState::Failed => "failed",
        }
    }
}

spelled_as_stored!(
    WorkshopActionState,
    "planned, done, skipped, cancelled, failed"
);

/// Body of `POST /api/admin/workshops`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WorkshopRequest {
    pub name: String,
    /// RFC 3339 with an offset, e.g. `2027-03-12T09:00:00-08:00`. Times are shown in the
    /// start time's offset.
    #[serde(deserialize_with = "rfc3339")]
    pub starts_at: DateTime<FixedOffset>,
    #[serde(deserialize_with = "rfc3339")]
    pub ends_at: DateTime<FixedOffset>,
    /// A name for the time zone, shown beside times (e.g. `America/Los_Angeles`).
    #[serde(default)]
    pub time_zone: Option<String>,
    pub headcount: u32,
    /// VMs made beyond the headcount; unset: `workshops.default_spare_vms`.
    #[serde(default)]
    pub spare_vms: Option<u32>,
    /// How long before the start the first VMs are made.
    pub warmup_lead_secs: u32,
    /// Provider variables for this workshop's VMs (`instance_type`, `ami_id`, …).
    #[serde(default)]
    pub vm_settings: BTreeMap<String, String>,
    /// Unset: `roster` when a roster is given, `invite` when an invite code is, else `open`.
    #[serde(default)]
    pub admission: Option<Admission>,
    /// For `invite`: the code participants type; unset, one is made (and shown once).
    #[serde(default)]
    pub invite_code: Option<String>,
    /// For `roster`: allowed emails, one per line or as CSV (the first column that holds an
    /// `@`; a header line is skipped).
    #[serde(default)]
    pub roster: Option<String>,
    /// Minutes before the end at which everyone is warned; unset: `[30, 5]`.
    #[serde(default)]
    pub warning_minutes: Option<Vec<u32>>,
    /// Keep the VMs this long after the end for stragglers (default 0: destroyed at the end).
    #[serde(default)]
    pub keep_after_end_secs: Option<u32>,
    /// Most the workshop may cost, in the configured currency.
    #[serde(default)]
    pub spend_cap: Option<f64>,
    /// At the cap, destroy the workshop's VMs too (not only stop making them).
    #[serde(default)]
    pub teardown_at_cap: bool,
    /// Release a session in which neither the research software nor the desktop was used
    /// for this long (unset: never).
    #[serde(default)]
    pub idle_release_secs: Option<u32>,
    /// How long before an idle release the participant is warned (default 300).
    #[serde(default)]
    pub idle_warning_secs: Option<u32>,
    /// Release every session this long after it began (unset: no limit).
    #[serde(default)]
    pub max_session_secs: Option<u32>,
    /// How its participants reach their desktop; unset: the allocator's `desktop.mode`.
    #[serde(default)]
    pub desktop_mode: Option<super::DesktopMode>,
}

/// The limits of each participant's session in a workshop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionLimits {
    pub idle_release_secs: Option<u64>,
    pub idle_warning_secs: u64,
    pub max_session_secs: Option<u64>,
}

impl SessionLimits {
    /// Whether any limit applies.
    pub fn any(&self) -> bool {
        self.idle_release_secs.is_some() || self.max_session_secs.is_some()
    }
}

/// What a participant's page shows about their own session (`GET /api/session`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    pub hostname: String,
    /// A warning about this session (idle, or its time is nearly up).
    pub session_notice: Option<String>,
    /// A warning about the whole workshop.
    pub workshop_notice: Option<String>,
}

/// A workshop's spend so far, in the configured currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpendView {
    pub currency: String,
    pub price_per_vm_hour: f64,
    pub vm_hours: f64,
    pub estimate: f64,
    /// What the whole workshop will cost at this rate if every VM planned lives to the end.
    pub projected: f64,
    pub cap: Option<f64>,
    /// `none`, `warned` (80 % of the cap) or `reached`.
    pub alert: String,
}

/// A planned or done action, as the admin API and the timeline show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkshopActionView {
    pub id: i64,
    pub kind: WorkshopActionKind,
    pub due_at: NaiveDateTime,
    pub amount: i32,
    pub state: WorkshopActionState,
    pub outcome: Option<String>,
    pub done_at: Option<NaiveDateTime>,
}

/// The workshop's VMs now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkshopVmCounts {
    pub total: i64,
    pub free: i64,
    pub assigned: i64,
}

/// A workshop as `GET /api/admin/workshops/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkshopView {
    pub id: i64,
    pub name: String,
    pub state: WorkshopState,
    pub starts_at: DateTime<FixedOffset>,
    pub ends_at: DateTime<FixedOffset>,
    pub time_zone: Option<String>,
    pub headcount: i32,
    pub spare_vms: i32,
    pub warmup_lead_secs: i32,
    pub vm_settings: BTreeMap<String, String>,
    pub admission: Admission,
    pub roster_size: i64,
    pub warning_minutes: Vec<u32>,
    pub keep_after_end_secs: i32,
    pub session_limits: SessionLimits,
    /// How its participants reach their desktop (its own, or the allocator's).
    pub desktop_mode: super::DesktopMode,
    /// How long a VM takes to be ready, as measured (or configured until measured).
    pub boot_estimate_secs: i64,
    /// When the last warm-up batch should be ready, by that estimate.
    pub ready_estimate: DateTime<FixedOffset>,
    pub vms: WorkshopVmCounts,
    pub spend: SpendView,
    /// The warning participants see now.
    pub notice: Option<String>,
    pub actions: Vec<WorkshopActionView>,
    /// The participants' start page of this workshop.
    pub link: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

/// The answer to `POST /api/admin/workshops`: the workshop and, for an invite workshop
/// whose code was made here, that code (shown this once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkshopCreated {
    #[serde(flatten)]
    pub workshop: WorkshopView,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_code: Option<String>,
}

/// Body of `PATCH /api/admin/workshops/{id}`: what to change; absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WorkshopChange {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub headcount: Option<u32>,
    #[serde(default)]
    pub spare_vms: Option<u32>,
    /// A new roster, replacing the old one (roster workshops only).
    #[serde(default)]
    pub roster: Option<String>,
    /// A new invite code, replacing the old one (invite workshops only): for a code that
    /// was lost or shared too widely.
    #[serde(default)]
    pub invite_code: Option<String>,
}

/// Body of `POST /api/admin/workshops/{id}/extend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExtendWorkshop {
    #[serde(deserialize_with = "rfc3339")]
    pub ends_at: DateTime<FixedOffset>,
}

/// A time as RFC 3339 with an offset, refused with an example of what is wanted.
fn rfc3339<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<DateTime<FixedOffset>, D::Error> {
    let text = String::deserialize(deserializer)?;
    DateTime::parse_from_rfc3339(text.trim()).map_err(|_| {
        serde::de::Error::custom(format!(
            "`{text}` is not a time with its offset; write it as RFC 3339, e.g. \
             2027-03-12T09:00:00-08:00"
        ))
    })
}

/// What a participant's page shows about their workshop (`GET /api/workshops/{id}/notice`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkshopNotice {
    pub state: WorkshopState,
    pub ends_at: DateTime<FixedOffset>,
    pub notice: Option<String>,
}

/// A notification as webhooks receive it (the JSON body) and emails describe it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationEvent {
    /// What happened, e.g. `workshop.warning` or `vm.failed`.
    pub event: String,
    /// One line saying it, for people.
    pub subject: String,
    /// The same for every delivery of this event to one receiver: deduplicate on it.
    pub delivery_key: String,
    pub occurred_at: NaiveDateTime,
    #[serde(default)]
    pub workshop_id: Option<i64>,
    #[serde(default)]
    pub hostname: Option<String>,
    /// Event-specific details.
    #[serde(default)]
    pub details: serde_json::Value,
}
