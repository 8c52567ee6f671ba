//! The agent's settings, read from the environment variables the original client images
//! set (`ALLOCATOR_URL`, `VM_NAME`, `SUBJECT_SOFTWARE`) plus the VM's own token.

use std::fmt;

/// Where the allocator is, e.g. `https://lablink.example.org`.
pub const ALLOCATOR_URL_ENV: &str = "ALLOCATOR_URL";
/// This VM's hostname as the allocator knows it.
pub const VM_NAME_ENV: &str = "VM_NAME";
/// The research software whose running process marks the VM as in use.
pub const SUBJECT_SOFTWARE_ENV: &str = "SUBJECT_SOFTWARE";
/// This VM's bearer token for the allocator; absent for legacy, token-less deployments.
pub const VM_TOKEN_ENV: &str = "LABLINK_VM_TOKEN";

/// What the agent needs to know to run.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentSettings {
    /// Base URL, without a trailing slash.
    pub allocator_url: String,
    pub vm_name: String,
    pub subject_software: Option<String>,
    pub token: Option<String>,
}

/// The token is a secret: debug output only says whether one is set.
impl fmt::Debug for AgentSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentSettings")
            .field("allocator_url", &self.allocator_url)
            .field("vm_name", &self.vm_name)
            .field("subject_software", &self.subject_software)
            .field("token_set", &self.token.is_some())
            .finish()
    }
}

/// A setting that is missing or unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub variable: &'static str,
    pub reason: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for SettingsError {}

impl AgentSettings {
    /// Reads the settings from `lookup` (the process environment in production).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let non_empty = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let allocator_url = non_empty(ALLOCATOR_URL_ENV).ok_or_else(|| SettingsError {
            variable: ALLOCATOR_URL_ENV,
            reason: "is not set".to_owned(),
        })?;
        // The original images sometimes produced `http://.host`; tolerate it as they did.
        let allocator_url = allocator_url
            .trim()
            .trim_end_matches('/')
            .replace("://.", "://");
        if !(allocator_url.starts_with("http://") || allocator_url.starts_with("https://")) {
            return Err(SettingsError {
                variable: ALLOCATOR_URL_ENV,
                reason: format!("`{allocator_url}` must start with http:// or https://"),
            });
        }
        let vm_name = non_empty(VM_NAME_ENV).ok_or_else(|| SettingsError {
            variable: VM_NAME_ENV,
            reason: "is not set".to_owned(),
        })?;
        Ok(AgentSettings {
            allocator_url,
            vm_name: vm_name.trim().to_owned(),
            subject_software: non_empty(SUBJECT_SOFTWARE_ENV),
            token: non_empty(VM_TOKEN_ENV),
        })
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn the_original_variables_are_read() {
        let settings = AgentSettings::from_lookup(lookup(&[
            ("ALLOCATOR_URL", "https://.lablink.example.org/"),
            ("VM_NAME", "lablink-vm-prod-1"),
            ("SUBJECT_SOFTWARE", "sleap"),
            ("LABLINK_VM_TOKEN", "tok-123"),
        ]))
        .expect("valid");
        assert_eq!(settings.allocator_url, "https://lablink.example.org");
        assert_eq!(settings.vm_name, "lablink-vm-prod-1");
        assert_eq!(settings.subject_software.as_deref(), Some("sleap"));
        assert!(!format!("{settings:?}").contains("tok-123"));
    }

    #[test]
    fn missing_or_malformed_settings_name_the_variable() {
        let err = AgentSettings::from_lookup(lookup(&[("VM_NAME", "vm")])).expect_err("no url");
        assert_eq!(err.variable, ALLOCATOR_URL_ENV);
        let err =
            AgentSettings::from_lookup(lookup(&[("ALLOCATOR_URL", "ftp://x"), ("VM_NAME", "vm")]))
                .expect_err("bad scheme");
        assert!(err.to_string().contains("ftp://x"));
        let err =
            AgentSettings::from_lookup(lookup(&[("ALLOCATOR_URL", "http://a"), ("VM_NAME", " ")]))
                .expect_err("blank name");
        assert_eq!(err.variable, VM_NAME_ENV);
    }
}
