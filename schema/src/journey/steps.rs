//! Where a participant's session stands, judged from its row alone (pure): its step, since
//! when, whether it is stuck, and how long each step usually takes.

use chrono::{Duration, NaiveDateTime};

use super::ParticipantSession;
use crate::wire::JourneyStep;

/// A session with no desktop yet this long after the claim is stuck, whatever the usual
/// times say: the instructor should look.
pub const STUCK_AFTER: Duration = Duration::minutes(5);

/// The step a session is at. `vm_broken`: its VM is in a state that keeps it from being used
/// (the lifecycle's verdict), so the participant should take another.
pub fn step_of(session: &ParticipantSession, vm_broken: bool) -> JourneyStep {
    if session.ended_at.is_some() {
        JourneyStep::Ended
    } else if vm_broken {
        JourneyStep::Failed
    } else if session.software_first_used_at.is_some() {
        JourneyStep::Ready
    } else if session.desktop_up_at.is_some() {
        JourneyStep::DesktopUp
    } else if session.command_received_at.is_some() {
        JourneyStep::CommandReceived
    } else {
        JourneyStep::Assigned
    }
}

/// When the session reached `step` (`None` for a step it has not reached). `Failed` and
/// `Ended` count from the last step change.
pub fn reached_at(session: &ParticipantSession, step: JourneyStep) -> Option<NaiveDateTime> {
    match step {
        JourneyStep::Assigned => Some(session.claimed_at),
        JourneyStep::CommandReceived => session.command_received_at,
        JourneyStep::DesktopUp => session.desktop_up_at,
        JourneyStep::Ready => session.software_first_used_at,
        JourneyStep::Ended => session.ended_at,
        JourneyStep::Failed => Some(session.step_changed_at),
    }
}

/// The step after `step` on the way to work, if any.
pub fn next_step(step: JourneyStep) -> Option<JourneyStep> {
    let at = JourneyStep::PATH.iter().position(|s| *s == step)?;
    JourneyStep::PATH.get(at + 1).copied()
}

/// How long each step usually takes after the one before: the median over recent sessions
/// that reached it. `None` before any did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsualTimes {
    pub command_received: Option<Duration>,
    pub desktop_up: Option<Duration>,
    pub ready: Option<Duration>,
}

impl UsualTimes {
    pub fn measure(sessions: &[ParticipantSession]) -> Self {
        let gaps = |from: fn(&ParticipantSession) -> Option<NaiveDateTime>,
                    to: fn(&ParticipantSession) -> Option<NaiveDateTime>| {
            median(
                sessions
                    .iter()
                    .filter_map(|s| Some((to(s)? - from(s)?).max(Duration::zero())))
                    .collect(),
            )
        };
        UsualTimes {
            command_received: gaps(|s| Some(s.claimed_at), |s| s.command_received_at),
            desktop_up: gaps(|s| s.command_received_at, |s| s.desktop_up_at),
            ready: gaps(|s| s.desktop_up_at, |s| s.software_first_used_at),
        }
    }

    /// The usual time from the step before to `step`.
    pub fn of(&self, step: JourneyStep) -> Option<Duration> {
        match step {
            JourneyStep::CommandReceived => self.command_received,
            JourneyStep::DesktopUp => self.desktop_up,
            JourneyStep::Ready => self.ready,
            _ => None,
        }
    }

    /// The usual time from the claim to the desktop.
    pub fn to_desktop(&self) -> Option<Duration> {
        Some(self.command_received? + self.desktop_up?)
    }
}

fn median(mut values: Vec<Duration>) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    values.sort();
    Some(values[values.len() / 2])
}

/// Whether the instructor should look at this participant now: the VM broke, or there is
/// still no desktop long after the claim (five minutes, or twice the usual time when that is
/// longer).
pub fn is_stuck(
    session: &ParticipantSession,
    step: JourneyStep,
    usual: &UsualTimes,
    now: NaiveDateTime,
) -> bool {
    match step {
        JourneyStep::Failed => true,
        JourneyStep::Assigned | JourneyStep::CommandReceived => {
            let limit = usual
                .to_desktop()
                .map_or(STUCK_AFTER, |usual| (usual * 2).max(STUCK_AFTER));
            now - session.claimed_at > limit
        }
        JourneyStep::DesktopUp | JourneyStep::Ready | JourneyStep::Ended => false,
    }
}

