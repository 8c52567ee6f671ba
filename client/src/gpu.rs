//! GPU health: the [`GpuProbe`] that reads the GPUs (NVML in production), the health policy
//! (a pure [`HealthTracker`] over successive samples), and the `GpuMonitor` actor that samples
//! off its event loop and reports on change, re-sending periodically so a lost report heals.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::{Actor, ActorFutureExt, AsyncContext, Context, Handler, Message, WrapFuture};
use lablink_schema::wire::GpuHealth;
use nvml_wrapper::enum_wrappers::device::{EccCounter, MemoryError, TemperatureSensor};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::Nvml;

use crate::allocator_client::AllocatorClient;
use crate::session_figures::SessionTally;

#[cfg(any(test, feature = "test-support"))]
pub use crate::doubles::ScriptedProbe;

/// One GPU's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuReading {
    pub temperature_c: u32,
    /// Uncorrected ECC errors since the driver loaded (0 where ECC is not supported).
    pub uncorrected_ecc_errors: u64,
    /// Percent of the last sample period a kernel was running.
    pub utilization_percent: u32,
    /// GPU memory in use, in MiB (0 where the GPU does not say).
    pub memory_used_mib: u64,
}

/// Why a sample could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// No NVML library or driver: this VM has no usable NVIDIA GPU.
    #[error("NVML is not available: {0}")]
    NoNvml(String),
    /// The driver reports the GPU as lost.
    #[error("GPU lost: {0}")]
    GpuLost(String),
    /// Any other failure to read the GPU.
    #[error("GPU query failed: {0}")]
    Failed(String),
}

/// One sample of every GPU.
pub type GpuSample = Result<Vec<GpuReading>, ProbeError>;

/// Reads the GPUs. Blocking: the monitor calls it off its event loop.
pub trait GpuProbe: Send + 'static {
    fn sample(&mut self) -> GpuSample;
}

/// The real probe, through NVML (loaded at run time; absent on CPU-only VMs).
pub struct NvmlProbe {
    nvml: Result<Nvml, String>,
}

impl std::fmt::Debug for NvmlProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NvmlProbe")
            .field("loaded", &self.nvml.is_ok())
            .finish()
    }
}

impl NvmlProbe {
    /// Loads NVML once; if that fails, every sample says why.
    pub fn new() -> Self {
        NvmlProbe {
            nvml: Nvml::init().map_err(|err| err.to_string()),
        }
    }
}

impl Default for NvmlProbe {
    fn default() -> Self {
        Self::new()
    }
}

fn classify(err: NvmlError) -> ProbeError {
    match err {
        NvmlError::GpuLost => ProbeError::GpuLost(err.to_string()),
        NvmlError::DriverNotLoaded | NvmlError::LibraryNotFound | NvmlError::LibloadingError(_) => {
            ProbeError::NoNvml(err.to_string())
        }
        other => ProbeError::Failed(other.to_string()),
    }
}

/// A value the GPU does not support reads as `default`; other errors count.
fn or_unsupported<T>(result: Result<T, NvmlError>, default: T) -> Result<T, ProbeError> {
    match result {
        Ok(value) => Ok(value),
        Err(NvmlError::NotSupported) => Ok(default),
        Err(err) => Err(classify(err)),
    }
}

impl GpuProbe for NvmlProbe {
    fn sample(&mut self) -> GpuSample {
        let nvml = self
            .nvml
            .as_ref()
            .map_err(|reason| ProbeError::NoNvml(reason.clone()))?;
        let count = nvml.device_count().map_err(classify)?;
        (0..count)
            .map(|index| {
                let device = nvml.device_by_index(index).map_err(classify)?;
                Ok(GpuReading {
                    temperature_c: device
                        .temperature(TemperatureSensor::Gpu)
                        .map_err(classify)?,
                    uncorrected_ecc_errors: or_unsupported(
                        device.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile),
                        0,
                    )?,
                    utilization_percent: or_unsupported(
                        device.utilization_rates().map(|u| u.gpu),
                        0,
                    )?,
                    memory_used_mib: or_unsupported(
                        device.memory_info().map(|m| m.used / (1024 * 1024)),
                        0,
                    )?,
                })
            })
            .collect()
    }
}

