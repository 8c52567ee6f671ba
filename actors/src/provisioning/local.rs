//! The local provisioner, the default: each "VM" is an agent process started on this
//! machine, so a newcomer gets a working lab with no cloud and no Terraform. Agents run with
//! `LABLINK_DESKTOP=log` (no Chrome Remote Desktop here), log to `<dir>/<hostname>.log`, and
//! have `<dir>/<hostname>.session` as the session user's directory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use tokio::process::{Child, Command};

use super::{ProgressLine, ProgressSender, ProvisionError, Provisioner, VmSpec};

/// Starts agents as child processes.
#[derive(Debug, Clone)]
pub struct LocalAgents {
    /// The `lablink-client` program.
    pub agent_binary: PathBuf,
    /// Where each agent's log goes.
    pub log_dir: PathBuf,
    pub allocator_url: String,
    agents: Arc<Mutex<BTreeMap<String, Child>>>,
    /// The token each agent was started with, kept while its VM exists (also after the
    /// agent died), so a reboot starts it again as the same VM.
    tokens: Arc<Mutex<BTreeMap<String, Option<String>>>>,
}

impl LocalAgents {
    pub fn new(agent_binary: PathBuf, log_dir: PathBuf, allocator_url: String) -> Self {
        LocalAgents {
            agent_binary,
            log_dir,
            allocator_url,
            agents: Arc::default(),
            tokens: Arc::default(),
        }
    }

    /// The directory a VM's participant works in (`<log_dir>/<hostname>.session`), emptied
    /// by its agent after each session.
    pub fn session_dir(&self, hostname: &str) -> PathBuf {
        self.log_dir.join(format!("{hostname}.session"))
    }

    fn forget(&self, hostname: &str) {
        lock(&self.tokens).remove(hostname);
    }

    fn start_agent(&self, vm: &VmSpec) -> Result<Child, ProvisionError> {
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
            .env("VM_NAME", &vm.hostname)
            .env("LABLINK_DESKTOP", "log")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(errors)
            .kill_on_drop(true);
        if let Some(token) = &vm.token {
            command.env("LABLINK_VM_TOKEN", token);
        }
        let child = command.spawn().map_err(|err| {
            ProvisionError(format!(
                "cannot start the agent {} for {}: {err}",
                self.agent_binary.display(),
                vm.hostname
            ))
        })?;
        lock(&self.tokens).insert(vm.hostname.clone(), vm.token.clone());
        Ok(child)
    }

    fn running(&self) -> Vec<String> {
        let mut agents = self
            .agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget agents that exited on their own.
        agents.retain(|_, child| matches!(child.try_wait(), Ok(None)));
        agents.keys().cloned().collect()
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
            let mut agents = this
                .agents
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for hostname in running.iter().filter(|h| !wanted.contains_key(h.as_str())) {
                this.forget(hostname);
                if let Some(mut child) = agents.remove(hostname) {
                    let _ = child.start_kill();
                    let _ = progress.send(ProgressLine::info(format!("{hostname}: agent stopped")));
                }
            }
            let mut failure = None;
            for (hostname, vm) in &wanted {
                if agents.contains_key(*hostname) {
                    continue;
                }
                match this.start_agent(vm) {
                    Ok(child) => {
                        agents.insert((*hostname).to_owned(), child);
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
                None => Ok(agents.keys().cloned().collect()),
            }
        })
    }

    fn destroy_all(
        &self,
        progress: ProgressSender,
    ) -> BoxFuture<'static, Result<(), ProvisionError>> {
        let this = self.clone();
        Box::pin(async move {
            let mut agents = this
                .agents
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            lock(&this.tokens).clear();
            for (hostname, mut child) in std::mem::take(&mut *agents) {
                let _ = child.start_kill();
                let _ = progress.send(ProgressLine::info(format!("{hostname}: agent stopped")));
            }
            Ok(())
        })
    }

    fn provisioned(&self) -> BoxFuture<'static, Result<Vec<String>, ProvisionError>> {
        let names = self.running();
        Box::pin(async move { Ok(names) })
    }

    fn instance_ids(&self) -> BoxFuture<'static, Result<BTreeMap<String, String>, ProvisionError>> {
        // Only agents still running count (as in `provisioned`).
        let running = self.running();
        let agents = self
            .agents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ids: BTreeMap<String, String> = running
            .into_iter()
            .filter_map(|name| {
                let pid = agents.get(&name).and_then(Child::id)?;
                Some((name, format!("local-pid-{pid}")))
            })
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
            let old = lock(&this.agents).remove(&hostname);
            if let Some(mut child) = old {
                // Killing works on a stopped (SIGSTOP) agent too; waiting reaps it, so the
                // new agent never runs beside the old one.
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
            let child = this.start_agent(&VmSpec {
                hostname: hostname.clone(),
                token,
            })?;
            lock(&this.agents).insert(hostname, child);
            Ok(())
        }))
    }

    fn recover(&self) -> Result<(), ProvisionError> {
        // Agents are this process's children and die with it (kill on drop); a crashed
        // allocator's agents keep polling and are harmless until their VMs are destroyed.
        Ok(())
    }
}

/// The lock's data, also after a thread panicked holding it (the maps stay consistent:
/// every change is one insert or remove).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
