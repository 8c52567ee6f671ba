//! Wiring the agent's actors together on their own arbiter, from settings and the parts
//! that touch the VM (remote desktop, GPU probe, process table).

use std::sync::Arc;

use actix::{Actor, Arbiter};

use crate::allocator_client::{AllocatorClient, CallError};
use crate::desktop::{ChromeRemoteDesktop, DesktopLauncher, LoggedDesktop, RemoteDesktop};
use crate::desktop_activity::{
    DesktopNotifier, InputIdle, LoggedNotices, NoDesktop, NotifySend, XPrintIdle,
};
use crate::desktop_tunnel::DesktopTunnel;
use crate::gpu::{GpuMonitor, GpuProbe, HealthPolicy, NvmlProbe};
use crate::log_shipping::{LogShipper, OwnLog, ShippingSettings};
use crate::session_figures::SessionTally;
use crate::session_reset::SessionReset;
use crate::settings::{AgentSettings, DesktopKind};
use crate::status::StatusReporter;
use crate::subscriber::Subscriber;
use crate::usage::{ProcFs, ProcessTable, SoftwareMatcher, UsageMonitor};
use crate::vnc_auth::VncPassword;
use lablink_schema::backoff::Backoff;

/// The parts of the agent that touch the VM itself.
pub struct AgentParts {
    pub desktop: Arc<dyn RemoteDesktop>,
    /// The agent's own log, to ship (from the `tracing` layer main installs).
    pub own_log: Option<OwnLog>,
    pub gpu_probe: Box<dyn GpuProbe>,
    pub processes: Box<dyn ProcessTable>,
    pub health_policy: HealthPolicy,
    /// Whether the desktop was used lately.
    pub input: Box<dyn InputIdle>,
    /// Shows the allocator's warnings on the desktop.
    pub notifier: Arc<dyn DesktopNotifier>,
}

impl std::fmt::Debug for AgentParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentParts")
            .field("health_policy", &self.health_policy)
            .finish_non_exhaustive()
    }
}

