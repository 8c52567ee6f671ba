//! The participant's journey as their page shows it: each step with its time, what to do
//! now, what to do when a step takes too long (against the measured usual time), and, when
//! the VM broke, that it did. Built from the session's row, the VM's lifecycle state and the
//! usual step times ([`UsualTimesCache`]).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Utc};
use lablink_schema::journey::steps::{self, UsualTimes};
use lablink_schema::journey::{self, ParticipantSession};
use lablink_schema::vms::Vm;
use lablink_schema::wire::{JourneyStep, JourneyView, LifecycleState, StepView};

use crate::error::ApiError;
use crate::state::AppState;

/// How long measured usual times are reused before they are measured again.
const USUAL_TIMES_TTL: Duration = Duration::from_secs(60);

/// The usual step times, measured at most once a minute for every page that shows them.
#[derive(Debug, Default)]
pub struct UsualTimesCache {
    measured: Mutex<Option<(Instant, UsualTimes)>>,
}

impl UsualTimesCache {
    pub async fn get(&self, state: &AppState) -> Result<UsualTimes, ApiError> {
        if let Ok(measured) = self.measured.lock() {
            if let Some((at, usual)) = *measured {
                if at.elapsed() < USUAL_TIMES_TTL {
                    return Ok(usual);
                }
            }
        }
        let usual = state.read(journey::usual_times).await?;
        if let Ok(mut measured) = self.measured.lock() {
            *measured = Some((Instant::now(), usual));
        }
        Ok(usual)
    }
}

/// The journey of the session `vm` holds now, or `None` when it holds none (or its session
/// row is missing, as for an assignment made before the journey was recorded).
pub async fn of_vm(state: &AppState, vm: &Vm) -> Result<Option<JourneyView>, ApiError> {
    if vm.user_email.is_none() {
        return Ok(None);
    }
    let (hostname, seq) = (vm.hostname.clone(), vm.assignment_seq);
    let Some(session) = state
        .read(move |conn| journey::of_assignment(conn, &hostname, seq))
        .await?
    else {
        return Ok(None);
    };
    let usual = state.usual_times.get(state).await?;
    Ok(Some(view(
        &session,
        vm.state(),
        &usual,
        Utc::now().naive_utc(),
    )))
}

/// The view of `session`, whose VM is in `vm_state` (pure).
pub fn view(
    session: &ParticipantSession,
    vm_state: LifecycleState,
    usual: &UsualTimes,
    now: NaiveDateTime,
) -> JourneyView {
    let broken = LifecycleState::BLOCKS_ASSIGNMENT.contains(&vm_state);
    let step = steps::step_of(session, broken);
    let waiting_for = steps::next_step(step);
    let steps = JourneyStep::PATH
        .iter()
        .map(|&s| {
            let at = steps::reached_at(session, s);
            StepView {
                step: s,
                label: s.label().to_owned(),
                at: at.map(lablink_schema::wire::utc_iso8601),
                done: at.is_some(),
                waiting: matches!(
                    step,
                    JourneyStep::Assigned | JourneyStep::CommandReceived | JourneyStep::DesktopUp
                ) && waiting_for == Some(s),
                usual_secs: usual
                    .of(s)
                    .and_then(|d| u64::try_from(d.num_seconds()).ok()),
            }
        })
        .collect();
    let slow = steps::is_slow(session, step, usual, now).then(|| {
        let usual_text = waiting_for
            .and_then(|s| usual.of(s))
            .map(|d| format!("This usually takes about {}. ", about(d)))
            .unwrap_or_default();
        format!(
            "{usual_text}It is taking longer than it should. If nothing changes in a few \
             minutes, tell your instructor that your VM is {}.",
            session.hostname
        )
    });
    JourneyView {
        hostname: session.hostname.clone(),
        step,
        steps,
        next: next_text(step, &session.hostname, usual),
        slow,
        failure: broken.then(|| failure_text(vm_state)),
    }
}

/// A duration as a participant reads it.
fn about(duration: chrono::Duration) -> String {
    let secs = duration.num_seconds().max(1);
    if secs < 90 {
        format!("{secs} seconds")
    } else {
        format!("{} minutes", (secs + 30) / 60)
    }
}

