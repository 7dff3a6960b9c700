//! Command-line interface: global options shared by every subcommand, and the subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A guarded MCP server and operations daemon: bash, read and edit behind a policy-as-code
/// gatekeeper, with every decision audited.
#[derive(Debug, Parser)]
#[command(name = "pi-mcp", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand understands.
#[derive(Debug, Args)]
pub struct Global {
    /// Workspace root the tools are confined to (repeatable; default: the current directory).
    #[arg(long = "workspace", short = 'w', global = true, value_name = "DIR")]
    pub workspaces: Vec<PathBuf>,
    /// Policy file (default: the built-in policy, identical to policies/security.json).
    #[arg(long, global = true, env = "PI_MCP_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// State store URL: sqlite://PATH or postgres://... (default: <workspace>/.pi-mcp/state.db).
    #[arg(
        long,
        global = true,
        env = "PI_MCP_STATE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub state_url: Option<String>,
    /// Directory of prompt templates (default: <workspace>/prompts if present, else built-in).
    #[arg(long, global = true, env = "PI_MCP_PROMPTS", value_name = "DIR")]
    pub prompts: Option<PathBuf>,
    /// Directory of reports served as resources (default: <workspace>/reports).
    #[arg(long, global = true, env = "PI_MCP_REPORTS", value_name = "DIR")]
    pub reports: Option<PathBuf>,
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
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Serve over stdin/stdout (the default).
    #[arg(long, conflicts_with = "http")]
    pub stdio: bool,
    /// Serve Streamable HTTP at /mcp on ADDR (default 127.0.0.1:8765).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8765")]
    pub http: Option<SocketAddr>,
    /// Bearer token HTTP clients must send; required to bind a non-loopback address.
    #[arg(long, env = "PI_MCP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Extra Host header values to accept over HTTP (loopback names are always accepted).
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// Extra browser Origins to accept over HTTP, e.g. https://ops.example.com:443.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Judge a command without running it: pi-mcp policy check -- "rm -rf /".
    Check {
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
        /// Directory the command would run in (default: the first workspace root).
        #[arg(long, value_name = "DIR")]
        cwd: Option<PathBuf>,
        /// The command line (several words are joined with spaces).
        #[arg(
            required = true,
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

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// How many of the newest entries to print.
    #[arg(long, default_value_t = 20)]
    pub tail: i64,
    /// Print JSON (an array of entries).
    #[arg(long)]
    pub json: bool,
}
