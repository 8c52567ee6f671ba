//! The participant's journey on the wire: the figures an agent adds to its heartbeat while it
//! serves a session, and the steps as the participant's page and the instructor's view show
//! them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What the agent knows of the session it serves, sent with each heartbeat while it holds
/// one (so usage costs no request of its own). Every field is cumulative or a flag that only
/// turns on, so a lost or repeated heartbeat changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionFigures {
    /// The assignment the figures belong to; the allocator ignores figures of any other.
    pub assignment_id: i64,
    /// The agent received the participant's command.
    pub command_received: bool,
    /// The remote desktop's host runs.
    pub desktop_up: bool,
    /// The research software has run in this session.
    pub software_used: bool,
    /// Seconds the research software ran in this session.
    pub software_secs: u64,
    /// GPU figures; `None` where the agent cannot read a GPU (no NVML): "not measured".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuFigures>,
    /// Seconds since the participant last did something (the software ran or the desktop
    /// was used); `None` before the first time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_secs: Option<u64>,
}

/// A session's GPU use, over every GPU of the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GpuFigures {
    /// Seconds at least one GPU was busy (a kernel ran in the sample).
    pub active_secs: u64,
    /// The highest utilisation seen, in percent.
    pub peak_utilization: u32,
    /// The most GPU memory in use at once, in MiB.
    pub peak_memory_mib: u64,
}

/// Where a participant is. The first four follow one another; `Failed` is a VM that broke
/// under the participant, `Ended` a session that is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JourneyStep {
    /// A VM is theirs; its agent has not taken the command yet.
    Assigned,
    /// The agent received the command and is starting the remote desktop.
    CommandReceived,
    /// The remote desktop is up: the participant can connect.
    DesktopUp,
    /// The participant works: the research software has run.
    Ready,
    /// The VM stopped working; the participant should take another.
    Failed,
    /// The session is over.
    Ended,
}

impl JourneyStep {
    /// The steps a session goes through, in order.
    pub const PATH: [JourneyStep; 4] = [
        JourneyStep::Assigned,
        JourneyStep::CommandReceived,
        JourneyStep::DesktopUp,
        JourneyStep::Ready,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JourneyStep::Assigned => "assigned",
            JourneyStep::CommandReceived => "command_received",
            JourneyStep::DesktopUp => "desktop_up",
            JourneyStep::Ready => "ready",
            JourneyStep::Failed => "failed",
            JourneyStep::Ended => "ended",
        }
    }

    /// How staff pages name the step (the participant's page speaks to the participant).
    pub fn staff_label(self) -> &'static str {
        match self {
            JourneyStep::Assigned => "assigned",
            JourneyStep::CommandReceived => "command received",
            JourneyStep::DesktopUp => "desktop up",
            JourneyStep::Ready => "software running",
            JourneyStep::Failed => "VM failed",
            JourneyStep::Ended => "ended",
        }
    }

    /// How the participant's page names the step.
    pub fn label(self) -> &'static str {
        match self {
            JourneyStep::Assigned => "VM assigned",
            JourneyStep::CommandReceived => "Your VM received your command",
            JourneyStep::DesktopUp => "Remote desktop is up",
            JourneyStep::Ready => "Ready: the software runs",
            JourneyStep::Failed => "Your VM stopped working",
            JourneyStep::Ended => "Session ended",
        }
    }
}

impl fmt::Display for JourneyStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One step on the participant's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepView {
    pub step: JourneyStep,
    pub label: String,
    /// When it happened (ISO 8601, UTC); `None` while it has not.
    pub at: Option<String>,
    pub done: bool,
    /// The step the participant waits for now.
    pub waiting: bool,
    /// How long this step usually takes after the one before, measured, in seconds.
    pub usual_secs: Option<u64>,
}

/// The participant's page's live part (`GET /api/session/journey`, and its event stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JourneyView {
    pub hostname: String,
    pub step: JourneyStep,
    pub steps: Vec<StepView>,
    /// What to do now.
    pub next: String,
    /// Set when the step waited for takes much longer than usual: what to do about it.
    pub slow: Option<String>,
    /// Set when the VM broke: why, as the participant reads it.
    pub failure: Option<String>,
}

/// How many participants are at one step now (the instructor's funnel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FunnelCount {
    pub step: JourneyStep,
    pub label: String,
    pub count: u32,
}

/// One participant's session, as the instructor's table and the participants export show it.
/// Times are ISO 8601 in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParticipantRow {
    pub email: String,
    pub hostname: String,
    pub workshop_id: Option<i64>,
    pub step: JourneyStep,
    /// When the current step was reached, and how long ago.
    pub step_since: String,
    pub secs_at_step: i64,
    /// The instructor should look: the VM broke, or no desktop long after the claim.
    pub stuck: bool,
    /// The VM's lifecycle state while the session is open.
    pub vm_state: Option<String>,
    pub claimed_at: String,
    pub command_received_at: Option<String>,
    pub desktop_up_at: Option<String>,
    pub software_first_used_at: Option<String>,
    pub ended_at: Option<String>,
    pub end_reason: Option<String>,
    pub software_secs: i64,
    /// `None`: not measured (no GPU could be read on the VM).
    pub gpu: Option<GpuFigures>,
    pub last_activity_at: Option<String>,
}

/// The instructor's view of a workshop's participants (`GET
/// /api/admin/workshops/{id}/participants`): the funnel now, and each participant's latest
/// session, the stuck ones first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParticipantsView {
    pub workshop_id: Option<i64>,
    pub participants: u32,
    pub stuck: u32,
    pub funnel: Vec<FunnelCount>,
    pub rows: Vec<ParticipantRow>,
}
