//! The cloud's own API, for what Terraform does not do: who the allocator acts as, whether
//! an instance type has an NVIDIA GPU, rebooting a VM. The AWS implementation lives in the
//! allocator behind cargo feature `aws`; tests use `ScriptedCloud` (feature `test-support`).

use futures_util::future::BoxFuture;

#[cfg(any(test, feature = "test-support"))]
pub use super::scripted_cloud::ScriptedCloud;

/// Who the cloud credentials in effect belong to (never the secrets themselves).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CloudIdentity {
    pub account: String,
    pub arn: String,
}

/// A failed cloud call, with the cloud's own explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CloudError(pub String);

/// The calls LabLink makes to the cloud.
pub trait CloudApi: Send + Sync + 'static {
    /// The account and principal the credentials in effect belong to.
    fn identity(&self) -> BoxFuture<'static, Result<CloudIdentity, CloudError>>;
    /// Whether `instance_type` has at least one NVIDIA GPU.
    fn has_nvidia_gpu(&self, instance_type: &str) -> BoxFuture<'static, Result<bool, CloudError>>;
    /// Reboots the instance.
    fn reboot(&self, instance_id: &str) -> BoxFuture<'static, Result<(), CloudError>>;
}

impl std::fmt::Debug for dyn CloudApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CloudApi")
    }
}
