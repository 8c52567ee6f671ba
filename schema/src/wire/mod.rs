//! The JSON contract between the allocator and the agents on the VMs, kept compatible with
//! the original LabLink clients (paths and keys are listed in `docs/architecture.md`).
//!
//! Serde only: this module is what the agent links, so it must never pull in diesel.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The message an agent logs once, when the allocator first accepts its status report: the
/// local provider reads it in the agent's log to tell an agent that registered from one that
/// was only started.
pub const FIRST_REPORT_LOGGED: &str = "first status report accepted by the allocator";

/// Lifecycle status a VM reports for itself through `POST /api/vm-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum VmStatus {
    /// Booting: cloud-init or the agent is still setting up.
    Initializing,
    /// Ready to be handed to a researcher.
    Running,
    /// Set-up failed; never handed out.
    Error,
    /// Status no longer known (kept for compatibility with the original statuses).
    Unknown,
}

impl VmStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [VmStatus; 4] = [
        VmStatus::Initializing,
        VmStatus::Running,
        VmStatus::Error,
        VmStatus::Unknown,
    ];

    /// The spelling used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            VmStatus::Initializing => "initializing",
            VmStatus::Running => "running",
            VmStatus::Error => "error",
            VmStatus::Unknown => "unknown",
        }
    }
}

impl fmt::Display for VmStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no known [`VmStatus`] or [`GpuHealth`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// What was given.
    pub given: String,
    /// What would have been accepted.
    pub expected: &'static str,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not one of {}", self.given, self.expected)
    }
}

impl std::error::Error for UnknownValue {}

/// `FromStr` for an enum spelled by its `as_str` and listed in its `ALL`: the one spelling
/// used on the wire and in the database, and an error naming what is accepted.
macro_rules! spelled_as_stored {
    ($type:ty, $expected:literal) => {
        impl FromStr for $type {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$type>::ALL
                    .into_iter()
                    .find(|value| value.as_str() == s)
                    .ok_or_else(|| UnknownValue {
                        given: s.to_owned(),
                        expected: $expected,
                    })
            }
        }
    };
}

spelled_as_stored!(VmStatus, "initializing, running, error, unknown");

/// A stored UTC time as the API, the pages and the exports write it: ISO 8601 with its zone,
/// to the second (`2026-12-01T09:30:00Z`), which spreadsheets and `chrono` both read back.
pub fn utc_iso8601(at: chrono::NaiveDateTime) -> String {
    at.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

mod api_tokens;
mod audit;
mod desktop_mode;
mod errors;
mod journey;
mod lifecycle;
mod logs;
mod tunnel;
mod workshops;

pub use api_tokens::{
    ApiTokenList, ApiTokenRequest, ApiTokenScope, ApiTokenState, ApiTokenView, CreatedApiToken,
};
pub use audit::{
    AllocatorLogEvent, AuditEventView, AuditPage, VersionView, WhoAmI, ADMIN_API_VERSION,
};
pub use desktop_mode::DesktopMode;
pub use errors::{ApiErrorBody, ApiErrorDetail};
pub use journey::{
    FunnelCount, GpuFigures, JourneyStep, JourneyView, ParticipantRow, ParticipantsView,
    SessionFigures, StepView,
};
pub use lifecycle::{AdminVmView, LifecycleState};
pub use logs::{LogEntry, LogLineView, VmLogBatch, VmLogs};
pub use tunnel::{StreamControl, TunnelCommand};
pub use workshops::{
    Admission, ExtendWorkshop, NotificationEvent, SessionLimits, SessionView, SpendView,
    WorkshopActionKind, WorkshopActionState, WorkshopActionView, WorkshopChange, WorkshopCreated,
    WorkshopNotice, WorkshopRequest, WorkshopState, WorkshopView, WorkshopVmCounts,
};

/// GPU health as the agent reports it through `POST /api/gpu_health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum GpuHealth {
    /// The GPU answers and is within limits.
    Healthy,
    /// The GPU is lost, too hot, or reports errors; the VM must not be handed out.
    Unhealthy,
    /// No GPU or no NVML on this VM; the VM may still be handed out.
    #[serde(rename = "N/A")]
    NotAvailable,
}

