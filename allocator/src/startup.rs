//! Building and running the allocator: open and migrate the database, start the actors,
//! bind the HTTP server, and stop cleanly on SIGTERM or ctrl-c.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Actor;
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use lablink_actors::change_feed::ChangeHub;
use lablink_actors::claim_batcher::ClaimBatcher;
use lablink_actors::db_writer::DbWriter;
use lablink_actors::db_writer::{DbWriter as Writer, StoreSecret};
use lablink_actors::notification_listener::{NotificationListener, ReconnectPolicy};
use lablink_actors::provisioning::cloud::CloudApi;
use lablink_actors::provisioning::local::exit_recorder::record_agent_exits;
use lablink_actors::provisioning_queue::{ProvisioningQueue, ProvisioningSettings};
use lablink_actors::report_batcher::ReportBatcher;
use lablink_actors::vm_actor::Supervision;
use lablink_actors::vm_supervisor::VmSupervisor;
use lablink_schema::app_secrets;
use lablink_schema::connection::{build_pool, DatabaseLocation};
use lablink_schema::{migrations, Backend, DbPool};
use tracing_actix_web::TracingLogger;

use crate::auth::passwords::{generate_password, hash_password};
use crate::auth::{random_token, AdminCredentials, Authorizer, CookieSigner, LoginGuard};
use crate::body_timeout::{self, BodyTimeout};
use crate::client_address::ClientAddresses;
use crate::config::{Config, LogFormat, ProviderKind, ReleasePolicy};
use crate::cross_site;
use crate::error::{form_error, json_error, path_error, query_error};
use crate::metrics::{self, Metrics};
use crate::pages::Pages;
use crate::provider_setup::{self, LocalAgentsAtStop};
use crate::quiet_redirects;
use crate::rate_limit::{Admission, LogBudget};
use crate::routes;
use crate::state::{AppState, MetricsAccess};
use crate::workshop_setup;

/// Logged at start while `clients.legacy_unauthenticated` is on.
pub const LEGACY_WARNING: &str = "clients.legacy_unauthenticated is on: any machine may join \
    without a token and act for every VM that has no token of its own, including receiving its \
    participant's remote desktop code and PIN; turn it off once no VM runs an original LabLink \
    agent";

/// First wait between attempts to reach the database at start-up; doubled up to the cap.
const STARTUP_RETRY_INITIAL: Duration = Duration::from_millis(250);
const STARTUP_RETRY_MAX: Duration = Duration::from_secs(5);

/// Why the allocator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Database(String),
    #[error("page templates: {0}")]
    Templates(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
}

