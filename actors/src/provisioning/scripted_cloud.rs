//! [`ScriptedCloud`]: a stand-in for the cloud's API that answers from a script and records
//! reboots. Built only for tests (cargo feature `test-support`), never into a release.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;

use super::cloud::{CloudApi, CloudError, CloudIdentity};

/// A cloud that answers from a script and records reboots; for tests.
#[derive(Debug, Clone, Default)]
pub struct ScriptedCloud {
    pub identity: Option<CloudIdentity>,
    /// Instance types that have an NVIDIA GPU; others do not.
    pub gpu_types: BTreeSet<String>,
    rebooted: Arc<Mutex<Vec<String>>>,
}

impl ScriptedCloud {
    /// A cloud whose credentials belong to `identity` and whose GPU types are `gpu_types`.
    pub fn new(identity: Option<CloudIdentity>, gpu_types: &[&str]) -> Self {
        ScriptedCloud {
            identity,
            gpu_types: gpu_types.iter().map(|t| (*t).to_owned()).collect(),
            rebooted: Arc::default(),
        }
    }

    /// Instances rebooted so far.
    pub fn rebooted(&self) -> Vec<String> {
        self.rebooted.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl CloudApi for ScriptedCloud {
    fn identity(&self) -> BoxFuture<'static, Result<CloudIdentity, CloudError>> {
        let identity = self
            .identity
            .clone()
            .ok_or_else(|| CloudError("no credentials".to_owned()));
        Box::pin(async move { identity })
    }

    fn has_nvidia_gpu(&self, instance_type: &str) -> BoxFuture<'static, Result<bool, CloudError>> {
        let has = self.gpu_types.contains(instance_type);
        Box::pin(async move { Ok(has) })
    }

    fn reboot(&self, instance_id: &str) -> BoxFuture<'static, Result<(), CloudError>> {
        if let Ok(mut rebooted) = self.rebooted.lock() {
            rebooted.push(instance_id.to_owned());
        }
        Box::pin(async { Ok(()) })
    }
}
