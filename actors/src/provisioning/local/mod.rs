//! The local provisioner, the default: each "VM" is an agent process started on this
//! machine, so a newcomer gets a working lab with no cloud and no Terraform. Agents run with
//! `LABLINK_DESKTOP=log` (no Chrome Remote Desktop here), log to `<dir>/<hostname>.log`, and
//! have `<dir>/<hostname>.session` as the session user's directory; they ship their own log
//! and the research software's, `<session dir>/software.log`.
//!
//! The agents are the lab's VMs and outlive the allocator as VMs would: each leads its own
//! process group and is recorded in `<dir>/<hostname>.pid` ([`agent_process`]), so an
//! allocator started after any stop adopts the agents that still run and learns which died.
//! Whether a graceful stop of the allocator stops them too is the allocator's setting
//! (`provider.local.stop_agents_on_exit`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use tokio::process::{Child, Command};

use super::{ProgressLine, ProgressSender, ProvisionError, Provisioner, Recovered, VmSpec};

mod agent_process;

/// The research software's log in a VM's session directory, which its agent ships.
pub const SOFTWARE_LOG: &str = "software.log";

use agent_process::AgentPid;

/// Starts agents as processes of their own.
#[derive(Debug, Clone)]
pub struct LocalAgents {
    /// The `lablink-client` program.
    pub agent_binary: PathBuf,
    /// Where each agent's log, pid file and session directory are.
    pub log_dir: PathBuf,
    pub allocator_url: String,
    /// Agents this process started, kept to reap them when they exit, and, unless they are
    /// to outlive it, to kill them when it goes away without a graceful stop (a test).
    children: Arc<Mutex<BTreeMap<String, Child>>>,
    /// The token each agent was started with, kept while its VM exists (also after the
    /// agent died), so a reboot starts it again as the same VM.
    tokens: Arc<Mutex<BTreeMap<String, Option<String>>>>,
    /// Whether agents keep running when this process ends.
    outlive_allocator: bool,
    /// The agents' `LABLINK_USAGE_PATTERN`, when set.
    software_pattern: Option<String>,
    /// The agents' `LABLINK_VNC_ADDR`, when set.
    vnc_addr: Option<String>,
    /// The agents' `LABLINK_VNC_PASSWORD_FILE`, when set.
    vnc_password_file: Option<PathBuf>,
}

impl LocalAgents {
    pub fn new(agent_binary: PathBuf, log_dir: PathBuf, allocator_url: String) -> Self {
        LocalAgents {
            agent_binary,
            log_dir,
            allocator_url,
            children: Arc::default(),
            tokens: Arc::default(),
            outlive_allocator: false,
            software_pattern: None,
            vnc_addr: None,
            vnc_password_file: None,
        }
    }

    /// Agents started from now on count programs matching `pattern` (over the program's
    /// file name) as the research software.
    #[must_use]
    pub fn counting_as_software(mut self, pattern: Option<String>) -> Self {
        self.software_pattern = pattern;
        self
    }

    /// Agents started from now on join browser desktops to the VNC server at `addr` (on this
    /// machine's loopback), whose password file, if it has one, they rotate.
    #[must_use]
    pub fn with_vnc_at(mut self, addr: Option<String>, password_file: Option<PathBuf>) -> Self {
        self.vnc_addr = addr;
        self.vnc_password_file = password_file;
        self
    }

    /// Agents started from now on keep running when this process ends, however it ends
    /// (the next allocator adopts them). Without this they are killed when it drops them;
    /// after a crash (SIGKILL) they outlive it either way.
    #[must_use]
    pub fn outliving_the_allocator(mut self, outlive: bool) -> Self {
        self.outlive_allocator = outlive;
        self
    }

    /// The directory a VM's participant works in (`<log_dir>/<hostname>.session`), emptied
    /// by its agent after each session.
    pub fn session_dir(&self, hostname: &str) -> PathBuf {
        self.log_dir.join(format!("{hostname}.session"))
    }

    /// Where the agent of `hostname` keeps the log lines it has not shipped yet.
    fn spool_dir(&self, hostname: &str) -> PathBuf {
        self.log_dir.join(format!("{hostname}.spool"))
    }