impl GpuHealth {
    /// Every value, in the order shown to admins.
    pub const ALL: [GpuHealth; 3] = [
        GpuHealth::Healthy,
        GpuHealth::Unhealthy,
        GpuHealth::NotAvailable,
    ];

    /// The spelling used on the wire and in the database (as the original clients send it).
    pub fn as_str(self) -> &'static str {
        match self {
            GpuHealth::Healthy => "Healthy",
            GpuHealth::Unhealthy => "Unhealthy",
            GpuHealth::NotAvailable => "N/A",
        }
    }

    /// The health a VM's GPU must report before the VM may be handed to a researcher.
    pub const ASSIGNABLE: [GpuHealth; 2] = [GpuHealth::Healthy, GpuHealth::NotAvailable];

    /// Whether a VM with this GPU health may be handed to a researcher.
    pub fn allows_assignment(self) -> bool {
        GpuHealth::ASSIGNABLE.contains(&self)
    }
}

impl fmt::Display for GpuHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

spelled_as_stored!(GpuHealth, "Healthy, Unhealthy, N/A");

/// Body of `POST /api/vm-status`: a VM registers itself or reports a new status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VmStatusReport {
    pub hostname: String,
    pub status: VmStatus,
    /// The session the VM serves, as its agent sees it (an extension: the original clients
    /// never send it, and it is absent while the VM is free).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionFigures>,
}

/// Body of `POST /vm_startup`: the agent waits for its VM's assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VmStartupRequest {
    pub hostname: String,
    /// The assignment the agent already acts on, if any. With it, the allocator answers only
    /// when that assignment ends: with the next one, or with `{"status": "released"}`.
    /// The original clients never send it and get the current assignment at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_id: Option<i64>,
}

/// Answer to `POST /vm_startup`, told apart by `status`: `success` with the assignment (the
/// original clients give up on any other value), or `released` when the assignment the agent
/// held has ended (only for agents that sent `assignment_id`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status")]
pub enum VmStartupAnswer {
    #[serde(rename = "success")]
    Assigned {
        /// PIN the remote desktop host is started with.
        pin: String,
        /// The researcher's Chrome Remote Desktop `start-host` command.
        command: String,
        /// Identifies this assignment of the VM (an extension; the original clients ignore
        /// it).
        #[serde(default)]
        assignment_id: i64,
    },
    #[serde(rename = "released")]
    Released,
}

/// PINs and commands are secrets: debug output names the fields but never shows them.
impl fmt::Debug for VmStartupAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VmStartupAnswer::Assigned { assignment_id, .. } => f
                .debug_struct("Assigned")
                .field("pin", &"<redacted>")
                .field("command", &"<redacted>")
                .field("assignment_id", assignment_id)
                .finish(),
            VmStartupAnswer::Released => f.write_str("Released"),
        }
    }
}

/// Body of `POST /api/update_inuse_status`: whether the research software is running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InUseReport {
    pub hostname: String,
    pub status: bool,
}

/// Body of `POST /api/gpu_health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GpuHealthReport {
    pub hostname: String,
    pub gpu_status: GpuHealth,
}

/// Answer to `GET /api/unassigned_vms_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnassignedVmCount {
    pub count: i64,
}

/// Answer to `POST /api/vm-status`. `token` is present only on the report that registered
/// the VM and gave it its token: the agent must keep it, it is never shown again.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VmStatusAnswer {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// How often the agent should report (its heartbeat), in milliseconds: a third of the
    /// allocator's heartbeat timeout, so the two never disagree. Agents that do not know the
    /// key ignore it; an agent keeps its own setting when it is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_ms: Option<u64>,
    /// A warning for whoever sits at the VM (its session is idle or nearly over, or its
    /// workshop ends soon): the agent shows it on the desktop once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

impl fmt::Debug for VmStatusAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VmStatusAnswer")
            .field("message", &self.message)
            .field("token_set", &self.token.is_some())
            .field("heartbeat_interval_ms", &self.heartbeat_interval_ms)
            .finish()
    }
}

/// Answer to `GET /healthz` and `GET /readyz`: `ok`, `ready` or `unavailable` with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthAnswer {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl HealthAnswer {
    pub fn new(status: &str, reason: Option<&str>) -> Self {
        HealthAnswer {
            status: status.to_owned(),
            reason: reason.map(str::to_owned),
        }
    }
}

