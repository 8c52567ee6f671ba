//! [`SessionTally`]: what the agent has seen of the session it serves — the journey's steps
//! (command received, desktop up, software used), how long the research software ran, the
//! GPU's use and the last activity. The actors that see each thing write it here; the status
//! reporter sends [`SessionTally::figures`] with every heartbeat, and at once when a step is
//! reached ([`SessionTally::step_changes`]).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lablink_schema::wire::{GpuFigures, SessionFigures};
use tokio::sync::watch;

use crate::gpu::GpuSample;

/// Shared by the agent's actors (behind an `Arc`); every method is quick and never blocks on
/// I/O.
#[derive(Debug)]
pub struct SessionTally {
    current: Mutex<Option<Tally>>,
    /// Counts steps reached, so the reporter can report at once.
    steps: watch::Sender<u64>,
}

impl Default for SessionTally {
    fn default() -> Self {
        SessionTally {
            current: Mutex::new(None),
            steps: watch::channel(0).0,
        }
    }
}

#[derive(Debug)]
struct Tally {
    assignment_id: i64,
    desktop_up: bool,
    software_used: bool,
    software_time: Duration,
    /// When the software was last seen running, to add the time until the next look.
    software_seen_at: Option<Instant>,
    gpu: Option<GpuTally>,
    gpu_sampled_at: Option<Instant>,
    last_activity: Option<Instant>,
}

#[derive(Debug, Default, Clone, Copy)]
struct GpuTally {
    active: Duration,
    peak_utilization: u32,
    peak_memory_mib: u64,
}

impl SessionTally {
    /// The agent received the command of assignment `assignment_id`: a new session starts
    /// (the first step of the VM's side).
    pub fn begin(&self, assignment_id: i64) {
        self.with(|current| {
            *current = Some(Tally {
                assignment_id,
                desktop_up: false,
                software_used: false,
                software_time: Duration::ZERO,
                software_seen_at: None,
                gpu: None,
                gpu_sampled_at: None,
                last_activity: None,
            });
            true
        });
    }

    /// The session is over: nothing more is reported for it.
    pub fn end(&self) {
        self.with(|current| {
            *current = None;
            false
        });
    }

    /// The remote desktop's host was seen running (or not).
    pub fn desktop_seen(&self, up: bool) {
        self.with(|current| match current {
            Some(tally) if up && !tally.desktop_up => {
                tally.desktop_up = true;
                true
            }
            _ => false,
        });
    }

    /// Whether the research software runs now; the time since the last look counts when it
    /// ran then and now.
    pub fn software_seen(&self, running: bool) {
        let now = Instant::now();
        self.with(|current| {
            let Some(tally) = current else { return false };
            if !running {
                tally.software_seen_at = None;
                return false;
            }
            if let Some(seen) = tally.software_seen_at.replace(now) {
                tally.software_time += now - seen;
            }
            tally.last_activity = Some(now);
            !std::mem::replace(&mut tally.software_used, true)
        });
    }

    /// The participant used the desktop (typed, moved the mouse).
    pub fn input_seen(&self) {
        self.with(|current| {
            if let Some(tally) = current {
                tally.last_activity = Some(Instant::now());
            }
            false
        });
    }

    /// One GPU sample: a GPU with any utilisation makes the time since the last sample
    /// active. A sample that fails leaves the figures as they were ("not measured" while
    /// none ever succeeded).
    pub fn gpu_sampled(&self, sample: &GpuSample) {
        let now = Instant::now();
        self.with(|current| {
            let Some(tally) = current else { return false };
            let Ok(readings) = sample else { return false };
            if readings.is_empty() {
                return false;
            }
            let since = tally.gpu_sampled_at.replace(now);
            let gpu = tally.gpu.get_or_insert_with(GpuTally::default);
            let utilization = readings
                .iter()
                .map(|r| r.utilization_percent)
                .max()
                .unwrap_or(0);
            let memory = readings.iter().map(|r| r.memory_used_mib).sum::<u64>();
            if utilization > 0 {
                if let Some(since) = since {
                    gpu.active += now - since;
                }
            }
            gpu.peak_utilization = gpu.peak_utilization.max(utilization);
            gpu.peak_memory_mib = gpu.peak_memory_mib.max(memory);
            false
        });
    }

    /// The figures to send now, or `None` when the VM serves no session.
    pub fn figures(&self) -> Option<SessionFigures> {
        let current = self.current.lock().ok()?;
        let tally = current.as_ref()?;
        Some(SessionFigures {
            assignment_id: tally.assignment_id,
            command_received: true,
            desktop_up: tally.desktop_up,
            software_used: tally.software_used,
            software_secs: tally.software_time.as_secs(),
            gpu: tally.gpu.map(|gpu| GpuFigures {
                active_secs: gpu.active.as_secs(),
                peak_utilization: gpu.peak_utilization,
                peak_memory_mib: gpu.peak_memory_mib,
            }),
            idle_secs: tally.last_activity.map(|at| at.elapsed().as_secs()),
        })
    }

    /// Changes whenever a session begins or reaches a step.
    pub fn step_changes(&self) -> watch::Receiver<u64> {
        self.steps.subscribe()
    }

    /// Runs `change` on the current tally; a `true` from it is a step reached.
    fn with(&self, change: impl FnOnce(&mut Option<Tally>) -> bool) {
        let stepped = match self.current.lock() {
            Ok(mut current) => change(&mut current),
            Err(_) => false,
        };
        if stepped {
            self.steps.send_modify(|n| *n += 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::{GpuReading, ProbeError};

    fn reading(utilization_percent: u32, memory_used_mib: u64) -> GpuReading {
        GpuReading {
            temperature_c: 50,
            uncorrected_ecc_errors: 0,
            utilization_percent,
            memory_used_mib,
        }
    }

    #[test]
    fn no_session_no_figures_and_a_new_one_starts_from_nothing() {
        let tally = SessionTally::default();
        assert_eq!(tally.figures(), None);
        tally.software_seen(true);
        assert_eq!(tally.figures(), None, "nothing counts outside a session");
        tally.begin(7);
        let figures = tally.figures().expect("a session");
        assert_eq!(figures.assignment_id, 7);
        assert!(figures.command_received && !figures.desktop_up && !figures.software_used);
        assert_eq!((figures.gpu, figures.idle_secs), (None, None));
        tally.end();
        assert_eq!(tally.figures(), None);
    }

    #[test]
    fn steps_are_announced_once_and_gpu_peaks_only_rise() {
        let tally = SessionTally::default();
        let mut steps = tally.step_changes();
        tally.begin(1);
        assert!(steps.has_changed().expect("open"));
        steps.borrow_and_update();
        tally.desktop_seen(true);
        tally.desktop_seen(true);
        assert_eq!(*steps.borrow_and_update(), 2);
        tally.software_seen(true);
        tally.software_seen(true);
        assert_eq!(*steps.borrow_and_update(), 3);
        tally.gpu_sampled(&Err(ProbeError::NoNvml("none".to_owned())));
        assert_eq!(tally.figures().and_then(|f| f.gpu), None, "not measured");
        tally.gpu_sampled(&Ok(vec![reading(90, 4000), reading(10, 1000)]));
        tally.gpu_sampled(&Ok(vec![reading(30, 100)]));
        let gpu = tally.figures().and_then(|f| f.gpu).expect("measured");
        assert_eq!((gpu.peak_utilization, gpu.peak_memory_mib), (90, 5000));
        let figures = tally.figures().expect("a session");
        assert!(figures.desktop_up && figures.software_used);
        assert_eq!(figures.idle_secs, Some(0));
    }
}
