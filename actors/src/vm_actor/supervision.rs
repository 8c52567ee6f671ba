//! How a [`VmActor`] supervises its VM: after every read of the row it asks the lifecycle
//! rules ([`crate::lifecycle::decide`]) what should happen, writes the state change they call
//! for (a compare-and-set: when several allocators notice the same fault, one write applies),
//! starts the recovery only if its own write applied, and sets one timer for the next
//! deadline. No loop looks at every VM: each VM's actor wakes for its own deadline.

use std::sync::Arc;
use std::time::Duration;

use actix::{ActorFutureExt, Addr, AsyncContext, Context, WrapFuture};
use chrono::Utc;
use lablink_schema::vm_lifecycle::{ReadState, Transition};
use lablink_schema::vms::Vm;
use lablink_schema::wire::LifecycleState;

use super::VmActor;
use crate::boot_failure_writes::{GateReplacement, ReplacementDecision};
use crate::db_writer::DbWriter;
use crate::lifecycle::{decide, LifecyclePolicy, Recovery};
use crate::lifecycle_writes::{ChangeVmState, ReleaseSession, SetSessionNotice};
use crate::provisioning_queue::{ProvisioningError, ProvisioningQueue, RebootVm, ReplaceVm};
use crate::session_limits::{judge, SessionDecision, SessionStep};

/// A deadline's timer fires this much after it, so the read that follows finds it passed.
const DEADLINE_MARGIN: Duration = Duration::from_millis(5);

/// Who recovers VMs, in the audit trail and the operations list.
pub const SUPERVISOR: &str = "supervisor";

/// What every supervising actor shares.
#[derive(Debug)]
pub struct Supervision {
    pub policy: LifecyclePolicy,
    pub writer: Addr<DbWriter>,
    pub queue: Addr<ProvisioningQueue>,
    /// A session that its limits end is followed by a replacement of the VM (the release
    /// policy says so); otherwise the VM resets itself. Original agents are always replaced.
    pub release_replaces: bool,
}

/// Dropped with the actor (also when it panics): calls `on_end` so the supervisor can start
/// a new actor, unless the actor stopped because its VM is gone.
pub struct EndNotice {
    on_end: Option<Box<dyn FnOnce(bool) + Send>>,
    vm_gone: bool,
}

impl EndNotice {
    /// `on_end(restart)` runs once, when the actor ends; `restart` is false when its VM is
    /// gone.
    pub fn new(on_end: impl FnOnce(bool) + Send + 'static) -> Self {
        EndNotice {
            on_end: Some(Box::new(on_end)),
            vm_gone: false,
        }
    }
}

impl std::fmt::Debug for EndNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndNotice")
            .field("vm_gone", &self.vm_gone)
            .finish()
    }
}

impl Drop for EndNotice {
    fn drop(&mut self) {
        if let Some(on_end) = self.on_end.take() {
            on_end(!self.vm_gone);
        }
    }
}

