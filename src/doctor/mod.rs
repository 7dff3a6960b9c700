//! `pi-mcp doctor`: one command that tells an operator what works on this machine and what to
//! fix, in the manner of `brew doctor` and `flutter doctor`. It is a face, like the server: it
//! re-implements nothing, but asks each part for its own health check (the guard, the sandbox,
//! the store, the advisories, the channels, AWS, the databases, the rules, the prompts; see
//! [`crate::health`]), prints the answers ([`report`]) and the client configuration for this
//! machine ([`clients`]), and exits non-zero when something failed.

pub mod clients;
pub mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::app::Globals;
use crate::guard::Guard;
use crate::health::Check;
use crate::tools::notify::config::ChannelConfig;
use crate::tools::notify::retry::RetryPolicy;
use crate::tools::notify::{Channel, Notifier};

pub use report::{EXIT_FAILED, EXIT_OK, Report};

/// Arguments of `pi-mcp doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also send a real test notice on CHANNEL (slack, email or webhook); one attempt.
    #[arg(long, value_name = "CHANNEL")]
    pub send_test: Vec<Channel>,
    /// Rules file to check (relative paths from the first workspace root; default
    /// configs/alerts.json, which may be absent).
    #[arg(long, env = "PI_MCP_ALERTS", value_name = "FILE")]
    pub rules: Option<PathBuf>,
}

/// Runs every check, prints the report on stdout, and maps it to the exit code.
pub async fn run(globals: &Globals, args: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let report = collect(globals, args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(ExitCode::from(report.exit_code))
}

/// Asks every part, in the order an operator fixes things: the binary, the policy, what bounds
/// `bash`, pi-mcp's own state, then what it talks to.
pub async fn collect(globals: &Globals, args: &DoctorArgs) -> anyhow::Result<Report> {
    let ws = globals.workspace()?;
    let mut report = Report::new(ws.primary().to_path_buf());
    report.push("Build", vec![build()]);

    let (policy, loaded) = crate::guard::health::policy(globals.policy.as_deref());
    let policy_failed = loaded.is_none();
    // The other checks go on with the built-in policy when the operator's does not load.
    let guard = match loaded {
        Some(g) => g,
        None => Guard::load(None)?,
    };
    let mut checks = vec![policy];
    if policy_failed {
        checks.push(Check::warn(
            "checks below",
            "judged with the built-in policy, since the configured one does not load",
            "fix the policy, then run `pi-mcp doctor` again",
        ));
    }
    checks.extend(crate::guard::health::posture(&guard));
    report.push("Policy", checks);

    let trusted = globals.trusted_paths(&ws)?;
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    let sandbox = crate::sandbox::Sandbox::new(
        guard.file(),
        guard.hidden(),
        ws.roots(),
        &home,
        &trusted.protected(),
    );
    report.push(
        "Sandbox (what bounds a bash child here)",
        crate::sandbox::health::health(&sandbox, guard.file()).await,
    );

    let mut store =
        crate::store::health::health(globals.state_url.as_deref(), &trusted.state_dir).await;
    store.push(trusted.health(sandbox.writable(), guard.file().sandbox));
    report.push("State store", store);
    report.push(
        "Package advisories",
        crate::tools::osv_scanner::health(&trusted.osv_dir),
    );

    let (rules_path, explicit) = match &args.rules {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(crate::monitor::DEFAULT_RULES_FILE), false),
    };
    let rules = crate::monitor::health::health(&absolute(ws.primary(), &rules_path), explicit);

    let config = ChannelConfig::from_env();
    let mut channels = crate::tools::notify::health::health(&guard, &config, &rules.channels);
    if !args.send_test.is_empty() {
        let notifier = Notifier::new(Arc::new(guard.clone()), config, RetryPolicy::from_env());
        for channel in &args.send_test {
            channels.push(crate::tools::notify::health::send_test(&notifier, *channel).await);
        }
    }
    report.push("Channels", channels);
    report.push(
        "AWS (CloudWatch)",
        crate::tools::cloudwatch::health::health(&rules.cloudwatch).await,
    );
    report.push(
        "Databases",
        crate::tools::sql::health::health(&guard, &rules.databases).await,
    );
    report.push("Alert rules", rules.checks);
    report.push(
        "Prompts",
        crate::server::prompts::health(globals.prompts_dir(&ws).as_deref()),
    );
    report.clients = Some(client_snippets(globals, &ws));
    Ok(report)
}

/// Version and build profile of this binary.
fn build() -> Check {
    let version = env!("CARGO_PKG_VERSION");
    if cfg!(debug_assertions) {
        Check::warn(
            "version",
            format!("pi-mcp {version}, debug build (unoptimised: slower, larger)"),
            "for daily use, install an optimised build: `cargo install --path .`",
        )
    } else {
        Check::ok("version", format!("pi-mcp {version}, optimised build"))
    }
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// The client snippets for this binary, these workspace roots and the options given.
fn client_snippets(globals: &Globals, ws: &crate::guard::Workspace) -> clients::Clients {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .unwrap_or_else(|_| PathBuf::from("pi-mcp"));
    // Options were given relative to where doctor runs; the client starts elsewhere.
    let cwd = std::env::current_dir().unwrap_or_else(|_| ws.primary().to_path_buf());
    let mut args = Vec::new();
    for root in ws.roots() {
        args.push("--workspace".to_string());
        args.push(root.display().to_string());
    }
    let mut path_option = |flag: &str, p: &Option<PathBuf>| {
        if let Some(p) = p {
            args.push(flag.to_string());
            args.push(
                crate::store::location::canonical(&absolute(&cwd, p))
                    .display()
                    .to_string(),
            );
        }
    };
    path_option("--policy", &globals.policy);
    path_option("--state-dir", &globals.state_dir);
    path_option("--prompts", &globals.prompts);
    path_option("--reports", &globals.reports);
    path_option("--osv-db", &globals.osv_db);
    args.extend(["serve".to_string(), "--stdio".to_string()]);
    let mut env = vec![("RUST_LOG".to_string(), "pi_mcp=info".to_string())];
    if globals.state_url.is_some() {
        // The URL may hold a password: name the variable, never print it.
        env.push((
            "PI_MCP_STATE_URL".to_string(),
            "<the state URL this server uses>".to_string(),
        ));
    }
    clients::snippets(&exe, &args, &env)
}
