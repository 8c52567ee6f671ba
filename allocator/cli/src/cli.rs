//! The command line: every command and option, as clap reads them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// LabLink-rs from the command line: VMs, workshops, logs, exports and API tokens, over the
/// allocator's REST API.
#[derive(Debug, Parser)]
#[command(name = "lablink", version, propagate_version = true)]
pub struct Cli {
    /// The allocator's address (else the saved login's).
    #[arg(long, global = true, env = "LABLINK_URL", value_name = "URL")]
    pub url: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Save the allocator's address and an API token (asked for, or LABLINK_TOKEN).
    Login {
        /// e.g. https://lab.example.org
        url: String,
    },
    /// Forget the saved login.
    Logout,
    /// Who the token acts as, and the allocator's version.
    Whoami,
    /// VMs: list, create, destroy, release, reboot, replace.
    #[command(subcommand)]
    Vms(VmsCommand),
    /// Provisioning operations.
    #[command(subcommand)]
    Ops(OpsCommand),
    /// Workshops: create from a file, list, show, end, extend.
    #[command(subcommand, alias = "workshops")]
    Workshop(WorkshopCommand),
    /// A VM's log; `-f` follows it.
    Logs(LogsArgs),
    /// Download participants, VMs or the audit trail.
    Export(ExportArgs),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// API tokens: create, list, revoke.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Print a shell's completion script.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
pub enum VmsCommand {
    /// List VMs.
    Ls {
        /// Only VMs in this lifecycle state (ready, assigned, failed, …).
        #[arg(long)]
        state: Option<String>,
        /// Only VMs assigned to a participant.
        #[arg(long, conflicts_with = "free")]
        assigned: bool,
        /// Only VMs not assigned.
        #[arg(long)]
        free: bool,
    },
    /// One VM.
    Show { hostname: String },
    /// Create N more VMs and follow the operation.
    Create {
        count: u32,
        #[command(flatten)]
        wait: Wait,
    },
    /// Destroy VMs (or `--all`) and follow the operation.
    Destroy {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        hostnames: Vec<String>,
        #[arg(long)]
        all: bool,
        /// Destroy VMs assigned to participants too.
        #[arg(long)]
        confirm_assigned: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// End a VM's session; it is handed out again.
    Release { hostname: String },
    /// Reboot a VM now.
    Reboot { hostname: String },
    /// Replace a VM with a new one and follow the operation.
    Replace {
        hostname: String,
        #[arg(long)]
        confirm_assigned: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Lift a VM's GPU quarantine.
    ClearQuarantine { hostname: String },
}

#[derive(Debug, Clone, Copy, Args)]
pub struct Wait {
    /// Print the queued operation and return at once.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Subcommand)]
pub enum OpsCommand {
    /// The newest operations.
    Ls,
    /// One operation, with its output.
    Show { id: i64 },
    /// Follow an operation to its end.
    Wait { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum WorkshopCommand {
    /// Create a workshop from a YAML (or JSON) file.
    Create {
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// List workshops.
    Ls,
    /// One workshop.
    Show { id: i64 },
    /// End a workshop now.
    End { id: i64 },
    /// Move a workshop's end.
    Extend {
        id: i64,
        /// The new end, RFC 3339 with an offset.
        #[arg(long)]
        until: String,
    },
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub hostname: String,
    /// Keep printing new lines as they arrive.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// How many of the newest lines to print first.
    #[arg(short = 'n', long, default_value_t = 100)]
    pub lines: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportKind {
    Participants,
    Vms,
    Audit,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    pub kind: ExportKind,
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Only this workshop's rows.
    #[arg(long)]
    pub workshop: Option<i64>,
    /// From this time (RFC 3339 with an offset).
    #[arg(long)]
    pub from: Option<String>,
    /// Up to this time (RFC 3339 with an offset).
    #[arg(long)]
    pub to: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The newest events first.
    Ls {
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        target: Option<String>,
        /// How many events (the API pages through them).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Scope {
    ReadOnly,
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Make a token; it is printed once.
    Create {
        name: String,
        #[arg(long, value_enum)]
        scope: Scope,
        /// Days until it stops working (else never).
        #[arg(long)]
        expires_in_days: Option<u64>,
    },
    /// List tokens (never their secrets).
    Ls,
    /// Revoke a token: its next request is refused.
    Revoke { id: i64 },
}
