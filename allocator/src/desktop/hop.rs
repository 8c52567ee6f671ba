//! The hop between two allocators: one desktop stream's bytes over a WebSocket that this
//! allocator dialled to the allocator awaiting the stream. Each direction is its own loop
//! with the same one-frame queues as the sockets it joins, and the grants of the browser's
//! allocator come back over it for the agent, so the window holds across the hop too.

use futures_util::{SinkExt, StreamExt};
use lablink_schema::wire::StreamControl;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::StreamEnds;

/// Carries `ends` over `socket` until either side ends, then closes the socket.
pub async fn carry<S>(socket: WebSocketStream<S>, ends: StreamEnds)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let StreamEnds {
        mut incoming,
        outgoing,
        credits,
    } = ends;
    let (mut to_peer, mut from_peer) = socket.split();
    let onward = async {
        while let Some(bytes) = incoming.recv().await {
            if to_peer.send(Message::Binary(bytes)).await.is_err() {
                break;
            }
        }
    };
    let back = async {
        while let Some(Ok(message)) = from_peer.next().await {
            let bytes = match message {
                Message::Binary(bytes) => bytes,
                // Grants from the allocator the browser is on, for the agent.
                Message::Text(text) => {
                    if let Ok(StreamControl::Credit { bytes }) = serde_json::from_str(&text) {
                        credits.grant(bytes as usize);
                    }
                    continue;
                }
                Message::Close(_) => break,
                // Pings are answered by the socket itself.
                _ => continue,
            };
            if outgoing.send(bytes).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        () = onward => {}
        () = back => {}
    }
    let _ = to_peer.close().await;
}
