//! Section `desktop`: how participants reach their VM's desktop, Chrome Remote Desktop (the
//! original's flow) or the browser desktop relayed over the agent's outbound connection.

use serde::{Deserialize, Serialize};

pub use lablink_schema::wire::DesktopMode;

use super::Invalid;

/// Section `desktop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DesktopConfig {
    /// `crd` or `browser`.
    pub mode: DesktopMode,
    /// How long an admin who takes over a free VM holds it before it is released.
    pub take_over_secs: u32,
}

impl Default for DesktopConfig {
    fn default() -> Self {
        DesktopConfig {
            mode: DesktopMode::default(),
            take_over_secs: 1800,
        }
    }
}

impl DesktopConfig {
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if !(10..=86_400).contains(&self.take_over_secs) {
            return Err(Invalid::new(
                "desktop.take_over_secs",
                "between 10 and 86400 seconds",
            ));
        }
        Ok(())
    }
}