/// When a GPU counts as unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// At or above this temperature a GPU is running too hot…
    pub max_temperature_c: u32,
    /// …once it has been so for this many samples in a row (a brief spike is fine).
    pub hot_samples: u32,
    /// Failed queries in a row before the GPU counts as broken (one can be transient).
    pub failed_samples: u32,
    /// Samples in a row at 100 % utilisation while the research software is not running
    /// before the GPU counts as held by a runaway process; the next researcher would find it
    /// busy. Busy while in use is normal and never counts.
    pub busy_idle_samples: u32,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            max_temperature_c: 90,
            hot_samples: 3,
            failed_samples: 2,
            // Ten minutes at the default 20 s interval.
            busy_idle_samples: 30,
        }
    }
}

/// The health policy as a pure state machine over successive samples.
#[derive(Debug, Clone, Default)]
pub struct HealthTracker {
    policy: HealthPolicy,
    hot_streak: u32,
    failed_streak: u32,
    busy_idle_streak: u32,
    /// Per-GPU uncorrected ECC counts at the first good sample.
    ecc_baseline: Option<Vec<u64>>,
    /// New uncorrected ECC errors or a vanished GPU: stays unhealthy until the agent restarts
    /// (in practice, the VM reboots).
    broken: bool,
    verdict: Option<GpuHealth>,
}

impl HealthTracker {
    pub fn new(policy: HealthPolicy) -> Self {
        HealthTracker {
            policy,
            ..Self::default()
        }
    }

    /// Takes one sample (and whether the research software runs) and returns the health to
    /// report, or `None` while there is no verdict yet (a first query failed once).
    pub fn observe(&mut self, sample: &GpuSample, in_use: bool) -> Option<GpuHealth> {
        let verdict = match sample {
            Err(ProbeError::NoNvml(_)) => Some(GpuHealth::NotAvailable),
            Err(ProbeError::GpuLost(_)) => {
                self.broken = true;
                Some(GpuHealth::Unhealthy)
            }
            Err(ProbeError::Failed(_)) => {
                self.failed_streak += 1;
                if self.failed_streak >= self.policy.failed_samples {
                    Some(GpuHealth::Unhealthy)
                } else {
                    self.verdict
                }
            }
            Ok(readings) if readings.is_empty() && self.ecc_baseline.is_none() => {
                Some(GpuHealth::NotAvailable)
            }
            Ok(readings) => Some(self.assess(readings, in_use)),
        };
        self.verdict = verdict;
        verdict
    }

    fn assess(&mut self, readings: &[GpuReading], in_use: bool) -> GpuHealth {
        self.failed_streak = 0;
        let ecc: Vec<u64> = readings.iter().map(|r| r.uncorrected_ecc_errors).collect();
        match &self.ecc_baseline {
            None => self.ecc_baseline = Some(ecc),
            Some(baseline) => {
                let vanished = baseline.len() != ecc.len();
                let new_errors = baseline.iter().zip(&ecc).any(|(before, now)| now > before);
                if vanished || new_errors {
                    self.broken = true;
                }
            }
        }
        let hot = readings
            .iter()
            .any(|r| r.temperature_c >= self.policy.max_temperature_c);
        self.hot_streak = if hot { self.hot_streak + 1 } else { 0 };
        let busy = readings.iter().any(|r| r.utilization_percent >= 100);
        self.busy_idle_streak = if busy && !in_use {
            self.busy_idle_streak + 1
        } else {
            0
        };
        let unhealthy = self.broken
            || self.hot_streak >= self.policy.hot_samples
            || self.busy_idle_streak >= self.policy.busy_idle_samples;
        if unhealthy {
            GpuHealth::Unhealthy
        } else {
            GpuHealth::Healthy
        }
    }
}

/// The actor: samples every `check_interval`, reports changes and re-sends every
/// `resend_interval`; a failed report is retried at the next check.
pub struct GpuMonitor {
    client: AllocatorClient,
    probe: Arc<Mutex<Box<dyn GpuProbe>>>,
    tracker: HealthTracker,
    check_interval: Duration,
    resend_interval: Duration,
    in_use: bool,
    last_sent: Option<(GpuHealth, Instant)>,
    sampling: bool,
    explained_no_nvml: bool,
    /// The session's GPU figures, from the same samples.
    session: Option<Arc<SessionTally>>,
}

impl std::fmt::Debug for GpuMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuMonitor")
            .field("last_sent", &self.last_sent.map(|(h, _)| h))
            .finish_non_exhaustive()
    }
}

impl GpuMonitor {
    pub fn new(
        client: AllocatorClient,
        probe: Box<dyn GpuProbe>,
        policy: HealthPolicy,
        check_interval: Duration,
        resend_interval: Duration,
    ) -> Self {
        GpuMonitor {
            client,
            probe: Arc::new(Mutex::new(probe)),
            tracker: HealthTracker::new(policy),
            check_interval,
            resend_interval,
            in_use: false,
            last_sent: None,
            sampling: false,
            explained_no_nvml: false,
            session: None,
        }
    }

