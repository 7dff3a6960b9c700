//! `pi-mcp ghost`: run the Data Ghost once (`--database URL`, default `DATABASE_URL`), on a cron
//! schedule (`--heartbeat`, `GHOST_CRON`: once at start, then on each tick, until
//! SIGINT/SIGTERM), or on a generated example database (`pi-mcp ghost demo`). Prints where the
//! report is (or the run as JSON).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use tokio_cron_scheduler::{Job, JobScheduler};

use super::deliver::DeliveryPolicy;
use super::profile::DEFAULT_SAMPLE_ABOVE_ROWS;
use super::progress::ProgressSink;
use super::{GhostOptions, GhostRun, demo, run_once};
use crate::app::{App, Globals};
use crate::severity::Severity;

/// Default heartbeat schedule: at the top of every hour (6 fields, seconds first).
pub const DEFAULT_CRON: &str = "0 0 * * * *";

/// Arguments of `pi-mcp ghost`.
#[derive(Debug, Clone, Args)]
pub struct GhostArgs {
    #[command(subcommand)]
    pub action: Option<GhostAction>,
    /// Database to watch: postgres://USER:PASS@HOST/DB or sqlite://PATH.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database: Option<String>,
    /// Print the run as JSON instead of where the report is.
    #[arg(long, global = true)]
    pub json: bool,
    /// Keep running on the GHOST_CRON schedule until SIGINT or SIGTERM (a first run at start).
    #[arg(long, conflicts_with = "demo")]
    pub heartbeat: bool,
    /// With --heartbeat: wait for the first cron tick instead of running at start.
    #[arg(long, requires = "heartbeat")]
    pub no_initial_run: bool,
    /// Cron schedule of --heartbeat, 6 fields with seconds first (default: hourly).
    #[arg(long, env = "GHOST_CRON", default_value = DEFAULT_CRON, value_name = "CRON")]
    pub cron: String,
    /// Build the example SQLite database in the workspace and report on it (same as `ghost demo`).
    #[arg(long)]
    pub demo: bool,
    /// Profile PostgreSQL tables estimated above this many rows on a TABLESAMPLE sample.
    #[arg(long, env = "GHOST_SAMPLE_ABOVE_ROWS", default_value_t = DEFAULT_SAMPLE_ABOVE_ROWS, value_name = "ROWS")]
    pub sample_above_rows: u64,
    /// Cancel any statement on the watched database after this many seconds.
    #[arg(long, env = "GHOST_STATEMENT_TIMEOUT_SECS", default_value_t = super::DEFAULT_STATEMENT_TIMEOUT.as_secs(), value_name = "SECS")]
    pub timeout_secs: u64,
    /// Deliver runs with a change or finding at least this severe (info, warning, critical).
    #[arg(
        long,
        env = "GHOST_DELIVER_AT",
        default_value = "warning",
        value_name = "SEVERITY"
    )]
    pub deliver_at: Severity,
    /// Deliver runs with nothing at that level too.
    #[arg(long, env = "GHOST_DELIVER_QUIET")]
    pub deliver_quiet: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum GhostAction {
    /// Build an example SQLite database with planted patterns in the workspace and report on it.
    Demo,
}

impl GhostArgs {
    fn options(&self, database_url: String) -> GhostOptions {
        GhostOptions {
            sample_above_rows: self.sample_above_rows,
            statement_timeout: Duration::from_secs(self.timeout_secs.max(1)),
            delivery: DeliveryPolicy {
                min_severity: self.deliver_at,
                deliver_quiet_runs: self.deliver_quiet,
                enabled: true,
            },
            progress: ProgressSink {
                terminal_bar: !self.json,
                callback: None,
            },
            ..GhostOptions::new(database_url)
        }
    }
}

