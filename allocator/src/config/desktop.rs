//! Section `desktop`: how participants reach their VM's desktop, Chrome Remote Desktop (the
//! original's flow) or the browser desktop relayed over the agent's outbound connection.

use serde::{Deserialize, Serialize};

pub use lablink_schema::wire::DesktopMode;

/// Section `desktop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DesktopConfig {
    /// `crd` or `browser`.
    pub mode: DesktopMode,
}