/// Whether the step the participant waits for takes much longer than usual (twice the
/// usual time, and at least two minutes): the participant's page then says what to do. Only
/// the steps the VM takes count; the last one is the participant's own.
pub fn is_slow(
    session: &ParticipantSession,
    step: JourneyStep,
    usual: &UsualTimes,
    now: NaiveDateTime,
) -> bool {
    let Some(waiting_for) = next_step(step).filter(|s| *s != JourneyStep::Ready) else {
        return false;
    };
    let Some(since) = reached_at(session, step) else {
        return false;
    };
    let limit = usual.of(waiting_for).map_or(Duration::minutes(2), |usual| {
        (usual * 2).max(Duration::minutes(2))
    });
    now - since > limit
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(minute: i64) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 12, 2)
            .and_then(|d| d.and_hms_opt(9, 0, 0))
            .expect("a date")
            + Duration::minutes(minute)
    }

    fn session(
        received: Option<i64>,
        desktop: Option<i64>,
        used: Option<i64>,
    ) -> ParticipantSession {
        ParticipantSession {
            id: 1,
            hostname: "vm-1".to_owned(),
            assignment_seq: 1,
            email: "a@example.org".to_owned(),
            workshop_id: None,
            claimed_at: at(0),
            command_received_at: received.map(at),
            desktop_up_at: desktop.map(at),
            software_first_used_at: used.map(at),
            ended_at: None,
            end_reason: None,
            software_secs: 0,
            gpu_measured: false,
            gpu_active_secs: 0,
            gpu_peak_utilization: 0,
            gpu_peak_memory_mib: 0,
            last_activity_at: None,
            step_changed_at: at(0),
        }
    }

    #[test]
    fn a_session_is_at_its_furthest_step_and_a_broken_vm_fails_it() {
        assert_eq!(
            step_of(&session(None, None, None), false),
            JourneyStep::Assigned
        );
        assert_eq!(
            step_of(&session(Some(1), None, None), false),
            JourneyStep::CommandReceived
        );
        assert_eq!(
            step_of(&session(Some(1), Some(2), None), false),
            JourneyStep::DesktopUp
        );
        assert_eq!(
            step_of(&session(Some(1), Some(2), Some(3)), false),
            JourneyStep::Ready
        );
        assert_eq!(
            step_of(&session(Some(1), Some(2), Some(3)), true),
            JourneyStep::Failed
        );
        let mut ended = session(Some(1), None, None);
        ended.ended_at = Some(at(4));
        assert_eq!(step_of(&ended, true), JourneyStep::Ended);
    }

    #[test]
    fn no_desktop_five_minutes_after_the_claim_is_stuck_unless_it_usually_takes_longer() {
        let waiting = session(Some(1), None, None);
        let none = UsualTimes::default();
        assert!(!is_stuck(
            &waiting,
            JourneyStep::CommandReceived,
            &none,
            at(4)
        ));
        assert!(is_stuck(
            &waiting,
            JourneyStep::CommandReceived,
            &none,
            at(6)
        ));
        let slow_lab = UsualTimes {
            command_received: Some(Duration::minutes(1)),
            desktop_up: Some(Duration::minutes(4)),
            ready: None,
        };
        assert!(!is_stuck(
            &waiting,
            JourneyStep::CommandReceived,
            &slow_lab,
            at(9)
        ));
        assert!(is_stuck(
            &waiting,
            JourneyStep::CommandReceived,
            &slow_lab,
            at(11)
        ));
        let working = session(Some(1), Some(2), None);
        assert!(!is_stuck(&working, JourneyStep::DesktopUp, &none, at(60)));
        assert!(is_stuck(&working, JourneyStep::Failed, &none, at(3)));
    }

    #[test]
    fn usual_times_are_medians_of_each_gap() {
        let sessions = [
            session(Some(1), Some(3), Some(10)),
            session(Some(2), Some(3), None),
            session(Some(3), None, None),
        ];
        let usual = UsualTimes::measure(&sessions);
        assert_eq!(usual.command_received, Some(Duration::minutes(2)));
        assert_eq!(usual.desktop_up, Some(Duration::minutes(2)));
        assert_eq!(usual.ready, Some(Duration::minutes(7)));
        assert_eq!(usual.to_desktop(), Some(Duration::minutes(4)));
    }

    #[test]
    fn a_step_is_slow_at_twice_its_usual_time_and_never_the_participants_own() {
        let usual = UsualTimes {
            command_received: Some(Duration::seconds(10)),
            desktop_up: Some(Duration::minutes(3)),
            ready: Some(Duration::seconds(5)),
        };
        let claimed = session(None, None, None);
        assert!(!is_slow(&claimed, JourneyStep::Assigned, &usual, at(1)));
        assert!(is_slow(&claimed, JourneyStep::Assigned, &usual, at(3)));
        let received = session(Some(0), None, None);
        assert!(!is_slow(
            &received,
            JourneyStep::CommandReceived,
            &usual,
            at(5)
        ));
        assert!(is_slow(
            &received,
            JourneyStep::CommandReceived,
            &usual,
            at(7)
        ));
        let up = session(Some(0), Some(1), None);
        assert!(!is_slow(&up, JourneyStep::DesktopUp, &usual, at(90)));
    }
}
