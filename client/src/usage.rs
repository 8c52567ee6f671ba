//! Is the research software in use? [`SoftwareMatcher`] decides from a process's command line
//! by program name, never by substring, and the `UsageMonitor` actor reports the initial
//! state and every change, retrying failed reports.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, WrapFuture};
use regex::Regex;

use crate::allocator_client::AllocatorClient;
use crate::desktop::RemoteDesktop;
use crate::desktop_activity::InputIdle;
use crate::gpu::{GpuMonitor, SetInUse};
use crate::session_figures::SessionTally;

#[cfg(any(test, feature = "test-support"))]
pub use crate::doubles::ScriptedProcesses;

/// Lists the command lines of the running processes. Blocking.
pub trait ProcessTable: Send + 'static {
    fn command_lines(&mut self) -> std::io::Result<Vec<Vec<String>>>;
}

/// The real process table, from `/proc/<pid>/cmdline`.
#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
    own_pid: u32,
}

impl Default for ProcFs {
    fn default() -> Self {
        ProcFs {
            root: PathBuf::from("/proc"),
            own_pid: std::process::id(),
        }
    }
}

impl ProcessTable for ProcFs {
    fn command_lines(&mut self) -> std::io::Result<Vec<Vec<String>>> {
        Ok(self
            .processes()?
            .into_iter()
            .map(|(_, argv)| argv)
            .collect())
    }
}

impl ProcFs {
    /// Every running process but this one, as `(pid, argv)`.
    pub fn processes(&self) -> std::io::Result<Vec<(u32, Vec<String>)>> {
        let mut lines = Vec::new();
        for entry in std::fs::read_dir(&self.root)?.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if pid == self.own_pid {
                continue;
            }
            // Processes come and go while we read; a vanished one is simply skipped.
            let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let argv: Vec<String> = raw
                .split(|b| *b == 0)
                .filter(|part| !part.is_empty())
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect();
            if !argv.is_empty() {
                lines.push((pid, argv));
            }
        }
        Ok(lines)
    }
}

/// Python interpreters, whose script or `-m` module is the real program.
static PYTHON: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
    Regex::new(r"^python[0-9.]*$").expect("the interpreter pattern is a valid regex")
});

/// Recognises the research software's processes by program name.
#[derive(Debug, Clone)]
pub struct SoftwareMatcher {
    program: Regex,
}

impl SoftwareMatcher {
    /// Programs named `software` or `software-<word>` / `software_<word>` (so `sleap` matches
    /// `sleap`, `sleap-label`, `sleap_train`, `python -m sleap.gui`, but not
    /// `vim ~/sleap/notes.txt` or `labels.sleap.slp`).
    pub fn for_software(software: &str) -> Self {
        let pattern = format!("^{}(?:[-_][A-Za-z0-9_]+)*$", regex::escape(software));
        SoftwareMatcher {
            program: Regex::new(&pattern).expect("an escaped name is a valid regex"),
        }
    }

    /// Programs whose name matches `pattern` (a regular expression over the program's file
    /// name, anchored by the caller as wanted).
    pub fn from_pattern(pattern: &str) -> Result<Self, regex::Error> {
        Ok(SoftwareMatcher {
            program: Regex::new(pattern)?,
        })
    }

    /// Whether the process with this command line runs the software: its executable's name
    /// matches, or it is Python running a matching script or `-m` module.
    pub fn matches(&self, argv: &[String]) -> bool {
        let Some(executable) = argv.first().map(|a| file_name(a)) else {
            return false;
        };
        if self.program.is_match(executable) {
            return true;
        }
        if !PYTHON.is_match(executable) {
            return false;
        }
        let mut args = argv.iter().skip(1);
        while let Some(arg) = args.next() {
            if arg == "-m" {
                return args
                    .next()
                    .and_then(|module| module.split('.').next())
                    .is_some_and(|top| self.program.is_match(top));
            }
            if arg == "-c" {
                return false;
            }
            if !arg.starts_with('-') {
                return self.program.is_match(file_name(arg));
            }
        }
        false
    }
}

fn file_name(path: &str) -> &str {
    Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path)
}

/// The actor: checks every `interval`, reports the first state and every change, retries a
/// failed report at the next check, and tells the GPU monitor.
pub struct UsageMonitor {
    client: AllocatorClient,
    processes: Arc<Mutex<Box<dyn ProcessTable>>>,
    matcher: SoftwareMatcher,
    interval: Duration,
    gpu: Option<Addr<GpuMonitor>>,
    /// What the allocator was last told successfully.
    reported: Option<bool>,
    busy: bool,
    /// Whether the desktop was used since the last check: reported as activity.
    input: Option<Arc<Mutex<Box<dyn InputIdle>>>>,
    /// Where each check's findings go for the heartbeat's session figures, with the desktop
    /// that says from the same process list whether its host runs.
    session: Option<(Arc<SessionTally>, Arc<dyn RemoteDesktop>)>,
}

impl std::fmt::Debug for UsageMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageMonitor")
            .field("matcher", &self.matcher)
            .field("reported", &self.reported)
            .finish_non_exhaustive()
    }
}

