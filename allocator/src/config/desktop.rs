//! Section `desktop`: how participants reach their VM's desktop, Chrome Remote Desktop (the
//! original's flow) or the browser desktop relayed over the agent's outbound connection.

use serde::{Deserialize, Serialize};

/// How a participant reaches the desktop of the VM they were given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DesktopMode {
    /// The participant pastes a Chrome Remote Desktop command; the agent starts the host.
    #[default]
    Crd,
    /// The participant gives only an email and gets noVNC in the allocator's own page, relayed
    /// to the VM's loopback-only VNC server over the agent's tunnel.
    Browser,
}

impl DesktopMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DesktopMode::Crd => "crd",
            DesktopMode::Browser => "browser",
        }
    }
}

/// Section `desktop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DesktopConfig {
    /// `crd` or `browser`.
    pub mode: DesktopMode,
}
