//! Watching the local agents: each agent this process starts is waited for by a task of its
//! own, so it is reaped the moment it exits (never left a zombie) and its exit is reported with
//! its status and its last log lines; agents adopted from an earlier allocator are not our
//! children, so their pid records are looked at every [`ADOPTED_POLL`]. An exit the provider
//! caused itself (a destroy, a reboot, the stop) is not reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::process::Child;
use tokio::sync::mpsc;

use super::agent_process::AgentPid;
use super::lock;

/// How often the agents adopted from an earlier allocator are looked at (well inside one
/// heartbeat interval, the bound for noticing that one died).
pub(super) const ADOPTED_POLL: Duration = Duration::from_secs(1);
/// How long a creation waits for a new agent to report for the first time before it says the
/// agent started but has not reported yet. A local agent reports within a fraction of a second;
/// one still silent after this is slow or cannot reach the allocator, which the VM's boot
/// deadline judges, so the queue is not held longer for it.
pub(super) const REGISTRATION_PATIENCE: Duration = Duration::from_secs(5);
/// How often a creation looks for the new agent's first report in its log.
const REGISTRATION_POLL: Duration = Duration::from_millis(50);
/// The agent's last log lines carried in an exit's reason.
const LAST_LINES: usize = 3;
/// Longest log line carried in a reason, in bytes.
const MAX_LINE_BYTES: usize = 300;

/// An agent that exited without the provider stopping it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentExit {
    pub hostname: String,
    /// `exit status 1`, `killed by signal 9`, or `exited` when it was not our child.
    pub status: String,
    /// Its last log lines, oldest first, each cut to a readable length.
    pub last_lines: Vec<String>,
}

impl AgentExit {
    /// What an admin reads on the VM's row: the status and what the agent said last.
    pub fn reason(&self) -> String {
        if self.last_lines.is_empty() {
            format!("the agent {} (its log is empty)", self.status)
        } else {
            format!(
                "the agent {}; its last log lines: {}",
                self.status,
                self.last_lines.join(" | ")
            )
        }
    }
}

/// What the watchers share with the provider.
#[derive(Debug, Default)]
pub(super) struct Watch {
    /// Where exits are reported (none: only recorded, for tests of the provider alone).
    pub(super) exits: Option<mpsc::UnboundedSender<AgentExit>>,
    /// Agents the provider stops itself: their exits are not faults.
    pub(super) intended: Mutex<BTreeSet<AgentPid>>,
    /// The latest unintended exit of each hostname, for a creation waiting on its agents.
    pub(super) exited: Mutex<BTreeMap<String, AgentExit>>,
    /// New agents whose creation waits for them: their exit fails the creation instead of
    /// being reported as a VM's fault.
    pub(super) confirming: Mutex<BTreeSet<String>>,
    /// Adopted agents already reported dead, so each is reported once.
    pub(super) reported: Mutex<BTreeSet<AgentPid>>,
}

impl Watch {
    /// Marks `agent` as stopped by the provider, before it is killed.
    pub(super) fn intend_stop(&self, agent: AgentPid) {
        lock(&self.intended).insert(agent);
    }

    /// Reports `exit` on the exits channel.
    pub(super) fn report(&self, exit: &AgentExit) {
        if let Some(exits) = &self.exits {
            let _ = exits.send(exit.clone());
        }
    }

    /// Records and reports an exit unless the provider caused it.
    fn exited(&self, agent: AgentPid, exit: AgentExit) {
        if lock(&self.intended).remove(&agent) {
            return;
        }
        tracing::warn!(hostname = %exit.hostname, reason = %exit.reason(), "a local agent exited");
        lock(&self.exited).insert(exit.hostname.clone(), exit.clone());
        if lock(&self.confirming).contains(&exit.hostname) {
            return;
        }
        self.report(&exit);
    }
}

/// Waits for the child `agent` of `hostname` to exit, reaps it, and reports the exit.
pub(super) fn watch_child(
    watch: Arc<Watch>,
    log_file: std::path::PathBuf,
    hostname: String,
    agent: AgentPid,
    mut child: Child,
) {
    tokio::spawn(async move {
        let status = child.wait().await;
        let status = match status {
            Ok(status) => describe(status),
            Err(err) => format!("could not be waited for ({err})"),
        };
        let exit = AgentExit {
            hostname,
            status,
            last_lines: last_lines(&log_file),
        };
        watch.exited(agent, exit);
    });
}

