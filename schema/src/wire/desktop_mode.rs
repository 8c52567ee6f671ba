//! How a participant reaches the desktop of the VM they were given: the allocator's
//! `desktop.mode`, and a workshop's own choice that overrides it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DesktopMode {
    /// The participant pastes a Chrome Remote Desktop command; the agent starts the host.
    #[default]
    Crd,
    /// The participant gives only an email and gets noVNC in the allocator's own page,
    /// relayed to the VM's loopback-only VNC server over the agent's tunnel.
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

impl std::str::FromStr for DesktopMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "crd" => Ok(DesktopMode::Crd),
            "browser" => Ok(DesktopMode::Browser),
            other => Err(format!(
                "`{other}` is not a desktop mode: use `crd` or `browser`"
            )),
        }
    }
}