fn next_text(step: JourneyStep, hostname: &str, usual: &UsualTimes) -> String {
    let wait = |s: JourneyStep| {
        usual
            .of(s)
            .map(|d| format!(" (usually about {})", about(d)))
            .unwrap_or_default()
    };
    match step {
        JourneyStep::Assigned => format!(
            "Your VM is being told about your request{}. This page moves on by itself.",
            wait(JourneyStep::CommandReceived)
        ),
        JourneyStep::CommandReceived => format!(
            "Your VM is starting the remote desktop{}. Keep this page open.",
            wait(JourneyStep::DesktopUp)
        ),
        JourneyStep::DesktopUp => format!(
            "Connect now: open remotedesktop.google.com/access, choose {hostname} and enter \
             your PIN. Then start the software."
        ),
        JourneyStep::Ready => "You are all set: the software runs on your VM.".to_owned(),
        JourneyStep::Failed => {
            "Your VM stopped working. Press \u{201c}Get a new VM\u{201d}: you get another one \
             at once; what was on the old one is lost."
                .to_owned()
        }
        JourneyStep::Ended => {
            "Your session has ended. To work again, ask for a VM on the start page.".to_owned()
        }
    }
}

fn failure_text(state: LifecycleState) -> String {
    match state {
        LifecycleState::Unreachable => "Your VM stopped answering.",
        LifecycleState::BootFailed => "Your VM did not start properly.",
        LifecycleState::Quarantined => "Your VM's GPU is not working properly.",
        LifecycleState::Recovering => "Your VM is being restarted after a fault.",
        _ => "Your VM is being replaced after a fault.",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn session() -> ParticipantSession {
        let at = NaiveDate::from_ymd_opt(2026, 12, 2)
            .and_then(|d| d.and_hms_opt(9, 0, 0))
            .expect("a date");
        ParticipantSession {
            id: 1,
            hostname: "lab-vm-3".to_owned(),
            assignment_seq: 1,
            email: "a@example.org".to_owned(),
            workshop_id: None,
            claimed_at: at,
            command_received_at: Some(at + chrono::Duration::seconds(2)),
            desktop_up_at: None,
            software_first_used_at: None,
            ended_at: None,
            end_reason: None,
            software_secs: 0,
            gpu_measured: false,
            gpu_active_secs: 0,
            gpu_peak_utilization: 0,
            gpu_peak_memory_mib: 0,
            last_activity_at: None,
            step_changed_at: at,
        }
    }

    #[test]
    fn the_page_waits_for_the_next_step_and_says_when_it_is_slow() {
        let s = session();
        let usual = UsualTimes {
            command_received: Some(chrono::Duration::seconds(3)),
            desktop_up: Some(chrono::Duration::seconds(40)),
            ready: None,
        };
        let soon = s.claimed_at + chrono::Duration::seconds(30);
        let view = view(&s, LifecycleState::Assigned, &usual, soon);
        assert_eq!(view.step, JourneyStep::CommandReceived);
        let waiting: Vec<_> = view
            .steps
            .iter()
            .filter(|s| s.waiting)
            .map(|s| s.step)
            .collect();
        assert_eq!(waiting, [JourneyStep::DesktopUp]);
        assert!(view.next.contains("about 40 seconds"), "{}", view.next);
        assert_eq!(view.slow, None);
        let late = s.claimed_at + chrono::Duration::minutes(4);
        let slow = super::view(&s, LifecycleState::Assigned, &usual, late).slow;
        assert!(slow.is_some_and(|text| text.contains("lab-vm-3")));
    }

    #[test]
    fn a_broken_vm_fails_the_journey_and_offers_another() {
        let view = view(
            &session(),
            LifecycleState::Unreachable,
            &UsualTimes::default(),
            session().claimed_at,
        );
        assert_eq!(view.step, JourneyStep::Failed);
        assert_eq!(view.failure.as_deref(), Some("Your VM stopped answering."));
        assert!(view.next.contains("Get a new VM"));
        assert!(view.steps.iter().all(|s| !s.waiting));
    }
}
