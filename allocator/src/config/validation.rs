//! Checking what types alone cannot: each section validates itself (its `validate`), and a
//! refusal is turned here into a [`ConfigError`] that names the key as its source spells it,
//! its value (hidden when the key holds a [`super::secret::Secret`]) and where it came from.

use figment::Figment;

use super::loading::{origin_key, origin_name, shown_value};
use super::secret::MASK;
use super::{Config, ConfigError};

/// A section's refusal of one of its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The dotted key: `server.body_timeout_secs`.
    pub key: &'static str,
    pub reason: String,
}

impl Invalid {
    pub fn new(key: &'static str, reason: impl Into<String>) -> Self {
        Invalid {
            key,
            reason: reason.into(),
        }
    }
}

impl Config {
    /// Every section's checks, in the order of the sections.
    pub(super) fn validate(&self, figment: &Figment) -> Result<(), ConfigError> {
        self.check_sections()
            .map_err(|invalid| self.explain_invalid(figment, invalid))
    }

    fn check_sections(&self) -> Result<(), Invalid> {
        self.server.validate()?;
        self.database.validate()?;
        self.admin.validate()?;
        self.clients.validate()?;
        self.provider.validate()?;
        self.log.validate()?;
        self.metrics.validate()?;
        self.rate_limits.validate()?;
        self.vm_logs.validate()?;
        self.workshops.validate()?;
        self.desktop.validate()?;
        self.notifications.validate()?;
        self.lifecycle.validate()
    }

    fn explain_invalid(&self, figment: &Figment, invalid: Invalid) -> ConfigError {
        let path: Vec<&str> = invalid.key.split('.').collect();
        let value = if self.holds_secret(&path) {
            "(hidden)".to_owned()
        } else {
            shown_value(figment, &path)
        };
        ConfigError::InvalidValue {
            key: origin_key(figment, &path),
            value,
            origin: origin_name(figment, &path),
            reason: invalid.reason,
        }
    }

    /// Whether the key at `path` is a secret that is set: one that serialises as the mask.
    fn holds_secret(&self, path: &[&str]) -> bool {
        let tree = serde_json::to_value(self).unwrap_or_default();
        let value = path.iter().try_fold(&tree, |node, key| node.get(key));
        value.and_then(|v| v.as_str()) == Some(MASK)
    }
}
