//! Command-line interface: global options shared by every subcommand, and the subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
pub use pi_mcp::app::Globals;
use pi_mcp::guard::Decision;

/// `policy check` exit status when the (strictest) decision is `ask`: 0 is `allow`, 1 an error,
/// 2 a usage error.
pub const EXIT_ASK: u8 = 3;
/// `policy check` exit status when the (strictest) decision is `deny`.
pub const EXIT_DENY: u8 = 4;

/// The exit status of `policy check` for a decision: 0, [`EXIT_ASK`] or [`EXIT_DENY`].
pub fn decision_exit_code(decision: Decision) -> u8 {
    match decision {
        Decision::Allow => 0,
        Decision::Ask => EXIT_ASK,
        Decision::Deny => EXIT_DENY,
    }
}

/// A guarded MCP server and operations daemon: bash, read and edit behind a policy-as-code
/// gatekeeper, with every decision audited.
#[derive(Debug, Parser)]
#[command(name = "pi-mcp", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Globals,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over stdio (default) or Streamable HTTP.
    Serve(ServeArgs),
    /// Inspect or check the security policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print the audit log of tool calls.
    Audit(AuditArgs),
    /// List, inspect, approve or deny commands waiting for a human's approval.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Manage the OSV advisory database that package installs are checked against.
    #[command(subcommand)]
    Osv(OsvCommand),
    /// The Data Ghost: schema diff, data profiling and anomaly report for a database.
    Ghost(pi_mcp::ghost::command::GhostArgs),
    /// Evaluate the alert rules once (`monitor schema`, `monitor validate` too).
    Monitor(pi_mcp::monitor::command::MonitorArgs),
    /// The daemon: evaluate the alert rules every interval and deliver notifications.
    Heartbeat(pi_mcp::heartbeat::HeartbeatArgs),
    /// Run the built-in Pi agent once: the model drives pi-mcp's own tools until it answers.
    Agent(pi_mcp::agent::command::AgentArgs),
    /// Check this machine's setup and say what to fix: policy, sandbox, store, channels, AWS,
    /// databases, rules, prompts, and the client configuration. Exit 1 when something fails.
    Doctor(pi_mcp::doctor::DoctorArgs),
    /// Internal (the bash tool's child): apply the OS sandbox, then exec the command.
    #[command(name = "__sandbox-exec", hide = true)]
    SandboxExec(SandboxExecArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve over stdin/stdout (the default).
    #[arg(long, conflicts_with = "http")]
    pub stdio: bool,
    /// Serve Streamable HTTP at /mcp on ADDR (default 127.0.0.1:8765).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8765")]
    pub http: Option<SocketAddr>,
    #[command(flatten)]
    pub access: pi_mcp::console::Access,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Judge a command without running it: pi-mcp policy check -- "rm -rf /". Exits 0 for
    /// allow, 3 for ask, 4 for deny (with --batch: the strictest of all lines).
    Check {
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
        /// Directory the command would run in (default: the first workspace root).
        #[arg(long, value_name = "DIR")]
        cwd: Option<PathBuf>,
        /// Judge as if the sandbox enforced every layer (`full`), writes only (`partial`), or
        /// nothing (`none`); default: what this machine enforces under the policy.
        #[arg(long, value_name = "LEVEL", value_parser = ["full", "partial", "none"])]
        sandbox: Option<String>,
        /// Judge every line of FILE (`-` for stdin) instead: a line is a command, or a JSON
        /// string for a command with newlines; prints one verdict per line.
        #[arg(long, value_name = "FILE", conflicts_with = "command")]
        batch: Option<PathBuf>,
        /// The command line (several words are joined with spaces).
        #[arg(
            required_unless_present = "batch",
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<String>,
    },
    /// Load a policy file, check its rules' examples, and report problems.
    Validate {
        /// Policy file (default: the one in force).
        file: Option<PathBuf>,
    },
    /// Print the policy in force as JSON.
    Show,
    /// Print the JSON Schema of the policy format.
    Schema,
}

/// Arguments of the hidden `__sandbox-exec` subcommand (see `pi_mcp::tools::sandbox`).
#[derive(Debug, Args)]
pub struct SandboxExecArgs {
    /// What to enforce, as JSON (`pi_mcp::sandbox::Spec`).
    #[arg(long)]
    pub spec: String,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// How many of the newest entries to print.
    #[arg(long, default_value_t = 20)]
    pub tail: i64,
    /// Print JSON (an array of entries).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum OsvCommand {
    /// Download <base>/<Ecosystem>/all.zip for each ecosystem and unpack it into the database.
    Update {
        /// Where the archives are published.
        #[arg(
            long,
            env = "PI_MCP_OSV_URL",
            value_name = "URL",
            default_value = pi_mcp::tools::osv_update::DEFAULT_BASE_URL
        )]
        base_url: String,
        /// Ecosystem to download (repeatable; default: PyPI, npm, crates.io, Go, RubyGems).
        #[arg(long = "ecosystem", value_name = "E")]
        ecosystems: Vec<pi_mcp::guard::osv::Ecosystem>,
        /// Database directory (default: --osv-db, else <state dir>/osv).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// The newest approvals (pending first in importance: check their status column).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// How many to show.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One approval in full, as JSON.
    Show { id: String },
    /// Approve a pending command: it runs once when the agent calls bash with it again.
    Approve {
        id: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny a pending command.
    Deny {
        id: String,
        /// Why (shown to the agent and recorded in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Settings where "empty" must not quietly mean "the default": an empty policy would be the
/// built-in one instead of the operator's stricter file, an empty store a local one that other
/// replicas do not share.
const MUST_NOT_BE_EMPTY: &[&str] = &["PI_MCP_POLICY", "PI_MCP_STATE_URL", "PI_MCP_STATE_DIR"];

/// Treats a setting variable that is set but empty (`PI_MCP_ALERTS= pi-mcp monitor`, a blank
/// `Environment=` line in a unit file) as not set, so the option's default applies: clap would
/// otherwise refuse it as "a value is required". Only the variables the CLI's own options read
/// are touched, and [`MUST_NOT_BE_EMPTY`] ones are an error that names the variable. Call it
/// first thing in `main`, while the process has one thread.
pub fn forget_empty_settings() -> Result<(), String> {
    fn names(cmd: &clap::Command, out: &mut Vec<std::ffi::OsString>) {
        out.extend(
            cmd.get_arguments()
                .filter_map(|a| a.get_env().map(|e| e.to_os_string())),
        );
        for sub in cmd.get_subcommands() {
            names(sub, out);
        }
    }
    // Most starts have no empty variable at all: then the CLI's definition is not built twice.
    if !std::env::vars_os().any(|(_, v)| v.is_empty()) {
        return Ok(());
    }
    let mut settings = Vec::new();
    names(&<Cli as clap::CommandFactory>::command(), &mut settings);
    for name in settings {
        if !std::env::var_os(&name).is_some_and(|v| v.is_empty()) {
            continue;
        }
        if let Some(strict) = MUST_NOT_BE_EMPTY.iter().find(|n| name == **n) {
            return Err(format!(
                "{strict} is set but empty: unset it to use the default, or give it a value \
                 (an empty value is refused rather than taken as the default)"
            ));
        }
        // SAFETY: called at the start of `main`, before any other thread exists.
        unsafe { std::env::remove_var(&name) };
    }
    Ok(())
}