impl UsageMonitor {
    pub fn new(
        client: AllocatorClient,
        processes: Box<dyn ProcessTable>,
        matcher: SoftwareMatcher,
        interval: Duration,
        gpu: Option<Addr<GpuMonitor>>,
    ) -> Self {
        UsageMonitor {
            client,
            processes: Arc::new(Mutex::new(processes)),
            matcher,
            interval,
            gpu,
            reported: None,
            busy: false,
            input: None,
            session: None,
        }
    }

    /// Also records, at each check, what the session's figures need: the software's run
    /// time, the desktop's host, the participant's activity.
    pub fn tallying(mut self, session: Arc<SessionTally>, desktop: Arc<dyn RemoteDesktop>) -> Self {
        self.session = Some((session, desktop));
        self
    }

    /// Also reports the desktop's use: an input since the last check is sent as activity
    /// (with the software's state unchanged), so an idle release counts it.
    pub fn watching_input(mut self, input: Box<dyn InputIdle>) -> Self {
        self.input = Some(Arc::new(Mutex::new(input)));
        self
    }

    fn check(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        self.busy = true;
        let processes = self.processes.clone();
        let matcher = self.matcher.clone();
        let client = self.client.clone();
        let reported = self.reported;
        let (input, interval) = (self.input.clone(), self.interval);
        let session = self.session.clone();
        let work = async move {
            let checked = tokio::task::spawn_blocking(move || -> std::io::Result<(bool, bool)> {
                let lines = processes
                    .lock()
                    .map_err(|_| std::io::Error::other("process table poisoned"))?
                    .command_lines()?;
                let in_use = lines.iter().any(|argv| matcher.matches(argv));
                let typed = input
                    .and_then(|input| input.lock().ok()?.idle_for())
                    .is_some_and(|idle| idle < interval);
                if let Some((tally, desktop)) = session {
                    tally.desktop_seen(desktop.host_up(&lines));
                    tally.software_seen(in_use);
                    if typed {
                        tally.input_seen();
                    }
                }
                Ok((in_use, typed))
            })
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
            let (in_use, desktop_used) = match checked {
                Ok(checked) => checked,
                Err(error) => return Err(format!("cannot list processes: {error}")),
            };
            if reported == Some(in_use) && !desktop_used {
                return Ok((in_use, false));
            }
            client
                .report_in_use(in_use)
                .await
                .map(|()| (in_use, true))
                .map_err(|error| format!("in-use report failed: {error}"))
        };
        ctx.spawn(work.into_actor(self).map(|outcome, monitor, _| {
            monitor.busy = false;
            match outcome {
                Ok((in_use, sent)) => {
                    if sent && monitor.reported != Some(in_use) {
                        tracing::info!(in_use, "reported whether the research software runs");
                    }
                    monitor.reported = Some(in_use);
                    if let Some(gpu) = &monitor.gpu {
                        gpu.do_send(SetInUse(in_use));
                    }
                }
                Err(error) => tracing::warn!(%error, "retrying at the next check"),
            }
        }));
    }
}

impl Actor for UsageMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Reports before registration would be refused (no VM, no token yet): the first
        // check waits for it and then goes at once.
        let client = self.client.clone();
        ctx.wait(async move { client.until_registered().await }.into_actor(self));
        ctx.run_later(Duration::ZERO, |monitor, ctx| monitor.check(ctx));
        ctx.run_interval(self.interval, |monitor, ctx| monitor.check(ctx));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_software_is_recognised_by_program_name_only() {
        let sleap = SoftwareMatcher::for_software("sleap");
        for running in [
            "sleap",
            "/opt/conda/envs/sleap/bin/sleap-label",
            "sleap_train config.json",
            "/usr/bin/python3.11 /opt/conda/bin/sleap-label",
            "python -m sleap.gui.app",
            "python3 -u -m sleap",
        ] {
            assert!(sleap.matches(&argv(running)), "missed: {running}");
        }
        for not_running in [
            "vim /home/client/sleap/notes.txt",
            "cat labels.sleap.slp",
            "/home/client/sleap-data/run.sh",
            "python /home/client/scripts/analyse.py /data/sleap",
            "python -c import sleap",
            "grep sleap",
            "sleapy",
            "lablink-client",
            "",
        ] {
            assert!(
                !sleap.matches(&argv(not_running)),
                "false match: {not_running}"
            );
        }
    }

    #[test]
    fn a_custom_pattern_replaces_the_derived_one() {
        let matcher = SoftwareMatcher::from_pattern("^(napari|ImageJ-linux64)$").expect("regex");
        assert!(matcher.matches(&argv("/opt/Fiji.app/ImageJ-linux64")));
        assert!(matcher.matches(&argv("python -m napari")));
        assert!(!matcher.matches(&argv("napari-tools")));
    }

    #[test]
    fn the_real_process_table_lists_this_test_process_siblings() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        // Until the child has exec'd, its command line is still ours: look a few times.
        let expected = ["sleep".to_owned(), "30".to_owned()];
        let mut found = false;
        for _ in 0..100 {
            let lines = ProcFs::default().command_lines().expect("read /proc");
            found = lines.iter().any(|argv| argv[..] == expected[..]);
            if found {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(found, "`sleep 30` not in the process table");
        assert!(SoftwareMatcher::for_software("sleep").matches(&argv("sleep 30")));
    }
}