/// A bound, ready-to-run allocator.
pub struct Application {
    address: SocketAddr,
    server: Server,
    /// Tells long-lived requests (waiting agents, live pages) that the allocator is stopping.
    stopping: tokio::sync::watch::Sender<bool>,
    /// What becomes of the local provider's agents at a graceful stop.
    local_agents: Option<LocalAgentsAtStop>,
    writer: actix::Addr<Writer>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Opens and migrates the database, starts the actors and binds the listener. Must run
    /// inside an actix system. Port 0 in `server.bind` picks a free port (see [`Self::address`]).
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        Self::build_with(config, None).await
    }

    /// [`Self::build`], with the cloud API given instead of made from the configuration (tests
    /// pass a scripted one).
    pub async fn build_with(
        config: Config,
        cloud: Option<Arc<dyn CloudApi>>,
    ) -> Result<Application, StartupError> {
        let location = config.database.location().map_err(StartupError::Database)?;
        let backend = location.backend();
        let pool = build_pool(&location, config.database.pool_size)
            .map_err(|err| StartupError::Database(err.to_string()))?;
        migrate_when_reachable(&pool, &location, config.database.startup_timeout()).await?;

        let pages = Pages::new().map_err(|err| StartupError::Templates(err.to_string()))?;
        if config.clients.legacy_unauthenticated {
            tracing::warn!("{LEGACY_WARNING}");
        }

        let changes = ChangeHub::new();
        let vm_events = changes.subscribe();

        let writer = DbWriter::start_with_channels(
            pool.clone(),
            backend,
            Arc::new(changes.clone()),
            config.database.writer_threads,
            config.notifications.channel_names(),
        );
        let claims = ClaimBatcher::start(
            pool.clone(),
            backend,
            Arc::new(changes.clone()),
            config.database.writer_threads,
        );
        let reports = ReportBatcher::start(
            pool.clone(),
            backend,
            Arc::new(changes.clone()),
            config.database.writer_threads,
        );
        let cloud = match cloud {
            Some(cloud) => Some(cloud),
            None => cloud_from_config(&config).await,
        };
        let provider = provider_setup::provisioner(&config);
        let local_agents = provider.at_stop;
        let executor = ProvisioningQueue::new(
            pool.clone(),
            writer.clone(),
            provider.provisioner,
            ProvisioningSettings {
                name_prefix: config.provider.name_prefix.clone(),
                max_vms: config.provider.max_vms,
            },
        )
        .with_cloud(cloud.clone())
        .start();
        let release_policy = config
            .lifecycle
            .release
            .unwrap_or(match config.provider.kind {
                ProviderKind::Local => ReleasePolicy::Reset,
                ProviderKind::Terraform => ReleasePolicy::Replace,
            });
        // Every VM gets a supervising actor, which needs the writer and the queue.
        let lifecycle = config.lifecycle.policy();
        let heartbeat_interval = lifecycle.heartbeat_interval();
        if let Some(exits) = provider.agent_exits {
            actix_web::rt::spawn(record_agent_exits(
                exits,
                pool.clone(),
                writer.clone(),
                lifecycle.clone(),
            ));
        }
        let mut supervisor = VmSupervisor::new(pool.clone(), vm_events);
        if config.lifecycle.enabled {
            supervisor = supervisor.supervising(Arc::new(Supervision {
                policy: lifecycle,
                writer: writer.clone(),
                queue: executor.clone(),
                release_replaces: release_policy == ReleasePolicy::Replace,
            }));
        } else {
            tracing::warn!("lifecycle.enabled is false: no VM is supervised or recovered");
        }
        let supervisor = supervisor.start();
        let workshops = workshop_setup::start(&config, &pool, &writer, &executor)?;
        if let DatabaseLocation::Postgres(url) = &location {
            NotificationListener::new(
                url.clone(),
                pool.clone(),
                Arc::new(changes.clone()),
                ReconnectPolicy::default(),
            )
            .start();
        }
        let admin = admin_credentials(&config, &pool, &writer).await?;
        let session_key = stored_secret(&writer, app_secrets::SESSION_KEY, random_token()).await?;
        let auth = Authorizer::new(Arc::new(admin), &config.clients);
        // One signer for cookies and for the calls between allocators: both use the
        // deployment's session key.
        let signer = CookieSigner::new(&session_key);
        let (stopping, stopping_seen) = tokio::sync::watch::channel(false);
        let required_gpu_instance_type = (cloud.is_some() && config.provider.aws.require_gpu)
            .then(|| config.provider.instance_type());
        let stop_writer = writer.clone();
        let state = web::Data::new(AppState {
            pool,
            backend,
            writer,
            claims,
            reports,
            supervisor,
            executor,
            changes,
            pages: Arc::new(pages),
            auth: Arc::new(auth),
            signer: signer.clone(),
            login_guard: Arc::new(LoginGuard::new(
                config.admin.max_failed_logins,
                Duration::from_secs(config.admin.lockout_secs),
            )),
            session_ttl: Duration::from_secs(config.admin.session_ttl_secs),
            stopping: stopping_seen,
            release_policy,
            can_reboot: cloud.is_some() || config.provider.kind == ProviderKind::Local,
            cloud,
            required_gpu_instance_type,
            metrics: Arc::new(Metrics::new()),
            provider_max_vms: config.provider.max_vms,
            heartbeat_interval,
            client_addresses: ClientAddresses::new(config.server.trusted_proxy_ranges().map_err(
                |reason| StartupError::Config(format!("server.trusted_proxies: {reason}")),
            )?),
            admission: Arc::new(Admission::new(&config.rate_limits)),
            log_budget: Arc::new(LogBudget::new(config.clients.max_log_bytes_per_minute)),
            max_log_bytes_per_batch: config.clients.max_log_bytes_per_batch,
            log_retention: config.vm_logs.retention(),
            max_log_line_bytes: config.vm_logs.max_line_bytes as usize,
            metrics_access: config.metrics.enabled.then(|| MetricsAccess {
                token_hash: config
                    .metrics
                    .token
                    .as_deref()
                    .map(|token| lablink_actors::tokens::sha256(token.as_bytes())),
            }),
            workshops,
            usual_times: Arc::default(),
            take_over_for: Duration::from_secs(u64::from(config.desktop.take_over_secs)),
            desktops: Arc::default(),
            peers: Arc::new(crate::desktop::peers::DesktopPeers::new(signer)),
        });
        let peers_state = state.get_ref().clone();
        let peers = state.peers.clone();
        let (max_json_bytes, max_form_bytes) =
            (config.server.max_json_bytes, config.server.max_form_bytes);
        let body_timeout = BodyTimeout(Duration::from_secs(config.server.body_timeout_secs));

        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    body_timeout::limit_body_time,
                ))
                .wrap(actix_web::middleware::from_fn(
                    cross_site::refuse_cross_site,
                ))
                .wrap(actix_web::middleware::from_fn(
                    crate::query_nul::refuse_nul_in_query,
                ))
                .wrap(actix_web::middleware::from_fn(
                    crate::error_shape::coded_admin_errors,
                ))
                .wrap(actix_web::middleware::from_fn(metrics::record_request))
                .wrap(actix_web::middleware::from_fn(
                    quiet_redirects::redirects_are_not_errors,
                ))
                .wrap(TracingLogger::default())
                .app_data(state.clone())
                .app_data(web::Data::from(state.metrics.clone()))
                .app_data(body_timeout)
                .app_data(
                    web::JsonConfig::default()
                        .limit(max_json_bytes)
                        .error_handler(json_error),
                )
                .app_data(
                    web::FormConfig::default()
                        .limit(max_form_bytes)
                        .error_handler(form_error),
                )
                .app_data(web::PathConfig::default().error_handler(path_error))
                .app_data(web::QueryConfig::default().error_handler(query_error))
                .configure(routes::configure)
        })
        .shutdown_timeout(config.server.shutdown_timeout_secs)
        // A client that closes its side has hung up: drop its request at once. Otherwise an
        // agent that gave up waiting in `/vm_startup` would stay queued (and counted) until
        // its VM next changed.
        .h1_allow_half_closed(false)
        // A response's bytes queued for a slow client before the server waits for it: with a
        // desktop stream's window, what a stalled browser can hold in the allocator.
        .h1_write_buffer_size(crate::desktop::credit::RESPONSE_WRITE_BUFFER)
        // Small frames go out at once (a desktop's keys and grants, a long poll's answer):
        // with Nagle's algorithm, a small write after another waits for the peer's delayed
        // acknowledgement, 40 ms.
        .on_connect(|connection, _| {
            if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
                let _ = tcp.set_nodelay(true);
            }
        })
        // Signals are handled in `run_until_stopped`, which first lets long polls end.
        .disable_signals();
        if config.server.workers > 0 {
            server = server.workers(config.server.workers);
        }
        let bound = server
            .bind(config.server.bind)
            .map_err(|source| StartupError::Bind {
                address: config.server.bind,
                source,
            })?;
        let address = bound.addrs().first().copied().unwrap_or(config.server.bind);
        // Only allocators on PostgreSQL have others beside them (SQLite is one process).
        let home = match backend {
            Backend::Postgres => config.server.advertised_url(address),
            Backend::Sqlite => None,
        };
        if home.is_none() && backend == Backend::Postgres {
            tracing::info!(
                "server.advertise_url is unset and the listener is a wildcard address: browser \
                 desktops reach only the agents connected to this allocator"
            );
        }
        peers.set_home(home);
        actix_web::rt::spawn(crate::desktop::presence::keep_listed(peers_state));
        tracing::info!(%address, database = %location, "listening");
        Ok(Application {
            address,
            server: bound.run(),
            stopping,
            local_agents,
            writer: stop_writer,
        })
    }

    /// The address actually listened on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A handle that can stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM, SIGINT (ctrl-c) or SIGQUIT; in-flight requests get
    /// `server.shutdown_timeout_secs` to finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = self.server;
        tokio::pin!(server);
        let result = tokio::select! {
            result = &mut server => result,
            signal = stop_signal() => {
                tracing::info!(signal, "stopping: answering waiting agents, finishing requests");
                // Agents waiting for an assignment are told to retry (after the restart, or
                // at another allocator), so the graceful stop need not wait out their polls.
                let _ = self.stopping.send(true);
                // The server future carries out the stop, so both are driven together.
                let ((), result) = tokio::join!(handle.stop(true), &mut server);
                result
            }
        };
        if let Some(agents) = &self.local_agents {
            agents.carry_out(&self.writer).await;
        }
        tracing::info!("stopped");
        result
    }
}

