//! `DesktopLauncher` and the remote desktop it drives. Chrome Remote Desktop's `start-host` is
//! run directly, never through a shell: the researcher's command is parsed and validated, only
//! its code is passed on as an argument, and the PIN goes on stdin (twice: PIN and
//! confirmation). [`RemoteDesktop`] lets tests put a recorder in its place.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Context, Handler, Message, ResponseFuture};
use lablink_schema::crd::{CrdCommand, START_HOST};

#[cfg(any(test, feature = "test-support"))]
pub use crate::doubles::{DesktopCall, RecordingDesktop};

/// The CRD control script that stops the host daemon.
const CRD_CONTROL: &str = "/opt/google/chrome-remote-desktop/chrome-remote-desktop";
/// `start-host` registers the host with Google and returns; give up on it after this long.
const START_HOST_TIMEOUT: Duration = Duration::from_secs(120);

/// One remote desktop session to start.
#[derive(Clone, PartialEq, Eq)]
pub struct DesktopSession {
    pub command: CrdCommand,
    pub pin: String,
    /// The name the host shows in the researcher's device list.
    pub display_name: String,
}

impl std::fmt::Debug for DesktopSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesktopSession")
            .field("display_name", &self.display_name)
            .finish_non_exhaustive()
    }
}

/// Why a session could not be started or ended.
#[derive(Debug, thiserror::Error)]
pub enum DesktopError {
    #[error("the assignment's command is not a Chrome Remote Desktop command")]
    InvalidCommand,
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} failed: {detail}")]
    Failed { program: String, detail: String },
}

/// Starts and ends remote desktop sessions. Blocking: called off the actor's event loop.
pub trait RemoteDesktop: Send + Sync + 'static {
    fn start(&self, session: &DesktopSession) -> Result<(), DesktopError>;
    fn end(&self) -> Result<(), DesktopError>;
    /// Whether the desktop's host runs, judged from the command lines of the running
    /// processes (the participant's journey: "remote desktop is up").
    fn host_up(&self, processes: &[Vec<String>]) -> bool;
}

/// The programs of a running Chrome Remote Desktop host, by file name.
const CRD_HOST_PROGRAMS: [&str; 2] = ["chrome-remote-desktop-host", "remoting_me2me_host"];

/// The real Chrome Remote Desktop on the VM image.
#[derive(Debug, Clone)]
pub struct ChromeRemoteDesktop {
    /// `start-host`.
    pub start_host: PathBuf,
    /// The control script; `--stop` ends the running host.
    pub control: PathBuf,
    /// Where CRD keeps host registrations (`host#*.json`), removed when a session ends so
    /// the next researcher registers afresh.
    pub config_dir: Option<PathBuf>,
}

impl Default for ChromeRemoteDesktop {
    fn default() -> Self {
        ChromeRemoteDesktop {
            start_host: PathBuf::from(START_HOST),
            control: PathBuf::from(CRD_CONTROL),
            config_dir: std::env::var_os("HOME")
                .map(|home| PathBuf::from(home).join(".config/chrome-remote-desktop")),
        }
    }
}

