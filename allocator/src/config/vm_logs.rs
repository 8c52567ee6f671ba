//! Section `vm_logs`: how much of each VM's log the allocator keeps, and the longest line.

use lablink_schema::vm_logs::Retention;
use serde::{Deserialize, Serialize};

use super::Invalid;

/// Section `vm_logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VmLogsConfig {
    /// Lines kept per VM; past it the oldest go first.
    pub max_lines_per_vm: u32,
    /// Bytes of log text kept per VM; past it the oldest lines go first.
    pub max_bytes_per_vm: u64,
    /// A longer line is cut to this many bytes, with a marker saying how much was cut.
    pub max_line_bytes: u32,
}

impl Default for VmLogsConfig {
    fn default() -> Self {
        VmLogsConfig {
            max_lines_per_vm: 100_000,
            max_bytes_per_vm: 32 * 1024 * 1024,
            max_line_bytes: 8 * 1024,
        }
    }
}

impl VmLogsConfig {
    pub fn retention(&self) -> Retention {
        Retention {
            max_lines: i64::from(self.max_lines_per_vm),
            max_bytes: i64::try_from(self.max_bytes_per_vm).unwrap_or(i64::MAX),
        }
    }

    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if self.max_lines_per_vm == 0 {
            return Err(Invalid::new(
                "vm_logs.max_lines_per_vm",
                "must be at least 1",
            ));
        }
        if self.max_line_bytes < 80 {
            return Err(Invalid::new(
                "vm_logs.max_line_bytes",
                "must be at least 80",
            ));
        }
        if self.max_bytes_per_vm < u64::from(self.max_line_bytes) {
            return Err(Invalid::new(
                "vm_logs.max_bytes_per_vm",
                "must be at least vm_logs.max_line_bytes",
            ));
        }
        Ok(())
    }
}