/// The admin's credentials: the configured password, hashed now; else the hash stored at an
/// earlier start; else a new password, generated, printed once, and stored hashed.
async fn admin_credentials(
    config: &Config,
    pool: &DbPool,
    writer: &actix::Addr<Writer>,
) -> Result<AdminCredentials, StartupError> {
    let user = config.admin.user.clone();
    let failed = |err: String| StartupError::Database(format!("admin password: {err}"));
    if let Some(hash) = &config.admin.password_hash {
        return Ok(AdminCredentials::new(user, hash.expose().to_owned()));
    }
    if let Some(password) = config.admin.password.as_deref().map(str::to_owned) {
        let hash = web::block(move || hash_password(&password))
            .await
            .map_err(|e| failed(e.to_string()))?
            .map_err(failed)?;
        return Ok(AdminCredentials::new(user, hash));
    }
    let stored = {
        let pool = pool.clone();
        web::block(move || {
            let mut conn = pool.get().map_err(|e| e.to_string())?;
            app_secrets::find(&mut conn, app_secrets::ADMIN_PASSWORD_HASH)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(failed)?
    };
    if let Some(hash) = stored {
        return Ok(AdminCredentials::new(user, hash));
    }
    let password = generate_password();
    let hash = {
        let password = password.clone();
        web::block(move || hash_password(&password))
            .await
            .map_err(|e| failed(e.to_string()))?
            .map_err(failed)?
    };
    let kept = stored_secret(writer, app_secrets::ADMIN_PASSWORD_HASH, hash.clone()).await?;
    if kept == hash {
        // The one time this password is ever shown (another allocator may have won the race
        // and shown its own): a plain block a person sees among the log lines, and, for log
        // collectors, a field of the JSON log line.
        show_generated_password(&user, &password, &config.agent_facing_url());
        if config.log.format.resolved() == LogFormat::Json {
            tracing::warn!(%user, %password, "{GENERATED_PASSWORD_LOGGED}");
        } else {
            tracing::warn!(%user, "{GENERATED_PASSWORD_LOGGED}");
        }
    }
    Ok(AdminCredentials::new(user, kept))
}

/// Logged when the admin password was generated at this start.
pub const GENERATED_PASSWORD_LOGGED: &str = "no admin password was configured, so one was \
    generated: it is shown only this once; keep it safe, or set LABLINK__ADMIN__PASSWORD";

/// Prints the generated password as its own block on standard error, where a person running
/// the allocator at a terminal sees it between the log lines (never into the recent-log ring
/// that the dashboard shows).
fn show_generated_password(user: &str, password: &str, url: &str) {
    let rule = "=".repeat(72);
    eprintln!(
        "\n{rule}\n  No admin password was configured, so one was generated.\n  Sign in at \
         {url}/admin as user \"{user}\" with\n\n  Admin password: {password}\n\n  It is shown \
         only this once and kept only as a hash: note it now, or set\n  \
         LABLINK__ADMIN__PASSWORD (or admin.password_hash) before the next start.\n{rule}\n"
    );
}

/// The secret stored under `name`, storing `candidate` if there is none yet.
async fn stored_secret(
    writer: &actix::Addr<Writer>,
    name: &'static str,
    candidate: String,
) -> Result<String, StartupError> {
    writer
        .send(StoreSecret {
            name,
            value: candidate,
        })
        .await
        .map_err(|e| StartupError::Database(e.to_string()))?
        .map_err(|e| StartupError::Database(format!("cannot store {name}: {e}")))
}

/// The AWS API when `provider.aws.enabled` (configuration checking refuses it in a build
/// without the `aws` feature).
#[allow(clippy::unused_async)]
async fn cloud_from_config(config: &Config) -> Option<Arc<dyn CloudApi>> {
    if !config.provider.aws.enabled {
        return None;
    }
    #[cfg(feature = "aws")]
    {
        Some(Arc::new(crate::aws::AwsCloud::new(&config.provider).await))
    }
    #[cfg(not(feature = "aws"))]
    {
        None
    }
}

/// Waits for SIGTERM, SIGINT (ctrl-c) or SIGQUIT and names it.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt), Ok(mut quit)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
    ) else {
        tracing::error!("cannot listen for stop signals");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
        _ = quit.recv() => "SIGQUIT",
    }
}

