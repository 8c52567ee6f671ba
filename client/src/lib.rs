//! LabLink-rs VM agent, run on every lab VM. It links only the serde wire types and CRD
//! parsing of `lablink-schema`, never diesel, SQLite or libpq, so it stays one small
//! self-contained binary.
//!
//! Actors (see `docs/architecture.md`): `Subscriber` waits for the VM's assignment,
//! `DesktopLauncher` starts Chrome Remote Desktop, `GpuMonitor` reports GPU health,
//! `UsageMonitor` reports whether the research software runs, `StatusReporter` sends the
//! heartbeat, `LogShipper` ships the VM's logs. What touches the VM sits behind traits: [`desktop::RemoteDesktop`],
//! [`gpu::GpuProbe`], [`usage::ProcessTable`], [`desktop_activity::InputIdle`] and
//! [`desktop_activity::DesktopNotifier`].

pub mod agent;
pub mod allocator_client;
pub mod desktop;
pub mod desktop_activity;
pub mod desktop_tunnel;
#[cfg(any(test, feature = "test-support"))]
pub mod doubles;
pub mod gpu;
pub mod log_shipping;
pub mod session_figures;
pub mod session_reset;
pub mod settings;
pub mod status;
pub mod subscriber;
pub mod usage;
pub mod vnc_auth;

pub use lablink_schema::wire;