impl RemoteDesktop for ChromeRemoteDesktop {
    fn start(&self, session: &DesktopSession) -> Result<(), DesktopError> {
        let program = self.start_host.display().to_string();
        let mut child = Command::new(&self.start_host)
            .args(session.command.start_host_args(&session.display_name))
            // As in the command Google gives: no X display for the registration step.
            .env("DISPLAY", "")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| DesktopError::Spawn {
                program: program.clone(),
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // The PIN, then its confirmation.
            let pin = format!("{0}\n{0}\n", session.pin);
            stdin
                .write_all(pin.as_bytes())
                .map_err(|source| DesktopError::Spawn {
                    program: program.clone(),
                    source,
                })?;
        }
        let deadline = Instant::now() + START_HOST_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(DesktopError::Failed {
                        program,
                        detail: format!("no answer within {}s", START_HOST_TIMEOUT.as_secs()),
                    });
                }
                Err(source) => return Err(DesktopError::Spawn { program, source }),
            }
        };
        if status.success() {
            return Ok(());
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            use std::io::Read;
            let _ = pipe.read_to_string(&mut stderr);
        }
        Err(DesktopError::Failed {
            program,
            detail: format!("{status}: {}", stderr.trim()),
        })
    }

    fn host_up(&self, processes: &[Vec<String>]) -> bool {
        processes.iter().any(|argv| {
            argv.first()
                .and_then(|program| std::path::Path::new(program).file_name())
                .and_then(|name| name.to_str())
                .is_some_and(|name| CRD_HOST_PROGRAMS.contains(&name))
        })
    }

    fn end(&self) -> Result<(), DesktopError> {
        if self.control.exists() {
            let status = Command::new(&self.control)
                .arg("--stop")
                .stdin(Stdio::null())
                .status()
                .map_err(|source| DesktopError::Spawn {
                    program: self.control.display().to_string(),
                    source,
                })?;
            if !status.success() {
                tracing::warn!(%status, "stopping the remote desktop host reported a failure");
            }
        }
        if let Some(dir) = &self.config_dir {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with("host#") && name.ends_with(".json") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }
}

/// Logs sessions instead of starting Chrome Remote Desktop (`LABLINK_DESKTOP=log`): for a
/// machine without it, such as the local provider's agents on a developer machine. It
/// never logs the code or the PIN.
/// Its host counts as up from a started session until it ends.
#[derive(Debug, Default)]
pub struct LoggedDesktop {
    started: std::sync::atomic::AtomicBool,
}

impl RemoteDesktop for LoggedDesktop {
    fn start(&self, session: &DesktopSession) -> Result<(), DesktopError> {
        tracing::info!(
            display_name = %session.display_name,
            "LABLINK_DESKTOP=log: Chrome Remote Desktop would start now"
        );
        self.started
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn end(&self) -> Result<(), DesktopError> {
        tracing::info!("LABLINK_DESKTOP=log: the Chrome Remote Desktop session would end now");
        self.started
            .store(false, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn host_up(&self, _: &[Vec<String>]) -> bool {
        self.started.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The actor that owns the remote desktop; the subscriber tells it to start and end sessions.
pub struct DesktopLauncher {
    desktop: Arc<dyn RemoteDesktop>,
    display_name: String,
}

impl std::fmt::Debug for DesktopLauncher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesktopLauncher")
            .field("display_name", &self.display_name)
            .finish_non_exhaustive()
    }
}

impl DesktopLauncher {
    pub fn new(desktop: Arc<dyn RemoteDesktop>, display_name: String) -> Self {
        DesktopLauncher {
            desktop,
            display_name,
        }
    }
}

impl Actor for DesktopLauncher {
    type Context = Context<Self>;
}

/// Start the researcher's session with the assignment's command and PIN.
#[derive(Message)]
#[rtype(result = "Result<(), DesktopError>")]
pub struct StartSession {
    pub command: String,
    pub pin: String,
}

impl std::fmt::Debug for StartSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StartSession(<redacted>)")
    }
}

impl Handler<StartSession> for DesktopLauncher {
    type Result = ResponseFuture<Result<(), DesktopError>>;

    fn handle(&mut self, msg: StartSession, _: &mut Self::Context) -> Self::Result {
        let desktop = self.desktop.clone();
        let display_name = self.display_name.clone();
        Box::pin(async move {
            if msg.command.is_empty() {
                // A browser-desktop assignment: the desktop is the VM's VNC server, reached
                // through the tunnel; there is no host to start.
                tracing::info!("browser desktop session: nothing to start");
                return Ok(());
            }
            let command =
                CrdCommand::parse(&msg.command).map_err(|_| DesktopError::InvalidCommand)?;
            let session = DesktopSession {
                command,
                pin: msg.pin,
                display_name,
            };
            run_blocking(move || desktop.start(&session)).await
        })
    }
}

/// End the current session, so the VM is clean for the next researcher.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), DesktopError>")]
pub struct EndSession;

impl Handler<EndSession> for DesktopLauncher {
    type Result = ResponseFuture<Result<(), DesktopError>>;

