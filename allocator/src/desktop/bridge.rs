//! Joins one WebSocket, a browser's or an agent's, to its side of a desktop stream: binary
//! frames in go to the other side, the other side's bytes go out as binary frames, exactly as
//! websockify carries RFB. Each direction is its own loop, so a side that is slow to read
//! holds back only what is sent to it. Either side ending, or `stop`, ends both.

use std::future::Future;

use actix_ws::{AggregatedMessage, AggregatedMessageStream};

use actix_web::web::Bytes;

use super::socket::FrameSender;
use super::view_only::ViewOnlyFilter;
use super::StreamEnds;

/// The largest frame accepted from either side. noVNC's frames are small; the agent sends
/// what one read of the VNC socket gives, at most 16 KiB.
pub const MAX_FRAME: usize = 64 * 1024;

/// How a bridged socket ended, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// This side closed or dropped its socket.
    ThisSide,
    /// The other side went away.
    OtherSide,
    /// `stop` fired (the assignment ended).
    Stopped,
}

/// Runs the bridge until the stream ends, then closes the socket. With `view_only`, what
/// this side sends passes through it first (an instructor's peek).
pub async fn run(
    session: FrameSender,
    messages: AggregatedMessageStream,
    ends: StreamEnds,
    stop: impl Future<Output = ()>,
    mut view_only: Option<ViewOnlyFilter>,
) -> Ended {
    let StreamEnds {
        mut incoming,
        outgoing,
    } = ends;
    let mut messages = messages;
    let replies = session.clone();
    let inbound = async move {
        while let Some(Ok(message)) = messages.recv().await {
            match message {
                AggregatedMessage::Binary(bytes) => {
                    let bytes = match view_only.as_mut().map(|filter| filter.feed(&bytes)) {
                        // A copy: the frame is a slice of the connection's read buffer, which
                        // it would keep whole for as long as it waits in the queue.
                        None => Bytes::copy_from_slice(&bytes),
                        Some(Ok(passed)) if passed.is_empty() => continue,
                        Some(Ok(passed)) => Bytes::from(passed),
                        Some(Err(err)) => {
                            tracing::warn!(%err, "view-only stream ended");
                            return Ended::ThisSide;
                        }
                    };
                    if outgoing.send(bytes).await.is_err() {
                        return Ended::OtherSide;
                    }
                }
                AggregatedMessage::Ping(bytes) => {
                    if replies.pong(&bytes).await.is_err() {
                        break;
                    }
                }
                AggregatedMessage::Close(_) => break,
                // RFB travels in binary frames only; anything else is not part of it.
                AggregatedMessage::Text(_) | AggregatedMessage::Pong(_) => {}
            }
        }
        Ended::ThisSide
    };
    let sender = session.clone();
    let outbound = async move {
        while let Some(bytes) = incoming.recv().await {
            if sender.binary(bytes).await.is_err() {
                return Ended::ThisSide;
            }
        }
        Ended::OtherSide
    };
    let ended = tokio::select! {
        ended = inbound => ended,
        ended = outbound => ended,
        () = stop => Ended::Stopped,
    };
    session.close().await;
    ended
}
