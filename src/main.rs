//! The `pi-mcp` binary: parses arguments, sets up logging on stderr (stdout belongs to MCP in
//! stdio mode), runs the subcommand and reports any error once, with its cause chain.

mod approvals_cli;
mod cli;
mod code_pages;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use pi_mcp::app::App;
use pi_mcp::guard::{Decision, Enforcement, Guard, PathContext, PolicyFile};
use pi_mcp::sandbox;
use pi_mcp::server::http::{self, HttpOptions};
use pi_mcp::store::audit;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, OsvCommand, PolicyCommand};

/// The allocator for Rust's allocations (issue 14). A pipelined `read` makes about 50 of them;
/// with 64 or more calls in flight they miss glibc's per-thread cache, and malloc and free were
/// 23 % of the instructions per call (callgrind; mimalloc: 7 %, and 71,000 -> 62,000
/// instructions per call, 100-117k -> 131-137k pipelined calls/s). Built without transparent
/// huge pages (`no_thp`): with them its arena is backed by 2 MiB pages, and idle RSS was 25 MiB
/// instead of 13.2 (glibc: 12.5; both before start-up's code pages were let go, see
/// `code_pages`). The C code (SQLite) keeps glibc's malloc (see [`one_malloc_arena`]).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Idle memory: once started, the code and read-only data are mapped page by page as they
    // are touched, not 64 KiB around each touched page, and what start-up mapped is let go (see
    // `code_pages`). Only in the processes that stay (a server, the daemon): a one-shot command,
    // like the sandbox's short-lived child, would only pay more faults. (A word `serve` given
    // to another command only costs that command a thread.)
    let sandbox_child = std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == sandbox::EXEC_SUBCOMMAND);
    let stays = !sandbox_child
        && std::env::args_os()
            .skip(1)
            .any(|a| a == "serve" || a == "heartbeat");
    if let Err(e) = cli::forget_empty_settings() {
        eprintln!("pi-mcp: {e}");
        return ExitCode::from(2);
    }
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
    // The bash tool's sandboxed child: restrict this still single-threaded process, then exec.
    if let Command::SandboxExec(args) = &cli.command {
        let e = sandbox::exec(&args.spec, &args.command);
        eprintln!("pi-mcp: sandbox: {e}");
        return ExitCode::from(sandbox::SETUP_FAILED);
    }
    // Nothing this process runs may read its memory or its environment (which holds the
    // operator's tokens and channel secrets) through /proc or ptrace: not dumpable. The bash
    // children also run under Landlock (no access to processes outside their domain) and, where
    // namespaces are available, see a /proc with only their own processes.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        eprintln!("pi-mcp: cannot mark the process not dumpable: {e}");
    }
    // A panic (the guard catches the shell parser's) is reported in one log line, not as a
    // backtrace on stderr.
    std::panic::set_hook(Box::new(|info| tracing::error!("internal error: {info}")));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("pi_mcp=info,warn,aws_config=error")),
        )
        .init();
    if stays {
        code_pages::release_after_start();
    }
    // One MCP session over stdio is served best by one thread (no cross-thread wake-ups per
    // message); HTTP serves many sessions, so it gets a worker per core.
    if !matches!(&cli.command, Command::Serve(_)) {
        // One-shot commands print to stdout; when a reader like `head` closes the pipe, end
        // quietly as Unix tools do instead of failing on the write.
        // SAFETY: setting a signal disposition to the default has no preconditions.
        let _ = unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            )
        };
    }
    let http = matches!(&cli.command, Command::Serve(a) if a.http.is_some());
    if !http {
        one_malloc_arena();
    }
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
        .stack_size(pi_mcp::JUDGING_STACK_BYTES)
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

async fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    // A missing OSV database matters where commands run for a model or a daemon; elsewhere
    // an install's verdict (`osv-no-database`) already says it.
    if matches!(
        &cli.command,
        Command::Serve(_) | Command::Heartbeat(_) | Command::Agent(_)
    ) {
        cli.global.missing_osv = pi_mcp::tools::osv_scanner::MissingDb::Warn;
    }
    match &cli.command {
        Command::Serve(args) => {
            let slack_buttons = args.http.is_some()
                && std::env::var("SLACK_SIGNING_SECRET").is_ok_and(|s| !s.is_empty());
            let app = App::open(&cli.global, slack_buttons).await?;
            let guard = app.guard();
            tracing::info!(
                "policy: {} ({} block rules, {} risk rules)",
                guard.source(),
                guard.file().block.len(),
                guard.file().risk.len()
            );
            // The probe waits for the stdio client's session (at most 250 ms): it would
            // compete with the answer to `initialize`.
            let sandbox_probe =
                app.check_required_sandbox(std::time::Duration::from_millis(250))?;
            let server = app.server();
            let store = app.store.clone();
            match args.http {
                Some(addr) => {
                    let options = HttpOptions {
                        addr,
                        access: args.access.clone(),
                        slack_signing_secret: std::env::var("SLACK_SIGNING_SECRET").ok(),
                        children_reach: pi_mcp::sandbox::host_reachable(guard.file(), addr),
                    };
                    let console = pi_mcp::console::Console {
                        rules_path: pi_mcp::monitor::mcp::rules_path(app.tools.workspace.primary()),
                        app: app.clone(),
                        metrics: None,
                    };
                    if let Some(probe) = &sandbox_probe {
                        probe.go();
                    }
                    http::serve(server, store, options, Some(console)).await?;
                }
                None => {
                    use std::io::IsTerminal;
                    if let Some(hint) = pi_mcp::server::stdin_hint(std::io::stdin().is_terminal()) {
                        eprintln!("{hint}");
                    }
                    server.serve_stdio(sandbox_probe).await?
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCommand::Check {
            json,
            cwd,
            sandbox,
            batch,
            command,
        }) => {
            let ws = cli.global.workspace()?;
            let mut guard = cli.global.runtime_guard(&cli.global.trusted_paths(&ws)?)?;
            if let Some(level) = sandbox.as_deref().and_then(Enforcement::from_level) {
                guard = std::sync::Arc::new((*guard).clone().with_enforcement(level));
            }
            let layers = sandbox_layers(guard.enforcement());
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
            // The exit status is the strictest decision judged, so a script need not parse.
            let mut strictest = Decision::Allow;
            match batch {
                None => {
                    let verdict = guard.judge_command(&command.join(" "), &ctx);
                    strictest = verdict.decision;
                    print_verdict(&verdict, &layers, *json)?;
                }
                Some(file) => {
                    for command in batch_commands(file)? {
                        let verdict = guard.judge_command(&command, &ctx);
                        strictest = strictest.max(verdict.decision);
                        if *json {
                            let mut v = serde_json::to_value(&verdict)?;
                            v["command"] = serde_json::Value::String(command);
                            v["sandbox"] = layers.clone();
                            println!("{v}");
                        } else {
                            println!(
                                "{:<5} {:>3}  {}",
                                verdict.decision.as_str(),
                                verdict.risk,
                                command.replace('\n', "\\n")
                            );
                        }
                    }
                }
            }
            Ok(ExitCode::from(cli::decision_exit_code(strictest)))
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
            let g = cli.global.guard()?;
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
        Command::SandboxExec(_) => {
            anyhow::bail!(
                "internal error: {} runs before the runtime",
                sandbox::EXEC_SUBCOMMAND
            )
        }
        Command::Approvals(cmd) => approvals_cli::run(&cli.global, cmd).await,
        Command::Ghost(args) => pi_mcp::ghost::command::run(&cli.global, args).await,
        Command::Audit(args) => {
            let ws = cli.global.workspace()?;
            let store = cli.global.open_store(&ws).await?;
            let entries = audit::tail(&store, args.tail.max(0)).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                print_audit(&entries);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Monitor(args) => pi_mcp::monitor::command::run(&cli.global, args).await,
        Command::Heartbeat(args) => pi_mcp::heartbeat::run(&cli.global, args).await,
        Command::Agent(args) => pi_mcp::agent::command::run(&cli.global, args).await,
        Command::Doctor(args) => pi_mcp::doctor::run(&cli.global, args).await,
        Command::Osv(OsvCommand::Update {
            base_url,
            ecosystems,
            dir,
        }) => osv_update(&cli, base_url, ecosystems, dir.as_deref()).await,
    }
}

/// `pi-mcp osv update`: one line per ecosystem; fails when any ecosystem failed.
async fn osv_update(
    cli: &Cli,
    base_url: &str,
    ecosystems: &[pi_mcp::guard::osv::Ecosystem],
    dir: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    use pi_mcp::tools::osv_update::{UpdateOptions, update};
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => cli.global.osv_db_dir(&cli.global.workspace()?)?,
    };
    let ecosystems = if ecosystems.is_empty() {
        pi_mcp::guard::osv::Ecosystem::ALL.to_vec()
    } else {
        ecosystems.to_vec()
    };
    let options = UpdateOptions {
        base_url: base_url.to_string(),
        ecosystems,
        dir: dir.clone(),
    };
    let mut failed = 0;
    for (eco, result) in update(&options).await {
        match result {
            Ok(u) => println!(
                "{eco}: {} records ({} bytes) from {}",
                u.records, u.archive_bytes, u.url
            ),
            Err(e) => {
                failed += 1;
                eprintln!("pi-mcp: osv update: {eco}: {e}");
            }
        }
    }
    println!("OSV database: {}", dir.display());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Which sandbox layers bound the judged commands and which are missing, for `policy check`:
/// `{"level": "partial", "bound": ["writes"], "missing": ["network", "hidden"]}`.
fn sandbox_layers(e: Enforcement) -> serde_json::Value {
    let level = [
        ("full", Enforcement::FULL),
        ("partial", Enforcement::PARTIAL),
        ("none", Enforcement::NONE),
    ]
    .into_iter()
    .find(|(_, l)| *l == e)
    .map_or("custom", |(n, _)| n);
    serde_json::json!({ "level": level, "bound": e.bound(), "missing": e.missing() })
}

fn print_verdict(
    verdict: &pi_mcp::guard::Verdict,
    layers: &serde_json::Value,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let mut v = serde_json::to_value(verdict)?;
        v["sandbox"] = layers.clone();
        println!("{v}");
        return Ok(());
    }
    println!("decision: {} (risk {})", verdict.decision, verdict.risk);
    let names = |key: &str| {
        let list: Vec<&str> = layers[key]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        if list.is_empty() {
            "-".to_string()
        } else {
            list.join(", ")
        }
    };
    println!(
        "sandbox: {} (bound by: {}; not bound: {})",
        layers["level"].as_str().unwrap_or("?"),
        names("bound"),
        names("missing")
    );
    if !verdict.reasons.is_empty() {
        println!("reasons:");
        for r in &verdict.reasons {
            let from = r
                .source
                .as_deref()
                .map(|f| format!(" in {f}"))
                .unwrap_or_default();
            println!(
                "  - [{}{from}] {} (+{}): {}",
                r.rule, r.decision, r.risk, r.message
            );
        }
    }
    println!("commands:");
    for c in &verdict.commands {
        println!("  - {}", c.join(" "));
    }
    Ok(())
}

/// The commands of a `policy check --batch` file: one per line, or a JSON string per line.
fn batch_commands(file: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = if file == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with('"') {
            let cmd: String = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a JSON string", file.display(), i + 1))?;
            out.push(cmd);
        } else {
            out.push(line.to_string());
        }
    }
    Ok(out)
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
            if e.redactions > 0 {
                format!("{} [{} redacted]", e.outcome, e.redactions)
            } else {
                e.outcome.clone()
            }
            .chars()
            .take(40)
            .collect::<String>(),
            args
        );
    }
}

/// With one runtime thread, one glibc malloc arena. Rust's allocations go to mimalloc
/// ([`ALLOCATOR`]); glibc's malloc serves the C code, SQLite above all, which runs on sqlx's
/// worker threads. A thread's own arena grows a page at a time (an `mprotect` per page: 350 at
/// start-up when the runtime's thread had one, 8 % of the start-up CPU), while the main arena
/// grows by `brk` with padding. HTTP's worker threads keep glibc's default of an arena per
/// thread.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1);
    }
}
