//! Resetting the VM when a session ends, so the next participant finds nothing of the one
//! before: the research software's processes are stopped (SIGTERM, then SIGKILL for those
//! still running after a grace period; with a session directory, those working inside it,
//! so agents sharing one machine, as the local provider's do, stop only their own
//! participant's software), and everything inside the session directory
//! (`LABLINK_SESSION_DIR`, the session user's home or work directory) is removed. The
//! directory itself stays. Symbolic links are removed, never followed, so a link a
//! participant left cannot make the agent delete files outside the directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::usage::{ProcFs, SoftwareMatcher};

/// How long the research software gets to exit after SIGTERM.
const GRACE: Duration = Duration::from_secs(3);

/// What a reset wipes; see the module documentation.
#[derive(Debug, Clone)]
pub struct SessionReset {
    pub software: SoftwareMatcher,
    pub session_dir: Option<PathBuf>,
}

/// What a reset did, for the agent's log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResetReport {
    pub processes_stopped: usize,
    pub entries_removed: usize,
    /// What could not be done (the reset goes on past each).
    pub failures: Vec<String>,
}

impl SessionReset {
    /// Runs the reset. Blocking.
    pub fn run(&self) -> ResetReport {
        let mut report = ResetReport::default();
        self.stop_software(&mut report);
        if let Some(dir) = &self.session_dir {
            empty_dir(dir, &mut report);
        }
        report
    }

    fn stop_software(&self, report: &mut ResetReport) {
        let matching = |procs: &ProcFs| -> Vec<u32> {
            procs
                .processes()
                .map(|list| {
                    list.into_iter()
                        .filter(|(_, argv)| self.software.matches(argv))
                        .filter(|(pid, _)| self.works_in_session(*pid))
                        .map(|(pid, _)| pid)
                        .collect()
                })
                .unwrap_or_default()
        };
        let procs = ProcFs::default();
        let pids = matching(&procs);
        for pid in &pids {
            send(*pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + GRACE;
        let mut left = pids.clone();
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            let running = matching(&procs);
            left.retain(|pid| running.contains(pid));
        }
        for pid in &left {
            send(*pid, Signal::SIGKILL);
        }
        report.processes_stopped = pids.len();
    }
}

impl SessionReset {
    /// Whether the process works inside the session directory (any process, without one).
    fn works_in_session(&self, pid: u32) -> bool {
        let Some(dir) = &self.session_dir else {
            return true;
        };
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(&dir))
    }
}

fn send(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        // It may have exited meanwhile; nothing to do then.
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// Removes everything inside `dir` (not `dir` itself), never following a link.
fn empty_dir(dir: &Path, report: &mut ResetReport) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
        Err(err) => {
            report
                .failures
                .push(format!("cannot read {}: {err}", dir.display()));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // `file_type` does not follow links: a link to a directory is removed as a link.
        let removed = match entry.file_type() {
            Ok(kind) if kind.is_dir() => std::fs::remove_dir_all(&path),
            Ok(_) => std::fs::remove_file(&path),
            Err(err) => Err(err),
        };
        match removed {
            Ok(()) => report.entries_removed += 1,
            Err(err) => report
                .failures
                .push(format!("cannot remove {}: {err}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_directory_is_emptied_without_following_links() {
        let outside = tempfile::tempdir().expect("dir");
        let kept = outside.path().join("keep.txt");
        std::fs::write(&kept, "not the participant's").expect("write");
        let session = tempfile::tempdir().expect("dir");
        std::fs::write(session.path().join("notes.txt"), "mine").expect("write");
        std::fs::create_dir_all(session.path().join("project/data")).expect("mkdir");
        std::fs::write(session.path().join("project/data/x.h5"), "data").expect("write");
        std::fs::write(session.path().join(".bash_history"), "ls").expect("write");
        std::os::unix::fs::symlink(outside.path(), session.path().join("link")).expect("link");
        let reset = SessionReset {
            software: SoftwareMatcher::for_software("no-such-program-here"),
            session_dir: Some(session.path().to_owned()),
        };
        let report = reset.run();
        assert_eq!(report.entries_removed, 4, "{report:?}");
        assert!(report.failures.is_empty(), "{report:?}");
        assert_eq!(std::fs::read_dir(session.path()).expect("dir").count(), 0);
        assert!(session.path().is_dir(), "the directory itself stays");
        assert!(kept.exists(), "nothing outside is touched through the link");
    }
}
