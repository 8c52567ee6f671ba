//! LabLink-rs VM agent. It links only the serde wire types of `lablink-schema`, never
//! diesel, SQLite or libpq, so it stays one small self-contained binary per VM.
//!
//! This release has the agent's settings; the actor system (`Subscriber`,
//! `DesktopLauncher`, `GpuMonitor`, `UsageMonitor`, `StatusReporter`) comes next.

pub mod settings;

pub use lablink_schema::wire;
