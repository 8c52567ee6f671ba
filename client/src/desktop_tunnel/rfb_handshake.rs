//! The two halves of RFB's opening that the agent plays itself when the VNC server has a
//! password: logging in to the server with VNC authentication, and greeting the browser as
//! a server that asks for no security. After both, the stream is joined to the server as it
//! is, starting with the browser's ClientInit.

use std::io::{Error, ErrorKind};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::TunnelError;
use crate::vnc_auth::{challenge_response, NO_AUTH, VNC_AUTH};

const VERSION_3_8: &[u8; 12] = b"RFB 003.008\n";

fn refused(why: String) -> Error {
    Error::new(ErrorKind::PermissionDenied, why)
}

/// The reason a server gives with a failure: a length, then text.
async fn reason(vnc: &mut TcpStream) -> String {
    let Ok(length) = vnc.read_u32().await else {
        return "no reason given".to_owned();
    };
    let mut text = vec![0u8; length.min(1024) as usize];
    match vnc.read_exact(&mut text).await {
        Ok(_) => String::from_utf8_lossy(&text).into_owned(),
        Err(_) => "no reason given".to_owned(),
    }
}

/// Logs in to the VNC server with VNC authentication and `password`.
pub async fn log_in(vnc: &mut TcpStream, password: &[u8; 8]) -> std::io::Result<()> {
    let mut version = [0u8; 12];
    vnc.read_exact(&mut version).await?;
    if !version.starts_with(b"RFB 003.") || &version[8..11] < b"007".as_slice() {
        return Err(refused(format!(
            "the VNC server speaks {:?}; RFB 3.7 or later is needed",
            String::from_utf8_lossy(&version).trim()
        )));
    }
    vnc.write_all(VERSION_3_8).await?;
    let count = vnc.read_u8().await?;
    if count == 0 {
        return Err(refused(format!(
            "the VNC server refused: {}",
            reason(vnc).await
        )));
    }
    let mut types = vec![0u8; usize::from(count)];
    vnc.read_exact(&mut types).await?;
    if !types.contains(&VNC_AUTH) {
        return Err(refused(format!(
            "the VNC server does not offer VNC authentication (it offers {types:?}), yet \
             LABLINK_VNC_PASSWORD_FILE is set"
        )));
    }
    vnc.write_all(&[VNC_AUTH]).await?;
    let mut challenge = [0u8; 16];
    vnc.read_exact(&mut challenge).await?;
    vnc.write_all(&challenge_response(password, &challenge))
        .await?;
    if vnc.read_u32().await? != 0 {
        return Err(refused(format!(
            "the VNC server refused this session's password: {}",
            reason(vnc).await
        )));
    }
    Ok(())
}

/// Bytes from the browser's binary frames until `buffer` holds `count`.
async fn fill<S>(
    socket: &mut WebSocketStream<S>,
    buffer: &mut Vec<u8>,
    count: usize,
) -> Result<(), TunnelError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while buffer.len() < count {
        match socket.next().await {
            Some(Ok(Message::Binary(bytes))) => buffer.extend_from_slice(&bytes),
            Some(Ok(Message::Close(_))) | None => return Err(TunnelError::BrowserLeft),
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(err.into()),
        }
    }
    Ok(())
}

/// What greeting the browser left: what it sent past its security choice (its ClientInit,
/// perhaps more), for the server, and how many bytes the greeting sent it.
#[derive(Debug)]
pub struct Greeted {
    pub early: Vec<u8>,
    pub sent: usize,
}

/// Greets the browser as a server that needs no authentication.
pub async fn greet_browser<S>(socket: &mut WebSocketStream<S>) -> Result<Greeted, TunnelError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    socket.send(Message::binary(VERSION_3_8.to_vec())).await?;
    let mut sent = VERSION_3_8.len();
    let mut received = Vec::new();
    fill(socket, &mut received, 12).await?;
    let minor = received[8..11].to_vec();
    received.drain(..12);
    if minor.as_slice() < b"007".as_slice() {
        // 3.3: the server names the one security type.
        socket
            .send(Message::binary(u32::from(NO_AUTH).to_be_bytes().to_vec()))
            .await?;
        return Ok(Greeted {
            early: received,
            sent: sent + 4,
        });
    }
    socket.send(Message::binary(vec![1, NO_AUTH])).await?;
    sent += 2;
    fill(socket, &mut received, 1).await?;
    received.drain(..1);
    if minor.as_slice() >= b"008".as_slice() {
        socket.send(Message::binary(vec![0, 0, 0, 0])).await?;
        sent += 4;
    }
    Ok(Greeted {
        early: received,
        sent,
    })
}