/// A successful write's answer: `{"message": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageBody {
    pub message: String,
}

/// A refused request's answer: `{"error": "…"}`, saying what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: String,
}

/// Answer to `GET /api/vm-status/{hostname}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VmStatusView {
    pub hostname: String,
    pub status: VmStatus,
}

/// Answer to `GET /api/vm-status` (admin): every VM's status by hostname.
pub type VmStatuses = std::collections::BTreeMap<String, VmStatus>;

/// Answer to `POST /api/admin/vms/{hostname}/release` and `…/reboot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VmActionAnswer {
    pub message: String,
    pub hostname: String,
    /// The VM's status after the action (release only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<VmStatus>,
}

/// What a provisioning run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// Create VMs (`requested_count` of them).
    Create,
    /// Destroy the VMs named in `targets`.
    Destroy,
    /// Destroy every VM.
    DestroyAll,
    /// Replace a broken VM: create one new VM and destroy the broken one (named first in
    /// `targets`, the new one second).
    Replace,
}

impl OperationKind {
    pub const ALL: [OperationKind; 4] = [
        OperationKind::Create,
        OperationKind::Destroy,
        OperationKind::DestroyAll,
        OperationKind::Replace,
    ];

    /// The spelling stored in `operations.kind` and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Create => "create",
            OperationKind::Destroy => "destroy",
            OperationKind::DestroyAll => "destroy_all",
            OperationKind::Replace => "replace",
        }
    }
}

spelled_as_stored!(OperationKind, "create, destroy, destroy_all, replace");

/// Where a provisioning run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl OperationState {
    pub const ALL: [OperationState; 4] = [
        OperationState::Queued,
        OperationState::Running,
        OperationState::Succeeded,
        OperationState::Failed,
    ];

    /// The spelling stored in `operations.state` and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Queued => "queued",
            OperationState::Running => "running",
            OperationState::Succeeded => "succeeded",
            OperationState::Failed => "failed",
        }
    }
}

impl fmt::Display for OperationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

spelled_as_stored!(OperationState, "queued, running, succeeded, failed");

/// A provisioning operation as the admin API shows it (`POST /api/admin/vms…` answer 202
/// with one; `GET /api/admin/operations` lists them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OperationView {
    pub operation_id: i64,
    pub kind: OperationKind,
    pub state: OperationState,
    pub requested_count: Option<i32>,
    /// The hostnames it works on, once known.
    pub targets: Option<Vec<String>>,
    pub requested_by: String,
    pub error: Option<String>,
    pub output_tail: String,
    pub created_at: chrono::NaiveDateTime,
    pub started_at: Option<chrono::NaiveDateTime>,
    pub finished_at: Option<chrono::NaiveDateTime>,
    /// The workshop whose VMs a creation makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workshop_id: Option<i64>,
}

/// Body of `POST /api/admin/enrollment-tokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnrollmentTokenRequest {
    /// Which machines it is for; shown in the list and the audit trail.
    #[serde(default)]
    pub label: String,
    /// Seconds until it stops working; none: it never expires.
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
    /// How many machines may enroll with it; none: any number (up to `provider.max_vms`).
    #[serde(default)]
    pub max_uses: Option<u32>,
}

/// Whether an enrollment token can still be used, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EnrollmentTokenState {
    #[serde(rename = "active")]
    Active,
    #[serde(rename = "expired")]
    Expired,
    #[serde(rename = "revoked")]
    Revoked,
    #[serde(rename = "used up")]
    UsedUp,
}

/// An enrollment token as admins see it: never the token, which is shown once at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollmentTokenView {
    pub id: i64,
    pub label: String,
    pub created_by: String,
    pub created_at: chrono::NaiveDateTime,
    pub expires_at: Option<chrono::NaiveDateTime>,
    pub max_uses: Option<i32>,
    pub uses: i32,
    pub revoked_at: Option<chrono::NaiveDateTime>,
    pub state: EnrollmentTokenState,
}

/// Answer to `POST /api/admin/enrollment-tokens`: the secret itself, this once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedEnrollmentToken {
    pub token: String,
    #[serde(flatten)]
    pub view: EnrollmentTokenView,
}

impl fmt::Debug for CreatedEnrollmentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedEnrollmentToken")
            .field("token", &"<redacted>")
            .field("view", &self.view)
            .finish()
    }
}

