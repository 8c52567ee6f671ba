//! The VM lifecycle's rules: from a VM's row, the policy and the time, what its state should
//! be, what recovery to start, and when to look again. Pure, so every rule is tested without
//! a database or a clock; [`VmActor`](crate::vm_actor::VmActor) applies the decisions.
//!
//! How a VM's liveness is judged: an agent that has its own token (every agent LabLink
//! starts or enrolls) sends a status report every heartbeat interval, and a VM with no
//! report for longer than the heartbeat timeout is unreachable. An original agent (a
//! token-less VM under the legacy switch) reports its status only when it changes, so silence
//! says nothing about it: its heartbeat is never judged, only its boot deadline.

use std::time::Duration;

use chrono::NaiveDateTime;
use lablink_schema::vm_lifecycle::Transition;
use lablink_schema::vms::Vm;
use lablink_schema::wire::{GpuHealth, LifecycleState, VmStatus};

/// The deadlines and the recovery policy (`lifecycle.*` in the configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct LifecyclePolicy {
    /// No heartbeat for longer than this: unreachable.
    pub heartbeat_timeout: Duration,
    /// Not ready this long after it was created (or released): failed to boot.
    pub boot_timeout: Duration,
    /// Reboots tried on a broken free VM before it is replaced (0: replace at once).
    pub reboot_attempts: u32,
    /// How long a rebooted VM has to heartbeat again before the next attempt.
    pub reboot_timeout: Duration,
    /// How long a VM found broken waits before its recovery starts, so an agent that comes
    /// back in time keeps its VM untouched.
    pub recovery_delay: Duration,
    /// Replacements in a row of VMs that never became ready before no more are made (see
    /// [`lablink_schema::boot_failures`]).
    pub max_failed_boot_replacements: u32,
}

impl LifecyclePolicy {
    /// How often agents heartbeat: a third of the timeout, so two reports may be lost
    /// before a VM counts as unreachable. The allocator tells agents this value.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_timeout / 3
    }
}

impl Default for LifecyclePolicy {
    fn default() -> Self {
        LifecyclePolicy {
            heartbeat_timeout: Duration::from_secs(90),
            boot_timeout: Duration::from_secs(20 * 60),
            reboot_attempts: 2,
            reboot_timeout: Duration::from_secs(5 * 60),
            recovery_delay: Duration::from_secs(30),
            max_failed_boot_replacements: 3,
        }
    }
}

/// What to do to a broken VM once the state change that calls for it has been written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    Reboot,
    Replace,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    /// The state change to write, if the state is not what it should be.
    pub change: Option<Transition>,
    /// What to start once `change` is written (only by the allocator whose write applied).
    pub recovery: Option<Recovery>,
    /// When to read the row again if nothing else happens first.
    pub recheck_in: Option<Duration>,
}

/// What the agent and the claims say of the VM, leaving the supervisor's verdicts aside.
pub fn observed_state(vm: &Vm) -> LifecycleState {
    match (&vm.user_email, vm.in_use) {
        (Some(_), true) => LifecycleState::InUse,
        (Some(_), false) => LifecycleState::Assigned,
        (None, _)
            if vm.status() == VmStatus::Running
                && vm.gpu_health().is_some_and(GpuHealth::allows_assignment) =>
        {
            LifecycleState::Ready
        }
        (None, _) => LifecycleState::Booting,
    }
}

/// Decides what should happen to `vm` now.
pub fn decide(vm: &Vm, policy: &LifecyclePolicy, now: NaiveDateTime) -> Decision {
    let rules = Rules { vm, policy, now };
    match vm.state() {
        // Replacing: the replacement operation removes this row when it is done.
        // Quarantined: only an admin lifts it. Destroyed: nothing left to do.
        LifecycleState::Replacing | LifecycleState::Quarantined | LifecycleState::Destroyed => {
            Decision::default()
        }
        _ if vm.gpu_health() == Some(GpuHealth::Unhealthy) => Decision {
            change: Some(Transition {
                to: LifecycleState::Quarantined,
                reason: "the agent reports an unhealthy GPU".to_owned(),
                recovery_attempts: 0,
                next_action: Some("an admin checks the GPU and clears the quarantine".to_owned()),
            }),
            ..Decision::default()
        },
        LifecycleState::Booting
        | LifecycleState::Ready
        | LifecycleState::Assigned
        | LifecycleState::InUse => rules.healthy(),
        LifecycleState::Unreachable | LifecycleState::BootFailed => rules.broken(),
        LifecycleState::Recovering => rules.recovering(),
    }
}

