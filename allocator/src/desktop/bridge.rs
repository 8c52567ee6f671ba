//! Joins one WebSocket, a browser's or an agent's, to its side of a desktop stream: binary
//! frames in go to the other side, the other side's bytes go out as binary frames, exactly as
//! websockify carries RFB. Each direction is its own loop, so a side that is slow to read
//! holds back only what is sent to it. Toward the agent, the bytes granted back to it go
//! too, as text frames ([`super::credit`]). Either side ending, or `stop`, ends both.

use std::future::Future;

use actix_ws::{AggregatedMessage, AggregatedMessageStream};

use actix_web::web::Bytes;
use lablink_schema::wire::StreamControl;

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

/// Whom a bridged socket faces.
#[derive(Debug)]
pub enum Faces {
    /// A browser: the participant's page, or, through the filter, an instructor's view. Its
    /// connection grants the bytes it takes back to the agent (see
    /// [`super::socket::accept`]).
    Browser(Option<ViewOnlyFilter>),
    /// The agent, or another allocator for it: it is told the grants.
    Agent,
}

/// Runs the bridge until the stream ends, then closes the socket.
pub async fn run(
    session: FrameSender,
    messages: AggregatedMessageStream,
    ends: StreamEnds,
    stop: impl Future<Output = ()>,
    faces: Faces,
) -> Ended {
    let StreamEnds {
        mut incoming,
        outgoing,
        credits,
    } = ends;
    let (mut view_only, tells_grants) = match faces {
        Faces::Browser(view_only) => (view_only, false),
        Faces::Agent => (None, true),
    };
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
        loop {
            let granted = async {
                if tells_grants {
                    credits.granted().await
                } else {
                    std::future::pending().await
                }
            };
            let sent = tokio::select! {
                bytes = incoming.recv() => match bytes {
                    Some(bytes) => sender.binary(bytes).await,
                    None => return Ended::OtherSide,
                },
                bytes = granted => {
                    let credit = StreamControl::Credit { bytes };
                    let text = serde_json::to_string(&credit).unwrap_or_default();
                    sender.text(text).await
                }
            };
            if sent.is_err() {
                return Ended::ThisSide;
            }
        }
    };
    let ended = tokio::select! {
        ended = inbound => ended,
        ended = outbound => ended,
        () = stop => Ended::Stopped,
    };
    session.close().await;
    ended
}
