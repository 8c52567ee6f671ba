//! Browser desktops: the agents' tunnels and the streams asked of them ([`links`]), the
//! bridge that joins a WebSocket to a stream ([`bridge`]), the cookie that opens one VM's
//! desktop ([`cookie`]) and the noVNC files served with the page ([`novnc`]).

pub mod bridge;
pub mod cookie;
pub mod links;
pub mod novnc;
pub mod view_only;

pub use links::{DesktopLinks, OpenError, StreamEnds};
