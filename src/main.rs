//! The `pi-mcp` binary: parses arguments, sets up logging on stderr (stdout belongs to MCP in
//! stdio mode), runs the subcommand and reports any error once, with its cause chain.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use pi_mcp::guard::{Guard, PathContext, PolicyFile, Workspace};
use pi_mcp::server::PiServer;
use pi_mcp::server::http::{self, HttpOptions};
use pi_mcp::store::{AuditLog, Store, audit};
use pi_mcp::tools::ToolContext;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, PolicyCommand};

/// Stack of the thread that runs the async runtime (the shell parser recurses).
const MAIN_STACK_BYTES: usize = 16 * 1024 * 1024;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("pi_mcp=info,warn")),
        )
        .init();
    // One MCP session over stdio is served best by one thread (no cross-thread wake-ups per
    // message); HTTP serves many sessions, so it gets a worker per core.
    let http = matches!(&cli.command, Command::Serve(a) if a.http.is_some());
    let mut builder = if http {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    // The shell parser recurses; give deeply nested (but accepted) commands room.
    let runtime = match builder
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pi-mcp: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The runtime's own thread gets a large stack, whatever `ulimit -s` says.
    let outcome = std::thread::Builder::new()
        .name("pi-mcp".into())
        .stack_size(MAIN_STACK_BYTES)
        .spawn(move || runtime.block_on(run(cli)))
        .map_err(anyhow::Error::from)
        .and_then(|h| {
            h.join().unwrap_or_else(|_| {
                Err(anyhow::anyhow!("internal error: the main thread panicked"))
            })
        });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pi-mcp: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace(cli: &Cli) -> anyhow::Result<Workspace> {
    let roots = if cli.global.workspaces.is_empty() {
        vec![std::env::current_dir().context("cannot read the current directory")?]
    } else {
        cli.global.workspaces.clone()
    };
    Workspace::new(&roots).map_err(anyhow::Error::msg)
}

fn guard(cli: &Cli) -> anyhow::Result<Arc<Guard>> {
    Ok(Arc::new(Guard::load(cli.global.policy.as_deref())?))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Serve(args) => {
            let ws = workspace(&cli)?;
            let guard = guard(&cli)?;
            tracing::info!(
                "policy: {} ({} block rules, {} risk rules)",
                guard.source(),
                guard.file().block.len(),
                guard.file().risk.len()
            );
            let store = Store::open(cli.global.state_url.as_deref(), ws.primary()).await?;
            let audit = AuditLog::start(store);
            let prompts = cli.global.prompts.clone().or_else(|| {
                let p = ws.primary().join("prompts");
                p.is_dir().then_some(p)
            });
            let reports = cli
                .global
                .reports
                .clone()
                .unwrap_or_else(|| ws.primary().join("reports"));
            let server = PiServer::new(ToolContext::new(ws, guard), audit, prompts, reports);
            match args.http {
                Some(addr) => {
                    let options = HttpOptions {
                        addr,
                        token: args.token.clone(),
                        allowed_hosts: args.allowed_hosts.clone(),
                        allowed_origins: args.allowed_origins.clone(),
                    };
                    http::serve(server, options).await?;
                }
                None => server.serve_stdio().await?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Check { json, cwd, command }) => {
            let ws = workspace(&cli)?;
            let guard = guard(&cli)?;
            let cwd = match cwd {
                Some(c) => c
                    .canonicalize()
                    .with_context(|| format!("--cwd {}", c.display()))?,
                None => ws.primary().to_path_buf(),
            };
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/root"));
            let ctx = PathContext {
                cwd,
                roots: ws.roots().to_vec(),
                home,
            };
            let verdict = guard.judge_command(&command.join(" "), &ctx);
            if *json {
                println!("{}", serde_json::to_string(&verdict)?);
            } else {
                println!("decision: {} (risk {})", verdict.decision, verdict.risk);
                if !verdict.reasons.is_empty() {
                    println!("reasons:");
                    for r in &verdict.reasons {
                        println!(
                            "  - [{}] {} (+{}): {}",
                            r.rule, r.decision, r.risk, r.message
                        );
                    }
                }
                println!("commands:");
                for c in &verdict.commands {
                    println!("  - {}", c.join(" "));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Validate { file }) => {
            let path = file.as_deref().or(cli.global.policy.as_deref());
            let g = Guard::load_checked(path)?;
            let examples: usize = g
                .file()
                .block
                .iter()
                .chain(&g.file().risk)
                .map(|r| r.examples.len() + r.counter_examples.len())
                .sum();
            println!(
                "{}: ok ({} block rules, {} risk rules, {examples} examples checked)",
                g.source(),
                g.file().block.len(),
                g.file().risk.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Show) => {
            let g = guard(&cli)?;
            println!("{}", serde_json::to_string_pretty(g.file())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Schema) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&schemars::schema_for!(PolicyFile))?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(args) => {
            let ws = workspace(&cli)?;
            let store = Store::open(cli.global.state_url.as_deref(), ws.primary()).await?;
            let entries = audit::tail(&store, args.tail.max(0)).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                print_audit(&entries);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_audit(entries: &[audit::AuditEntry]) {
    if entries.is_empty() {
        println!("(the audit log is empty)");
        return;
    }
    for e in entries {
        let args = e.arguments.to_string();
        let args: String = if args.chars().count() > 100 {
            args.chars().take(97).collect::<String>() + "..."
        } else {
            args
        };
        println!(
            "{} {:<5} {:<5} risk {:>3} {:>6} ms  {:<12} {}",
            e.ts,
            e.tool,
            e.decision,
            e.risk,
            e.duration_ms,
            e.outcome.chars().take(40).collect::<String>(),
            args
        );
    }
}
