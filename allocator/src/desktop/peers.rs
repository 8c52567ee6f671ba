//! Browser desktops across allocators that share one database. The allocator a browser
//! reached may not be the one holding the VM agent's tunnel (listed in the database, see
//! [`super::presence`]), and the agent's stream may be dialled to a third. So the browser's
//! allocator asks the holder to ask the agent, and names itself in the stream's id, signed;
//! an allocator that receives a dial for a stream it is not awaiting relays it to the
//! allocator named there. Every call between allocators carries a proof keyed with the
//! deployment's own secret.

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use super::bridge::MAX_FRAME;
use super::links::{OpenError, StreamEnds, STREAM_DIAL_TIMEOUT};
use crate::auth::{random_token, same, CookieSigner};
use crate::error::ApiError;
use crate::state::AppState;

/// The header that carries an allocator's proof on a call to another allocator.
pub const PEER_HEADER: &str = "x-lablink-peer";
/// Separates a stream id's parts; found in neither hex nor unpadded base64url.
const TICKET_SEPARATOR: char = '~';

/// What a call between allocators is for; each has its own proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerCall {
    /// "Ask your agent for this stream."
    Ask,
    /// "Here is the agent's side of the stream you await."
    Relay,
}

impl PeerCall {
    fn purpose(self) -> &'static str {
        match self {
            PeerCall::Ask => "desktop-ask",
            PeerCall::Relay => "desktop-relay",
        }
    }
}

/// The body of [`PeerCall::Ask`].
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StreamAsk {
    /// The stream's id, naming the allocator that awaits it.
    pub stream: String,
}

/// This allocator's place among its peers: where they reach it, and how calls are proved.
#[derive(Debug)]
pub struct DesktopPeers {
    /// Where the other allocators reach this one; unset until the listener is bound, and
    /// for good when it cannot be told (a wildcard address and no `server.advertise_url`).
    home: OnceLock<Option<String>>,
    signer: CookieSigner,
    http: reqwest::Client,
}

impl DesktopPeers {
    pub fn new(signer: CookieSigner) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        DesktopPeers {
            home: OnceLock::new(),
            signer,
            http,
        }
    }

    /// Sets where the other allocators reach this one (once, after binding).
    pub fn set_home(&self, home: Option<String>) {
        if let Some(home) = &home {
            tracing::info!(%home, "other allocators reach this one's desktops here");
        }
        if self.home.set(home).is_err() {
            tracing::warn!("the allocator's advertised address was set twice");
        }
    }

    /// Where the other allocators reach this one, if they can.
    pub fn home(&self) -> Option<&str> {
        self.home.get().and_then(Option::as_deref)
    }

    /// A new stream id. When other allocators can reach this one it names it, signed, so
    /// that whichever allocator the agent's dial reaches can relay it here.
    pub fn new_stream(&self) -> String {
        let nonce = random_token();
        match self.home() {
            None => nonce,
            Some(home) => {
                let home = URL_SAFE_NO_PAD.encode(home);
                let proof = self.signer.tag(&format!("desktop-stream\n{nonce}\n{home}"));
                format!("{nonce}{TICKET_SEPARATOR}{home}{TICKET_SEPARATOR}{proof}")
            }
        }
    }

    /// The other allocator that awaits `stream`: none for a plain id, one of this
    /// allocator's own, or one not signed by this deployment.
    pub fn awaited_elsewhere(&self, stream: &str) -> Option<String> {
        let mut parts = stream.split(TICKET_SEPARATOR);
        let (nonce, home, proof) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let expected = self.signer.tag(&format!("desktop-stream\n{nonce}\n{home}"));
        if !same(expected.as_bytes(), proof.as_bytes()) {
            return None;
        }
        let home = String::from_utf8(URL_SAFE_NO_PAD.decode(home).ok()?).ok()?;
        (self.home() != Some(home.as_str())).then_some(home)
    }

    fn proof(&self, call: PeerCall, hostname: &str, stream: &str) -> String {
        self.signer
            .tag(&format!("{}\n{hostname}\n{stream}", call.purpose()))
    }

    /// Refuses a call that does not come from an allocator of this deployment.
    pub fn check(
        &self,
        call: PeerCall,
        hostname: &str,
        stream: &str,
        request: &HttpRequest,
    ) -> Result<(), ApiError> {
        let given = request
            .headers()
            .get(PEER_HEADER)
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        if same(self.proof(call, hostname, stream).as_bytes(), given) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "only another allocator of this deployment makes this call".to_owned(),
            ))
        }
    }

    /// Asks the allocator at `peer`, which holds `hostname`'s tunnel, to ask its agent for
    /// `stream`.
    pub async fn ask(&self, peer: &str, hostname: &str, stream: &str) -> Result<(), OpenError> {
        let answer = self
            .http
            .post(format!("{peer}/api/internal/desktop/{hostname}/streams"))
            .header(PEER_HEADER, self.proof(PeerCall::Ask, hostname, stream))
            .timeout(STREAM_DIAL_TIMEOUT)
            .json(&StreamAsk {
                stream: stream.to_owned(),
            })
            .send()
            .await;
        match answer {
            Ok(answer) if answer.status().is_success() => Ok(()),
            Ok(answer) => {
                tracing::warn!(%peer, status = %answer.status(), "the tunnel's allocator did not ask its agent");
                Err(OpenError::AgentAway)
            }
            Err(err) => {
                tracing::warn!(%peer, %err, "cannot reach the allocator holding the tunnel");
                Err(OpenError::AgentAway)
            }
        }
    }

    /// Opens the relay of `stream` to the allocator at `peer`, which awaits it.
    pub async fn relay_to(
        &self,
        peer: &str,
        hostname: &str,
        stream: &str,
    ) -> Result<WebSocketStream<reqwest::Upgraded>, String> {
        use tokio_tungstenite::tungstenite::handshake::client::generate_key;
        use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
        let key = generate_key();
        let asked = self
            .http
            .get(format!(
                "{peer}/api/internal/desktop/{hostname}/streams/{stream}"
            ))
            .header(PEER_HEADER, self.proof(PeerCall::Relay, hostname, stream))
            .header(reqwest::header::CONNECTION, "Upgrade")
            .header(reqwest::header::UPGRADE, "websocket")
            .header(reqwest::header::SEC_WEBSOCKET_VERSION, "13")
            .header(reqwest::header::SEC_WEBSOCKET_KEY, &key)
            .send();
        let answer = tokio::time::timeout(STREAM_DIAL_TIMEOUT, asked)
            .await
            .map_err(|_| format!("{peer} did not answer in time"))?
            .map_err(|err| format!("cannot reach {peer}: {err}"))?;
        if answer.status() != reqwest::StatusCode::SWITCHING_PROTOCOLS {
            return Err(format!("{peer} answered {}", answer.status()));
        }
        let accepted = answer
            .headers()
            .get(reqwest::header::SEC_WEBSOCKET_ACCEPT)
            .and_then(|v| v.to_str().ok());
        if accepted != Some(derive_accept_key(key.as_bytes()).as_str()) {
            return Err(format!("{peer}'s WebSocket handshake does not match"));
        }
        let upgraded = answer
            .upgrade()
            .await
            .map_err(|err| format!("{peer}: {err}"))?;
        let config = WebSocketConfig::default()
            .max_frame_size(Some(MAX_FRAME))
            .max_message_size(Some(MAX_FRAME));
        Ok(WebSocketStream::from_raw_socket(upgraded, Role::Client, Some(config)).await)
    }
}

