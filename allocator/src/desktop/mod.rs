//! Browser desktops: the agents' tunnels and the streams asked of them ([`links`]), the
//! bridge that joins a WebSocket to a stream ([`bridge`]), its flow control ([`credit`]), the cookie that opens one VM's
//! desktop ([`cookie`]), the noVNC files served with the page ([`novnc`]), a socket's sending
//! half that queues one frame ([`socket`]), the instructor's view-only filter
//! ([`view_only`]), and desktops across allocators ([`peers`], [`presence`], [`hop`]).

pub mod bridge;
pub mod cookie;
pub mod credit;
pub mod hop;
pub mod links;
pub mod novnc;
pub mod peers;
pub mod presence;
pub mod socket;
pub mod view_only;

pub use links::{DesktopLinks, OpenError, StreamEnds};
