//! `VmSupervisor`: owns the [`VmActor`]s, one per VM, and routes to them the agents' waits
//! (from `POST /vm_startup`) and the VM change events (from the notification listener on
//! PostgreSQL, or the writer on SQLite).
//!
//! Supervising (see [`VmSupervisor::supervising`]), it starts an actor for every VM in the
//! table when it starts and for every VM that appears later, and starts a new one for a VM
//! whose actor ended (a panic included) while the VM still exists; the new actor goes on from
//! the state stored in the row. Without supervision (tests of the wait alone) an actor is
//! created when the first agent waits on its VM.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult,
    StreamHandler, WrapFuture,
};
use lablink_schema::vms::Vm;
use lablink_schema::DbPool;
use tokio::sync::{mpsc, oneshot};

use crate::change_feed::VmEvent;
use crate::vm_actor::{
    AddWaiter, Claimed, CountWaiters, EndNotice, Refresh, Supervision, VmActor, WaitOutcome,
};

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

/// How many VM actors run now.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "usize")]
pub struct CountActors;

/// An actor ended; `restart` unless its VM is gone. `generation` tells a late notice of an
/// actor already replaced from one about the current actor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct ActorEnded {
    hostname: String,
    generation: u64,
    restart: bool,
}

/// Start actors for these VMs (read from the table at start).
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Supervise(Vec<String>);

struct Running {
    addr: Addr<VmActor>,
    generation: u64,
}

/// The supervisor; see the module documentation.
pub struct VmSupervisor {
    pool: DbPool,
    actors: HashMap<String, Running>,
    events: Option<mpsc::UnboundedReceiver<VmEvent>>,
    supervision: Option<Arc<Supervision>>,
    generations: u64,
}

impl std::fmt::Debug for VmSupervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmSupervisor")
            .field("actors", &self.actors.len())
            .field("supervising", &self.supervision.is_some())
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
            supervision: None,
            generations: 0,
        }
    }

    /// Every VM gets an actor that supervises its lifecycle.
    pub fn supervising(mut self, supervision: Arc<Supervision>) -> Self {
        self.supervision = Some(supervision);
        self
    }

    fn actor_for(&mut self, hostname: &str, ctx: &mut Context<Self>) -> Addr<VmActor> {
        match self.actors.get(hostname) {
            Some(running) if running.addr.connected() => running.addr.clone(),
            _ => self.start_actor(hostname, ctx),
        }
    }

    fn start_actor(&mut self, hostname: &str, ctx: &mut Context<Self>) -> Addr<VmActor> {
        self.generations += 1;
        let generation = self.generations;
        let mut actor = VmActor::new(hostname.to_owned(), self.pool.clone());
        if let Some(supervision) = &self.supervision {
            let supervisor = ctx.address();
            let name = hostname.to_owned();
            let notice = EndNotice::new(move |restart| {
                supervisor.do_send(ActorEnded {
                    hostname: name,
                    generation,
                    restart,
                });
            });
            actor = actor.supervised(supervision.clone(), notice);
        }
        let addr = actor.start();
        self.actors.insert(
            hostname.to_owned(),
            Running {
                addr: addr.clone(),
                generation,
            },
        );
        addr
    }

    /// Makes sure a supervised VM has an actor (a new VM, or one seen in a resync).
    fn ensure_supervised(&mut self, hostname: &str, ctx: &mut Context<Self>) {
        if self.supervision.is_some() {
            self.actor_for(hostname, ctx);
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
        if self.supervision.is_some() {
            let pool = self.pool.clone();
            let read = async move {
                tokio::task::spawn_blocking(move || {
                    let mut conn = pool.get().map_err(|err| err.to_string())?;
                    Vm::list_hostnames(&mut conn).map_err(|err| err.to_string())
                })
                .await
                .map_err(|err| err.to_string())
                .and_then(|result| result)
            };
            ctx.spawn(read.into_actor(self).map(|result, _, ctx| match result {
                Ok(hostnames) => {
                    tracing::info!(vms = hostnames.len(), "supervising every VM");
                    ctx.notify(Supervise(hostnames));
                }
                // The next resync of the change feed brings them instead.
                Err(error) => tracing::error!(%error, "cannot read the VMs to supervise"),
            }));
        }
    }
}

impl Handler<Supervise> for VmSupervisor {
    type Result = ();

    fn handle(&mut self, msg: Supervise, ctx: &mut Self::Context) {
        for hostname in msg.0 {
            self.ensure_supervised(&hostname, ctx);
        }
    }
}

impl Handler<ActorEnded> for VmSupervisor {
    type Result = ();

    fn handle(&mut self, msg: ActorEnded, ctx: &mut Self::Context) {
        let current = self
            .actors
            .get(&msg.hostname)
            .is_some_and(|running| running.generation == msg.generation);
        if !current {
            return; // already replaced by a newer actor
        }
        self.actors.remove(&msg.hostname);
        if msg.restart {
            tracing::error!(hostname = %msg.hostname, "a VM actor ended; starting a new one");
            self.start_actor(&msg.hostname, ctx);
        }
    }
}

impl Handler<WaitForAssignment> for VmSupervisor {
    type Result = MessageResult<WaitForAssignment>;

    fn handle(&mut self, msg: WaitForAssignment, ctx: &mut Self::Context) -> Self::Result {
        let (reply, outcome) = oneshot::channel();
        self.actor_for(&msg.hostname, ctx).do_send(AddWaiter {
            held: msg.held,
            reply,
        });
        MessageResult(outcome)
    }
}

impl StreamHandler<VmEvent> for VmSupervisor {
    fn handle(&mut self, event: VmEvent, ctx: &mut Self::Context) {
        match event {
            VmEvent::Changed { hostname } => {
                self.ensure_supervised(&hostname, ctx);
                if let Some(running) = self.actors.get(&hostname) {
                    running.addr.do_send(Refresh);
                }
            }
            VmEvent::Claimed { row, claim_started } => {
                self.ensure_supervised(&row.hostname, ctx);
                if let Some(running) = self.actors.get(&row.hostname) {
                    running.addr.do_send(Claimed {
                        row: *row,
                        claim_started,
                    });
                }
            }
            VmEvent::Resynced { hostnames } => {
                // Everything may have changed: every actor re-reads (one whose VM is gone
                // answers its waiters so), then actors of vanished VMs are dropped.
                for running in self.actors.values() {
                    running.addr.do_send(Refresh);
                }
                let present: std::collections::HashSet<&String> = hostnames.iter().collect();
                self.actors.retain(|hostname, _| present.contains(hostname));
                for hostname in &hostnames {
                    self.ensure_supervised(hostname, ctx);
                }
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
            .map(|running| running.addr.send(CountWaiters))
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

impl Handler<CountActors> for VmSupervisor {
    type Result = usize;

    fn handle(&mut self, _: CountActors, _: &mut Self::Context) -> usize {
        self.actors.values().filter(|r| r.addr.connected()).count()
    }
}

/// Makes `hostname`'s actor panic (tests of the restart).
#[cfg(any(test, feature = "test-support"))]
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct CrashActor {
    pub hostname: String,
}

#[cfg(any(test, feature = "test-support"))]
impl Handler<CrashActor> for VmSupervisor {
    type Result = bool;

    fn handle(&mut self, msg: CrashActor, _: &mut Self::Context) -> bool {
        match self.actors.get(&msg.hostname) {
            Some(running) => {
                running.addr.do_send(crate::vm_actor::Crash);
                true
            }
            None => false,
        }
    }
}