impl VmActor {
    /// Applies the lifecycle rules to the row just read (`None`: the VM is gone).
    pub(super) fn supervise(&mut self, row: Option<Vm>, ctx: &mut Context<Self>) {
        let Some(supervision) = self.supervision.clone() else {
            return;
        };
        let Some(vm) = row else {
            // The VM is gone: nothing left to supervise (its waiters were answered).
            if let Some(notice) = &mut self.end_notice {
                notice.vm_gone = true;
            }
            use actix::ActorContext;
            ctx.stop();
            return;
        };
        if self.changing {
            return; // decided again once the change in flight is written
        }
        let now = Utc::now().naive_utc();
        let decision = decide(&vm, &supervision.policy, now);
        // The participant's session limits, once the VM's own state is settled.
        let session = if decision.change.is_none() && self.limits.any() {
            judge(&vm, &self.limits, now)
        } else {
            SessionDecision::default()
        };
        if let Some(timer) = self.recheck.take() {
            ctx.cancel_future(timer);
        }
        let recheck = match (decision.recheck_in, session.recheck_in) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(after) = recheck {
            self.recheck = Some(ctx.run_later(after + DEADLINE_MARGIN, |actor, ctx| {
                actor.recheck = None;
                actor.request_read(ctx);
            }));
        }
        let Some(change) = decision.change else {
            if let Some(step) = session.step {
                self.apply_session_step(&supervision, &vm, step, ctx);
            }
            return;
        };
        if vm.state() != change.to {
            tracing::info!(
                hostname = %vm.hostname,
                from = %vm.state(),
                to = %change.to,
                reason = %change.reason,
                "VM state changes"
            );
        }
        self.changing = true;
        let write = supervision.writer.send(ChangeVmState {
            hostname: vm.hostname.clone(),
            read: ReadState::of(&vm),
            change,
            asked_by: None,
        });
        let recovery = decision.recovery;
        ctx.spawn(write.into_actor(self).map(move |written, actor, ctx| {
            actor.changing = false;
            match written {
                Ok(Ok(Some(changed))) => {
                    if let Some(recovery) = recovery {
                        actor.start_recovery(recovery, changed, ctx);
                    }
                }
                // Another allocator changed the state first: it acts, this one does not.
                Ok(Ok(None)) => {}
                Ok(Err(err)) => {
                    tracing::warn!(hostname = %actor.hostname, error = %err, "cannot record the VM's state");
                }
                Err(err) => {
                    tracing::warn!(hostname = %actor.hostname, error = %err, "the database writer is gone");
                }
            }
            actor.request_read(ctx);
        }));
    }

    /// Warns the participant, takes the warning down, or ends the session; each write is a
    /// compare-and-set on the assignment (and, for a release, on the last activity), so a
    /// participant active meanwhile keeps the VM.
    fn apply_session_step(
        &mut self,
        supervision: &Arc<Supervision>,
        vm: &Vm,
        step: SessionStep,
        ctx: &mut Context<Self>,
    ) {
        self.changing = true;
        let hostname = vm.hostname.clone();
        match step {
            SessionStep::Warn(_) | SessionStep::ClearWarning => {
                let notice = match step {
                    SessionStep::Warn(notice) => Some(notice),
                    _ => None,
                };
                let write = supervision.writer.send(SetSessionNotice {
                    hostname,
                    assignment_seq: vm.assignment_seq,
                    notice,
                });
                ctx.spawn(write.into_actor(self).map(|_, actor, ctx| {
                    actor.changing = false;
                    actor.request_read(ctx);
                }));
            }
            SessionStep::Release(why) => {
                tracing::info!(%hostname, %why, "session released by its limits");
                let write = supervision.writer.send(ReleaseSession {
                    hostname,
                    assignment_seq: vm.assignment_seq,
                    last_active_at: vm.last_active_at,
                    why: why.clone(),
                });
                let supervision = supervision.clone();
                ctx.spawn(write.into_actor(self).map(move |released, actor, ctx| {
                    actor.changing = false;
                    if let Ok(Ok(Some(released))) = released {
                        // An original agent cannot reset itself.
                        if supervision.release_replaces || released.token_hash.is_none() {
                            actor.replace_after_release(&supervision, released, why, ctx);
                            return;
                        }
                    }
                    actor.request_read(ctx);
                }));
            }
        }
    }

    /// After a release, under the `replace` policy: the VM is replaced.
    fn replace_after_release(
        &mut self,
        supervision: &Arc<Supervision>,
        released: Vm,
        why: String,
        ctx: &mut Context<Self>,
    ) {
        self.changing = true;
        let write = supervision.writer.send(ChangeVmState {
            hostname: released.hostname.clone(),
            read: ReadState::of(&released),
            change: Transition {
                to: LifecycleState::Replacing,
                reason: format!("released ({why}); lifecycle.release is replace"),
                recovery_attempts: released.recovery_attempts,
                next_action: Some("create a new VM, then destroy this one".to_owned()),
            },
            asked_by: None,
        });
        ctx.spawn(write.into_actor(self).map(|written, actor, ctx| {
            actor.changing = false;
            if let Ok(Ok(Some(changed))) = written {
                actor.start_recovery(Recovery::Replace, changed, ctx);
            }
            actor.request_read(ctx);
        }));
    }

