//! Stand-ins for what a test machine does not have: a GPU ([`ScriptedProbe`]), the research
//! software's processes ([`ScriptedProcesses`]) and Chrome Remote Desktop
//! ([`RecordingDesktop`]). Built only for tests (cargo feature `test-support`), never into a
//! release; each implements the trait the real part implements.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::desktop::{DesktopError, DesktopSession, RemoteDesktop};
use crate::gpu::{GpuProbe, GpuSample, ProbeError};
use crate::usage::ProcessTable;

/// A probe that plays back samples given to it, repeating the last; for tests.
#[derive(Debug, Clone, Default)]
pub struct ScriptedProbe {
    script: Arc<Mutex<VecDeque<GpuSample>>>,
    last: Arc<Mutex<Option<GpuSample>>>,
}

impl ScriptedProbe {
    /// A probe that will play `samples` in order.
    pub fn new(samples: impl IntoIterator<Item = GpuSample>) -> Self {
        ScriptedProbe {
            script: Arc::new(Mutex::new(samples.into_iter().collect())),
            last: Arc::default(),
        }
    }

    /// Queues `sample` after the ones not yet played (works on a clone in use elsewhere).
    pub fn push(&self, sample: GpuSample) {
        if let Ok(mut script) = self.script.lock() {
            script.push_back(sample);
        }
    }
}

impl GpuProbe for ScriptedProbe {
    fn sample(&mut self) -> GpuSample {
        let next = self.script.lock().ok().and_then(|mut s| s.pop_front());
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sample) = next {
            *last = Some(sample);
        }
        last.clone()
            .unwrap_or_else(|| Err(ProbeError::NoNvml("nothing scripted".to_owned())))
    }
}

/// A process table that shows whatever it is given; for tests.
#[derive(Debug, Clone, Default)]
pub struct ScriptedProcesses {
    current: Arc<Mutex<Vec<Vec<String>>>>,
}

impl ScriptedProcesses {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on the table lists these command lines.
    pub fn set(&self, command_lines: &[&[&str]]) {
        if let Ok(mut current) = self.current.lock() {
            *current = command_lines
                .iter()
                .map(|argv| argv.iter().map(|a| (*a).to_owned()).collect())
                .collect();
        }
    }
}

impl ProcessTable for ScriptedProcesses {
    fn command_lines(&mut self) -> std::io::Result<Vec<Vec<String>>> {
        Ok(self.current.lock().map(|c| c.clone()).unwrap_or_default())
    }
}

/// What a [`RecordingDesktop`] was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesktopCall {
    /// `start-host` would have run with these arguments and this PIN.
    Started {
        args: Vec<String>,
        pin: String,
    },
    Ended,
}

/// A stand-in that records what would have run (for tests and dry runs).
#[derive(Debug, Clone, Default)]
pub struct RecordingDesktop {
    calls: Arc<Mutex<Vec<DesktopCall>>>,
}

impl RecordingDesktop {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything asked so far, in order.
    pub fn calls(&self) -> Vec<DesktopCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl RemoteDesktop for RecordingDesktop {
    fn start(&self, session: &DesktopSession) -> Result<(), DesktopError> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(DesktopCall::Started {
                args: session.command.start_host_args(&session.display_name),
                pin: session.pin.clone(),
            });
        }
        Ok(())
    }

    fn end(&self) -> Result<(), DesktopError> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(DesktopCall::Ended);
        }
        Ok(())
    }

    /// Up after a start until the next end, like a host would be.
    fn host_up(&self, _: &[Vec<String>]) -> bool {
        self.calls
            .lock()
            .ok()
            .and_then(|calls| calls.last().cloned())
            .is_some_and(|call| matches!(call, DesktopCall::Started { .. }))
    }
}

/// A desktop whose idle time is whatever the test sets (`None`: unknown); for tests.
#[derive(Debug, Clone, Default)]
pub struct ScriptedInput {
    idle: Arc<Mutex<Option<std::time::Duration>>>,
}

impl ScriptedInput {
    pub fn set_idle(&self, idle: Option<std::time::Duration>) {
        if let Ok(mut current) = self.idle.lock() {
            *current = idle;
        }
    }
}

impl crate::desktop_activity::InputIdle for ScriptedInput {
    fn idle_for(&mut self) -> Option<std::time::Duration> {
        self.idle.lock().ok().and_then(|idle| *idle)
    }
}

/// Records every desktop notice shown; for tests.
#[derive(Debug, Clone, Default)]
pub struct RecordingNotifier {
    shown: Arc<Mutex<Vec<String>>>,
}

impl RecordingNotifier {
    pub fn shown(&self) -> Vec<String> {
        self.shown.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl crate::desktop_activity::DesktopNotifier for RecordingNotifier {
    fn show(&self, text: &str) {
        if let Ok(mut shown) = self.shown.lock() {
            shown.push(text.to_owned());
        }
    }
}
