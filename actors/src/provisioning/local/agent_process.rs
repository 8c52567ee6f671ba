//! One local agent as the operating system sees it: the pid file that records it in the
//! agents' directory (so an allocator started later finds it), whether it still runs, its
//! token, and stopping it for good.
//!
//! A pid file holds `<pid> <start time>`, the start time being the process's in
//! `/proc/<pid>/stat` (clock ticks since boot): a pid the kernel has since given to another
//! process is never taken for the agent. A pid file whose process is gone stays until the VM
//! is destroyed or forgotten: it is how the next allocator learns that this VM's agent died.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::proc_stat::ProcStat;

/// How long a killed agent may take to be gone before its destruction is reported failed.
const EXIT_PATIENCE: Duration = Duration::from_secs(10);
/// How often a killed agent is looked at until it is gone.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// A process, told apart from any later process that gets the same pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct AgentPid {
    pub(super) pid: i32,
    started: u64,
}

impl AgentPid {
    /// The process `pid` as it is now; `None` when none runs.
    pub(super) fn of(pid: u32) -> Option<AgentPid> {
        let pid = i32::try_from(pid).ok()?;
        let started = ProcStat::of(pid)?.start_time;
        Some(AgentPid { pid, started })
    }

    /// Whether the process still runs (a zombie does not: it has exited).
    pub(super) fn is_running(&self) -> bool {
        ProcStat::of(self.pid)
            .is_some_and(|stat| stat.start_time == self.started && !stat.has_exited())
    }

    /// The VM token the agent was started with, read from its environment (the same user's
    /// process), so an adopted agent can be restarted as the same VM.
    pub(super) fn token(&self) -> Option<String> {
        let environ = std::fs::read(format!("/proc/{}/environ", self.pid)).ok()?;
        if !self.is_running() {
            return None;
        }
        environ
            .split(|byte| *byte == 0)
            .find_map(|entry| entry.strip_prefix(b"LABLINK_VM_TOKEN="))
            .and_then(|token| String::from_utf8(token.to_vec()).ok())
    }

    /// Kills the agent and everything it started (its process group, as a VM that is
    /// switched off), and answers once it is gone.
    pub(super) async fn stop(&self) -> Result<(), String> {
        if !self.is_running() {
            return Ok(());
        }
        // Each agent leads its own process group (see `LocalAgents::start_agent`).
        if let Err(err) = killpg(Pid::from_raw(self.pid), Signal::SIGKILL) {
            if self.is_running() {
                return Err(format!("cannot kill process {}: {err}", self.pid));
            }
        }
        let deadline = Instant::now() + EXIT_PATIENCE;
        while self.is_running() {
            if Instant::now() > deadline {
                return Err(format!(
                    "process {} still runs {} s after it was killed",
                    self.pid,
                    EXIT_PATIENCE.as_secs()
                ));
            }
            tokio::time::sleep(EXIT_POLL).await;
        }
        Ok(())
    }
}

/// Where the pid file of `hostname` is.
pub(super) fn pid_file(dir: &Path, hostname: &str) -> PathBuf {
    dir.join(format!("{hostname}.pid"))
}

/// Records `agent` as the agent of `hostname` (written whole, then renamed into place).
pub(super) fn record(dir: &Path, hostname: &str, agent: AgentPid) -> std::io::Result<()> {
    let path = pid_file(dir, hostname);
    let partial = dir.join(format!(".{hostname}.pid.partial"));
    std::fs::write(&partial, format!("{} {}\n", agent.pid, agent.started))?;
    std::fs::rename(partial, path)
}

/// Removes the record of `hostname`'s agent (none: nothing to do).
pub(super) fn forget(dir: &Path, hostname: &str) {
    let _ = std::fs::remove_file(pid_file(dir, hostname));
}

/// Every agent recorded in `dir`, running or not, by hostname.
pub(super) fn recorded(dir: &Path) -> Vec<(String, AgentPid)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut agents: Vec<(String, AgentPid)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let hostname = name.strip_suffix(".pid")?;
            if hostname.starts_with('.') {
                return None;
            }
            let text = std::fs::read_to_string(entry.path()).ok()?;
            let mut fields = text.split_whitespace();
            let pid = fields.next()?.parse().ok()?;
            let started = fields.next()?.parse().ok()?;
            Some((hostname.to_owned(), AgentPid { pid, started }))
        })
        .collect();
    agents.sort_by(|a, b| a.0.cmp(&b.0));
    agents
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[tokio::test]
    async fn a_recorded_process_is_found_running_then_gone_once_stopped() {
        let dir = tempfile::tempdir().expect("dir");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("sleep");
        let agent = AgentPid::of(child.id()).expect("it runs");
        record(dir.path(), "vm-1", agent).expect("record");
        assert_eq!(recorded(dir.path()), [("vm-1".to_owned(), agent)]);
        assert!(agent.is_running());

        // A pid with another start time is another process.
        let impostor = AgentPid {
            started: agent.started + 1,
            ..agent
        };
        assert!(!impostor.is_running());

        agent.stop().await.expect("stopped");
        // Reaped by its parent (this test) it is gone from /proc; before, a zombie.
        assert!(!agent.is_running(), "a killed process counts as gone");
        let _ = child.wait();
        assert!(!agent.is_running());
        // The record stays until the VM is forgotten.
        assert_eq!(recorded(dir.path()).len(), 1);
        forget(dir.path(), "vm-1");
        assert!(recorded(dir.path()).is_empty());
    }
}
