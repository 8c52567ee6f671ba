//! Sections `admin` (the administrator's credentials and sign-in limits) and `clients` (how
//! VM agents are let in), each with its own checks.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::secret::Secret;
use super::Invalid;

/// Shortest admin password accepted.
pub const MIN_ADMIN_PASSWORD_LEN: usize = 12;

/// Section `admin`: the administrator's credentials.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The admin's user name for HTTP Basic authentication.
    pub user: String,
    /// The admin's password. There is no default: without one (and without `password_hash`),
    /// a password is generated at first start, printed once to the log and stored hashed.
    /// Never logged otherwise.
    pub password: Option<Secret>,
    /// The admin's password as an argon2 hash (PHC string), as `lablink-allocator
    /// hash-password` prints it: keeps the password itself out of configuration files.
    pub password_hash: Option<Secret>,
    /// How long a dashboard sign-in lasts, in seconds.
    pub session_ttl_secs: u64,
    /// Failed sign-ins from one address before it must wait…
    pub max_failed_logins: u32,
    /// …this many seconds.
    pub lockout_secs: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            user: "admin".to_owned(),
            password: None,
            password_hash: None,
            session_ttl_secs: 8 * 3600,
            max_failed_logins: 5,
            lockout_secs: 15 * 60,
        }
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("user", &self.user)
            .field("password_set", &self.password.is_some())
            .field("password_hash_set", &self.password_hash.is_some())
            .field("session_ttl_secs", &self.session_ttl_secs)
            .field("max_failed_logins", &self.max_failed_logins)
            .field("lockout_secs", &self.lockout_secs)
            .finish()
    }
}

impl AdminConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if self
            .password
            .as_deref()
            .is_some_and(|p| p.len() < MIN_ADMIN_PASSWORD_LEN)
        {
            return Err(Invalid::new(
                "admin.password",
                format!("must be at least {MIN_ADMIN_PASSWORD_LEN} characters"),
            ));
        }
        if self.password.is_some() && self.password_hash.is_some() {
            return Err(Invalid::new(
                "admin.password_hash",
                "set admin.password or admin.password_hash, not both",
            ));
        }
        if let Some(hash) = &self.password_hash {
            if !crate::auth::passwords::is_password_hash(hash) {
                return Err(Invalid::new(
                    "admin.password_hash",
                    "is not an argon2 hash; make one with `lablink-allocator hash-password`",
                ));
            }
        }
        if self.user.trim().is_empty() || self.user.contains(':') {
            return Err(Invalid::new(
                "admin.user",
                "must be non-empty and contain no `:`",
            ));
        }
        Ok(())
    }
}

/// Section `clients`: how VM agents are let in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientsConfig {
    /// Accept VM requests that carry no token, as the original LabLink agents send them.
    /// Off by default; turn on only while migrating old VM images.
    #[serde(deserialize_with = "figment::util::bool_from_str_or_int")]
    pub legacy_unauthenticated: bool,
    /// Largest log batch one VM may send in one request, in bytes of log text.
    pub max_log_bytes_per_batch: usize,
    /// Most log text one VM may send in a minute, in bytes; beyond it, 429.
    pub max_log_bytes_per_minute: usize,
}

impl Default for ClientsConfig {
    fn default() -> Self {
        ClientsConfig {
            legacy_unauthenticated: false,
            max_log_bytes_per_batch: 256 * 1024,
            max_log_bytes_per_minute: 1024 * 1024,
        }
    }
}

impl ClientsConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if self.max_log_bytes_per_batch == 0
            || self.max_log_bytes_per_minute < self.max_log_bytes_per_batch
        {
            return Err(Invalid::new(
                "clients.max_log_bytes_per_minute",
                "must be at least clients.max_log_bytes_per_batch, which must be at least 1",
            ));
        }
        Ok(())
    }
}