/// Runs `pi-mcp ghost`.
pub async fn run(globals: &Globals, args: &GhostArgs) -> anyhow::Result<ExitCode> {
    let app = App::open(globals, false).await?;
    if args.demo || matches!(args.action, Some(GhostAction::Demo)) {
        let ws = globals.workspace()?;
        let opts = args.options(String::new());
        let run = demo::run(&app, ws.primary(), &opts).await?;
        return print(&run, args.json);
    }
    let Some(url) = args.database.clone().filter(|u| !u.is_empty()) else {
        bail!(
            "no database to watch: pass --database URL or set DATABASE_URL \
             (postgres://USER:PASS@HOST/DB or sqlite://PATH); `pi-mcp ghost demo` tries it on an example"
        );
    };
    let opts = args.options(url);
    if args.heartbeat {
        let first = if args.no_initial_run {
            FirstRun::OnSchedule
        } else {
            FirstRun::AtStart
        };
        heartbeat(app, opts, &args.cron, first, args.json).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let run = run_once(&app, &opts).await?;
    print(&run, args.json)
}

fn print(run: &GhostRun, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(run)?);
    } else {
        println!("report: {}", run.report_path.display());
        println!("latest: {}", run.latest_path.display());
        println!(
            "{} table(s) profiled, {} failed; {} schema change(s), {} finding(s); highest severity: {}",
            run.tables_profiled,
            run.tables_failed,
            run.schema_changes.len(),
            run.findings.len(),
            run.max_severity().map_or("none".into(), |s| s.to_string())
        );
    }
    if run.failed() {
        eprintln!(
            "pi-mcp: ghost: nothing could be profiled in `{}`: {}",
            run.database,
            run.errors.join("; ")
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs [`run_once`] on `cron` (and at start, as `first` says) until SIGINT or SIGTERM.
pub async fn heartbeat(
    app: App,
    opts: GhostOptions,
    cron: &str,
    first: FirstRun,
    json: bool,
) -> anyhow::Result<()> {
    let schedule = GhostSchedule::start(app, opts, cron, first, json).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    schedule.stop().await;
    Ok(())
}

/// The options `pi-mcp ghost` would use for `database_url`, with the `GHOST_*` environment
/// variables applied (the heartbeat daemon's Data Ghost runs with them).
pub fn options_from_env(database_url: String) -> anyhow::Result<GhostOptions> {
    use clap::{CommandFactory as _, FromArgMatches as _};
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        ghost: GhostArgs,
    }
    let matches = Wrapper::command()
        .try_get_matches_from(["ghost"])
        .context("the GHOST_* environment variables")?;
    let args = Wrapper::from_arg_matches(&matches)
        .context("the GHOST_* environment variables")?
        .ghost;
    let mut opts = args.options(database_url);
    opts.progress.terminal_bar = false;
    Ok(opts)
}

/// One log line for a finished run.
pub fn log_run(run: &GhostRun) {
    tracing::info!(
        "ghost {}: {} schema change(s), {} finding(s), report {}",
        run.database,
        run.schema_changes.len(),
        run.findings.len(),
        run.report_path.display()
    );
}

/// When the first run of a schedule happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstRun {
    /// At start, then on each tick (the default: a report within seconds, not at the next
    /// tick, which may be an hour away).
    AtStart,
    /// At the first tick (`--no-initial-run`).
    OnSchedule,
}

/// One run of a schedule, holding its lock until the report is written.
async fn scheduled_run(
    app: &App,
    opts: &GhostOptions,
    json: bool,
    _running: tokio::sync::OwnedMutexGuard<()>,
) {
    match run_once(app, opts).await {
        Ok(run) => {
            if json {
                if let Ok(text) = serde_json::to_string(&run) {
                    println!("{text}");
                }
            } else {
                println!("report: {}", run.report_path.display());
            }
            log_run(&run);
        }
        Err(e) => tracing::error!("ghost: run failed: {e}"),
    }
}

/// The Data Ghost running on a cron schedule; a run still going when the next tick comes
/// makes that tick skip.
pub struct GhostSchedule {
    scheduler: JobScheduler,
    running: Arc<tokio::sync::Mutex<()>>,
    cron: String,
}

impl GhostSchedule {
    /// Checks `cron` (6 or 7 fields, seconds first) and starts the schedule; with
    /// [`FirstRun::AtStart`] a first run starts at once (a tick during it is skipped).
    pub async fn start(
        app: App,
        opts: GhostOptions,
        cron: &str,
        first: FirstRun,
        json: bool,
    ) -> anyhow::Result<GhostSchedule> {
        let fields = cron.split_whitespace().count();
        if !(6..=7).contains(&fields) {
            bail!(
                "GHOST_CRON `{cron}` has {fields} fields; it needs 6 or 7 with seconds first, \
                 e.g. `0 0 * * * *` for hourly"
            );
        }
        let busy = Arc::new(tokio::sync::Mutex::new(()));
        let running = busy.clone();
        let (job_app, job_opts) = (app.clone(), opts.clone());
        let job = Job::new_async(cron, move |_id, _scheduler| {
            let (app, opts, busy) = (job_app.clone(), job_opts.clone(), busy.clone());
            Box::pin(async move {
                let Ok(running) = busy.try_lock_owned() else {
                    tracing::warn!("ghost: the previous run is still going; skipping this tick");
                    return;
                };
                scheduled_run(&app, &opts, json, running).await;
            })
        })
        .with_context(|| format!("GHOST_CRON `{cron}` is not a valid cron schedule"))?;
        let scheduler = JobScheduler::new()
            .await
            .context("cannot start the scheduler")?;
        scheduler
            .add(job)
            .await
            .context("cannot schedule the ghost")?;
        // The first run holds the lock from here, so a stop right after start waits for it
        // (as for any run in progress) and an early tick skips rather than doubles it.
        if first == FirstRun::AtStart
            && let Ok(held) = running.clone().try_lock_owned()
        {
            tracing::info!("ghost: first run at start");
            tokio::spawn(async move { scheduled_run(&app, &opts, json, held).await });
        }
        scheduler
            .start()
            .await
            .context("cannot start the scheduler")?;
        tracing::info!("ghost: running on `{cron}`");
        Ok(GhostSchedule {
            scheduler,
            running,
            cron: cron.to_string(),
        })
    }

    /// Stops the schedule; a run in progress finishes its report and history first.
    pub async fn stop(mut self) {
        tracing::info!("ghost: stopping the `{}` schedule", self.cron);
        let _ = self.scheduler.shutdown().await;
        let _ = self.running.lock().await;
    }
}
