//! Which agents hold a tunnel to this allocator, and the desktop streams asked of them that
//! they have not dialled back yet. A stream is a pair of small bounded queues, one each way,
//! so a slow browser or agent holds the other side back instead of filling memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix_web::web::Bytes;
use lablink_schema::wire::TunnelCommand;
use tokio::sync::{mpsc, oneshot};

use super::credit::{Credits, STREAM_WINDOW};

/// How long an agent has to dial a stream back once asked.
pub const STREAM_DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames queued each way per stream, between the two sockets' own one-frame queues.
const STREAM_QUEUE_FRAMES: usize = 1;
/// Commands queued for one agent's tunnel.
const COMMAND_QUEUE: usize = 16;

/// One side's view of a stream: what the other side sent, where to send to it, and the
/// bytes granted back to the agent.
#[derive(Debug)]
pub struct StreamEnds {
    pub incoming: mpsc::Receiver<Bytes>,
    pub outgoing: mpsc::Sender<Bytes>,
    pub credits: Arc<Credits>,
}

/// The two sides of a new stream: the browser's, then the agent's.
pub fn stream_pair() -> (StreamEnds, StreamEnds) {
    let (to_agent, from_browser) = mpsc::channel(STREAM_QUEUE_FRAMES);
    let (to_browser, from_agent) = mpsc::channel(STREAM_QUEUE_FRAMES);
    let credits = Arc::new(Credits::default());
    (
        StreamEnds {
            incoming: from_agent,
            outgoing: to_agent,
            credits: credits.clone(),
        },
        StreamEnds {
            incoming: from_browser,
            outgoing: to_browser,
            credits,
        },
    )
}

/// The command that asks an agent for `stream`, within the allocator's window.
fn open_command(stream: String) -> TunnelCommand {
    TunnelCommand::OpenStream {
        stream,
        window: Some(STREAM_WINDOW),
    }
}

/// Why a browser's stream could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the VM's agent is not connected to the allocator")]
    AgentAway,
    #[error("the VM's agent did not answer in time")]
    AgentSilent,
}

impl From<OpenError> for crate::error::ApiError {
    fn from(err: OpenError) -> Self {
        crate::error::ApiError::Unavailable(format!("{err}; try again shortly"))
    }
}

#[derive(Debug)]
struct AgentLink {
    id: u64,
    commands: mpsc::Sender<TunnelCommand>,
}

#[derive(Debug)]
struct Pending {
    hostname: String,
    agent_ends: StreamEnds,
    dialled: oneshot::Sender<()>,
}

/// Takes a pending stream off the list when dropped.
struct Unlist<'a> {
    pending: &'a Mutex<HashMap<String, Pending>>,
    stream: String,
}

impl Drop for Unlist<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.stream);
    }
}

/// The tunnels and pending streams of this allocator.
#[derive(Debug, Default)]
pub struct DesktopLinks {
    agents: Mutex<HashMap<String, AgentLink>>,
    pending: Mutex<HashMap<String, Pending>>,
    next_link: AtomicU64,
    /// Instructors' peeks open now, per VM.
    watchers: Arc<Mutex<HashMap<String, usize>>>,
}

