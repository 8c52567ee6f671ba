//! A `lablink-allocator` process started by a test: its JSON log read line by line, its
//! signals, its exit; and the admin API calls the process tests share.
#![allow(dead_code)] // each test crate uses its own part of it

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_lablink-allocator");
/// Generous limits for slow CI machines; the allocator starts in well under a second.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running allocator process whose stdout (JSON log lines) is collected.
pub struct Allocator {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Allocator {
    /// Starts the binary in `dir` with only `PATH` and `env` in its environment.
    pub fn start(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Allocator {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start the allocator binary");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Allocator {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a log line with `message` and returns it parsed.
    pub fn wait_for_log(&mut self, message: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) {
                        if json["message"] == message {
                            return json;
                        }
                    }
                }
                Err(_) => panic!(
                    "no `{message}` log line within {timeout:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Returns its log line with `message`, whether logged already or within `timeout`.
    pub fn logged(&mut self, message: &str, timeout: Duration) -> serde_json::Value {
        let earlier = self.seen.iter().find_map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .filter(|json| json["message"] == message)
        });
        earlier.unwrap_or_else(|| self.wait_for_log(message, timeout))
    }

    /// Waits until it logs `listening` and returns the base URL it listens on.
    pub fn wait_until_listening(&mut self) -> String {
        let listening = self.wait_for_log("listening", START_TIMEOUT);
        format!(
            "http://{}",
            listening["address"].as_str().expect("address field")
        )
    }

    /// Everything it has logged so far.
    pub fn logs_so_far(&mut self) -> String {
        std::thread::sleep(Duration::from_millis(200));
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    pub fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the allocator did not stop within {STOP_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Allocator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Operation `id` as the admin API at `base` shows it.
pub async fn operation_as(
    client: reqwest::Client,
    base: String,
    password: &str,
    id: i64,
) -> serde_json::Value {
    client
        .get(format!("{base}/api/admin/operations/{id}"))
        .basic_auth("admin", Some(password))
        .send()
        .await
        .expect("request")
        .json::<serde_json::Value>()
        .await
        .expect("json")
}