    fn start_agent(&self, vm: &VmSpec) -> Result<(), ProvisionError> {
        let fail = |what: &str, err: std::io::Error| {
            ProvisionError(format!("{what} for {}: {err}", vm.hostname))
        };
        std::fs::create_dir_all(&self.log_dir)
            .map_err(|e| fail("cannot create the log directory", e))?;
        // Appended to, so a reboot keeps what the agent logged before it.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(format!("{}.log", vm.hostname)))
            .map_err(|e| fail("cannot create the agent log", e))?;
        let errors = log
            .try_clone()
            .map_err(|e| fail("cannot open the agent log", e))?;
        // The "session user's home": emptied by the agent after each session.
        let session_dir = self.session_dir(&vm.hostname);
        std::fs::create_dir_all(&session_dir)
            .map_err(|e| fail("cannot create the session directory", e))?;
        let mut command = Command::new(&self.agent_binary);
        command
            .env("ALLOCATOR_URL", &self.allocator_url)
            .env("LABLINK_SESSION_DIR", &session_dir)
            // Its disk: the log lines not shipped yet survive a restart of the agent.
            .env("LABLINK_LOG_SPOOL_DIR", self.spool_dir(&vm.hostname))
            // The research software's log, by convention in the session directory.
            .env(
                "LABLINK_LOG_FILES",
                format!("software={}", session_dir.join(SOFTWARE_LOG).display()),
            )
            .env("VM_NAME", &vm.hostname)
            .env("LABLINK_DESKTOP", "log")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(errors)
            // Its own group: a ctrl-c at the allocator's terminal does not reach it, and
            // destroying the VM ends everything the agent started.
            .process_group(0)
            .kill_on_drop(!self.outlive_allocator);
        if let Some(token) = &vm.token {
            command.env("LABLINK_VM_TOKEN", token);
        }
        if let Some(pattern) = &self.software_pattern {
            command.env("LABLINK_USAGE_PATTERN", pattern);
        }
        if let Some(addr) = &self.vnc_addr {
            command.env("LABLINK_VNC_ADDR", addr);
        }
        if let Some(file) = &self.vnc_password_file {
            command.env("LABLINK_VNC_PASSWORD_FILE", file);
        }
        let child = command.spawn().map_err(|err| {
            ProvisionError(format!(
                "cannot start the agent {} for {}: {err}",
                self.agent_binary.display(),
                vm.hostname
            ))
        })?;
        let recorded = child
            .id()
            .and_then(AgentPid::of)
            .ok_or_else(|| std::io::Error::other("it exited at once (see its log)"))
            .and_then(|agent| agent_process::record(&self.log_dir, &vm.hostname, agent));
        lock(&self.children).insert(vm.hostname.clone(), child);
        recorded.map_err(|e| fail("cannot record the agent's pid", e))?;
        lock(&self.tokens).insert(vm.hostname.clone(), vm.token.clone());
        Ok(())
    }

    /// The agents that run now, started by this process or adopted, by hostname.
    fn running(&self) -> BTreeMap<String, AgentPid> {
        // Reap the children that exited, so they do not linger as zombies.
        lock(&self.children).retain(|_, child| matches!(child.try_wait(), Ok(None)));
        agent_process::recorded(&self.log_dir)
            .into_iter()
            .filter(|(_, agent)| agent.is_running())
            .collect()
    }

