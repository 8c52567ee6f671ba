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
//!
//! An agent that exits on its own is noticed at once ([`watch`]): a new one fails its
//! creation with its exit status and last log lines; one that ran is reported through
//! [`LocalAgents::reporting_exits_to`], so its VM leaves the pool within a second.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use tokio::process::Command;
use tokio::sync::mpsc;

use super::{ProgressLine, ProgressSender, ProvisionError, Provisioner, Recovered, VmSpec};

mod agent_process;
pub mod exit_recorder;
mod watch;

pub use watch::AgentExit;
use watch::{FirstReport, Watch};

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
    /// The agents' exits, watched: each child is reaped the moment it exits (and, unless the
    /// agents are to outlive this process, killed when its runtime goes away without a
    /// graceful stop, as in a test).
    watch: Arc<Watch>,
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
            watch: Arc::default(),
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

    /// Agents that exit on their own (not destroyed, rebooted or stopped by this provider)
    /// are reported on `exits`, with their status and last log lines. Set before any agent
    /// starts.
    #[must_use]
    pub fn reporting_exits_to(mut self, exits: mpsc::UnboundedSender<AgentExit>) -> Self {
        self.watch = Arc::new(Watch {
            exits: Some(exits),
            ..Watch::default()
        });
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

    /// Where the agent of `hostname` logs.
    fn log_file(&self, hostname: &str) -> PathBuf {
        self.log_dir.join(format!("{hostname}.log"))
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
            .open(self.log_file(&vm.hostname))
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
        // A pid that is gone already is still in /proc (a zombie) until the watcher reaps it.
        let agent = child.id().and_then(AgentPid::of).ok_or_else(|| {
            fail(
                "cannot see the agent's process",
                std::io::Error::other("gone"),
            )
        })?;
        watch::watch_child(
            self.watch.clone(),
            self.log_file(&vm.hostname),
            vm.hostname.clone(),
            agent,
            child,
        );
        agent_process::record(&self.log_dir, &vm.hostname, agent)
            .map_err(|e| fail("cannot record the agent's pid", e))?;
        lock(&self.tokens).insert(vm.hostname.clone(), vm.token.clone());
        Ok(())
    }

    /// Starts the agents of `new` and waits until each has reported to the allocator or has
    /// exited; an agent that exited is cleaned away (its log stays) and fails the run.
    async fn start_and_confirm(
        &self,
        new: &[&VmSpec],
        progress: &ProgressSender,
    ) -> Option<ProvisionError> {
        let mut failure = None;
        let mut started = Vec::new();
        for vm in new {
            lock(&self.watch.confirming).insert(vm.hostname.clone());
            lock(&self.watch.exited).remove(&vm.hostname);
            match self.start_agent(vm) {
                Ok(()) => started.push(vm.hostname.clone()),
                Err(err) => {
                    lock(&self.watch.confirming).remove(&vm.hostname);
                    let _ = progress.send(ProgressLine::error(err.to_string()));
                    failure = Some(err);
                }
            }
        }
        let outcomes = futures_util::future::join_all(started.iter().map(|hostname| async move {
            let log = self.log_file(hostname);
            (
                hostname,
                watch::first_report(&self.watch, &log, hostname).await,
            )
        }))
        .await;
        for (hostname, outcome) in outcomes {
            lock(&self.watch.confirming).remove(hostname);
            match outcome {
                FirstReport::Registered => {
                    let _ = progress.send(ProgressLine::info(format!(
                        "{hostname}: agent started and registered"
                    )));
                }
                FirstReport::NotYet => {
                    let _ = progress.send(ProgressLine::info(format!(
                        "{hostname}: agent started; it has not reported in {} s, and its VM \
                         stays booting until it does",
                        watch::REGISTRATION_PATIENCE.as_secs()
                    )));
                }
                FirstReport::Exited(exit) => {
                    // The VM stays, as a cloud VM whose agent crashed would: out of the pool
                    // with the agent's words as its reason, until it is rebooted, replaced or
                    // destroyed.
                    self.watch.report(&exit);
                    let err = ProvisionError(format!("{hostname}: {}", exit.reason()));
                    let _ = progress.send(ProgressLine::error(err.to_string()));
                    failure = Some(err);
                }
            }
        }
        failure
    }

    /// The agents that run now, started by this process or adopted, by hostname.
    fn running(&self) -> BTreeMap<String, AgentPid> {
        agent_process::recorded(&self.log_dir)
            .into_iter()
            .filter(|(_, agent)| agent.is_running())
            .collect()
    }

    /// Every VM this provider has, its agent running or dead.
    fn recorded_names(&self) -> Vec<String> {
        agent_process::recorded(&self.log_dir)
            .into_iter()
            .map(|(hostname, _)| hostname)
            .collect()
    }

    /// Destroys `hostname`'s VM: its agent is killed and gone, and its records forgotten.
    async fn stop_agent(
        &self,
        hostname: &str,
        agent: Option<AgentPid>,
    ) -> Result<(), ProvisionError> {
        if let Some(agent) = agent {
            // Its exit is the provider's doing, not a fault to report.
            self.watch.intend_stop(agent);
            agent.stop().await.map_err(|err| {
                ProvisionError(format!("cannot stop the agent of {hostname}: {err}"))
            })?;
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
            let recorded = agent_process::recorded(&this.log_dir);
            let mut failure = None;
            // Destroyed first (running or dead), and only reported once their processes are gone.
            for (hostname, agent) in recorded
                .iter()
                .filter(|(h, _)| !wanted.contains_key(h.as_str()))
            {
                let running = agent.is_running().then_some(*agent);
                match this.stop_agent(hostname, running).await {
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
            // A name is never started twice: an agent of that name runs already. An existing
            // VM whose agent died is broken, not missing: its supervisor reboots or replaces it.
            let running = this.running();
            let known: BTreeSet<&str> = recorded.iter().map(|(h, _)| h.as_str()).collect();
            let new: Vec<&VmSpec> = wanted
                .iter()
                .filter(|(hostname, vm)| {
                    !running.contains_key(**hostname)
                        && (vm.token.is_some() || !known.contains(**hostname))
                })
                .map(|(_, vm)| *vm)
                .collect();
            if let Some(err) = this.start_and_confirm(&new, &progress).await {
                failure = Some(err);
            }
            match failure {
                Some(err) => Err(err),
                None => Ok(this.recorded_names()),
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
        // A VM whose agent died still exists (broken) until it is destroyed.
        let names = self.recorded_names();
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
            lock(&this.watch.exited).remove(&hostname);
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
        watch::watch_adopted(
            self.watch.clone(),
            self.log_dir.clone(),
            recovered.adopted.clone(),
        );
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
