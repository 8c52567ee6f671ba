//! Section `provider`: what creates and destroys the lab VMs (the local agents, or Terraform
//! with the optional AWS API), with its own checks.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Invalid;

/// Section `provider`: what creates and destroys the lab VMs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderConfig {
    /// `local`: agents started on this machine, no cloud and no Terraform (the default).
    /// `terraform`: the Terraform module in `provider.terraform.module_dir` (terraform/aws).
    pub kind: ProviderKind,
    /// New VMs are named `<name_prefix>-<n>`.
    pub name_prefix: String,
    /// Most VMs that may exist at once.
    pub max_vms: u32,
    /// The URL the VMs' agents use to reach this allocator. Unset: `http://<server.bind>`.
    pub allocator_url: Option<String>,
    pub local: LocalProviderConfig,
    pub terraform: TerraformProviderConfig,
    pub aws: AwsConfig,
}

/// Section `provider.aws`: the AWS API (needs a build with cargo feature `aws`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// Use the AWS API: check the instance type has an NVIDIA GPU before creating VMs,
    /// allow rebooting a VM, and show which credentials are in effect. Credentials come from
    /// the usual AWS sources (environment, profile, instance role).
    #[serde(deserialize_with = "figment::util::bool_from_str_or_int")]
    pub enabled: bool,
    /// AWS region. Unset: the usual AWS sources, else `provider.terraform.variables.region`.
    pub region: Option<String>,
    /// Another endpoint for the EC2 and STS APIs (a stand-in such as LocalStack).
    pub endpoint_url: Option<String>,
    /// Instance type VMs are created with. Unset: `provider.terraform.variables.instance_type`,
    /// else `g4dn.xlarge` (the module's default).
    pub instance_type: Option<String>,
    /// Refuse to create VMs on an instance type without an NVIDIA GPU (the client image
    /// needs one).
    #[serde(deserialize_with = "figment::util::bool_from_str_or_int")]
    pub require_gpu: bool,
}

impl Default for AwsConfig {
    fn default() -> Self {
        AwsConfig {
            enabled: false,
            region: None,
            endpoint_url: None,
            instance_type: None,
            require_gpu: true,
        }
    }
}

impl ProviderConfig {
    /// The instance type VMs are created with, when the AWS API is in use.
    pub fn instance_type(&self) -> String {
        self.aws
            .instance_type
            .clone()
            .or_else(|| self.terraform.variables.get("instance_type").cloned())
            .unwrap_or_else(|| "g4dn.xlarge".to_owned())
    }
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            kind: ProviderKind::Local,
            name_prefix: "lablink-vm-local".to_owned(),
            max_vms: 50,
            allocator_url: None,
            local: LocalProviderConfig::default(),
            terraform: TerraformProviderConfig::default(),
            aws: AwsConfig::default(),
        }
    }
}

/// Which provisioner creates VMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Local,
    Terraform,
}

/// Section `provider.local`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalProviderConfig {
    /// The agent program. Unset: `lablink-client` beside this executable, else on PATH.
    pub agent_binary: Option<PathBuf>,
    /// At a graceful stop (SIGTERM, ctrl-c), stop the agents and remove their VMs, so a
    /// try-out leaves nothing running. `false`: they keep running, and the next allocator
    /// adopts them (as it always does after a crash).
    #[serde(deserialize_with = "figment::util::bool_from_str_or_int")]
    pub stop_agents_on_exit: bool,
    /// Which programs the local agents count as the research software: a regular expression
    /// over a program's file name (the agents' `LABLINK_USAGE_PATTERN`). Unset: the agents'
    /// own setting (`SUBJECT_SOFTWARE`).
    pub software_pattern: Option<String>,
    /// The VNC server the local agents join browser desktops to (their `LABLINK_VNC_ADDR`), a
    /// loopback address with its port. Unset: the agents' default, `127.0.0.1:5901`.
    pub vnc_addr: Option<String>,
    /// That VNC server's password file, which the local agents rewrite with a new password at
    /// every assignment (their `LABLINK_VNC_PASSWORD_FILE`). Unset: the server has none.
    pub vnc_password_file: Option<PathBuf>,
}

impl Default for LocalProviderConfig {
    fn default() -> Self {
        LocalProviderConfig {
            agent_binary: None,
            stop_agents_on_exit: true,
            software_pattern: None,
            vnc_addr: None,
            vnc_password_file: None,
        }
    }
}

/// Section `provider.terraform`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TerraformProviderConfig {
    /// The `terraform` program.
    pub binary: PathBuf,
    /// The client-VM module to apply.
    pub module_dir: PathBuf,
    /// Working directory (module copy, `.terraform`, local state). Unset:
    /// `<database.data_dir>/terraform`.
    pub work_dir: Option<PathBuf>,
    /// Further module variables, passed as `TF_VAR_<name>` (e.g. `instance_type`).
    pub variables: std::collections::BTreeMap<String, String>,
}

impl Default for TerraformProviderConfig {
    fn default() -> Self {
        TerraformProviderConfig {
            binary: PathBuf::from("terraform"),
            module_dir: PathBuf::from("terraform/aws"),
            work_dir: None,
            variables: std::collections::BTreeMap::new(),
        }
    }
}

impl ProviderConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if self.aws.enabled && !cfg!(feature = "aws") {
            return Err(Invalid::new(
                "provider.aws.enabled",
                "this allocator was built without the `aws` feature (cargo build --features aws)",
            ));
        }
        if self.max_vms == 0 {
            return Err(Invalid::new("provider.max_vms", "must be at least 1"));
        }
        if !self
            .name_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
            || self.name_prefix.is_empty()
        {
            return Err(Invalid::new(
                "provider.name_prefix",
                "use letters, digits and `-` only",
            ));
        }
        if let Some(addr) = &self.local.vnc_addr {
            if !addr
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|addr| addr.ip().is_loopback())
            {
                return Err(Invalid::new(
                    "provider.local.vnc_addr",
                    "must be a loopback address with its port, such as 127.0.0.1:5901",
                ));
            }
        }
        if let Some(pattern) = &self.local.software_pattern {
            if let Err(err) = regex::Regex::new(pattern) {
                return Err(Invalid::new(
                    "provider.local.software_pattern",
                    format!("not a regular expression: {err}"),
                ));
            }
        }
        if let Some(url) = &self.allocator_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Invalid::new(
                    "provider.allocator_url",
                    "must start with http:// or https://",
                ));
            }
        }
        Ok(())
    }
}
