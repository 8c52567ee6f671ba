//! The hop between two allocators: one desktop stream's bytes over a WebSocket that this
//! allocator dialled to the allocator awaiting the stream. Each direction is its own loop
//! with the same one-frame queues as the sockets it joins, so a slow side holds the other
//! back across the hop too.

use futures_util::{SinkExt, StreamExt};
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
                Message::Close(_) => break,
                // Pings are answered by the socket itself; RFB is binary only.
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
