//! Writes of a VM's lifecycle state (`vms.state` and its companions). Every change is a
//! compare-and-set on the state and attempt count the writer read, so when several
//! allocators' actors notice the same fault at once exactly one write succeeds, and only
//! that allocator acts on it (reboots or replaces the VM).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::schema::vms;
use crate::vms::{no_assignment, Vm};
use crate::wire::{AdminVmView, LifecycleState};
use crate::DbConnection;

/// A state change as the supervisor decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub to: LifecycleState,
    pub reason: String,
    pub recovery_attempts: i32,
    pub next_action: Option<String>,
}

/// What the writer read: the change applies only if the row still says this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    pub state: LifecycleState,
    pub recovery_attempts: i32,
}

impl ReadState {
    pub fn of(vm: &Vm) -> Self {
        ReadState {
            state: vm.state(),
            recovery_attempts: vm.recovery_attempts,
        }
    }
}

impl Vm {
    /// Applies `change` if the VM is still in `read`; returns the new row, or `None` when
    /// the VM is gone or someone else changed its state first.
    pub fn transition(
        conn: &mut DbConnection,
        hostname: &str,
        read: ReadState,
        change: &Transition,
        now: NaiveDateTime,
    ) -> QueryResult<Option<Vm>> {
        let target = vms::table
            .filter(vms::hostname.eq(hostname))
            .filter(vms::state.eq(read.state.as_str()))
            .filter(vms::recovery_attempts.eq(read.recovery_attempts));
        on_backend!(conn, |c| diesel::update(target)
            .set((
                vms::state.eq(change.to.as_str()),
                vms::state_reason.eq(&change.reason),
                vms::state_since.eq(now),
                vms::recovery_attempts.eq(change.recovery_attempts),
                vms::next_action.eq(change.next_action.as_deref()),
                vms::updated_at.eq(now),
            ))
            .returning(Vm::as_returning())
            .get_result(c)
            .optional())
    }

    /// Lifts a GPU quarantine: the VM goes back to booting with its GPU health forgotten, so
    /// it is assigned again only after the agent's next GPU report says healthy. `None` when
    /// the VM is not quarantined (or does not exist).
    pub fn clear_quarantine(
        conn: &mut DbConnection,
        hostname: &str,
        reason: &str,
        now: NaiveDateTime,
    ) -> QueryResult<Option<Vm>> {
        let target = vms::table
            .filter(vms::hostname.eq(hostname))
            .filter(vms::state.eq(LifecycleState::Quarantined.as_str()));
        on_backend!(conn, |c| diesel::update(target)
            .set((
                vms::state.eq(LifecycleState::Booting.as_str()),
                vms::state_reason.eq(reason),
                vms::state_since.eq(now),
                vms::recovery_attempts.eq(0),
                vms::next_action.eq(None::<String>),
                vms::gpu_health.eq(None::<String>),
                vms::updated_at.eq(now),
            ))
            .returning(Vm::as_returning())
            .get_result(c)
            .optional())
    }

    /// Takes a broken VM (in a state that blocks assignment) away from the participant who
    /// holds it, so that they can be given another one; the reason says who it was taken
    /// from, and its supervisor then recovers it as a free VM. `None` when the VM is no longer
    /// theirs or no longer broken.
    pub fn release_broken(
        conn: &mut DbConnection,
        vm: &Vm,
        now: NaiveDateTime,
    ) -> QueryResult<Option<Vm>> {
        let Some(email) = vm.user_email.as_deref() else {
            return Ok(None);
        };
        let target = vms::table
            .filter(vms::hostname.eq(&vm.hostname))
            .filter(vms::user_email.eq(email))
            .filter(
                vms::state.eq_any(LifecycleState::BLOCKS_ASSIGNMENT.map(LifecycleState::as_str)),
            );
        let reason = format!(
            "{}; its participant {email} was given another VM",
            vm.state_reason
        );
        let released = on_backend!(conn, |c| diesel::update(target)
            .set((
                no_assignment!(),
                vms::state_reason.eq(reason),
                vms::updated_at.eq(now),
            ))
            .returning(Vm::as_returning())
            .get_result(c)
            .optional())?;
        if released.is_some() {
            let hostnames = [vm.hostname.clone()];
            crate::journey::close(conn, &hostnames, crate::journey::end_reason::VM_FAILED, now)?;
        }
        Ok(released)
    }

    /// The VM as the admin API shows it.
    pub fn admin_view(&self) -> AdminVmView {
        AdminVmView {
            hostname: self.hostname.clone(),
            state: self.state(),
            state_reason: self.state_reason.clone(),
            state_since: self.state_since,
            next_action: self.next_action.clone(),
            assigned_to: self.user_email.clone(),
            gpu_health: self.gpu_health(),
            in_use: self.in_use,
            last_heartbeat_at: self.last_heartbeat_at,
            recovery_attempts: self.recovery_attempts,
            agent_status: self.status.clone(),
        }
    }
}
