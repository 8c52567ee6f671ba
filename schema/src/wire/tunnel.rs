//! The agent's desktop tunnel: what the allocator tells an agent over the WebSocket the agent
//! keeps open to `/api/agent/{hostname}/tunnel`. Bytes of a desktop never travel on it; each
//! desktop stream is a WebSocket of its own that the agent dials out when asked.

use serde::{Deserialize, Serialize};

/// A text frame from the allocator on the agent's tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TunnelCommand {
    /// A browser opened the desktop: dial `/api/agent/{hostname}/tunnel/{stream}` and join it
    /// to the VNC server on the VM's loopback.
    OpenStream {
        stream: String,
        /// When set, the most bytes of the desktop the agent may send on the stream before
        /// the allocator grants more with [`StreamControl::Credit`]: the allocator holds no
        /// more than this of a stream whose browser stopped reading. Unset (an older
        /// allocator): send as fast as the socket takes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<u32>,
    },
}

/// A text frame from the allocator on a desktop stream (its bytes travel in binary frames).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamControl {
    /// This many more bytes of the desktop may be sent: those sent before have left the
    /// allocator toward the browser.
    Credit { bytes: u32 },
}

impl TunnelCommand {
    /// The path under the allocator's base where the agent dials stream `stream`.
    pub fn stream_path(hostname: &str, stream: &str) -> String {
        format!("/api/agent/{hostname}/tunnel/{stream}")
    }

    /// The path of the tunnel itself.
    pub fn tunnel_path(hostname: &str) -> String {
        format!("/api/agent/{hostname}/tunnel")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_tagged_json() {
        let open = TunnelCommand::OpenStream {
            stream: "abc".to_owned(),
            window: None,
        };
        let text = serde_json::to_string(&open).expect("json");
        assert_eq!(text, r#"{"type":"open_stream","stream":"abc"}"#);
        assert_eq!(
            serde_json::from_str::<TunnelCommand>(&text).expect("parse"),
            open
        );
        let windowed = TunnelCommand::OpenStream {
            stream: "abc".to_owned(),
            window: Some(32_768),
        };
        let text = serde_json::to_string(&windowed).expect("json");
        assert_eq!(
            text,
            r#"{"type":"open_stream","stream":"abc","window":32768}"#
        );
        assert_eq!(
            serde_json::from_str::<TunnelCommand>(&text).expect("parse"),
            windowed
        );
        let credit = StreamControl::Credit { bytes: 16_384 };
        let text = serde_json::to_string(&credit).expect("json");
        assert_eq!(text, r#"{"type":"credit","bytes":16384}"#);
        assert_eq!(
            serde_json::from_str::<StreamControl>(&text).expect("parse"),
            credit
        );
    }
}
