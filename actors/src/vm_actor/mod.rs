//! `VmActor`: one per VM. It supervises the VM's lifecycle ([`supervision`]: deadlines,
//! state changes, recovery) and holds the agents waiting in `POST /vm_startup`, answering
//! them from the database, which is the truth: on every [`Refresh`] (the VM changed, a
//! deadline came, or a new agent started waiting) it re-reads the VM's row.
//!
//! A waiter is answered only by a read that started after it registered, so an answer is
//! never older than the question; a waiter that registers after its VM was assigned is
//! answered at once by its own read. Reads are coalesced: while one is running, any number
//! of further refresh requests cause exactly one more. Waiting costs no thread and no
//! connection, only a queued reply channel. One request waits per VM: a new one replaces
//! the one before, which is answered [`WaitOutcome::Replaced`], so waiting for one VM can
//! never pile up connections.
//!
//! When a claim in this process assigns the VM, [`Claimed`] brings the committed row itself:
//! agents that were waiting before that claim's transaction began are answered from it at
//! once (it is newer than their question), without waiting for the notification and a read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, SpawnHandle, WrapFuture,
};
use lablink_schema::vms::{CurrentAssignment, Vm};
use lablink_schema::wire::SessionLimits;
use lablink_schema::workshops::Workshop;
use lablink_schema::DbPool;
use tokio::sync::oneshot;

mod supervision;

pub use supervision::{EndNotice, Supervision, SUPERVISOR};

/// After a failed read, wait this long before trying again (the waiters stay queued).
const READ_RETRY_DELAY: Duration = Duration::from_millis(500);

/// How a wait in `POST /vm_startup` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The VM is assigned (to an assignment the agent did not already hold).
    Assigned(CurrentAssignment),
    /// The assignment the agent held has ended and the VM is not assigned again yet.
    Released,
    /// The VM no longer exists.
    VmGone,
    /// Another request started waiting for this VM, and only one may: the newest wins (an
    /// agent that reconnects must not be locked out by its own half-dead connection).
    Replaced,
}

/// Start waiting: the reply comes on `reply` when the VM is assigned to something other
/// than `held`, or when `held` is released.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct AddWaiter {
    pub held: Option<i64>,
    pub reply: oneshot::Sender<WaitOutcome>,
}

/// The VM's row may have changed: read it again.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Refresh;

/// The VM was just assigned by a claim of this process: `row` is what its transaction
/// committed, `claim_started` when that transaction began.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Claimed {
    pub row: Vm,
    pub claim_started: Instant,
}

/// How many agents are waiting on this VM (for metrics and tests).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "usize")]
pub struct CountWaiters;

struct Waiter {
    held: Option<i64>,
    /// The first read allowed to answer this waiter.
    answered_by_read: u64,
    /// When it started waiting: only a claim that began later may answer it.
    since: Instant,
    reply: oneshot::Sender<WaitOutcome>,
}

/// The actor; see the module documentation.
pub struct VmActor {
    hostname: String,
    pool: DbPool,
    waiters: Vec<Waiter>,
    /// Reads started so far; a read's number is the value after it started.
    reads_started: u64,
    read_in_flight: bool,
    read_again: bool,
    /// Set when the actor supervises its VM (every VM in a running allocator); `None` for an
    /// actor that only answers waiters.
    supervision: Option<Arc<Supervision>>,
    /// The timer for the next deadline.
    recheck: Option<SpawnHandle>,
    /// A state change is being written: decide again only once it is done.
    changing: bool,
    /// Tells the supervisor when this actor ends, however it ends (a panic included).
    end_notice: Option<EndNotice>,
    /// The session limits of the VM's workshop, as last read with the row.
    limits: SessionLimits,
}

impl std::fmt::Debug for VmActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmActor")
            .field("hostname", &self.hostname)
            .field("waiters", &self.waiters.len())
            .finish_non_exhaustive()
    }
}

impl VmActor {
    /// An actor for `hostname`, reading through `pool`.
    pub fn new(hostname: String, pool: DbPool) -> Self {
        VmActor {
            hostname,
            pool,
            waiters: Vec::new(),
            reads_started: 0,
            read_in_flight: false,
            read_again: false,
            supervision: None,
            recheck: None,
            changing: false,
            end_notice: None,
            limits: SessionLimits::default(),
        }
    }

    /// The actor also supervises its VM's lifecycle, and `end_notice` tells the supervisor
    /// if it ends.
    pub fn supervised(mut self, supervision: Arc<Supervision>, end_notice: EndNotice) -> Self {
        self.supervision = Some(supervision);
        self.end_notice = Some(end_notice);
        self
    }

