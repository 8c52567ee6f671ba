//! `VmSupervisor`: owns the [`VmActor`]s, one per VM that agents wait on, and routes to them
//! the agents' waits (from `POST /vm_startup`) and the VM change events (from the
//! notification listener on PostgreSQL, or the writer on SQLite).
//!
//! An actor is created when the first agent waits on its VM and is re-created if it ever
//! stops; the supervisor drops actors of VMs that a resync shows are gone.

use std::collections::HashMap;

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult, StreamHandler};
use lablink_schema::DbPool;
use tokio::sync::{mpsc, oneshot};

use crate::change_feed::VmEvent;
use crate::vm_actor::{AddWaiter, Claimed, CountWaiters, Refresh, VmActor, WaitOutcome};

/// Wait for `hostname`'s assignment; see [`AddWaiter`]. The reply channel yields the outcome.
#[derive(Debug, Message)]
#[rtype(result = "oneshot::Receiver<WaitOutcome>")]
pub struct WaitForAssignment {
    pub hostname: String,
    /// The assignment the agent already holds, if any.
    pub held: Option<i64>,
}

/// How many agents are waiting, over all VMs.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "usize")]
pub struct CountAllWaiters;

/// The supervisor; see the module documentation.
pub struct VmSupervisor {
    pool: DbPool,
    actors: HashMap<String, Addr<VmActor>>,
    events: Option<mpsc::UnboundedReceiver<VmEvent>>,
}

impl std::fmt::Debug for VmSupervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmSupervisor")
            .field("actors", &self.actors.len())
            .finish_non_exhaustive()
    }
}

impl VmSupervisor {
    /// A supervisor reading through `pool` and following `events` (a
    /// [`ChangeHub`](crate::change_feed::ChangeHub) subscription).
    pub fn new(pool: DbPool, events: mpsc::UnboundedReceiver<VmEvent>) -> Self {
        VmSupervisor {
            pool,
            actors: HashMap::new(),
            events: Some(events),
        }
    }

    fn actor_for(&mut self, hostname: &str) -> Addr<VmActor> {
        match self.actors.get(hostname) {
            Some(addr) if addr.connected() => addr.clone(),
            _ => {
                let addr = VmActor::new(hostname.to_owned(), self.pool.clone()).start();
                self.actors.insert(hostname.to_owned(), addr.clone());
                addr
            }
        }
    }
}

impl Actor for VmSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some(mut events) = self.events.take() {
            ctx.add_stream(futures_util::stream::poll_fn(move |cx| {
                events.poll_recv(cx)
            }));
        }
    }
}

impl Handler<WaitForAssignment> for VmSupervisor {
    type Result = MessageResult<WaitForAssignment>;

    fn handle(&mut self, msg: WaitForAssignment, _: &mut Self::Context) -> Self::Result {
        let (reply, outcome) = oneshot::channel();
        self.actor_for(&msg.hostname).do_send(AddWaiter {
            held: msg.held,
            reply,
        });
        MessageResult(outcome)
    }
}

impl StreamHandler<VmEvent> for VmSupervisor {
    fn handle(&mut self, event: VmEvent, _: &mut Self::Context) {
        match event {
            VmEvent::Changed { hostname } => {
                if let Some(addr) = self.actors.get(&hostname) {
                    addr.do_send(Refresh);
                }
            }
            VmEvent::Claimed { row, claim_started } => {
                if let Some(addr) = self.actors.get(&row.hostname) {
                    addr.do_send(Claimed {
                        row: *row,
                        claim_started,
                    });
                }
            }
            VmEvent::Resynced { hostnames } => {
                // Everything may have changed: every actor re-reads (one whose VM is gone
                // answers its waiters so), then actors of vanished VMs are dropped.
                for addr in self.actors.values() {
                    addr.do_send(Refresh);
                }
                let present: std::collections::HashSet<&String> = hostnames.iter().collect();
                self.actors.retain(|hostname, _| present.contains(hostname));
            }
        }
    }

    fn finished(&mut self, _: &mut Self::Context) {
        // The change feed never ends while the allocator runs; keep serving waits anyway.
        tracing::warn!("the VM change feed ended");
    }
}

impl Handler<CountAllWaiters> for VmSupervisor {
    type Result = actix::ResponseFuture<usize>;

    fn handle(&mut self, _: CountAllWaiters, _: &mut Self::Context) -> Self::Result {
        let counts: Vec<_> = self
            .actors
            .values()
            .map(|addr| addr.send(CountWaiters))
            .collect();
        Box::pin(async move {
            futures_util::future::join_all(counts)
                .await
                .into_iter()
                .map(|count| count.unwrap_or(0))
                .sum()
        })
    }
}
