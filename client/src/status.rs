//! `StatusReporter`: the VM's heartbeat. It reports the VM's status to the allocator at a
//! fixed interval and at once when the status changes; the first report registers the VM
//! and brings its token. A failed report is retried with backoff.

use std::time::Duration;

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, WrapFuture};
use lablink_schema::wire::VmStatus;

use crate::allocator_client::AllocatorClient;
use lablink_schema::backoff::Backoff;

/// The actor; see the module documentation.
#[derive(Debug)]
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
}

impl StatusReporter {
    pub fn new(client: AllocatorClient, interval: Duration, backoff: Backoff) -> Self {
        StatusReporter {
            client,
            interval,
            status: VmStatus::Running,
            backoff,
            sending: false,
            set_while_sending: false,
        }
    }

    fn report(&mut self, ctx: &mut Context<Self>) {
        if self.sending {
            return;
        }
        self.sending = true;
        let status = self.status;
        let client = self.client.clone();
        ctx.spawn(
            async move { client.report_status(status).await }
                .into_actor(self)
                .map(move |result, reporter, ctx| {
                    reporter.sending = false;
                    match result {
                        Ok(()) => reporter.backoff.reset(),
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
        ctx.run_interval(self.interval, |reporter, ctx| reporter.report(ctx));
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