    /// Destroys `hostname`'s VM: its agent is killed and gone, and its records forgotten.
    async fn stop_agent(
        &self,
        hostname: &str,
        agent: Option<AgentPid>,
    ) -> Result<(), ProvisionError> {
        let child = lock(&self.children).remove(hostname);
        if let Some(agent) = agent {
            agent.stop().await.map_err(|err| {
                ProvisionError(format!("cannot stop the agent of {hostname}: {err}"))
            })?;
        }
        if let Some(mut child) = child {
            // Killed above, or already gone; this reaps it.
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        agent_process::forget(&self.log_dir, hostname);
        // Gone with the VM's disk; a later VM of this name starts a new spool.
        let _ = std::fs::remove_dir_all(self.spool_dir(hostname));
        lock(&self.tokens).remove(hostname);
        Ok(())
    }

    /// Stops every agent (running or recorded as dead) and forgets them all; returns the
    /// hostnames whose VMs are gone now.
    pub async fn stop_all(&self, progress: &ProgressSender) -> Result<Vec<String>, ProvisionError> {
        let running = self.running();
        let recorded: BTreeSet<String> = agent_process::recorded(&self.log_dir)
            .into_iter()
            .map(|(hostname, _)| hostname)
            .chain(lock(&self.children).keys().cloned())
            .collect();
        let mut gone = Vec::new();
        let mut failure = None;
        for hostname in recorded {
            match self
                .stop_agent(&hostname, running.get(&hostname).copied())
                .await
            {
                Ok(()) => {
                    let _ = progress.send(ProgressLine::info(format!("{hostname}: agent stopped")));
                    gone.push(hostname);
                }
                Err(err) => {
                    let _ = progress.send(ProgressLine::error(err.to_string()));
                    failure = Some(err);
                }
            }
        }
        match failure {
            Some(err) => Err(err),
            None => Ok(gone),
        }
    }
}

impl Provisioner for LocalAgents {
    fn converge(
        &self,
        desired: Vec<VmSpec>,
        progress: ProgressSender,
    ) -> BoxFuture<'static, Result<Vec<String>, ProvisionError>> {
        let this = self.clone();
        Box::pin(async move {
            let wanted: BTreeMap<&str, &VmSpec> = desired
                .iter()
                .map(|vm| (vm.hostname.as_str(), vm))
                .collect();
            let running = this.running();
            let mut failure = None;
            // Destroyed first, and only reported once their processes are gone.
            for (hostname, agent) in running
                .iter()
                .filter(|(h, _)| !wanted.contains_key(h.as_str()))
            {
                match this.stop_agent(hostname, Some(*agent)).await {
                    Ok(()) => {
                        let _ =
                            progress.send(ProgressLine::info(format!("{hostname}: agent stopped")));
                    }
                    Err(err) => {
                        let _ = progress.send(ProgressLine::error(err.to_string()));
                        failure = Some(err);
                    }
                }
            }
            for (hostname, vm) in &wanted {
                // A name is never started twice: an agent of that name runs already.
                if running.contains_key(*hostname) {
                    continue;
                }
                match this.start_agent(vm) {
                    Ok(()) => {
                        let _ =
                            progress.send(ProgressLine::info(format!("{hostname}: agent started")));
                    }
                    Err(err) => {
                        let _ = progress.send(ProgressLine::error(err.to_string()));
                        failure = Some(err);
                    }
                }
            }
            match failure {
                Some(err) => Err(err),
                None => Ok(this.running().into_keys().collect()),
            }
        })
    }

    fn destroy_all(
        &self,
        progress: ProgressSender,
    ) -> BoxFuture<'static, Result<(), ProvisionError>> {
        let this = self.clone();
        Box::pin(async move { this.stop_all(&progress).await.map(|_| ()) })
    }

    fn provisioned(&self) -> BoxFuture<'static, Result<Vec<String>, ProvisionError>> {
        let names = self.running().into_keys().collect();
        Box::pin(async move { Ok(names) })
    }

    fn instance_ids(&self) -> BoxFuture<'static, Result<BTreeMap<String, String>, ProvisionError>> {
        let ids = self
            .running()
            .into_iter()
            .map(|(name, agent)| (name, format!("local-pid-{}", agent.pid)))
            .collect();
        Box::pin(async move { Ok(ids) })
    }

    fn reboot(&self, hostname: &str) -> Option<BoxFuture<'static, Result<(), ProvisionError>>> {
        let this = self.clone();
        let hostname = hostname.to_owned();
        Some(Box::pin(async move {
            let token = lock(&this.tokens)
                .get(&hostname)
                .cloned()
                .ok_or_else(|| ProvisionError(format!("no local agent is named {hostname}")))?;
            // Killing works on a stopped (SIGSTOP) agent too, and the new agent starts only
            // once the old one is gone, so the two never run side by side.
            let old = this.running().remove(&hostname);
            this.stop_agent(&hostname, old).await?;
            this.start_agent(&VmSpec {
                hostname,
                token,
                settings: Default::default(),
            })
        }))
    }

    fn recover(&self) -> Result<Recovered, ProvisionError> {
        let mut recovered = Recovered::default();
        for (hostname, agent) in agent_process::recorded(&self.log_dir) {
            if agent.is_running() {
                // Its token, so a reboot restarts it as the same VM; none readable, and a
                // reboot fails and the VM is replaced instead.
                lock(&self.tokens).insert(hostname.clone(), agent.token());
                recovered.adopted.push(hostname);
            } else {
                agent_process::forget(&self.log_dir, &hostname);
                recovered.gone.push(hostname);
            }
        }
        Ok(recovered)
    }
}

/// The lock's data, also after a thread panicked holding it (the maps stay consistent:
/// every change is one insert or remove).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
