//! The agent's desktop tunnel: a WebSocket it keeps open to the allocator with its own token,
//! reconnecting with backoff, on which the allocator asks for desktop streams. Each stream is
//! dialled out as a WebSocket of its own and joined to the VNC server on the VM's loopback,
//! so no port of the VM is ever opened for the desktop.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use lablink_schema::backoff::Backoff;
use lablink_schema::wire::{StreamControl, TunnelCommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::allocator_client::{AllocatorClient, CallError};
use crate::session_figures::SessionTally;
use crate::vnc_auth::VncPassword;

mod rfb_handshake;

/// Bytes read from the VNC server per frame sent: large enough for full speed, small enough
/// that the allocator holds little of a stream at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Why the tunnel or a stream ended.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("{0}")]
    Call(#[from] CallError),
    #[error("the WebSocket failed: {0}")]
    Socket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("the browser left during the RFB handshake")]
    BrowserLeft,
    #[error("the VNC server at {addr}: {source}")]
    Vnc {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Keeps the tunnel up for as long as the agent runs.
#[derive(Debug, Clone)]
pub struct DesktopTunnel {
    client: AllocatorClient,
    vnc_addr: SocketAddr,
    backoff: Backoff,
    /// The participant's journey: a browser desktop that opens is the desktop being up.
    session: Option<Arc<SessionTally>>,
    /// The VNC server's password, when it has one: the agent authenticates each stream.
    vnc_password: Option<Arc<VncPassword>>,
}

impl DesktopTunnel {
    pub fn new(client: AllocatorClient, vnc_addr: SocketAddr, backoff: Backoff) -> Self {
        DesktopTunnel {
            client,
            vnc_addr,
            backoff,
            session: None,
            vnc_password: None,
        }
    }

    /// Authenticates each stream to the VNC server with `vnc_password`'s current password.
    pub fn authenticating(mut self, vnc_password: Option<Arc<VncPassword>>) -> Self {
        self.vnc_password = vnc_password;
        self
    }

    /// Counts each opened stream as the session's desktop being up.
    pub fn tallying(mut self, session: Arc<SessionTally>) -> Self {
        self.session = Some(session);
        self
    }

    /// Runs forever: waits for the VM's token, then holds the tunnel, reconnecting after
    /// every loss with backoff (reset once a tunnel was up).
    pub async fn run(mut self) {
        self.client.until_registered().await;
        loop {
            match self.hold().await {
                Ok(()) => {
                    tracing::info!("desktop tunnel closed by the allocator; reconnecting");
                    self.backoff.reset();
                }
                Err(err) => tracing::warn!(%err, "desktop tunnel lost"),
            }
            tokio::time::sleep(self.backoff.next_delay()).await;
        }
    }

    /// One tunnel, until it ends.
    async fn hold(&mut self) -> Result<(), TunnelError> {
        let path = TunnelCommand::tunnel_path(self.client.hostname());
        let upgraded = self.client.open_websocket(&path).await?;
        let mut socket = WebSocketStream::from_raw_socket(upgraded, Role::Client, None).await;
        tracing::info!("desktop tunnel up");
        self.backoff.reset();
        while let Some(message) = socket.next().await {
            match message? {
                Message::Text(text) => match serde_json::from_str::<TunnelCommand>(&text) {
                    Ok(TunnelCommand::OpenStream { stream, window }) => {
                        let (client, vnc_addr) = (self.client.clone(), self.vnc_addr);
                        let session = self.session.clone();
                        let password = self.vnc_password.as_ref().and_then(|p| p.current());
                        tokio::spawn(async move {
                            let opened =
                                join_stream(client, vnc_addr, &stream, window, session, password);
                            if let Err(err) = opened.await {
                                tracing::warn!(%err, "desktop stream failed");
                            }
                        });
                    }
                    Err(err) => tracing::warn!(%err, "unknown command on the desktop tunnel"),
                },
                Message::Ping(bytes) => socket.send(Message::Pong(bytes)).await?,
                Message::Close(_) => break,
                _ => {}
            }
        }
        Ok(())
    }
}

/// Connects the VNC server first (no server, no stream), then dials the stream and joins
/// the two until either ends.
async fn join_stream(
    client: AllocatorClient,
    vnc_addr: SocketAddr,
    stream: &str,
    window: Option<u32>,
    session: Option<Arc<SessionTally>>,
    password: Option<[u8; 8]>,
) -> Result<(), TunnelError> {
    let mut vnc = TcpStream::connect(vnc_addr)
        .await
        .map_err(|source| TunnelError::Vnc {
            addr: vnc_addr,
            source,
        })?;
    vnc.set_nodelay(true).ok();
    if let Some(password) = &password {
        rfb_handshake::log_in(&mut vnc, password)
            .await
            .map_err(|source| TunnelError::Vnc {
                addr: vnc_addr,
                source,
            })?;
    }
    let upgraded = client
        .open_websocket(&TunnelCommand::stream_path(client.hostname(), stream))
        .await?;
    let mut socket = WebSocketStream::from_raw_socket(upgraded, Role::Client, None).await;
    // With the server logged in to, the browser is offered no security of its own; what it
    // sends after its choice (ClientInit) goes on to the server.
    let (early, greeted) = match password {
        Some(_) => {
            let greeted = rfb_handshake::greet_browser(&mut socket).await?;
            (greeted.early, greeted.sent)
        }
        None => (Vec::new(), 0),
    };
    // The greeting was sent from the window too.
    let window = window.map(|window| SendWindow::new(window as usize, greeted));
    tracing::info!("desktop stream open");
    if let Some(session) = session {
        session.desktop_seen(true);
    }
    relay(socket, vnc, vnc_addr, early, window).await
}

/// How much of the desktop the agent may still send before the allocator grants more: a
/// stream whose browser stopped reading then stops here, at the VNC socket, instead of
/// filling the allocator.
#[derive(Debug)]
struct SendWindow(Semaphore);

impl SendWindow {
    fn new(window: usize, spent: usize) -> Self {
        SendWindow(Semaphore::new(window.saturating_sub(spent)))
    }

    /// Waits until something may be sent: how much, at most `most`. The bytes are spent.
    async fn take(&self, most: usize) -> usize {
        let Ok(first) = self.0.acquire().await else {
            return 0;
        };
        first.forget();
        let more = self.0.available_permits().min(most - 1);
        if let Ok(rest) = self.0.try_acquire_many(more as u32) {
            rest.forget();
        }
        1 + more
    }

    /// Gives back what was taken and not sent, or what the allocator granted.
    fn give(&self, bytes: usize) {
        self.0
            .add_permits(bytes.min(Semaphore::MAX_PERMITS - self.0.available_permits()));
    }
}

/// Bytes both ways between the stream's WebSocket and the VNC connection.
async fn relay<S>(
    socket: WebSocketStream<S>,
    vnc: TcpStream,
    vnc_addr: SocketAddr,
    early: Vec<u8>,
    window: Option<SendWindow>,
) -> Result<(), TunnelError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let vnc_error = |source| TunnelError::Vnc {
        addr: vnc_addr,
        source,
    };
    let (mut to_allocator, mut from_allocator) = socket.split();
    let (mut from_vnc, mut to_vnc) = vnc.into_split();
    let upstream = async {
        let mut buffer = vec![0u8; READ_CHUNK];
        loop {
            let room = match &window {
                Some(window) => window.take(READ_CHUNK).await,
                None => READ_CHUNK,
            };
            let read = from_vnc
                .read(&mut buffer[..room])
                .await
                .map_err(vnc_error)?;
            if let Some(window) = &window {
                window.give(room - read);
            }
            if read == 0 {
                break;
            }
            to_allocator
                .send(Message::binary(buffer[..read].to_vec()))
                .await?;
        }
        to_allocator.close().await?;
        Ok::<(), TunnelError>(())
    };
    let downstream = async {
        to_vnc.write_all(&early).await.map_err(vnc_error)?;
        while let Some(message) = from_allocator.next().await {
            match message? {
                Message::Binary(bytes) => to_vnc.write_all(&bytes).await.map_err(vnc_error)?,
                Message::Text(text) => match serde_json::from_str::<StreamControl>(&text) {
                    Ok(StreamControl::Credit { bytes }) => {
                        if let Some(window) = &window {
                            window.give(bytes as usize);
                        }
                    }
                    Err(err) => tracing::warn!(%err, "unknown control on a desktop stream"),
                },
                Message::Close(_) => break,
                _ => {}
            }
        }
        to_vnc.shutdown().await.map_err(vnc_error)?;
        Ok::<(), TunnelError>(())
    };
    let ended = tokio::select! {
        ended = upstream => ended,
        ended = downstream => ended,
    };
    tracing::info!("desktop stream closed");
    ended
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_window_lets_through_what_was_granted_and_waits_for_more() {
        // 20 bytes of the window went on the RFB greeting.
        let window = SendWindow::new(100, 20);
        assert_eq!(window.take(READ_CHUNK).await, 80, "all that is left");
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            window.take(READ_CHUNK),
        );
        assert!(waiting.await.is_err(), "nothing is sent without a grant");
        window.give(30);
        assert_eq!(window.take(10).await, 10, "at most what a read can take");
        // A read that gave less hands the rest back.
        window.give(5);
        assert_eq!(window.take(READ_CHUNK).await, 25);
    }
}