/// Applies pending migrations, retrying with capped backoff while the database cannot be
/// reached (it may still be starting beside us), for at most `patience`. A migration that
/// fails on a reachable database is not retried.
async fn migrate_when_reachable(
    pool: &DbPool,
    location: &DatabaseLocation,
    patience: Duration,
) -> Result<(), StartupError> {
    let started = Instant::now();
    let mut backoff =
        lablink_schema::backoff::Backoff::new(STARTUP_RETRY_INITIAL, STARTUP_RETRY_MAX);
    loop {
        let pool = pool.clone();
        let attempt = web::block(move || -> Result<Vec<String>, AttemptError> {
            let mut conn = pool
                .get()
                .map_err(|err| AttemptError::Unreachable(err.to_string()))?;
            migrations::run_pending(&mut conn).map_err(|err| AttemptError::Failed(err.to_string()))
        })
        .await
        .map_err(|err| StartupError::Database(err.to_string()))?;
        match attempt {
            Ok(applied) => {
                if !applied.is_empty() {
                    tracing::info!(?applied, "applied database migrations");
                }
                return Ok(());
            }
            Err(AttemptError::Failed(reason)) => {
                return Err(StartupError::Database(format!(
                    "migrating {location} failed: {reason}"
                )));
            }
            Err(AttemptError::Unreachable(reason)) if started.elapsed() < patience => {
                let delay = backoff.next_delay();
                tracing::warn!(database = %location, %reason, retry_in_ms = delay.as_millis(), "database not reachable yet");
                tokio::time::sleep(delay).await;
            }
            Err(AttemptError::Unreachable(reason)) => {
                return Err(StartupError::Database(format!(
                    "database {location} unreachable for {}s: {reason}",
                    patience.as_secs()
                )));
            }
        }
    }
}

enum AttemptError {
    Unreachable(String),
    Failed(String),
}

/// `lablink-allocator migrate`: applies pending migrations and reports what it did.
pub fn migrate_once(config: &Config) -> Result<Vec<String>, StartupError> {
    let location = config.database.location().map_err(StartupError::Database)?;
    let pool = build_pool(&location, 1).map_err(|err| StartupError::Database(err.to_string()))?;
    let mut conn = pool
        .get()
        .map_err(|err| StartupError::Database(format!("database {location} unreachable: {err}")))?;
    let applied = migrations::run_pending(&mut conn)
        .map_err(|err| StartupError::Database(format!("migrating {location} failed: {err}")))?;
    Ok(applied)
}