    fn handle(&mut self, _: EndSession, _: &mut Self::Context) -> Self::Result {
        let desktop = self.desktop.clone();
        Box::pin(async move { run_blocking(move || desktop.end()).await })
    }
}

async fn run_blocking(
    work: impl FnOnce() -> Result<(), DesktopError> + Send + 'static,
) -> Result<(), DesktopError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| DesktopError::Failed {
            program: "remote desktop task".to_owned(),
            detail: err.to_string(),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const COMMAND: &str = r#"DISPLAY= /opt/google/chrome-remote-desktop/start-host --code="4/0AVG7fiQ1bCdEfGhIjKl" --redirect-url="https://remotedesktop.google.com/_/oauthredirect" --name=$(hostname)"#;

    /// A stand-in `start-host` that writes its arguments, stdin and DISPLAY to files.
    fn recording_script(dir: &std::path::Path, exit_code: i32) -> PathBuf {
        let script = dir.join("start-host");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"{dir}/args\"\ncat > \"{dir}/stdin\"\nprintf '%s' \"${{DISPLAY-unset}}\" > \"{dir}/display\"\necho 'refused' >&2\nexit {exit_code}\n",
                dir = dir.display()
            ),
        )
        .expect("write script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        script
    }

    fn session() -> DesktopSession {
        DesktopSession {
            command: CrdCommand::parse(COMMAND).expect("genuine"),
            pin: "012345".to_owned(),
            display_name: "lablink-vm-7".to_owned(),
        }
    }

    #[test]
    fn the_real_launcher_passes_the_code_as_an_argument_and_the_pin_on_stdin() {
        let dir = tempfile::tempdir().expect("temp dir");
        let desktop = ChromeRemoteDesktop {
            start_host: recording_script(dir.path(), 0),
            control: dir.path().join("no-control-script"),
            config_dir: None,
        };
        desktop.start(&session()).expect("started");
        let args = std::fs::read_to_string(dir.path().join("args")).expect("args");
        assert_eq!(
            args.lines().collect::<Vec<_>>(),
            [
                "--code=4/0AVG7fiQ1bCdEfGhIjKl",
                "--redirect-url=https://remotedesktop.google.com/_/oauthredirect",
                "--name=lablink-vm-7",
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stdin")).expect("stdin"),
            "012345\n012345\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("display")).expect("display"),
            ""
        );
        // The recorder sees exactly what the real launcher ran.
        let recorder = RecordingDesktop::new();
        recorder.start(&session()).expect("recorded");
        assert_eq!(
            recorder.calls(),
            [DesktopCall::Started {
                args: args.lines().map(str::to_owned).collect(),
                pin: "012345".to_owned()
            }]
        );
    }

    #[test]
    fn a_failing_start_host_is_reported_with_its_error_output() {
        let dir = tempfile::tempdir().expect("temp dir");
        let desktop = ChromeRemoteDesktop {
            start_host: recording_script(dir.path(), 3),
            control: dir.path().join("none"),
            config_dir: None,
        };
        let err = desktop.start(&session()).expect_err("exit 3");
        assert!(err.to_string().contains("refused"), "{err}");
        let missing = ChromeRemoteDesktop {
            start_host: dir.path().join("absent"),
            ..desktop
        };
        assert!(matches!(
            missing.start(&session()),
            Err(DesktopError::Spawn { .. })
        ));
    }

    #[test]
    fn ending_a_session_removes_the_host_registration() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("crd");
        std::fs::create_dir_all(&config).expect("mkdir");
        std::fs::write(config.join("host#abc.json"), "{}").expect("host file");
        std::fs::write(config.join("other.json"), "{}").expect("other file");
        let desktop = ChromeRemoteDesktop {
            start_host: dir.path().join("unused"),
            control: dir.path().join("absent"),
            config_dir: Some(config.clone()),
        };
        desktop.end().expect("ended");
        assert!(!config.join("host#abc.json").exists());
        assert!(config.join("other.json").exists());
    }
}
