//! The rules of a participant's session limits: from an assigned VM's row, its workshop's
//! limits and the time, whether to warn the participant, clear a warning, or release the
//! session, and when to look again. Pure, like [`crate::lifecycle`]; the VM's actor applies
//! the decision.
//!
//! Activity is the research software running, or a report from the agent (the software
//! started or stopped, or the desktop was used), or the participant pressing *I am still
//! here*: the idle clock runs from the latest of these and the assignment.

use std::time::Duration;

use chrono::NaiveDateTime;
use lablink_schema::vms::Vm;
use lablink_schema::wire::SessionLimits;
use lablink_schema::workshops::plan;

/// What to do about a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStep {
    /// Show this warning (it differs from the one shown).
    Warn(String),
    /// Take the warning down: the participant is back.
    ClearWarning,
    /// End the session, for this reason.
    Release(String),
}

/// The outcome of [`judge`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionDecision {
    pub step: Option<SessionStep>,
    /// When to look again if nothing else happens first.
    pub recheck_in: Option<Duration>,
}

fn secs(duration: chrono::Duration) -> Duration {
    duration.to_std().unwrap_or(Duration::ZERO)
}

/// Minutes for people, at least 1.
fn minutes(duration: Duration) -> u64 {
    duration.as_secs().div_ceil(60).max(1)
}

/// The limits that hold for the session on `vm`: its workshop's, or, for a VM an admin took
/// over, the end of the take-over alone (no idle release: an instructor may just watch).
pub fn of_session(vm: &Vm, workshop: SessionLimits) -> SessionLimits {
    match (vm.reserved_until, vm.assigned_at) {
        (Some(until), Some(assigned_at)) => SessionLimits {
            idle_release_secs: None,
            idle_warning_secs: workshop.idle_warning_secs,
            max_session_secs: Some(u64::try_from((until - assigned_at).num_seconds()).unwrap_or(0)),
        },
        _ => workshop,
    }
}

/// Decides about the session on `vm` now.
pub fn judge(vm: &Vm, limits: &SessionLimits, now: NaiveDateTime) -> SessionDecision {
    let Some(assigned_at) = vm.assigned_at.filter(|_| vm.user_email.is_some()) else {
        return SessionDecision::default();
    };
    // (when the session ends, why, may the participant extend it)
    let mut ends: Vec<(NaiveDateTime, String, bool)> = Vec::new();
    if let Some(idle) = limits.idle_release_secs {
        if !vm.in_use {
            let active = vm
                .last_active_at
                .map_or(assigned_at, |at| at.max(assigned_at));
            let idle = chrono::Duration::seconds(i64::try_from(idle).unwrap_or(i64::MAX / 2));
            ends.push((
                active + idle,
                format!("idle for {}", plan::minutes(minutes(secs(idle)))),
                true,
            ));
        }
    }
    if let Some(max) = limits.max_session_secs {
        let max = chrono::Duration::seconds(i64::try_from(max).unwrap_or(i64::MAX / 2));
        ends.push((
            assigned_at + max,
            format!(
                "the session reached its limit of {}",
                plan::minutes(minutes(secs(max)))
            ),
            false,
        ));
    }
    let Some((end, why, extendable)) = ends.into_iter().min_by_key(|(at, _, _)| *at) else {
        return clear_if_shown(vm, None);
    };
    if now >= end {
        return SessionDecision {
            step: Some(SessionStep::Release(why)),
            recheck_in: None,
        };
    }
    let left = secs(end - now);
    let warning = Duration::from_secs(limits.idle_warning_secs);
    if left <= warning {
        let notice = if extendable {
            format!(
                "This VM has not been used for a while: it will be released in {} unless \
                 you use it or press \"I am still here\".",
                plan::minutes(minutes(left))
            )
        } else {
            format!(
                "Your session ends in {}: save your work now.",
                plan::minutes(minutes(left))
            )
        };
        // The minutes count down: look again at the next minute, or at the end.
        let next = Duration::from_secs(left.as_secs() % 60).max(Duration::from_secs(1));
        return SessionDecision {
            step: (vm.session_notice.as_deref() != Some(notice.as_str()))
                .then_some(SessionStep::Warn(notice)),
            recheck_in: Some(next.min(left)),
        };
    }
    clear_if_shown(vm, Some(left - warning))
}

