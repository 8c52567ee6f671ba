//! A desktop WebSocket's sending half, with room for one frame. actix-ws's own session
//! queues 32 frames and hands the connection all of them at once. A browser that stopped
//! reading would then leave over a megabyte per stream in the allocator. Here the next frame
//! leaves the queue only when the connection asks for more of the body. It asks only while
//! its write buffer has room, so a slow reader holds back the sender instead. On a browser's
//! socket, that is also when the frame's bytes are granted back to the agent
//! ([`super::credit`]).

use std::sync::Arc;

use actix_codec::Encoder;
use actix_http::ws::{Codec, Message};
use actix_web::body::{BodyStream, MessageBody};
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use tokio::sync::mpsc;

use super::credit::Credits;

/// The socket has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Sends frames on one WebSocket; clones share the one-frame queue.
#[derive(Debug, Clone)]
pub struct FrameSender(mpsc::Sender<Message>);

impl FrameSender {
    async fn send(&self, message: Message) -> Result<(), Closed> {
        self.0.send(message).await.map_err(|_| Closed)
    }

    pub async fn binary(&self, bytes: Bytes) -> Result<(), Closed> {
        self.send(Message::Binary(bytes)).await
    }

    pub async fn text(&self, text: String) -> Result<(), Closed> {
        self.send(Message::Text(text.into())).await
    }

    pub async fn ping(&self) -> Result<(), Closed> {
        self.send(Message::Ping(Bytes::new())).await
    }

    pub async fn pong(&self, bytes: &[u8]) -> Result<(), Closed> {
        self.send(Message::Pong(Bytes::copy_from_slice(bytes)))
            .await
    }

    /// Sends a close frame; the body ends after it.
    pub async fn close(&self) {
        let _ = self.send(Message::Close(None)).await;
    }
}

/// Takes the request over as a WebSocket: the 101 answer, its sender and its frames. With
/// `credits` (a browser's socket), each binary frame's bytes are granted back to the agent
/// as the connection takes it.
pub fn accept(
    request: &HttpRequest,
    body: web::Payload,
    credits: Option<Arc<Credits>>,
) -> Result<(HttpResponse, FrameSender, actix_ws::MessageStream), actix_web::Error> {
    // actix-ws reads the frames (its reader has no queue of its own); its sending half is
    // replaced.
    let (_, _, messages) = actix_ws::handle(request, body)?;
    let mut answer = actix_http::ws::handshake(request.head())?;
    let (sender, queue) = mpsc::channel::<Message>(1);
    let frames = futures_util::stream::unfold(
        (queue, Codec::new(), false, credits),
        |(mut queue, mut codec, closed, credits)| async move {
            if closed {
                return None;
            }
            let message = queue.recv().await?;
            let closing = matches!(message, Message::Close(_));
            if let (Message::Binary(bytes), Some(credits)) = (&message, &credits) {
                credits.grant(bytes.len());
            }
            let mut encoded = BytesMut::new();
            let item = codec
                .encode(message, &mut encoded)
                .map(|()| encoded.freeze())
                .map_err(actix_web::Error::from);
            Some((item, (queue, codec, closing, credits)))
        },
    );
    let answer = answer.message_body(BodyStream::new(frames).boxed())?.into();
    Ok((answer, FrameSender(sender), messages))
}
