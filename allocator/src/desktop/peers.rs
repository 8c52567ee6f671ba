//! Browser desktops across allocators that share one database. The allocator a browser
//! reached may not be the one holding the VM agent's tunnel, and the agent's stream may be
//! dialled to a third. So each tunnel is listed in `desktop_tunnels` under a lease (and each
//! instructor's view in `desktop_views`, for the participant's page); the
//! browser's allocator asks the holder to ask the agent, and names itself in the stream's
//! id, signed; an allocator that receives a dial for a stream it is not awaiting relays it
//! to the allocator named there. Every call between allocators carries a proof keyed with
//! the deployment's own secret.

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::HttpRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lablink_schema::desktop_presence;
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
/// How often an allocator renews the tunnels and views it holds.
pub const TUNNEL_REFRESH: Duration = Duration::from_secs(20);
/// A tunnel's or view's row not renewed for this long is gone: its allocator died.
const FRESH_FOR: Duration = Duration::from_secs(60);
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
        if self.home.set(home.clone()).is_err() {
            tracing::warn!("the allocator's advertised address was set twice");
        }
        match home {
            Some(home) => tracing::info!(%home, "other allocators reach this one's desktops here"),
            None => tracing::info!(
                "server.advertise_url is unset and the listener is a wildcard address: browser \
                 desktops reach only the agents connected to this allocator"
            ),
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

    /// Lists `hostname`'s new tunnel `link_id` as held here.
    pub async fn tunnel_up(&self, state: &AppState, hostname: &str, link_id: &str) {
        let Some(home) = self.home().map(str::to_owned) else {
            return;
        };
        let (hostname, link_id) = (hostname.to_owned(), link_id.to_owned());
        let now = chrono::Utc::now().naive_utc();
        let listed = state
            .small_write(move |conn| desktop_presence::hold(conn, &hostname, &home, &link_id, now))
            .await;
        if let Err(err) = listed {
            tracing::warn!(%err, "cannot list the desktop tunnel for the other allocators");
        }
    }

    /// Takes `hostname`'s tunnel `link_id` off the list (a newer one stays).
    pub async fn tunnel_down(&self, state: &AppState, hostname: &str, link_id: &str) {
        if self.home().is_none() {
            return;
        }
        let (hostname, link_id) = (hostname.to_owned(), link_id.to_owned());
        let unlisted = state
            .small_write(move |conn| desktop_presence::let_go(conn, &hostname, &link_id))
            .await;
        if let Err(err) = unlisted {
            tracing::warn!(%err, "cannot take the desktop tunnel off the list");
        }
    }

    /// Lists an instructor's view `id` of `hostname`'s desktop, opened here.
    pub async fn view_opened(&self, state: &AppState, hostname: &str, id: &str) {
        let Some(home) = self.home().map(str::to_owned) else {
            return;
        };
        let (hostname, id) = (hostname.to_owned(), id.to_owned());
        let now = chrono::Utc::now().naive_utc();
        let listed = state
            .small_write(move |conn| {
                desktop_presence::view_opened(conn, &id, &hostname, &home, now)
            })
            .await;
        if let Err(err) = listed {
            tracing::warn!(%err, "cannot list the instructor's view for the other allocators");
        }
    }

    /// Takes view `id` off the list.
    pub async fn view_closed(&self, state: &AppState, id: &str) {
        if self.home().is_none() {
            return;
        }
        let id = id.to_owned();
        let unlisted = state
            .small_write(move |conn| desktop_presence::view_closed(conn, &id))
            .await;
        if let Err(err) = unlisted {
            tracing::warn!(%err, "cannot take the instructor's view off the list");
        }
    }

    /// Whether an instructor's view of `hostname` is open through any allocator.
    async fn is_viewed_anywhere(&self, state: &AppState, hostname: &str) -> bool {
        if self.home().is_none() {
            return false;
        }
        let hostname = hostname.to_owned();
        let fresh_after = fresh_after();
        match state
            .read(move |conn| desktop_presence::is_viewed(conn, &hostname, fresh_after))
            .await
        {
            Ok(viewed) => viewed,
            Err(err) => {
                tracing::warn!(%err, "cannot read whether a desktop is viewed");
                false
            }
        }
    }

    /// The other allocator holding `hostname`'s tunnel now, if any.
    async fn holder(&self, state: &AppState, hostname: &str) -> Option<String> {
        let hostname = hostname.to_owned();
        let fresh_after = fresh_after();
        match state
            .read(move |conn| desktop_presence::holder(conn, &hostname, fresh_after))
            .await
        {
            Ok(holder) => holder.filter(|holder| Some(holder.as_str()) != self.home()),
            Err(err) => {
                tracing::warn!(%err, "cannot read which allocator holds a desktop tunnel");
                None
            }
        }
    }

    /// Renews the tunnels and views held here until the allocator stops.
    pub async fn keep_listed(state: AppState) {
        let Some(home) = state.peers.home().map(str::to_owned) else {
            return;
        };
        let mut every = tokio::time::interval(TUNNEL_REFRESH);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = state.until_stopping() => return,
            }
            let home = home.clone();
            let now = chrono::Utc::now().naive_utc();
            let renewed = state
                .small_write(move |conn| desktop_presence::refresh(conn, &home, now))
                .await;
            if let Err(err) = renewed {
                tracing::warn!(%err, "cannot renew this allocator's desktop tunnels");
            }
        }
    }
}

/// Rows renewed after this are live.
fn fresh_after() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc() - chrono::Duration::from_std(FRESH_FOR).unwrap_or_default()
}

/// Whether an instructor is viewing `hostname`'s desktop, through this allocator or another.
pub async fn is_watched(state: &AppState, hostname: &str) -> bool {
    state.desktops.is_watched(hostname) || state.peers.is_viewed_anywhere(state, hostname).await
}

/// Whether `hostname`'s agent holds a tunnel to this allocator or to another one.
pub async fn is_reachable(state: &AppState, hostname: &str) -> bool {
    state.desktops.is_connected(hostname) || state.peers.holder(state, hostname).await.is_some()
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
    let Some(peer) = state.peers.holder(state, hostname).await else {
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