/// An instructor's peek of one VM, counted while it lives.
#[derive(Debug)]
pub struct Watching {
    hostname: String,
    watchers: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut watchers = lock(&self.watchers);
        if let Some(count) = watchers.get_mut(&self.hostname) {
            *count -= 1;
            if *count == 0 {
                watchers.remove(&self.hostname);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each map stays valid whatever a panicking holder did.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DesktopLinks {
    /// An agent's tunnel is up: its id and the commands to send on it. A tunnel the VM held
    /// before is replaced (its queue closes, so its socket ends).
    pub fn agent_connected(&self, hostname: &str) -> (u64, mpsc::Receiver<TunnelCommand>) {
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        let (commands, receiver) = mpsc::channel(COMMAND_QUEUE);
        lock(&self.agents).insert(hostname.to_owned(), AgentLink { id, commands });
        (id, receiver)
    }

    /// Tunnel `id` of `hostname` ended; a newer one of the same VM stays.
    pub fn agent_gone(&self, hostname: &str, id: u64) {
        let mut agents = lock(&self.agents);
        if agents.get(hostname).is_some_and(|link| link.id == id) {
            agents.remove(hostname);
        }
    }

    /// Whether `hostname`'s agent holds a tunnel to this allocator now.
    pub fn is_connected(&self, hostname: &str) -> bool {
        lock(&self.agents)
            .get(hostname)
            .is_some_and(|link| !link.commands.is_closed())
    }

    /// Counts a peek of `hostname` until the value is dropped.
    pub fn watch(&self, hostname: &str) -> Watching {
        *lock(&self.watchers).entry(hostname.to_owned()).or_insert(0) += 1;
        Watching {
            hostname: hostname.to_owned(),
            watchers: self.watchers.clone(),
        }
    }

    /// Whether an instructor is viewing `hostname`'s desktop now (from this allocator).
    pub fn is_watched(&self, hostname: &str) -> bool {
        lock(&self.watchers).contains_key(hostname)
    }

    /// Asks `hostname`'s agent, whose tunnel is here, for `stream` and waits until it has
    /// dialled it back: the browser's ends of it.
    pub async fn open(&self, hostname: &str, stream: String) -> Result<StreamEnds, OpenError> {
        self.open_within(hostname, stream, STREAM_DIAL_TIMEOUT)
            .await
    }

    async fn open_within(
        &self,
        hostname: &str,
        stream: String,
        timeout: Duration,
    ) -> Result<StreamEnds, OpenError> {
        let commands = self.commands_of(hostname)?;
        let command = open_command(stream.clone());
        let ask = async move {
            commands
                .send_timeout(command, timeout)
                .await
                .map_err(|_| OpenError::AgentAway)
        };
        self.await_dial(hostname, stream, timeout, ask).await
    }

    fn commands_of(&self, hostname: &str) -> Result<mpsc::Sender<TunnelCommand>, OpenError> {
        lock(&self.agents)
            .get(hostname)
            .map(|link| link.commands.clone())
            .ok_or(OpenError::AgentAway)
    }

    /// Asks `hostname`'s agent, whose tunnel is here, for `stream`, which another allocator
    /// awaits; it returns once the agent has been asked.
    pub async fn ask_here(&self, hostname: &str, stream: String) -> Result<(), OpenError> {
        self.commands_of(hostname)?
            .send_timeout(open_command(stream), STREAM_DIAL_TIMEOUT)
            .await
            .map_err(|_| OpenError::AgentAway)
    }

    /// Lists `stream` as awaited from `hostname`'s agent, has `ask` get the agent asked for
    /// it (here or through the allocator holding its tunnel), and waits until it has dialled
    /// it back: the browser's ends of it.
    pub async fn await_dial(
        &self,
        hostname: &str,
        stream: String,
        timeout: Duration,
        ask: impl std::future::Future<Output = Result<(), OpenError>>,
    ) -> Result<StreamEnds, OpenError> {
        let (browser_ends, agent_ends) = stream_pair();
        let (dialled, answered) = oneshot::channel();
        lock(&self.pending).insert(
            stream.clone(),
            Pending {
                hostname: hostname.to_owned(),
                agent_ends,
                dialled,
            },
        );
        // However this ends (also when the browser leaves and this future is dropped), the
        // stream waits no longer.
        let _unlisted = Unlist {
            pending: &self.pending,
            stream,
        };
        ask.await?;
        match tokio::time::timeout(timeout, answered).await {
            Ok(Ok(())) => Ok(browser_ends),
            _ => Err(OpenError::AgentSilent),
        }
    }

    /// The agent of `hostname` dialled `stream`: its ends, if that stream was asked of it.
    pub fn dialled(&self, hostname: &str, stream: &str) -> Option<StreamEnds> {
        let mut pending = lock(&self.pending);
        if pending.get(stream)?.hostname != hostname {
            return None;
        }
        let Pending {
            agent_ends,
            dialled,
            ..
        } = pending.remove(stream)?;
        // The browser's side gave up already: the stream is of no use.
        dialled.send(()).ok()?;
        Some(agent_ends)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_joins_the_browser_to_the_agent_that_was_asked() {
        let links = Arc::new(DesktopLinks::default());
        assert_eq!(
            links.open("vm-1", "s-1".to_owned()).await.err(),
            Some(OpenError::AgentAway),
            "no tunnel, no stream"
        );
        let (_, mut commands) = links.agent_connected("vm-1");
        let opening = tokio::spawn({
            let links = links.clone();
            async move { links.open("vm-1", "s-1".to_owned()).await }
        });
        let Some(TunnelCommand::OpenStream { stream, window }) = commands.recv().await else {
            panic!("no command");
        };
        assert_eq!(window, Some(STREAM_WINDOW), "the agent is given the window");
        assert!(
            links.dialled("vm-2", &stream).is_none(),
            "another VM cannot take the stream"
        );
        let mut agent = links.dialled("vm-1", &stream).expect("dialled");
        assert!(links.dialled("vm-1", &stream).is_none(), "taken once");
        let mut browser = opening.await.expect("join").expect("open");
        browser
            .outgoing
            .send(Bytes::from_static(b"to agent"))
            .await
            .expect("send");
        assert_eq!(
            agent.incoming.recv().await.as_deref(),
            Some(&b"to agent"[..])
        );
        agent
            .outgoing
            .send(Bytes::from_static(b"to browser"))
            .await
            .expect("send");
        assert_eq!(
            browser.incoming.recv().await.as_deref(),
            Some(&b"to browser"[..])
        );
    }

    #[test]
    fn a_peek_is_counted_while_it_lasts() {
        let links = DesktopLinks::default();
        let first = links.watch("vm-1");
        let second = links.watch("vm-1");
        drop(first);
        assert!(links.is_watched("vm-1"));
        drop(second);
        assert!(!links.is_watched("vm-1"));
        assert!(!links.is_watched("vm-2"));
    }

    #[tokio::test]
    async fn a_replaced_tunnel_does_not_remove_its_successor() {
        let links = DesktopLinks::default();
        let (old, old_commands) = links.agent_connected("vm-1");
        let (_new, _commands) = links.agent_connected("vm-1");
        drop(old_commands);
        links.agent_gone("vm-1", old);
        assert!(links.is_connected("vm-1"));
    }

    #[tokio::test]
    async fn a_stream_never_dialled_back_or_abandoned_leaves_nothing_behind() {
        let links = DesktopLinks::default();
        let (_, _commands) = links.agent_connected("vm-1");
        let opened = links
            .open_within("vm-1", "s-2".to_owned(), Duration::from_millis(50))
            .await;
        assert_eq!(opened.err(), Some(OpenError::AgentSilent));
        let (_, mut commands) = links.agent_connected("vm-1");
        let abandoned = links.open_within("vm-1", "s-3".to_owned(), Duration::from_secs(60));
        // The browser leaves while the agent is being asked.
        let _ = tokio::time::timeout(Duration::from_millis(20), abandoned).await;
        assert!(commands.recv().await.is_some(), "the agent was asked");
        assert!(lock(&links.pending).is_empty(), "nothing left behind");
    }
}