    /// Starts the recovery this allocator won the right to (its state change applied).
    fn start_recovery(&mut self, recovery: Recovery, changed: Vm, ctx: &mut Context<Self>) {
        let Some(supervision) = self.supervision.clone() else {
            return;
        };
        let hostname = changed.hostname.clone();
        tracing::warn!(%hostname, ?recovery, reason = %changed.state_reason, "recovering VM");
        match recovery {
            Recovery::Reboot => {
                let reboot = supervision.queue.send(RebootVm {
                    hostname: hostname.clone(),
                });
                ctx.spawn(reboot.into_actor(self).map(move |outcome, actor, _| {
                    let error = match outcome {
                        Ok(Ok(())) => return,
                        Ok(Err(err)) => err.to_string(),
                        Err(err) => err.to_string(),
                    };
                    // Recorded on the VM; the next attempt follows after the reboot timeout.
                    let reason = format!("reboot {} failed: {error}", changed.recovery_attempts);
                    actor.record_failure(
                        &supervision,
                        &changed,
                        LifecycleState::Recovering,
                        reason,
                    );
                }));
            }
            Recovery::Replace => {
                // A VM that never became ready is replaced only as the back-off allows.
                let gate = supervision.writer.send(GateReplacement {
                    hostname: hostname.clone(),
                    read: ReadState::of(&changed),
                    boot_timeout: supervision.policy.boot_timeout,
                    max_replacements: supervision.policy.max_failed_boot_replacements,
                });
                let queue = supervision.queue.clone();
                let replace = async move {
                    match gate.await {
                        Ok(Ok(ReplacementDecision::Proceed)) => {}
                        Ok(Ok(decision)) => {
                            tracing::warn!(%hostname, ?decision, "VM that never became ready not replaced now");
                            return Ok(Ok(None));
                        }
                        Ok(Err(err)) => {
                            return Ok(Err(ProvisioningError::Database(err.to_string())))
                        }
                        Err(err) => return Err(err),
                    }
                    queue
                        .send(ReplaceVm {
                            hostname,
                            requested_by: SUPERVISOR.to_owned(),
                        })
                        .await
                        .map(|queued| queued.map(Some))
                };
                ctx.spawn(replace.into_actor(self).map(move |outcome, actor, _| {
                    let error = match outcome {
                        Ok(Ok(_operation)) => return,
                        Ok(Err(err)) => err.to_string(),
                        Err(err) => err.to_string(),
                    };
                    let reason = format!("the replacement could not be queued: {error}");
                    actor.record_failure(
                        &supervision,
                        &changed,
                        LifecycleState::Unreachable,
                        reason,
                    );
                }));
            }
        }
    }

    /// Records a failed recovery step on the VM (its state `to`, the error as the reason).
    fn record_failure(
        &self,
        supervision: &Arc<Supervision>,
        changed: &Vm,
        to: LifecycleState,
        reason: String,
    ) {
        tracing::error!(hostname = %changed.hostname, %reason, "VM recovery failed");
        let write = supervision.writer.send(ChangeVmState {
            hostname: changed.hostname.clone(),
            read: ReadState::of(changed),
            change: Transition {
                to,
                reason,
                recovery_attempts: changed.recovery_attempts,
                next_action: Some(
                    match to {
                        LifecycleState::Recovering => "try again after the reboot timeout",
                        _ => "try the replacement again after the recovery delay",
                    }
                    .to_owned(),
                ),
            },
            asked_by: None,
        });
        actix::spawn(async move {
            let _ = write.await;
        });
    }
}
