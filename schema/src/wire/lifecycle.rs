//! The lifecycle state each VM's supervising actor gives it, and the admin's view of a VM
//! (`GET /api/admin/vms`) that shows it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{GpuHealth, UnknownValue};

/// Where a VM is in its life, as a lab reads it at a glance. The first four follow from what
/// the agent and the claims report; the others are the supervisor's verdicts, and a VM in
/// one of those is never assigned ([`LifecycleState::BLOCKS_ASSIGNMENT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LifecycleState {
    /// Created; the agent has not reported it ready yet.
    Booting,
    /// Running, healthy and free: the next participant may get it.
    Ready,
    /// Given to a participant who has not started the software yet.
    Assigned,
    /// The participant's research software runs.
    InUse,
    /// The agent stopped heartbeating for longer than the heartbeat timeout.
    Unreachable,
    /// Still not ready after the boot timeout.
    BootFailed,
    /// The agent reported an unhealthy GPU; only an admin clears it.
    Quarantined,
    /// Rebooted by the supervisor (or an admin), waiting for the agent to come back.
    Recovering,
    /// A replacement is being made and this VM is being destroyed.
    Replacing,
    /// Destroyed by its replacement or an admin.
    Destroyed,
}

impl LifecycleState {
    /// Every state, in the order a VM usually meets them.
    pub const ALL: [LifecycleState; 10] = [
        LifecycleState::Booting,
        LifecycleState::Ready,
        LifecycleState::Assigned,
        LifecycleState::InUse,
        LifecycleState::Unreachable,
        LifecycleState::BootFailed,
        LifecycleState::Quarantined,
        LifecycleState::Recovering,
        LifecycleState::Replacing,
        LifecycleState::Destroyed,
    ];

    /// The verdicts that keep a VM from being assigned, whatever the agent last reported:
    /// part of the one free-VM rule (`lablink_schema::vms`).
    pub const BLOCKS_ASSIGNMENT: [LifecycleState; 6] = [
        LifecycleState::Unreachable,
        LifecycleState::BootFailed,
        LifecycleState::Quarantined,
        LifecycleState::Recovering,
        LifecycleState::Replacing,
        LifecycleState::Destroyed,
    ];

    /// The spelling in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleState::Booting => "booting",
            LifecycleState::Ready => "ready",
            LifecycleState::Assigned => "assigned",
            LifecycleState::InUse => "in_use",
            LifecycleState::Unreachable => "unreachable",
            LifecycleState::BootFailed => "boot_failed",
            LifecycleState::Quarantined => "quarantined",
            LifecycleState::Recovering => "recovering",
            LifecycleState::Replacing => "replacing",
            LifecycleState::Destroyed => "destroyed",
        }
    }

    /// Whether this state keeps the VM from being assigned.
    pub fn blocks_assignment(self) -> bool {
        Self::BLOCKS_ASSIGNMENT.contains(&self)
    }

    /// Whether this is a supervisor's verdict rather than what the agent reports.
    pub fn is_fault(self) -> bool {
        self.blocks_assignment()
    }
}

impl fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

spelled_as_stored!(
    LifecycleState,
    "booting, ready, assigned, in_use, unreachable, boot_failed, quarantined, recovering, replacing, destroyed"
);

/// One VM as the admin sees it: `GET /api/admin/vms` answers an array of these,
/// `GET /api/admin/vms/{hostname}` one. Times are UTC (ISO 8601, no zone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminVmView {
    pub hostname: String,
    pub state: LifecycleState,
    /// Why it is in that state, in words.
    pub state_reason: String,
    pub state_since: chrono::NaiveDateTime,
    /// What the supervisor will do next, if anything (for example "reboot 2 of 3").
    pub next_action: Option<String>,
    /// The participant's email while the VM is assigned (kept on a broken VM).
    pub assigned_to: Option<String>,
    pub gpu_health: Option<GpuHealth>,
    pub in_use: bool,
    pub last_heartbeat_at: Option<chrono::NaiveDateTime>,
    /// Recoveries tried in a row since the VM was last healthy.
    pub recovery_attempts: i32,
    /// What the agent last reported (`initializing`, `running`, …).
    pub agent_status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_spelled_as_the_issue_lists_them() {
        for state in LifecycleState::ALL {
            let json = serde_json::to_string(&state).expect("serialise");
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(state.as_str().parse::<LifecycleState>(), Ok(state));
        }
        assert!("running".parse::<LifecycleState>().is_err());
        assert!(!LifecycleState::Ready.blocks_assignment());
        assert!(LifecycleState::Quarantined.blocks_assignment());
    }
}
