//! The README's try-out, walked as a newcomer walks it: the built `lablink-allocator` started
//! as the README's run command starts it (no arguments, no `LABLINK_*` variable, a fresh empty
//! working directory, so every default path is the relative default, on the README's
//! address), the generated password read from its output, VMs created on the dashboard, a
//! participant's claim in the browser, the release, and a SIGTERM that leaves no agent
//! running. Every other test passes absolute temporary directories; this one is the guard
//! that the default configuration works.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::crd_command;
use crate::driver::Browser;
use crate::vnc_desktop::{VncDesktop, ROOT_RGB};

/// The README's address: only one test may serve on it at a time.
const README_URL: &str = "http://127.0.0.1:5000";
static README_ADDRESS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const START_TIMEOUT: Duration = Duration::from_secs(60);
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The allocator program `cargo test --workspace` built beside this test's own binary (with
/// the agent, `lablink-client`, which the allocator finds beside itself, as after the README's
/// build).
fn built_allocator() -> PathBuf {
    let dir = std::env::current_exe()
        .expect("test binary")
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    let allocator = dir.join("lablink-allocator");
    assert!(
        allocator.is_file() && dir.join("lablink-client").is_file(),
        "{} and lablink-client beside it are built by `cargo test --workspace` (the README's \
         test command); run that, or `cargo build -p lablink-allocator -p lablink-client`",
        allocator.display()
    );
    allocator
}

/// The allocator as a newcomer runs it, with everything it prints kept.
struct Newcomer {
    child: Child,
    output: Arc<Mutex<String>>,
    dir: tempfile::TempDir,
}