/// What becomes of `vm` when its agent is known to have exited (the local provider saw its
/// process end): booting or rebooting, it failed to boot; running, it is unreachable. Either
/// way it leaves the pool now instead of at a deadline, and its recovery follows the usual
/// rules. `None` when the VM is already out of the pool or being dealt with.
pub fn agent_exited(
    vm: &Vm,
    policy: &LifecyclePolicy,
    now: NaiveDateTime,
    reason: String,
) -> Option<Transition> {
    let rules = Rules { vm, policy, now };
    let to = match vm.state() {
        LifecycleState::Booting | LifecycleState::Recovering => LifecycleState::BootFailed,
        LifecycleState::Ready | LifecycleState::Assigned | LifecycleState::InUse => {
            LifecycleState::Unreachable
        }
        LifecycleState::Unreachable
        | LifecycleState::BootFailed
        | LifecycleState::Replacing
        | LifecycleState::Quarantined
        | LifecycleState::Destroyed => return None,
    };
    rules.fault(to, reason).change
}

struct Rules<'a> {
    vm: &'a Vm,
    policy: &'a LifecyclePolicy,
    now: NaiveDateTime,
}

impl Rules<'_> {
    /// Time from `since` until `since + after`, or zero when that has passed.
    fn until(&self, since: NaiveDateTime, after: Duration) -> Duration {
        let elapsed = (self.now - since).to_std().unwrap_or(Duration::ZERO);
        after.saturating_sub(elapsed)
    }

    /// Whether the agent's heartbeat is judged at all (see the module documentation).
    fn heartbeat_judged(&self) -> bool {
        self.vm.token_hash.is_some() && self.vm.last_heartbeat_at.is_some()
    }

    /// Time left before the heartbeat deadline; `None` when it is not judged.
    fn heartbeat_left(&self) -> Option<Duration> {
        let last = self
            .vm
            .last_heartbeat_at
            .filter(|_| self.heartbeat_judged())?;
        Some(self.until(last, self.policy.heartbeat_timeout))
    }

    /// Whether the agent has heartbeated since `since` and is within its deadline.
    fn heartbeat_since(&self, since: NaiveDateTime) -> bool {
        self.vm.last_heartbeat_at.is_some_and(|last| last > since)
            && self.heartbeat_left().is_none_or(|left| !left.is_zero())
    }

    fn change(
        &self,
        to: LifecycleState,
        reason: String,
        next_action: Option<String>,
    ) -> Transition {
        Transition {
            to,
            reason,
            recovery_attempts: if to.is_fault() {
                self.vm.recovery_attempts
            } else {
                0
            },
            next_action,
        }
    }

    /// Booting, ready, assigned or in use: watch the deadlines, follow what is reported.
    fn healthy(&self) -> Decision {
        let stored = self.vm.state();
        let observed = observed_state(self.vm);
        if observed != LifecycleState::Booting {
            if let Some(left) = self.heartbeat_left() {
                if left.is_zero() {
                    return self.fault(
                        LifecycleState::Unreachable,
                        format!(
                            "no heartbeat for more than {}",
                            seconds(self.policy.heartbeat_timeout)
                        ),
                    );
                }
            }
            return Decision {
                change: (observed != stored)
                    .then(|| self.change(observed, describe_observed(observed, self.vm), None)),
                recovery: None,
                recheck_in: self.heartbeat_left(),
            };
        }
        if stored != LifecycleState::Booting {
            // Back to booting (released, or the agent restarted): the boot deadline starts now.
            let reason = format!("the agent reports `{}`", self.vm.status);
            return Decision {
                change: Some(self.change(LifecycleState::Booting, reason, None)),
                recovery: None,
                recheck_in: Some(self.policy.boot_timeout),
            };
        }
        let left = self.until(self.vm.state_since, self.policy.boot_timeout);
        if left.is_zero() {
            return self.fault(
                LifecycleState::BootFailed,
                format!(
                    "not ready {} after it started",
                    seconds(self.policy.boot_timeout)
                ),
            );
        }
        Decision {
            recheck_in: Some(left),
            ..Decision::default()
        }
    }

    /// A new fault: the VM waits `recovery_delay` (if free) before its recovery starts.
    fn fault(&self, to: LifecycleState, reason: String) -> Decision {
        let next = if self.vm.user_email.is_some() {
            ASSIGNED_NEXT.to_owned()
        } else {
            format!(
                "{} in {} unless it comes back",
                self.describe_recovery(),
                seconds(self.policy.recovery_delay)
            )
        };
        Decision {
            change: Some(self.change(to, reason, Some(next))),
            recovery: None,
            recheck_in: Some(
                self.policy
                    .recovery_delay
                    .min(self.policy.heartbeat_interval()),
            ),
        }
    }

    /// Unreachable or failed to boot: back if the agent is, else recover it (a free VM,
    /// after the delay) or wait for the admin (an assigned one).
    fn broken(&self) -> Decision {
        let stored = self.vm.state();
        let observed = observed_state(self.vm);
        let back = match stored {
            LifecycleState::Unreachable => self.heartbeat_since(self.vm.state_since),
            _ => observed != LifecycleState::Booting && self.heartbeat_since(self.vm.state_since),
        };
        if back {
            let reason = format!(
                "the agent is back ({})",
                describe_observed(observed, self.vm)
            );
            return Decision {
                change: Some(self.change(observed, reason, None)),
                recovery: None,
                recheck_in: self.heartbeat_left(),
            };
        }
        let look_again = self.policy.heartbeat_interval();
        if self.vm.user_email.is_some() {
            return Decision {
                recheck_in: Some(look_again),
                ..Decision::default()
            };
        }
        let left = self.until(self.vm.state_since, self.policy.recovery_delay);
        if !left.is_zero() {
            return Decision {
                recheck_in: Some(left.min(look_again)),
                ..Decision::default()
            };
        }
        // A VM that failed to boot waits out the replacements' back-off.
        if let Some(not_before) = self.vm.replace_not_before.filter(|at| *at > self.now) {
            return Decision {
                recheck_in: Some((not_before - self.now).to_std().unwrap_or_default()),
                ..Decision::default()
            };
        }
        self.recover(self.vm.state_reason.clone())
    }

    /// Rebooted: back once the agent heartbeats again, else the next attempt.
    fn recovering(&self) -> Decision {
        let observed = observed_state(self.vm);
        if observed != LifecycleState::Booting && self.heartbeat_since(self.vm.state_since) {
            let reason = format!(
                "recovered after reboot {} ({})",
                self.vm.recovery_attempts,
                describe_observed(observed, self.vm)
            );
            return Decision {
                change: Some(self.change(observed, reason, None)),
                recovery: None,
                recheck_in: self.heartbeat_left(),
            };
        }
        let left = self.until(self.vm.state_since, self.policy.reboot_timeout);
        if !left.is_zero() {
            return Decision {
                recheck_in: Some(left.min(self.policy.heartbeat_interval())),
                ..Decision::default()
            };
        }
        if self.vm.user_email.is_some() {
            // An admin's reboot of an assigned VM that did not help: the admin decides.
            return Decision {
                change: Some(self.change(
                    LifecycleState::Unreachable,
                    format!(
                        "not back {} after a reboot",
                        seconds(self.policy.reboot_timeout)
                    ),
                    Some(ASSIGNED_NEXT.to_owned()),
                )),
                recovery: None,
                recheck_in: Some(self.policy.heartbeat_interval()),
            };
        }
        self.recover(format!(
            "not back {} after reboot {}",
            seconds(self.policy.reboot_timeout),
            self.vm.recovery_attempts
        ))
    }

    /// What the next recovery step of this free VM is, in words.
    fn describe_recovery(&self) -> String {
        let attempt = self.next_attempt();
        if attempt <= self.policy.reboot_attempts {
            format!("reboot {attempt} of {}", self.policy.reboot_attempts)
        } else {
            "replace it".to_owned()
        }
    }

    fn next_attempt(&self) -> u32 {
        u32::try_from(self.vm.recovery_attempts).unwrap_or(0) + 1
    }

    /// The next recovery step of a free VM: another reboot, or a replacement.
    fn recover(&self, why: String) -> Decision {
        let attempt = self.next_attempt();
        if attempt <= self.policy.reboot_attempts {
            Decision {
                change: Some(Transition {
                    to: LifecycleState::Recovering,
                    reason: format!("reboot {attempt} of {}: {why}", self.policy.reboot_attempts),
                    recovery_attempts: i32::try_from(attempt).unwrap_or(i32::MAX),
                    next_action: Some(format!(
                        "wait up to {} for the agent to report again",
                        seconds(self.policy.reboot_timeout)
                    )),
                }),
                recovery: Some(Recovery::Reboot),
                recheck_in: Some(self.policy.heartbeat_interval()),
            }
        } else {
            Decision {
                change: Some(Transition {
                    to: LifecycleState::Replacing,
                    reason: format!("replaced: {why}"),
                    recovery_attempts: self.vm.recovery_attempts,
                    next_action: Some("create a new VM, then destroy this one".to_owned()),
                }),
                recovery: Some(Recovery::Replace),
                recheck_in: None,
            }
        }
    }
}

/// The next action shown for a broken VM that a participant holds.
pub const ASSIGNED_NEXT: &str =
    "alert the admin; the participant gets a new VM by asking again with the same email";

fn describe_observed(state: LifecycleState, vm: &Vm) -> String {
    match state {
        LifecycleState::Ready => "running and free".to_owned(),
        LifecycleState::Assigned => "assigned, the software not started yet".to_owned(),
        LifecycleState::InUse => "the research software runs".to_owned(),
        _ => format!("the agent reports `{}`", vm.status),
    }
}

/// A duration as an admin reads it.
fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs >= 120.0 {
        format!("{:.0} min", secs / 60.0)
    } else if secs.fract() == 0.0 {
        format!("{secs:.0} s")
    } else {
        format!("{secs:.1} s")
    }
}

#[cfg(test)]
mod tests;