/// Answer to `GET /api/admin/enrollment-tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollmentTokenList {
    pub tokens: Vec<EnrollmentTokenView>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_round_trip_through_their_wire_spelling() {
        for status in VmStatus::ALL {
            let text = serde_json::to_value(status).expect("serialize");
            assert_eq!(text, json!(status.as_str()));
            assert_eq!(status.as_str().parse::<VmStatus>(), Ok(status));
        }
        let err = "paused".parse::<VmStatus>().expect_err("unknown status");
        assert!(err.to_string().contains("paused"), "{err}");
    }

    #[test]
    fn gpu_health_uses_the_original_clients_spelling() {
        let report: GpuHealthReport =
            serde_json::from_value(json!({"hostname": "vm-1", "gpu_status": "N/A"}))
                .expect("original body");
        assert_eq!(report.gpu_status, GpuHealth::NotAvailable);
        assert!(report.gpu_status.allows_assignment());
        assert!(!GpuHealth::Unhealthy.allows_assignment());
        assert_eq!("Healthy".parse::<GpuHealth>(), Ok(GpuHealth::Healthy));
        assert!("healthy".parse::<GpuHealth>().is_err());
    }

    #[test]
    fn assignment_has_the_keys_the_original_client_reads() {
        let body = serde_json::to_value(VmStartupAnswer::Assigned {
            assignment_id: 3,
            pin: "123456".into(),
            command: "cmd".into(),
        })
        .expect("serialize");
        assert_eq!(
            body,
            json!({"status": "success", "pin": "123456", "command": "cmd", "assignment_id": 3})
        );
        let request: VmStartupRequest =
            serde_json::from_value(json!({"hostname": "vm-1"})).expect("original request");
        assert_eq!(request.assignment_id, None);
    }

    #[test]
    fn assignment_debug_output_hides_pin_and_command() {
        let shown = format!(
            "{:?}",
            VmStartupAnswer::Assigned {
                assignment_id: 1,
                pin: "987654".into(),
                command: "secret-code".into(),
            }
        );
        assert!(
            !shown.contains("987654") && !shown.contains("secret-code"),
            "{shown}"
        );
    }

    #[test]
    fn the_long_polls_released_answer_is_told_apart_by_its_status() {
        assert_eq!(
            serde_json::to_value(VmStartupAnswer::Released).expect("serialize"),
            json!({"status": "released"})
        );
        let read: VmStartupAnswer =
            serde_json::from_value(json!({"status": "released"})).expect("released");
        assert_eq!(read, VmStartupAnswer::Released);
        assert!(
            serde_json::from_value::<VmStartupAnswer>(json!({"status": "failure"})).is_err(),
            "any other status is refused, as the original client refuses it"
        );
    }

    #[test]
    fn operation_kinds_and_states_round_trip_through_their_stored_spelling() {
        for state in OperationState::ALL {
            assert_eq!(
                serde_json::to_value(state).expect("state"),
                json!(state.as_str())
            );
            assert_eq!(state.as_str().parse::<OperationState>(), Ok(state));
        }
        for kind in OperationKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).expect("kind"),
                json!(kind.as_str())
            );
            assert_eq!(kind.as_str().parse::<OperationKind>(), Ok(kind));
        }
        assert_eq!(
            serde_json::to_value(EnrollmentTokenState::UsedUp).expect("token state"),
            json!("used up")
        );
    }

    #[test]
    fn original_request_bodies_parse() {
        let logs: VmLogBatch = serde_json::from_value(json!({
            "log_group": "lablink-cloud-init", "log_stream": "lablink-vm-prod-1",
            "messages": ["a", "b"]
        }))
        .expect("log batch");
        assert_eq!(logs.messages.len(), 2);
        let in_use: InUseReport =
            serde_json::from_value(json!({"hostname": "h", "status": true})).expect("in use");
        assert!(in_use.status);
        let status: VmStatusReport =
            serde_json::from_value(json!({"hostname": "h", "status": "running"})).expect("status");
        assert_eq!(status.status, VmStatus::Running);
        assert!(serde_json::from_value::<VmStatusReport>(
            json!({"hostname": "h", "status": "bogus"})
        )
        .is_err());
    }
}