impl Newcomer {
    /// Starts it in a fresh empty directory with only `PATH` and `HOME` set, plus `extra`.
    fn start(extra: &[(&str, &str)]) -> Newcomer {
        let dir = tempfile::tempdir().expect("working dir");
        let mut command = Command::new(built_allocator());
        command
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in extra {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start the allocator");
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut all = output.lock().expect("output");
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        Newcomer { child, output, dir }
    }

    fn output(&self) -> String {
        self.output.lock().expect("output").clone()
    }

    /// Waits for `/readyz` on the README's address.
    async fn until_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(answer) = reqwest::get(format!("{README_URL}/readyz")).await {
                if answer.status() == 200 {
                    return;
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the allocator exited ({status}):\n{}", self.output());
            }
            assert!(
                Instant::now() < deadline,
                "not ready on {README_URL}:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The admin password it generated at its first start, as a newcomer finds it in its
    /// output: the plain block, or the log line's `password` field.
    fn generated_password(&self) -> String {
        let output = self.output();
        let from_block = output
            .lines()
            .find_map(|line| line.trim().strip_prefix("Admin password:"))
            .map(|password| password.trim().to_owned());
        let from_log = || {
            output.lines().find_map(|line| {
                let json: serde_json::Value = serde_json::from_str(line).ok()?;
                json["password"].as_str().map(str::to_owned)
            })
        };
        from_block
            .or_else(from_log)
            .unwrap_or_else(|| panic!("no generated password in:\n{output}"))
    }

    /// Where the agents of this allocator log: the relative default data dir, here.
    fn agent_log(&self, hostname: &str) -> String {
        std::fs::read_to_string(
            self.dir
                .path()
                .join(format!("lablink-data/agents/{hostname}.log")),
        )
        .unwrap_or_default()
    }

    /// The agents that run with their session directory in this allocator's working dir.
    fn running_agents(&self) -> Vec<i32> {
        let marker = format!("LABLINK_SESSION_DIR={}", self.dir.path().display());
        std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                // A zombie (state Z) has exited; it counts separately below.
                let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                !stat.contains(") Z ")
                    && environ
                        .split(|b| *b == 0)
                        .any(|entry| entry.starts_with(marker.as_bytes()))
            })
            .collect()
    }

    fn stop(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running {STOP_TIMEOUT:?} after SIGTERM:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Newcomer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in self.running_agents() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// The VMs as the admin API lists them.
async fn listed_vms(password: &str) -> Vec<serde_json::Value> {
    reqwest::Client::new()
        .get(format!("{README_URL}/api/admin/vms"))
        .basic_auth("admin", Some(password))
        .send()
        .await
        .expect("list VMs")
        .json()
        .await
        .expect("a list of VMs")
}

/// The VMs as the admin API lists them: `(hostname, state)`.
async fn vm_states(password: &str) -> Vec<(String, String)> {
    listed_vms(password)
        .await
        .iter()
        .map(|vm| {
            (
                vm["hostname"].as_str().unwrap_or_default().to_owned(),
                vm["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// How the participant gets the desktop in a walk.
enum DesktopMode {
    /// The default: a Chrome Remote Desktop command (the local agents log what they would do).
    ChromeRemoteDesktop,
    /// `desktop.mode: browser`, the local agents joined to a real VNC server at this address.
    Browser(String),
}

#[actix_web::test]
async fn newcomer_path_the_readme_run_command_gives_a_working_lab() {
    walk(DesktopMode::ChromeRemoteDesktop).await;
}

#[actix_web::test]
async fn newcomer_path_with_the_browser_desktop() {
    let desktop = VncDesktop::start();
    walk(DesktopMode::Browser(desktop.addr.to_string())).await;
    drop(desktop);
}

/// The canvas pixel at (40, 40) as `[r, g, b]`, or `null` before noVNC drew anything.
const CANVAS_PIXEL: &str = "(() => { const c = document.querySelector('#desktop_screen canvas'); \
    if (!c || c.width < 41) return null; \
    return Array.from(c.getContext('2d').getImageData(40, 40, 1, 1).data).slice(0, 3); })()";

async fn walk(mode: DesktopMode) {
    let _address = README_ADDRESS.lock().await;
    // The README's run command sets nothing; the browser desktop is one setting (and where
    // the VNC server is, which a real VM's image knows).
    let extra: Vec<(&str, &str)> = match &mode {
        DesktopMode::ChromeRemoteDesktop => Vec::new(),
        DesktopMode::Browser(addr) => vec![
            ("LABLINK__DESKTOP__MODE", "browser"),
            ("LABLINK__PROVIDER__LOCAL__VNC_ADDR", addr.as_str()),
        ],
    };
    let mut allocator = Newcomer::start(&extra);
    allocator.until_ready().await;
    let password = allocator.generated_password();
    assert!(
        allocator
            .dir
            .path()
            .join("lablink-data/lablink.sqlite")
            .is_file(),
        "the data lives under ./lablink-data"
    );

    // The admin signs in and creates 2 VMs on the dashboard.
    let admin = Browser::start().await;
    admin.goto(&format!("{README_URL}/admin")).await;
    admin.wait_for_path("/admin/login").await;
    admin.fill("#user", "admin").await;
    admin.fill("#password", &password).await;
    admin.click_and_load("form button[type=submit]").await;
    admin.wait_for_path("/admin").await;
    admin.fill("#count", "2").await;
    admin
        .click_and_load("form[action='/admin/vms/create'] button")
        .await;
    admin.wait_for_path("/admin/operations").await;
    admin
        .wait_until(
            "the creation succeeded",
            "Array.from(document.querySelectorAll('.status')).some(s => s.textContent === 'succeeded')",
        )
        .await;
    // Both become ready.
    let deadline = Instant::now() + READY_TIMEOUT;
    let states = loop {
        let states = vm_states(&password).await;
        if states.len() == 2 && states.iter().all(|(_, state)| state == "ready") {
            break states;
        }
        assert!(
            Instant::now() < deadline,
            "VMs not ready: {states:?}\nallocator:\n{}",
            allocator.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    admin.goto(&format!("{README_URL}/admin/operations")).await;
    let operation = admin.text("main").await;
    assert!(
        operation.contains("agent started and registered"),
        "the operation says what happened:\n{operation}"
    );

    // A participant, in a second browser, claims one on the start page.
    let participant = Browser::start().await;
    participant.goto(&format!("{README_URL}/")).await;
    participant.fill("#email", "newcomer@example.org").await;
    let hostname = match &mode {
        DesktopMode::ChromeRemoteDesktop => {
            participant
                .fill("#crd_command", &crd_command("newcomer1"))
                .await;
            participant.click_and_load("form button[type=submit]").await;
            let hostname = participant.text("#hostname").await;
            // Its agent got the assignment (the log desktop says it would start it now).
            let deadline = Instant::now() + READY_TIMEOUT;
            while !allocator
                .agent_log(&hostname)
                .contains("Chrome Remote Desktop would start now")
            {
                assert!(
                    Instant::now() < deadline,
                    "the agent of {hostname} never got the assignment:\n{}",
                    allocator.agent_log(&hostname)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            hostname
        }
        DesktopMode::Browser(_) => {
            participant.click_and_load("form button[type=submit]").await;
            participant.wait_for_path("/desktop").await;
            // The desktop reached through the agent's tunnel: the display's own pixels.
            let [r, g, b] = ROOT_RGB;
            participant
                .wait_until(
                    "the canvas shows the display's root window",
                    &format!("JSON.stringify({CANVAS_PIXEL}) === '[{r},{g},{b}]'"),
                )
                .await;
            listed_vms(&password)
                .await
                .iter()
                .find(|vm| vm["assigned_to"] == "newcomer@example.org")
                .and_then(|vm| vm["hostname"].as_str())
                .expect("the participant's VM")
                .to_owned()
        }
    };
    assert!(
        states.iter().any(|(name, _)| *name == hostname),
        "the participant got one of the VMs: {hostname}"
    );

    // The admin releases it from the dashboard.
    admin.goto(&format!("{README_URL}/admin")).await;
    admin
        .click_and_load(&format!(
            "button[formaction='/admin/vms/{hostname}/release']"
        ))
        .await;
    assert!(
        admin.text("[role=status]").await.contains("released"),
        "{}",
        admin.text("main").await
    );
    participant.quit().await;
    admin.quit().await;

    // SIGTERM: a prompt, clean stop that leaves no agent running.
    let asked = Instant::now();
    let status = allocator.stop();
    assert!(status.success(), "exit status {status}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "the stop took {:?}",
        asked.elapsed()
    );
    let left = allocator.running_agents();
    assert!(left.is_empty(), "agents still run: {left:?}");
    // Nothing of this normal hour is an error: not the redirect to the sign-in form, not the
    // agents told to come back during the stop.
    let output = allocator.output();
    let errors: Vec<&str> = output
        .lines()
        .filter(|line| line.contains("\"level\":\"ERROR\""))
        .collect();
    assert!(errors.is_empty(), "errors logged: {errors:#?}");
}