/// Looks at the adopted agents every [`ADOPTED_POLL`] and reports each that died, once.
pub(super) fn watch_adopted(watch: Arc<Watch>, dir: std::path::PathBuf, adopted: Vec<String>) {
    if adopted.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let adopted: BTreeSet<String> = adopted.into_iter().collect();
        loop {
            tokio::time::sleep(ADOPTED_POLL).await;
            let recorded = super::agent_process::recorded(&dir);
            let mut alive = 0;
            for (hostname, agent) in recorded {
                if !adopted.contains(&hostname) {
                    continue;
                }
                if agent.is_running() {
                    alive += 1;
                    continue;
                }
                if !lock(&watch.reported).insert(agent) {
                    continue;
                }
                let exit = AgentExit {
                    last_lines: last_lines(&dir.join(format!("{hostname}.log"))),
                    hostname,
                    status: "exited".to_owned(),
                };
                watch.exited(agent, exit);
            }
            if alive == 0 {
                // Every adopted agent is gone or destroyed: nothing is left to watch.
                return;
            }
        }
    });
}

/// How a creation's new agent turned out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FirstReport {
    /// It reported to the allocator.
    Registered,
    /// It exited first.
    Exited(AgentExit),
    /// Neither within [`REGISTRATION_PATIENCE`].
    NotYet,
}

/// Waits until the agent of `hostname` has reported for the first time (its log says so), or
/// has exited, or the patience is spent.
pub(super) async fn first_report(watch: &Watch, log_file: &Path, hostname: &str) -> FirstReport {
    let deadline = Instant::now() + REGISTRATION_PATIENCE;
    loop {
        if let Some(exit) = lock(&watch.exited).get(hostname) {
            return FirstReport::Exited(exit.clone());
        }
        if std::fs::read_to_string(log_file)
            .is_ok_and(|log| log.contains(lablink_schema::wire::FIRST_REPORT_LOGGED))
        {
            return FirstReport::Registered;
        }
        if Instant::now() >= deadline {
            return FirstReport::NotYet;
        }
        tokio::time::sleep(REGISTRATION_POLL).await;
    }
}

/// An exit status as an admin reads it.
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "exited".to_owned(),
    }
}

/// The last [`LAST_LINES`] non-empty lines of an agent's log, JSON lines shown as their level
/// and message (and error, if any), each cut to [`MAX_LINE_BYTES`].
pub(super) fn last_lines(log_file: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(log_file) else {
        return Vec::new();
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(LAST_LINES)..]
        .iter()
        .map(|line| cut(&readable(line)))
        .collect()
}

/// A JSON log line as `LEVEL message (error: …)`; any other line as it is.
fn readable(line: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(line) else {
        return line.trim().to_owned();
    };
    let field = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let mut text = match (field("level"), field("message")) {
        (Some(level), Some(message)) => format!("{level} {message}"),
        (None, Some(message)) => message,
        _ => return line.trim().to_owned(),
    };
    if let Some(error) = field("error") {
        text.push_str(&format!(" (error: {error})"));
    }
    text
}

fn cut(line: &str) -> String {
    if line.len() <= MAX_LINE_BYTES {
        return line.to_owned();
    }
    let mut end = MAX_LINE_BYTES;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_are_read_as_people_read_them() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("vm.log");
        std::fs::write(
            &log,
            "one\n\n{\"level\":\"INFO\",\"message\":\"agent started\"}\n\
             {\"level\":\"WARN\",\"message\":\"status report failed\",\"error\":\"refused\"}\n\
             lablink-client: LABLINK_SESSION_DIR: must be an absolute path\n",
        )
        .expect("log");
        assert_eq!(
            last_lines(&log),
            [
                "INFO agent started",
                "WARN status report failed (error: refused)",
                "lablink-client: LABLINK_SESSION_DIR: must be an absolute path",
            ]
        );
        assert!(last_lines(&dir.path().join("none.log")).is_empty());
        assert_eq!(cut(&"é".repeat(400)).chars().count(), 151);
    }
}