/// Opens a stream to `hostname`'s desktop: through its tunnel here, or through the
/// allocator that holds it.
pub async fn open_stream(state: &AppState, hostname: &str) -> Result<StreamEnds, OpenError> {
    if state.desktops.is_connected(hostname) {
        return state
            .desktops
            .open(hostname, state.peers.new_stream())
            .await;
    }
    let Some(peer) = super::presence::holder(state, hostname).await else {
        return Err(OpenError::AgentAway);
    };
    let stream = state.peers.new_stream();
    let ask = state.peers.ask(&peer, hostname, &stream);
    state
        .desktops
        .await_dial(hostname, stream.clone(), STREAM_DIAL_TIMEOUT, ask)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(home: Option<&str>) -> DesktopPeers {
        let peers = DesktopPeers::new(CookieSigner::new("deployment key"));
        peers.set_home(home.map(str::to_owned));
        peers
    }

    #[test]
    fn a_stream_names_its_allocator_and_only_this_deployment_can_say_so() {
        let here = peers(Some("http://10.0.0.1:5000"));
        let there = peers(Some("http://10.0.0.2:5000"));
        let stream = here.new_stream();
        assert_eq!(
            there.awaited_elsewhere(&stream).as_deref(),
            Some("http://10.0.0.1:5000")
        );
        assert_eq!(here.awaited_elsewhere(&stream), None, "its own stream");

        let forged = stream.replacen(
            &URL_SAFE_NO_PAD.encode("http://10.0.0.1:5000"),
            &URL_SAFE_NO_PAD.encode("http://evil.example"),
            1,
        );
        assert_ne!(forged, stream);
        assert_eq!(there.awaited_elsewhere(&forged), None, "an altered home");
        let other_deployment = DesktopPeers::new(CookieSigner::new("another key"));
        other_deployment.set_home(Some("http://10.0.0.3:5000".to_owned()));
        assert_eq!(other_deployment.awaited_elsewhere(&stream), None);
        assert_eq!(there.awaited_elsewhere("0123abcd"), None, "a plain id");
        assert_eq!(there.awaited_elsewhere(&format!("{stream}~x")), None);

        let alone = peers(None);
        let plain = alone.new_stream();
        assert!(!plain.contains(TICKET_SEPARATOR), "{plain}");
        assert!(
            stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_~".contains(c)),
            "fits a path segment as it is: {stream}"
        );
    }

    #[test]
    fn each_call_between_allocators_has_its_own_proof() {
        let here = peers(Some("http://10.0.0.1:5000"));
        let ask = here.proof(PeerCall::Ask, "vm-1", "s");
        assert_ne!(ask, here.proof(PeerCall::Relay, "vm-1", "s"));
        assert_ne!(ask, here.proof(PeerCall::Ask, "vm-2", "s"));
        assert_ne!(ask, here.proof(PeerCall::Ask, "vm-1", "t"));
    }
}
