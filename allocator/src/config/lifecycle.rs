//! Section `lifecycle`: the deadlines after which a VM counts as broken and how it is
//! recovered. Times are seconds and may be fractional (tests use fractions of a second).

use std::time::Duration;

use lablink_actors::lifecycle::LifecyclePolicy;
use serde::{Deserialize, Serialize};

use super::Invalid;

/// Shortest heartbeat timeout accepted: agents would heartbeat every 100 ms.
const MIN_HEARTBEAT_TIMEOUT_SECS: f64 = 0.3;
/// Longest time accepted for any of these settings: a week.
const MAX_SECS: f64 = 7.0 * 24.0 * 3600.0;

/// What happens to a VM when its participant's session ends (an admin's release).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleasePolicy {
    /// The agent stops the remote desktop and the research software, removes the session's
    /// files and reports ready again (see docs/agent.md).
    Reset,
    /// The VM is destroyed and a fresh one created in its place.
    Replace,
}

/// Section `lifecycle`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    /// Supervise VMs at all. Off, nothing is ever marked broken, rebooted or replaced (as
    /// before supervision existed); for comparison runs, and for a lab that wants none of it.
    pub enabled: bool,
    /// No heartbeat for this long: the VM is unreachable. Agents are told to heartbeat every
    /// third of it.
    pub heartbeat_timeout_secs: f64,
    /// Not ready this long after it was created or released: the VM failed to boot.
    pub boot_timeout_secs: f64,
    /// Reboots tried on a broken free VM before it is replaced (0: replace at once).
    pub reboot_attempts: u32,
    /// How long a rebooted VM has to heartbeat again before the next attempt.
    pub reboot_timeout_secs: f64,
    /// How long a broken free VM waits before its recovery starts (an agent back by then
    /// keeps its VM untouched).
    pub recovery_delay_secs: f64,
    /// Replacements in a row of VMs that never became ready (per workshop's provider
    /// settings) before no more are made: an image or agent that cannot boot is not replaced
    /// forever. Each waits twice as long as the one before, from `boot_timeout_secs`; any VM
    /// that becomes ready starts the count again. 0: never replace a VM that failed to boot.
    pub max_failed_boot_replacements: u32,
    /// What a release does: `reset` or `replace`. Unset: `reset` on the local provider,
    /// `replace` on Terraform. A VM whose agent is an original one (token-less, legacy
    /// switch) is always replaced: it cannot reset itself.
    pub release: Option<ReleasePolicy>,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        let policy = LifecyclePolicy::default();
        LifecycleConfig {
            enabled: true,
            heartbeat_timeout_secs: policy.heartbeat_timeout.as_secs_f64(),
            boot_timeout_secs: policy.boot_timeout.as_secs_f64(),
            reboot_attempts: policy.reboot_attempts,
            reboot_timeout_secs: policy.reboot_timeout.as_secs_f64(),
            recovery_delay_secs: policy.recovery_delay.as_secs_f64(),
            max_failed_boot_replacements: policy.max_failed_boot_replacements,
            release: None,
        }
    }
}

impl LifecycleConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        let check = |key: &'static str, value: f64, min: f64| {
            if value.is_finite() && value >= min && value <= MAX_SECS {
                Ok(())
            } else {
                Err(Invalid::new(
                    key,
                    format!("must be between {min} and {MAX_SECS} seconds"),
                ))
            }
        };
        check(
            "lifecycle.heartbeat_timeout_secs",
            self.heartbeat_timeout_secs,
            MIN_HEARTBEAT_TIMEOUT_SECS,
        )?;
        check("lifecycle.boot_timeout_secs", self.boot_timeout_secs, 0.1)?;
        check(
            "lifecycle.reboot_timeout_secs",
            self.reboot_timeout_secs,
            0.1,
        )?;
        check(
            "lifecycle.recovery_delay_secs",
            self.recovery_delay_secs,
            0.0,
        )?;
        if self.reboot_attempts > 10 {
            return Err(Invalid::new(
                "lifecycle.reboot_attempts",
                "must be at most 10 (a VM that needs more is replaced)",
            ));
        }
        Ok(())
    }

    /// The policy the VM actors apply.
    pub fn policy(&self) -> LifecyclePolicy {
        LifecyclePolicy {
            heartbeat_timeout: Duration::from_secs_f64(self.heartbeat_timeout_secs),
            boot_timeout: Duration::from_secs_f64(self.boot_timeout_secs),
            reboot_attempts: self.reboot_attempts,
            reboot_timeout: Duration::from_secs_f64(self.reboot_timeout_secs),
            recovery_delay: Duration::from_secs_f64(self.recovery_delay_secs),
            max_failed_boot_replacements: self.max_failed_boot_replacements,
        }
    }
}
