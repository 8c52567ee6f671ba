//! `Subscriber`: waits in `POST /vm_startup` for this VM's assignment, hands the command and
//! PIN to the `DesktopLauncher`, then waits for that session to end (the admin released the
//! VM), resets the VM ([`SessionReset`]) and subscribes again. When the allocator is down or restarting it retries
//! with capped exponential backoff and jitter, forever.

use std::sync::Arc;

use actix::{Actor, Addr, AsyncContext, Context, WrapFuture};
use lablink_schema::wire::VmStatus;

use crate::allocator_client::{AllocatorClient, StartupAnswer};
use crate::desktop::{DesktopLauncher, EndSession, StartSession};
use crate::session_figures::SessionTally;
use crate::session_reset::SessionReset;
use crate::status::{SetStatus, StatusReporter};
use crate::vnc_auth::VncPassword;
use lablink_schema::backoff::Backoff;

/// The actor; see the module documentation.
#[derive(Debug)]
pub struct Subscriber {
    client: AllocatorClient,
    launcher: Addr<DesktopLauncher>,
    status: Addr<StatusReporter>,
    backoff: Backoff,
    reset: Arc<SessionReset>,
    session: Arc<SessionTally>,
    /// The VNC server's password file, rotated at every new assignment.
    vnc_password: Option<Arc<VncPassword>>,
}

impl Subscriber {
    pub fn new(
        client: AllocatorClient,
        launcher: Addr<DesktopLauncher>,
        status: Addr<StatusReporter>,
        backoff: Backoff,
        reset: SessionReset,
        session: Arc<SessionTally>,
    ) -> Self {
        Subscriber {
            client,
            launcher,
            status,
            backoff,
            reset: Arc::new(reset),
            session,
            vnc_password: None,
        }
    }

    /// Gives the VNC server a new password at every new assignment.
    pub fn rotating(mut self, vnc_password: Option<Arc<VncPassword>>) -> Self {
        self.vnc_password = vnc_password;
        self
    }
}

impl Actor for Subscriber {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let subscribing = subscribe_forever(
            self.client.clone(),
            self.launcher.clone(),
            self.status.clone(),
            self.backoff.clone(),
            self.reset.clone(),
            self.session.clone(),
            self.vnc_password.clone(),
        );
        ctx.spawn(subscribing.into_actor(self));
    }
}

async fn subscribe_forever(
    client: AllocatorClient,
    launcher: Addr<DesktopLauncher>,
    status: Addr<StatusReporter>,
    mut backoff: Backoff,
    reset: Arc<SessionReset>,
    session: Arc<SessionTally>,
    vnc_password: Option<Arc<VncPassword>>,
) {
    // The assignment whose session is running, if any.
    let mut held: Option<i64> = None;
    loop {
        match client.wait_for_assignment(held).await {
            Ok(StartupAnswer::Assigned {
                assignment_id,
                pin,
                command,
            }) => {
                backoff.reset();
                if held.is_some() {
                    // Reassigned without our seeing the release: clean up first.
                    session.end();
                    end_session(&launcher, &status, &reset).await;
                }
                if let Some(vnc_password) = &vnc_password {
                    // Nobody who held the VM before learns this session's VNC password.
                    match vnc_password.rotate() {
                        Ok(()) => tracing::info!(assignment_id, "VNC password rotated"),
                        Err(error) => {
                            tracing::error!(assignment_id, %error, "cannot rotate the VNC password")
                        }
                    }
                }
                // The participant's journey: the VM has the command (reported at once).
                session.begin(assignment_id);
                match launcher.send(StartSession { command, pin }).await {
                    Ok(Ok(())) => tracing::info!(assignment_id, "remote desktop started"),
                    Ok(Err(error)) => {
                        tracing::error!(assignment_id, %error, "could not start the remote desktop")
                    }
                    Err(error) => tracing::error!(%error, "the desktop launcher is gone"),
                }
                held = Some(assignment_id);
            }
            Ok(StartupAnswer::Released) => {
                tracing::info!(assignment_id = held, "session released");
                session.end();
                end_session(&launcher, &status, &reset).await;
                held = None;
                backoff.reset();
            }
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(%error, retry_in_ms = delay.as_millis(), "waiting for an assignment failed");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Ends the session and resets the VM; the VM reports `initializing` meanwhile, so nobody
/// is handed a VM that is still being cleaned, and `running` once it is ready again.
async fn end_session(
    launcher: &Addr<DesktopLauncher>,
    status: &Addr<StatusReporter>,
    reset: &Arc<SessionReset>,
) {
    status.do_send(SetStatus(VmStatus::Initializing));
    match launcher.send(EndSession).await {
        Ok(Ok(())) => tracing::info!("remote desktop session ended"),
        Ok(Err(error)) => tracing::error!(%error, "could not end the remote desktop session"),
        Err(error) => tracing::error!(%error, "the desktop launcher is gone"),
    }
    let reset = reset.clone();
    match tokio::task::spawn_blocking(move || reset.run()).await {
        Ok(report) => {
            for failure in &report.failures {
                tracing::error!(%failure, "session reset incomplete");
            }
            tracing::info!(
                processes_stopped = report.processes_stopped,
                entries_removed = report.entries_removed,
                "session reset: the research software stopped and the session's files removed"
            );
        }
        Err(error) => tracing::error!(%error, "the session reset failed"),
    }
    status.do_send(SetStatus(VmStatus::Running));
}
