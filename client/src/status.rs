//! `StatusReporter`: the VM's heartbeat. It reports the VM's status to the allocator at an
//! interval and at once when the status changes; the first report registers the VM and
//! brings its token. The interval is the one the allocator names in its answers (a third of
//! its heartbeat timeout); the agent's own setting is only used until then, or with an
//! allocator that names none. A failed report is retried with backoff.

use std::time::Duration;

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, SpawnHandle, WrapFuture,
};
use lablink_schema::wire::VmStatus;

use std::sync::Arc;

use crate::allocator_client::AllocatorClient;
use crate::desktop_activity::DesktopNotifier;
use crate::session_figures::SessionTally;
use lablink_schema::backoff::Backoff;
use tokio::sync::watch;

/// The actor; see the module documentation.
pub struct StatusReporter {
    client: AllocatorClient,
    interval: Duration,
    status: VmStatus,
    backoff: Backoff,
    sending: bool,
    /// A status was set while a report was on its way: report again once it is answered,
    /// even if the status ended where that report started. The allocator may have changed
    /// the status meanwhile (a release sets `initializing`), and the agent's word must be the
    /// last one.
    set_while_sending: bool,
    /// The timer of the periodic report.
    ticker: Option<SpawnHandle>,
    /// Shows the allocator's warnings on the desktop, each once.
    notifier: Option<Arc<dyn DesktopNotifier>>,
    shown: Option<String>,
    /// The session's figures, sent with every report; a step reached is reported at once.
    session: Option<Arc<SessionTally>>,
    /// Whether a report was accepted yet (the first is logged, see
    /// [`lablink_schema::wire::FIRST_REPORT_LOGGED`]).
    reported_once: bool,
}

impl std::fmt::Debug for StatusReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusReporter")
            .field("interval", &self.interval)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl StatusReporter {
    /// Warnings in the allocator's answers are shown through `notifier`.
    pub fn showing_notices(mut self, notifier: Arc<dyn DesktopNotifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    pub fn new(client: AllocatorClient, interval: Duration, backoff: Backoff) -> Self {
        StatusReporter {
            client,
            interval,
            status: VmStatus::Running,
            backoff,
            sending: false,
            reported_once: false,
            set_while_sending: false,
            ticker: None,
            notifier: None,
            shown: None,
            session: None,
        }
    }

    /// Sends the session's figures with every report, and reports at once when the session
    /// reaches a step.
    pub fn tallying(mut self, session: Arc<SessionTally>) -> Self {
        self.session = Some(session);
        self
    }

    /// Reports whenever the session reaches a step, until the tally is gone.
    fn follow_steps(&mut self, mut steps: watch::Receiver<u64>, ctx: &mut Context<Self>) {
        ctx.spawn(
            async move {
                let alive = steps.changed().await.is_ok();
                (alive, steps)
            }
            .into_actor(self)
            .map(|(alive, steps), reporter, ctx| {
                if alive {
                    reporter.report_soon(ctx);
                    reporter.follow_steps(steps, ctx);
                }
            }),
        );
    }

    /// Reports now, or right after the report on its way.
    fn report_soon(&mut self, ctx: &mut Context<Self>) {
        if self.sending {
            self.set_while_sending = true;
        } else {
            self.report(ctx);
        }
    }

    /// The interval in effect now.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Reports every `interval` from now on.
    fn tick_every(&mut self, interval: Duration, ctx: &mut Context<Self>) {
        if let Some(ticker) = self.ticker.take() {
            ctx.cancel_future(ticker);
        }
        self.interval = interval;
        self.ticker = Some(ctx.run_interval(interval, |reporter, ctx| reporter.report(ctx)));
    }

    /// Shows a new warning once; a warning taken down may be shown again later.
    fn show(&mut self, notice: Option<String>) {
        if notice == self.shown {
            return;
        }
        if let (Some(text), Some(notifier)) = (&notice, &self.notifier) {
            notifier.show(text);
        }
        self.shown = notice;
    }

    fn report(&mut self, ctx: &mut Context<Self>) {
        if self.sending {
            return;
        }
        self.sending = true;
        let status = self.status;
        let client = self.client.clone();
        let figures = self.session.as_ref().and_then(|session| session.figures());
        ctx.spawn(
            async move { client.report_status(status, figures).await }
                .into_actor(self)
                .map(move |result, reporter, ctx| {
                    reporter.sending = false;
                    match result {
                        Ok(reply) => {
                            reporter.backoff.reset();
                            if !reporter.reported_once {
                                reporter.reported_once = true;
                                tracing::info!("{}", lablink_schema::wire::FIRST_REPORT_LOGGED);
                            }
                            reporter.show(reply.notice);
                            if let Some(interval) = reply.interval.filter(|i| *i != reporter.interval) {
                                tracing::info!(
                                    interval_ms = interval.as_millis(),
                                    "heartbeat interval set by the allocator"
                                );
                                reporter.tick_every(interval, ctx);
                            }
                        }
                        Err(error) => {
                            let retry_in = reporter.backoff.next_delay().min(reporter.interval);
                            tracing::warn!(%error, retry_in_ms = retry_in.as_millis(), "status report failed");
                            ctx.run_later(retry_in, |reporter, ctx| reporter.report(ctx));
                        }
                    }
                    // A status set while sending goes out now.
                    let set_meanwhile = std::mem::take(&mut reporter.set_while_sending);
                    if reporter.status != status || set_meanwhile {
                        reporter.report(ctx);
                    }
                }),
        );
    }
}

impl Actor for StatusReporter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.report(ctx);
        self.tick_every(self.interval, ctx);
        if let Some(steps) = self.session.as_ref().map(|session| session.step_changes()) {
            self.follow_steps(steps, ctx);
        }
    }
}

/// The VM's status changed (for example `initializing` while a session is being cleaned up).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct SetStatus(pub VmStatus);

impl Handler<SetStatus> for StatusReporter {
    type Result = ();

    fn handle(&mut self, msg: SetStatus, ctx: &mut Self::Context) {
        if self.sending {
            self.status = msg.0;
            self.set_while_sending = true;
        } else if self.status != msg.0 {
            self.status = msg.0;
            self.report(ctx);
        }
    }
}
