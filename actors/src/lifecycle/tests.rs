//! The lifecycle rules, one case each.

use super::*;
use chrono::{NaiveDate, TimeDelta};

fn t0() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 12, 2)
        .and_then(|d| d.and_hms_opt(9, 0, 0))
        .expect("valid time")
}

fn at(secs: i64) -> NaiveDateTime {
    t0() + TimeDelta::seconds(secs)
}

fn policy() -> LifecyclePolicy {
    LifecyclePolicy {
        heartbeat_timeout: Duration::from_secs(90),
        boot_timeout: Duration::from_secs(600),
        reboot_attempts: 2,
        reboot_timeout: Duration::from_secs(300),
        recovery_delay: Duration::from_secs(30),
        max_failed_boot_replacements: 3,
    }
}

/// A VM created at `t0`, heartbeating last at `t0`, running, GPU healthy, in `state`.
fn vm(state: LifecycleState) -> Vm {
    Vm {
        hostname: "vm-1".to_owned(),
        status: "running".to_owned(),
        user_email: None,
        crd_command: None,
        pin: None,
        assignment_seq: 0,
        in_use: false,
        gpu_health: Some("Healthy".to_owned()),
        token_hash: Some("hash".to_owned()),
        assigned_at: None,
        last_heartbeat_at: Some(t0()),
        created_at: t0(),
        updated_at: t0(),
        claimed_by: None,
        state: state.as_str().to_owned(),
        state_reason: "test".to_owned(),
        state_since: t0(),
        recovery_attempts: 0,
        next_action: None,
        workshop_id: None,
        last_active_at: None,
        session_notice: None,
        reserved_until: None,
        replace_not_before: None,
    }
}

fn to(decision: &Decision) -> Option<LifecycleState> {
    decision.change.as_ref().map(|change| change.to)
}

#[test]
fn a_vm_that_reports_running_becomes_ready_and_is_looked_at_by_its_heartbeat_deadline() {
    let decision = decide(&vm(LifecycleState::Booting), &policy(), at(10));
    assert_eq!(to(&decision), Some(LifecycleState::Ready));
    assert_eq!(decision.recheck_in, Some(Duration::from_secs(80)));
}

#[test]
fn a_vm_that_never_reports_ready_fails_to_boot_at_the_deadline() {
    let mut booting = vm(LifecycleState::Booting);
    booting.status = "initializing".to_owned();
    booting.last_heartbeat_at = Some(at(590));
    let early = decide(&booting, &policy(), at(599));
    assert_eq!(to(&early), None);
    assert_eq!(early.recheck_in, Some(Duration::from_secs(1)));
    let late = decide(&booting, &policy(), at(600));
    assert_eq!(to(&late), Some(LifecycleState::BootFailed));
}

#[test]
fn silence_past_the_heartbeat_timeout_is_unreachable_but_not_for_an_original_agent() {
    let ready = vm(LifecycleState::Ready);
    assert_eq!(to(&decide(&ready, &policy(), at(89))), None);
    let decision = decide(&ready, &policy(), at(90));
    assert_eq!(to(&decision), Some(LifecycleState::Unreachable));
    let next = decision
        .change
        .and_then(|c| c.next_action)
        .expect("next action");
    assert!(next.starts_with("reboot 1 of 2"), "{next}");
    let mut legacy = vm(LifecycleState::Ready);
    legacy.token_hash = None;
    let decision = decide(&legacy, &policy(), at(10_000));
    assert_eq!(to(&decision), None);
    assert_eq!(decision.recheck_in, None, "nothing to wait for");
}

#[test]
fn a_free_unreachable_vm_is_rebooted_after_the_delay_then_replaced() {
    let mut broken = vm(LifecycleState::Unreachable);
    broken.last_heartbeat_at = Some(at(-100));
    assert_eq!(decide(&broken, &policy(), at(29)).recovery, None);
    let first = decide(&broken, &policy(), at(30));
    assert_eq!(first.recovery, Some(Recovery::Reboot));
    let change = first.change.expect("change");
    assert_eq!(
        (change.to, change.recovery_attempts),
        (LifecycleState::Recovering, 1)
    );
    broken.state = "recovering".to_owned();
    broken.recovery_attempts = 1;
    assert_eq!(decide(&broken, &policy(), at(299)).recovery, None);
    let second = decide(&broken, &policy(), at(300));
    assert_eq!(second.recovery, Some(Recovery::Reboot));
    assert_eq!(second.change.map(|c| c.recovery_attempts), Some(2));
    broken.recovery_attempts = 2;
    let last = decide(&broken, &policy(), at(300));
    assert_eq!(last.recovery, Some(Recovery::Replace));
    assert_eq!(to(&last), Some(LifecycleState::Replacing));
}

#[test]
fn no_reboots_configured_means_replace_at_once() {
    let mut broken = vm(LifecycleState::BootFailed);
    broken.status = "initializing".to_owned();
    let policy = LifecyclePolicy {
        reboot_attempts: 0,
        ..policy()
    };
    assert_eq!(
        decide(&broken, &policy, at(30)).recovery,
        Some(Recovery::Replace)
    );
}

#[test]
fn an_assigned_vm_that_breaks_waits_for_the_admin() {
    let mut assigned = vm(LifecycleState::Assigned);
    assigned.user_email = Some("ada@lab.example".to_owned());
    let decision = decide(&assigned, &policy(), at(90));
    assert_eq!(to(&decision), Some(LifecycleState::Unreachable));
    assert_eq!(
        decision.change.and_then(|c| c.next_action).as_deref(),
        Some(ASSIGNED_NEXT)
    );
    assigned.state = "unreachable".to_owned();
    let later = decide(&assigned, &policy(), at(10_000));
    assert_eq!((to(&later), later.recovery), (None, None));
}

#[test]
fn an_agent_that_comes_back_keeps_its_vm() {
    let mut back = vm(LifecycleState::Unreachable);
    back.state_since = at(90);
    back.last_heartbeat_at = Some(at(95));
    let decision = decide(&back, &policy(), at(96));
    assert_eq!(to(&decision), Some(LifecycleState::Ready));
    assert_eq!(decision.recovery, None);
    let mut rebooted = vm(LifecycleState::Recovering);
    rebooted.recovery_attempts = 1;
    rebooted.state_since = at(100);
    rebooted.last_heartbeat_at = Some(at(120));
    let decision = decide(&rebooted, &policy(), at(121));
    let change = decision.change.expect("change");
    assert_eq!(
        (change.to, change.recovery_attempts),
        (LifecycleState::Ready, 0)
    );
}

#[test]
fn an_unhealthy_gpu_quarantines_until_the_admin_clears_it() {
    let mut sick = vm(LifecycleState::Ready);
    sick.gpu_health = Some("Unhealthy".to_owned());
    assert_eq!(
        to(&decide(&sick, &policy(), at(1))),
        Some(LifecycleState::Quarantined)
    );
    let mut quarantined = vm(LifecycleState::Quarantined);
    quarantined.last_heartbeat_at = Some(at(-1000));
    let decision = decide(&quarantined, &policy(), at(1));
    assert_eq!(
        decision,
        Decision::default(),
        "a healthy report does not lift it"
    );
}

#[test]
fn a_released_vm_boots_again_with_a_fresh_deadline() {
    let mut released = vm(LifecycleState::InUse);
    released.status = "initializing".to_owned();
    let decision = decide(&released, &policy(), at(5000));
    assert_eq!(to(&decision), Some(LifecycleState::Booting));
    assert_eq!(decision.recheck_in, Some(Duration::from_secs(600)));
}