fn clear_if_shown(vm: &Vm, recheck_in: Option<Duration>) -> SessionDecision {
    SessionDecision {
        step: vm
            .session_notice
            .is_some()
            .then_some(SessionStep::ClearWarning),
        recheck_in,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_900_000_000 + secs, 0)
            .expect("time")
            .naive_utc()
    }

    fn assigned() -> Vm {
        Vm {
            hostname: "vm-1".to_owned(),
            status: "running".to_owned(),
            user_email: Some("ada@lab.example".to_owned()),
            crd_command: None,
            pin: None,
            assignment_seq: 1,
            in_use: false,
            gpu_health: Some("Healthy".to_owned()),
            token_hash: Some("hash".to_owned()),
            assigned_at: Some(at(0)),
            last_heartbeat_at: Some(at(0)),
            created_at: at(-600),
            updated_at: at(0),
            claimed_by: None,
            state: "assigned".to_owned(),
            state_reason: "test".to_owned(),
            state_since: at(0),
            recovery_attempts: 0,
            next_action: None,
            workshop_id: Some(1),
            last_active_at: None,
            session_notice: None,
            reserved_until: None,
            replace_not_before: None,
        }
    }

    fn limits(idle: Option<u64>, max: Option<u64>) -> SessionLimits {
        SessionLimits {
            idle_release_secs: idle,
            idle_warning_secs: 300,
            max_session_secs: max,
        }
    }

    #[test]
    fn an_idle_session_is_warned_then_released_and_activity_resets_the_clock() {
        let vm = assigned();
        let idle = limits(Some(1800), None);
        let quiet = judge(&vm, &idle, at(600));
        assert_eq!(quiet.step, None);
        assert_eq!(quiet.recheck_in, Some(Duration::from_secs(900)));
        let warned = judge(&vm, &idle, at(1500));
        assert!(
            matches!(&warned.step, Some(SessionStep::Warn(n)) if n.contains("released in 5 minutes")),
            "{warned:?}"
        );
        assert!(matches!(
            judge(&vm, &idle, at(1800)).step,
            Some(SessionStep::Release(_))
        ));
        // Active at 1000: the release moves to 2800, and a shown warning goes.
        let mut back = vm.clone();
        back.last_active_at = Some(at(1000));
        back.session_notice = Some("old warning".to_owned());
        assert_eq!(
            judge(&back, &idle, at(1800)).step,
            Some(SessionStep::ClearWarning)
        );
        // The software running counts as use.
        let mut running = vm.clone();
        running.in_use = true;
        assert_eq!(judge(&running, &idle, at(99_999)).step, None);
    }

    #[test]
    fn the_session_limit_is_warned_without_an_extension_and_ends_the_session() {
        let mut vm = assigned();
        vm.in_use = true;
        let max = limits(Some(1800), Some(3600));
        let warned = judge(&vm, &max, at(3400));
        assert!(
            matches!(&warned.step, Some(SessionStep::Warn(n)) if n.contains("ends in 4 minutes")),
            "{warned:?}"
        );
        let ended = judge(&vm, &max, at(3600));
        assert!(
            matches!(&ended.step, Some(SessionStep::Release(why)) if why.contains("limit of 60 minutes")),
            "{ended:?}"
        );
        let free = Vm {
            user_email: None,
            ..vm
        };
        assert_eq!(judge(&free, &max, at(5000)), SessionDecision::default());
    }

    #[test]
    fn a_take_over_ends_when_it_was_given_for_whatever_the_workshop_says() {
        let mut vm = assigned();
        let assigned_at = vm.assigned_at.expect("assigned");
        let workshop = SessionLimits {
            idle_release_secs: Some(600),
            idle_warning_secs: 60,
            max_session_secs: None,
        };
        assert_eq!(of_session(&vm, workshop), workshop);
        vm.reserved_until = Some(assigned_at + chrono::Duration::minutes(30));
        let limits = of_session(&vm, workshop);
        assert_eq!(limits.max_session_secs, Some(1800));
        assert_eq!(limits.idle_release_secs, None);
        let decision = judge(&vm, &limits, assigned_at + chrono::Duration::minutes(31));
        assert!(
            matches!(decision.step, Some(SessionStep::Release(_))),
            "{decision:?}"
        );
    }
}
