//! Provisioners: what creates and destroys the lab VMs. The [`ProvisioningQueue`] queue
//! drives one of them: [`terraform::TerraformCli`] (a Terraform module, e.g. terraform/aws)
//! or [`local::LocalAgents`] (agents started on this machine, the default, no cloud).
//!
//! [`ProvisioningQueue`]: crate::provisioning_queue::ProvisioningQueue

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

pub mod cloud;
pub mod local;
#[cfg(any(test, feature = "test-support"))]
mod scripted_cloud;
pub mod terraform;

/// A VM that should exist. `token` is set only for VMs created by this run: existing VMs
/// keep running untouched.
#[derive(Clone, PartialEq, Eq)]
pub struct VmSpec {
    pub hostname: String,
    pub token: Option<String>,
    /// Provider variables of this VM's own (its workshop's), e.g. `instance_type`; empty
    /// for the provider's defaults.
    pub settings: std::collections::BTreeMap<String, String>,
}

impl std::fmt::Debug for VmSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmSpec")
            .field("hostname", &self.hostname)
            .field("new", &self.token.is_some())
            .field("settings", &self.settings)
            .finish()
    }
}

/// One line of a run's progress, as shown to the admin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProgressLine {
    /// `info`, `warn` or `error`.
    pub level: String,
    pub message: String,
}

impl ProgressLine {
    pub fn info(message: impl Into<String>) -> Self {
        ProgressLine {
            level: "info".to_owned(),
            message: message.into(),
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        ProgressLine {
            level: "error".to_owned(),
            message: message.into(),
        }
    }
}

/// Where a run reports its progress.
pub type ProgressSender = mpsc::UnboundedSender<ProgressLine>;

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProvisionError(pub String);

/// What a provider found at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// VMs a previous process made that still run, now this process's.
    pub adopted: Vec<String>,
    /// VMs a previous process made that are known to be gone (their rows go too).
    pub gone: Vec<String>,
}

/// Creates and destroys lab VMs.
pub trait Provisioner: Send + Sync + 'static {
    /// Makes exactly `desired` exist: creates the missing ones, destroys the others, and
    /// leaves existing ones untouched. Returns the hostnames that exist afterwards.
    fn converge(
        &self,
        desired: Vec<VmSpec>,
        progress: ProgressSender,
    ) -> BoxFuture<'static, Result<Vec<String>, ProvisionError>>;

    /// Destroys every VM.
    fn destroy_all(
        &self,
        progress: ProgressSender,
    ) -> BoxFuture<'static, Result<(), ProvisionError>>;

    /// The hostnames that exist now.
    fn provisioned(&self) -> BoxFuture<'static, Result<Vec<String>, ProvisionError>>;

    /// The provider's own id of each VM (the EC2 instance id on AWS), by hostname.
    fn instance_ids(
        &self,
    ) -> BoxFuture<'static, Result<std::collections::BTreeMap<String, String>, ProvisionError>>;

    /// At start-up, after any stop of a previous process: stops the runs it left behind and
    /// takes back the VMs that still run.
    fn recover(&self) -> Result<Recovered, ProvisionError>;

    /// Restarts one VM, if this provider can do that by itself (the local provider restarts
    /// the agent process); `None` when it cannot, and the cloud's API must (see
    /// [`ProvisioningQueue::with_cloud`](crate::provisioning_queue::ProvisioningQueue::with_cloud)).
    fn reboot(&self, hostname: &str) -> Option<BoxFuture<'static, Result<(), ProvisionError>>> {
        let _ = hostname;
        None
    }
}