    /// Also adds each sample to the session's figures.
    pub fn tallying(mut self, session: Arc<SessionTally>) -> Self {
        self.session = Some(session);
        self
    }

    fn check(&mut self, ctx: &mut Context<Self>) {
        if self.sampling {
            return;
        }
        self.sampling = true;
        let probe = self.probe.clone();
        let sampled = async move {
            tokio::task::spawn_blocking(move || {
                probe
                    .lock()
                    .map_err(|_| ProbeError::Failed("probe poisoned".to_owned()))?
                    .sample()
            })
            .await
            .unwrap_or_else(|err| Err(ProbeError::Failed(err.to_string())))
        };
        ctx.spawn(sampled.into_actor(self).map(|sample, monitor, ctx| {
            monitor.sampling = false;
            if let Err(ProbeError::NoNvml(reason)) = &sample {
                if !monitor.explained_no_nvml {
                    tracing::info!(%reason, "no NVML on this VM; reporting GPU health as N/A");
                    monitor.explained_no_nvml = true;
                }
            }
            if let Some(session) = &monitor.session {
                session.gpu_sampled(&sample);
            }
            if let Some(health) = monitor.tracker.observe(&sample, monitor.in_use) {
                monitor.report_if_due(health, ctx);
            }
        }));
    }

    fn report_if_due(&mut self, health: GpuHealth, ctx: &mut Context<Self>) {
        let due = match self.last_sent {
            None => true,
            Some((sent, at)) => sent != health || at.elapsed() >= self.resend_interval,
        };
        if !due {
            return;
        }
        let client = self.client.clone();
        ctx.spawn(
            async move { client.report_gpu_health(health).await }
                .into_actor(self)
                .map(move |result, monitor, _| match result {
                    Ok(()) => {
                        if monitor.last_sent.map(|(h, _)| h) != Some(health) {
                            tracing::info!(gpu_health = %health, "reported GPU health");
                        }
                        monitor.last_sent = Some((health, Instant::now()));
                    }
                    Err(error) => tracing::warn!(%error, "GPU health report failed; retrying at the next check"),
                }),
        );
    }
}

impl Actor for GpuMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Reports before registration would be refused (no VM, no token yet): the first
        // check waits for it and then goes at once.
        let client = self.client.clone();
        ctx.wait(async move { client.until_registered().await }.into_actor(self));
        ctx.run_later(Duration::ZERO, |monitor, ctx| monitor.check(ctx));
        ctx.run_interval(self.check_interval, |monitor, ctx| monitor.check(ctx));
    }
}

/// Whether the research software runs (from the usage monitor): a busy GPU then is normal.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct SetInUse(pub bool);

impl Handler<SetInUse> for GpuMonitor {
    type Result = ();