impl AgentParts {
    /// The real ones: Chrome Remote Desktop (or, with `LABLINK_DESKTOP=log`, a log of the
    /// sessions), NVML, `/proc`.
    pub fn real(settings: &AgentSettings) -> Self {
        let (desktop, input, notifier): (
            Arc<dyn RemoteDesktop>,
            Box<dyn InputIdle>,
            Arc<dyn DesktopNotifier>,
        ) = match settings.desktop {
            DesktopKind::Chrome => (
                Arc::new(ChromeRemoteDesktop::default()),
                Box::new(XPrintIdle::new(settings.x_display.clone())),
                Arc::new(NotifySend::new(settings.x_display.clone())),
            ),
            DesktopKind::Log => (
                Arc::new(LoggedDesktop::default()),
                Box::new(NoDesktop),
                Arc::new(LoggedNotices),
            ),
        };
        AgentParts {
            desktop,
            input,
            notifier,
            own_log: None,
            gpu_probe: Box::new(NvmlProbe::new()),
            processes: Box::new(ProcFs::default()),
            health_policy: HealthPolicy::default(),
        }
    }
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Client(#[from] CallError),
    #[error("{0}")]
    Pattern(#[from] regex::Error),
    #[error("the VNC password file {path}: {source}")]
    VncPassword {
        path: String,
        source: std::io::Error,
    },
    #[error("the log spool {path}: {source}")]
    Spool {
        path: String,
        source: std::io::Error,
    },
}

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    arbiter: Arbiter,
    client: AllocatorClient,
}

impl Agent {
    /// Starts every actor on a new arbiter. Must run inside an actix system.
    pub fn start(settings: &AgentSettings, parts: AgentParts) -> Result<Agent, AgentError> {
        let client = AllocatorClient::new(settings)?;
        let matcher = match &settings.usage_pattern {
            Some(pattern) => SoftwareMatcher::from_pattern(pattern)?,
            None => SoftwareMatcher::for_software(&settings.subject_software),
        };
        let reset = SessionReset {
            software: matcher.clone(),
            session_dir: settings.session_dir.clone(),
        };
        let backoff = Backoff::new(settings.retry_initial, settings.retry_max);
        let arbiter = Arbiter::new();
        let handle = arbiter.handle();

        let session = Arc::new(SessionTally::default());
        let vnc_password = settings
            .vnc_password_file
            .clone()
            .map(|file| Arc::new(VncPassword::new(file)));
        if let Some(vnc_password) = &vnc_password {
            // No password from before this agent started stays valid.
            vnc_password
                .rotate()
                .map_err(|source| AgentError::VncPassword {
                    path: settings
                        .vnc_password_file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    source,
                })?;
        }
        let status = {
            let session = session.clone();
            let (client, backoff, interval) =
                (client.clone(), backoff.clone(), settings.heartbeat_interval);
            let notifier = parts.notifier.clone();
            StatusReporter::start_in_arbiter(&handle, move |_| {
                StatusReporter::new(client, interval, backoff)
                    .showing_notices(notifier)
                    .tallying(session)
            })
        };
        let launcher = {
            let (desktop, name) = (parts.desktop.clone(), settings.vm_name.clone());
            DesktopLauncher::start_in_arbiter(&handle, move |_| DesktopLauncher::new(desktop, name))
        };
        let gpu = {
            let (client, probe, policy) = (client.clone(), parts.gpu_probe, parts.health_policy);
            let (check, resend) = (settings.gpu_check_interval, settings.gpu_resend_interval);
            let session = session.clone();
            GpuMonitor::start_in_arbiter(&handle, move |_| {
                GpuMonitor::new(client, probe, policy, check, resend).tallying(session)
            })
        };
        {
            let (client, processes, input, interval) = (
                client.clone(),
                parts.processes,
                parts.input,
                settings.usage_check_interval,
            );
            let gpu = gpu.clone();
            let (session, desktop) = (session.clone(), parts.desktop);
            UsageMonitor::start_in_arbiter(&handle, move |_| {
                UsageMonitor::new(client, processes, matcher, interval, Some(gpu))
                    .watching_input(input)
                    .tallying(session, desktop)
            });
        }
        {
            let client = client.clone();
            let session = session.clone();
            let vnc_password = vnc_password.clone();
            Subscriber::start_in_arbiter(&handle, move |_| {
                Subscriber::new(client, launcher, status, backoff, reset, session)
                    .rotating(vnc_password)
            });
        }
        if settings.log_shipping {
            let shipping = ShippingSettings {
                spool_dir: settings.log_spool_dir.clone(),
                spool_max_bytes: settings.log_spool_max_bytes,
                files: settings.log_files.clone(),
                flush_delay: settings.log_flush_delay,
                redact: settings
                    .log_redact
                    .as_deref()
                    .map(regex::Regex::new)
                    .transpose()?,
            };
            let shipper = LogShipper::new(
                client.clone(),
                &shipping,
                parts.own_log,
                Backoff::new(settings.retry_initial, settings.retry_max),
            )
            .map_err(|source| AgentError::Spool {
                path: shipping.spool_dir.display().to_string(),
                source,
            })?;
            LogShipper::start_in_arbiter(&handle, move |_| shipper);
        }
        handle.spawn(
            DesktopTunnel::new(
                client.clone(),
                settings.vnc_addr,
                Backoff::new(settings.retry_initial, settings.retry_max),
            )
            .tallying(session.clone())
            .authenticating(vnc_password)
            .run(),
        );
        tracing::info!(vm = %settings.vm_name, allocator = %settings.allocator_url, "agent started");
        Ok(Agent { arbiter, client })
    }

    /// The agent's connection to the allocator (to see whether it registered).
    pub fn client(&self) -> &AllocatorClient {
        &self.client
    }

    /// Stops every actor (their pending requests are dropped).
    pub fn stop(self) {
        self.arbiter.stop();
    }
}