    fn request_read(&mut self, ctx: &mut Context<Self>) {
        if self.read_in_flight {
            self.read_again = true;
            return;
        }
        self.read_in_flight = true;
        self.reads_started += 1;
        let read_number = self.reads_started;
        let pool = self.pool.clone();
        let hostname = self.hostname.clone();
        let read = async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = pool.get().map_err(|err| err.to_string())?;
                let row =
                    Vm::find_by_hostname(&mut conn, &hostname).map_err(|err| err.to_string())?;
                // A workshop's VM: its participants' session limits come with the row.
                let limits = match row.as_ref().and_then(|vm| vm.workshop_id) {
                    Some(id) => Workshop::find(&mut conn, id)
                        .map_err(|err| err.to_string())?
                        .map(|w| w.session_limits())
                        .unwrap_or_default(),
                    None => SessionLimits::default(),
                };
                let limits = match &row {
                    Some(vm) => crate::session_limits::of_session(vm, limits),
                    None => limits,
                };
                Ok::<_, String>((row, limits))
            })
            .await
            .map_err(|err| err.to_string())
            .and_then(|result| result)
        };
        ctx.spawn(read.into_actor(self).map(move |result, actor, ctx| {
            actor.read_in_flight = false;
            match result {
                Ok((row, limits)) => {
                    actor.limits = limits;
                    actor.answer(read_number, row.clone());
                    actor.supervise(row, ctx);
                }
                Err(error) => {
                    tracing::warn!(hostname = %actor.hostname, %error, "cannot read VM; retrying");
                    ctx.run_later(READ_RETRY_DELAY, |actor, ctx| actor.request_read(ctx));
                    return;
                }
            }
            if std::mem::take(&mut actor.read_again) {
                actor.request_read(ctx);
            }
        }));
    }

    /// Answers every waiter that read `read_number` may answer, given the row it found.
    fn answer(&mut self, read_number: u64, row: Option<Vm>) {
        self.answer_where(row.as_ref(), |waiter| {
            waiter.answered_by_read <= read_number
        });
    }

    /// Answers, from `row` (`None`: the VM is gone), every waiter that `may_answer` allows
    /// and whose question it settles; the others keep waiting.
    fn answer_where(&mut self, row: Option<&Vm>, may_answer: impl Fn(&Waiter) -> bool) {
        let current = row.map(Vm::current_assignment);
        let waiters = std::mem::take(&mut self.waiters);
        for waiter in waiters {
            if waiter.reply.is_closed() {
                continue; // the agent hung up
            }
            if !may_answer(&waiter) {
                self.waiters.push(waiter);
                continue;
            }
            let outcome = match (&current, waiter.held) {
                (None, _) => Some(WaitOutcome::VmGone),
                (Some(Some(assignment)), held) if held != Some(assignment.assignment_id) => {
                    Some(WaitOutcome::Assigned(assignment.clone()))
                }
                (Some(None), Some(_)) => Some(WaitOutcome::Released),
                _ => None,
            };
            match outcome {
                // A send fails only if the agent hung up meanwhile; nothing to do then.
                Some(outcome) => drop(waiter.reply.send(outcome)),
                None => self.waiters.push(waiter),
            }
        }
    }
}

impl Actor for VmActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // A supervising actor starts from the row: after a restart, the state stored there
        // is where it goes on from.
        if self.supervision.is_some() {
            self.request_read(ctx);
        }
    }
}

impl Handler<AddWaiter> for VmActor {
    type Result = ();

    fn handle(&mut self, msg: AddWaiter, ctx: &mut Self::Context) {
        for replaced in self.waiters.drain(..) {
            // Fails only if that agent hung up already.
            drop(replaced.reply.send(WaitOutcome::Replaced));
        }
        self.waiters.push(Waiter {
            held: msg.held,
            answered_by_read: self.reads_started + 1,
            since: Instant::now(),
            reply: msg.reply,
        });
        self.request_read(ctx);
    }
}

impl Handler<Refresh> for VmActor {
    type Result = ();

    fn handle(&mut self, _: Refresh, ctx: &mut Self::Context) {
        if !self.waiters.is_empty() || self.supervision.is_some() {
            self.request_read(ctx);
        }
    }
}

impl Handler<Claimed> for VmActor {
    type Result = ();

    fn handle(&mut self, msg: Claimed, ctx: &mut Self::Context) {
        let Claimed { row, claim_started } = msg;
        self.answer_where(Some(&row), |waiter| waiter.since < claim_started);
        if self.supervision.is_some() {
            self.supervise(Some(row), ctx);
        }
    }
}

impl Handler<CountWaiters> for VmActor {
    type Result = usize;

    fn handle(&mut self, _: CountWaiters, _: &mut Self::Context) -> usize {
        self.waiters.retain(|w| !w.reply.is_closed());
        self.waiters.len()
    }
}

/// Makes the actor panic, to show that its supervisor restarts it (tests only).
#[cfg(any(test, feature = "test-support"))]
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Crash;

#[cfg(any(test, feature = "test-support"))]
impl Handler<Crash> for VmActor {
    type Result = ();

    fn handle(&mut self, _: Crash, _: &mut Self::Context) {
        panic!("VmActor for {} crashed on purpose", self.hostname);
    }
}