    fn handle(&mut self, msg: SetInUse, _: &mut Self::Context) {
        self.in_use = msg.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(temperature_c: u32, ecc: u64, utilization: u32) -> GpuReading {
        GpuReading {
            temperature_c,
            uncorrected_ecc_errors: ecc,
            utilization_percent: utilization,
            memory_used_mib: 0,
        }
    }

    fn run(policy: HealthPolicy, script: Vec<(GpuSample, bool)>) -> Vec<Option<GpuHealth>> {
        let mut tracker = HealthTracker::new(policy);
        let mut probe = ScriptedProbe::new(script.iter().map(|(s, _)| s.clone()));
        script
            .iter()
            .map(|(_, in_use)| tracker.observe(&probe.sample(), *in_use))
            .collect()
    }

    use GpuHealth::{Healthy as H, NotAvailable as NA, Unhealthy as U};

    #[test]
    fn no_nvml_or_no_gpu_is_not_available() {
        let verdicts = run(
            HealthPolicy::default(),
            vec![(
                Err(ProbeError::NoNvml("libnvidia-ml.so: not found".into())),
                false,
            )],
        );
        assert_eq!(verdicts, [Some(NA)]);
        assert_eq!(
            run(HealthPolicy::default(), vec![(Ok(vec![]), false)]),
            [Some(NA)]
        );
    }

    #[test]
    fn a_brief_heat_spike_is_fine_but_sustained_heat_is_not() {
        let policy = HealthPolicy::default();
        let verdicts = run(
            policy,
            vec![
                (Ok(vec![gpu(60, 0, 10)]), false),
                (Ok(vec![gpu(95, 0, 10)]), false),
                (Ok(vec![gpu(70, 0, 10)]), false),
                (Ok(vec![gpu(91, 0, 10)]), false),
                (Ok(vec![gpu(92, 0, 10)]), false),
                (Ok(vec![gpu(93, 0, 10)]), false),
                (Ok(vec![gpu(65, 0, 10)]), false),
            ],
        );
        assert_eq!(
            verdicts,
            [
                Some(H),
                Some(H),
                Some(H),
                Some(H),
                Some(H),
                Some(U),
                Some(H)
            ]
        );
    }

    #[test]
    fn new_uncorrected_ecc_errors_or_a_vanished_gpu_stay_unhealthy() {
        let verdicts = run(
            HealthPolicy::default(),
            vec![
                (Ok(vec![gpu(50, 2, 0), gpu(50, 0, 0)]), false),
                (Ok(vec![gpu(50, 2, 0), gpu(50, 0, 0)]), false),
                (Ok(vec![gpu(50, 2, 0), gpu(50, 1, 0)]), false),
                (Ok(vec![gpu(50, 2, 0), gpu(50, 1, 0)]), false),
            ],
        );
        assert_eq!(
            verdicts,
            [Some(H), Some(H), Some(U), Some(U)],
            "errors present at start are the baseline"
        );
        let verdicts = run(
            HealthPolicy::default(),
            vec![
                (Ok(vec![gpu(50, 0, 0), gpu(50, 0, 0)]), false),
                (Ok(vec![gpu(50, 0, 0)]), false),
                (Ok(vec![gpu(50, 0, 0), gpu(50, 0, 0)]), false),
            ],
        );
        assert_eq!(verdicts, [Some(H), Some(U), Some(U)]);
    }

    #[test]
    fn a_lost_gpu_is_unhealthy_at_once_and_one_failed_query_is_tolerated() {
        let verdicts = run(
            HealthPolicy::default(),
            vec![
                (Err(ProbeError::Failed("timeout".into())), false),
                (Ok(vec![gpu(50, 0, 0)]), false),
                (Err(ProbeError::Failed("timeout".into())), false),
                (Err(ProbeError::Failed("timeout".into())), false),
                (Ok(vec![gpu(50, 0, 0)]), false),
                (Err(ProbeError::GpuLost("fell off the bus".into())), false),
                (Ok(vec![gpu(50, 0, 0)]), false),
            ],
        );
        assert_eq!(
            verdicts,
            [None, Some(H), Some(H), Some(U), Some(H), Some(U), Some(U)]
        );
    }

    #[test]
    fn a_gpu_pinned_while_nobody_uses_the_vm_is_unhealthy_but_busy_in_use_is_normal() {
        let policy = HealthPolicy {
            busy_idle_samples: 3,
            ..HealthPolicy::default()
        };
        let busy = || Ok(vec![gpu(70, 0, 100)]);
        let verdicts = run(
            policy,
            vec![
                (busy(), true),
                (busy(), true),
                (busy(), true),
                (busy(), true),
                (busy(), false),
                (busy(), false),
                (busy(), false),
                (Ok(vec![gpu(70, 0, 3)]), false),
            ],
        );
        assert_eq!(
            verdicts,
            [
                Some(H),
                Some(H),
                Some(H),
                Some(H),
                Some(H),
                Some(H),
                Some(U),
                Some(H)
            ]
        );
    }

    /// Runs against the real NVML; needs an NVIDIA GPU and driver:
    /// `cargo test -p lablink-client -- --ignored nvml`.
    #[test]
    #[ignore = "needs an NVIDIA GPU with its driver"]
    fn nvml_reads_real_gpus() {
        let mut probe = NvmlProbe::new();
        let readings = probe.sample().expect("NVML should answer on a GPU host");
        assert!(!readings.is_empty(), "no GPU found");
        for reading in &readings {
            assert!((1..=120).contains(&reading.temperature_c), "{reading:?}");
            assert!(reading.utilization_percent <= 100, "{reading:?}");
        }
        // The session figures take the same sample: measured, with memory in use counted.
        let tally = SessionTally::default();
        tally.begin(1);
        tally.gpu_sampled(&Ok(readings.clone()));
        let gpu = tally
            .figures()
            .and_then(|f| f.gpu)
            .expect("measured on a GPU host");
        assert!(gpu.peak_utilization <= 100, "{gpu:?}");
        let mut tracker = HealthTracker::new(HealthPolicy::default());
        assert_eq!(
            tracker.observe(&Ok(readings), false),
            Some(GpuHealth::Healthy)
        );
    }
}
