//! A lab of the local provider whose agents are a stand-in program that only runs (for
//! process tests that need VMs to exist, not to boot): real allocator processes on a fresh
//! PostgreSQL database and data directory, the agents read back from `/proc`, and the admin
//! API calls these tests share.
#![allow(dead_code)] // each test crate uses its own part of it

use std::path::Path;

use lablink_schema::testing::TestDatabase;
use lablink_schema::vms::Vm;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use super::allocator_process::Allocator;

pub const PASSWORD: &str = "local-agents-test-password";

/// An agent process of this test's lab, as `/proc` shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentProcess {
    pub pid: i32,
    pub hostname: String,
    pub token: String,
}

impl std::fmt::Debug for AgentProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of failure messages.
        write!(f, "{} (pid {})", self.hostname, self.pid)
    }
}

/// Every live agent process started for the lab in `dir` (its session directory lies
/// there), whoever started it.
pub fn agents_of(dir: &Path) -> Vec<AgentProcess> {
    let marker = format!("LABLINK_SESSION_DIR={}", dir.display());
    let mut agents: Vec<AgentProcess> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            if stat.rsplit_once(')')?.1.trim_start().starts_with('Z') {
                return None;
            }
            let vars: Vec<String> = environ
                .split(|b| *b == 0)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            if !vars.iter().any(|v| v.starts_with(&marker)) {
                return None;
            }
            let value = |name: &str| {
                vars.iter()
                    .find_map(|v| v.strip_prefix(&format!("{name}=")).map(str::to_owned))
            };
            Some(AgentProcess {
                pid,
                hostname: value("VM_NAME")?,
                token: value("LABLINK_VM_TOKEN").unwrap_or_default(),
            })
        })
        .collect();
    agents.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    agents
}

/// Kills whatever agents a failed test left behind.
pub struct NoAgentLeftBehind<'a>(pub &'a Path);

impl Drop for NoAgentLeftBehind<'_> {
    fn drop(&mut self) {
        for agent in agents_of(self.0) {
            let _ = kill(Pid::from_raw(agent.pid), Signal::SIGKILL);
        }
    }
}

pub struct Lab {
    pub dir: tempfile::TempDir,
    pub database: TestDatabase,
    pub agent: std::path::PathBuf,
    pub client: reqwest::Client,
}

impl Lab {
    pub fn new() -> Lab {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        // A stand-in agent: it runs until killed, holding the environment it was given. It
        // logs that it reached the allocator, as the real agent does, so that creations are
        // not held for a first report these tests do not need.
        let agent = dir.path().join("agent.sh");
        std::fs::write(
            &agent,
            format!(
                "#!/bin/sh\necho '{{\"message\":\"{}\"}}'\nexec sleep 600\n",
                lablink_schema::wire::FIRST_REPORT_LOGGED
            ),
        )
        .expect("agent script");
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Lab {
            dir,
            database: TestDatabase::migrated(),
            agent,
            client: reqwest::Client::new(),
        }
    }

    /// An allocator on the lab's database and data directory, `extra` added to its
    /// environment.
    pub fn allocator(&self, extra: &[(&str, &str)]) -> (Allocator, String) {
        let agent = self.agent.display().to_string();
        let data_dir = self.dir.path().join("data").display().to_string();
        let mut env = vec![
            ("DATABASE_URL", self.database.url()),
            ("LABLINK__DATABASE__DATA_DIR", data_dir.as_str()),
            ("LABLINK__SERVER__BIND", "127.0.0.1:0"),
            ("LABLINK__ADMIN__PASSWORD", PASSWORD),
            ("LABLINK__PROVIDER__LOCAL__AGENT_BINARY", agent.as_str()),
        ];
        env.extend_from_slice(extra);
        let mut allocator = Allocator::start(self.dir.path(), &[], &env);
        let base = allocator.wait_until_listening();
        (allocator, base)
    }

    pub fn agents(&self) -> Vec<AgentProcess> {
        agents_of(self.dir.path())
    }

    pub fn hostnames(&self) -> Vec<String> {
        let mut conn = self.database.connect();
        Vm::list_all(&mut conn)
            .expect("vms")
            .into_iter()
            .map(|vm| vm.hostname)
            .collect()
    }

    pub async fn admin_post(&self, base: &str, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{base}{path}"))
            .basic_auth("admin", Some(PASSWORD))
            .json(&body)
            .send()
            .await
            .expect("admin request")
    }
}
