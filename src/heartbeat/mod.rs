//! `pi-mcp heartbeat`: the daemon. Every interval it reloads the rules file if it changed,
//! evaluates the rules, delivers the outbox and logs one line; it keeps beating through
//! failing sources, channels and stores (each problem reported once per change), stops on
//! SIGTERM/SIGINT after the heartbeat in flight (so in-flight notifications finish, within
//! [`SHUTDOWN_LIMIT`]), and can serve
//! `/healthz` and Prometheus `/metrics`. `--once` runs a single heartbeat (and waits for the
//! agent runs it started). Beside the beat run the autonomous parts: investigations of rules
//! that fire with `on_fire.investigate` ([`investigate`]) and the `HEARTBEAT.md` check
//! ([`standing`]), as background runs ([`runs`]) that SIGTERM interrupts cleanly.

pub mod investigate;
pub mod metrics;
pub mod reload;
pub mod report;
pub mod runs;
pub mod standing;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use crate::agent::{ProviderConfig, ProviderKind};
use crate::app::{App, Globals};
use crate::monitor::lease::Busy;
use crate::monitor::state::StateKind;
use crate::monitor::{Evaluation, Monitor, MonitorError, Rule, outbox};
use investigate::{DEFAULT_MAX_INVESTIGATIONS, Investigations};
use metrics::Metrics;
use reload::RulesWatcher;
use runs::Runs;
use standing::StandingCheck;

/// Default interval between heartbeats, in minutes.
pub const DEFAULT_INTERVAL_MINUTES: f64 = 5.0;
/// Shortest interval accepted (a faster loop would only hammer the sources).
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);
/// Longest a stop (SIGTERM/SIGINT) takes: the heartbeat in flight finishes its deliveries
/// and the agent runs end within this, well below systemd's default `TimeoutStopSec=90s`.
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(60);
/// Highest `--max-investigations` accepted (each run holds a model conversation and tools).
pub const MAX_INVESTIGATIONS_CAP: i64 = 64;

#[derive(Debug, Args)]
pub struct HeartbeatArgs {
    /// Rules file (relative paths are relative to the first workspace root).
    #[arg(long, env = "PI_MCP_ALERTS", default_value = crate::monitor::DEFAULT_RULES_FILE)]
    pub rules: PathBuf,
    /// Time between heartbeats: minutes (`5`, `0.5`) or with a unit (`30s`, `5m`, `1h`).
    #[arg(long, env = "MONITOR_INTERVAL_MINUTES", value_parser = parse_interval, default_value = "5")]
    pub interval: Duration,
    /// Run one heartbeat and exit (for cron or systemd timers).
    #[arg(long)]
    pub once: bool,
    /// Serve GET /healthz, GET /metrics (Prometheus) and the web console (at /) on ADDR,
    /// e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    #[command(flatten)]
    pub access: crate::console::Access,
    /// Model API of the agent runs (investigations, HEARTBEAT.md): anthropic or openai.
    /// Default: whichever API key is set; without one, no agent runs start.
    #[arg(long, value_enum, env = "PI_PROVIDER")]
    pub provider: Option<ProviderKind>,
    /// Model of the agent runs (default: PI_MODEL, else the provider's default).
    #[arg(long, env = "PI_MODEL")]
    pub model: Option<String>,
    /// Investigations running at once (more wait for a slot).
    #[arg(long, env = "PI_HEARTBEAT_MAX_INVESTIGATIONS", default_value_t = DEFAULT_MAX_INVESTIGATIONS,
          value_parser = clap::value_parser!(u16).range(1..=MAX_INVESTIGATIONS_CAP))]
    pub max_investigations: u16,
    /// Run the HEARTBEAT.md check on the first heartbeat and then every N heartbeats.
    #[arg(long, env = "PI_HEARTBEAT_CHECK_EVERY", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub check_every: u64,
    /// Also run the Data Ghost on `--ghost-database`: once at start, then on the `--ghost-cron`
    /// schedule (on whenever GHOST_CRON is set). With `--once`, the Data Ghost runs once.
    #[arg(long)]
    pub ghost: bool,
    /// Schedule of the Data Ghost: cron with 6 fields, seconds first (default: hourly).
    #[arg(long, env = "GHOST_CRON", value_name = "CRON")]
    pub ghost_cron: Option<String>,
    /// Database the Data Ghost watches (postgres://... or sqlite://...).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub ghost_database: Option<String>,
    /// The Data Ghost waits for its first cron tick instead of running at start.
    #[arg(long)]
    pub no_initial_run: bool,
}

/// `5` (minutes), `0.5`, `30s`, `5m`, `1h`.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, "m"),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not an interval: use minutes (5) or 30s, 5m, 1h"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit `{other}`: use ms, s, m or h")),
    };
    let d = Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))?;
    if d < MIN_INTERVAL {
        return Err(format!(
            "`{s}` is shorter than the minimum of {MIN_INTERVAL:?}"
        ));
    }
    Ok(d)
}

pub async fn run(globals: &Globals, args: &HeartbeatArgs) -> anyhow::Result<ExitCode> {
    let path = crate::monitor::command::resolve(globals, &args.rules)?;
    let app = App::open(globals, false).await?;
    app.report_sandbox()?;
    let monitor = crate::monitor::wiring::monitor(&app, "heartbeat").await;
    let metrics = Arc::new(Metrics::new(args.interval));
    if let Some(addr) = args.listen {
        let console = crate::console::Console {
            app: app.clone(),
            rules_path: path.clone(),
            metrics: Some(metrics.clone()),
        };
        let access = args.access.clone();
        // Beyond loopback without a token, /healthz and /metrics are served as before (for
        // Prometheus) and the console is not: it changes state, so it needs a sign-in.
        let console = match crate::console::check_bind(
            addr,
            access.token.as_deref(),
            crate::sandbox::host_reachable(app.guard().file(), addr).as_deref(),
        ) {
            Ok(()) => Some((console, access)),
            Err(why) => {
                tracing::warn!("heartbeat: web console off: {why}");
                None
            }
        };
        let serves_console = console.is_some();
        let bound = metrics::serve(addr, metrics.clone(), console).await?;
        tracing::info!("heartbeat: health and metrics listening on http://{bound}");
        if serves_console {
            tracing::info!("heartbeat: web console at http://{bound}/");
        }
    }
    let channels = standing::channels_from_env().map_err(anyhow::Error::msg)?;
    let mut runs = Runs::new(app.clone(), provider(args));
    let investigations = Investigations::new(usize::from(args.max_investigations));
    let mut check = StandingCheck::new(app.tools.workspace.primary(), args.check_every, channels);
    let ghost = start_ghost(&app, args).await?;
    let stop = crate::server::shutdown_signal()?;
    tokio::pin!(stop);
    let mut watcher = RulesWatcher::new(path.clone());
    tracing::info!(
        "heartbeat: rules {}, every {:?}{}",
        path.display(),
        args.interval,
        if args.once { " (once)" } else { "" }
    );
    let mut last_failure: Option<String> = None;
    let mut code = ExitCode::SUCCESS;
    // Set once a signal arrived: the beat in flight finishes (bounded), then the loop ends.
    let mut stopping: Option<Instant> = None;
    loop {
        let started = Instant::now();
        let work = beat(&monitor, &mut watcher, &metrics, started);
        tokio::pin!(work);
        // A signal during a beat lets it finish, so in-flight notifications are delivered or
        // stay queued; the whole shutdown is capped by SHUTDOWN_LIMIT.
        let result = tokio::select! {
            r = &mut work => Some(r),
            _ = &mut stop => {
                stopping = Some(Instant::now());
                tracing::info!(
                    "heartbeat: stopping on signal; finishing this heartbeat's deliveries first \
                     (at most {SHUTDOWN_LIMIT:?})"
                );
                tokio::time::timeout(SHUTDOWN_LIMIT, &mut work).await.ok()
            }
        };
        match result {
            Some(Ok(Beat::Done(rules, evaluation))) => {
                investigations
                    .on_evaluation(&mut runs, &rules, &evaluation)
                    .await;
                if last_failure.take().is_some() {
                    tracing::info!("heartbeat: recovered");
                }
            }
            Some(Ok(Beat::Skipped(busy))) => {
                metrics.record_standby();
                tracing::warn!("heartbeat: skipped: {busy}");
            }
            Some(Err(e)) => {
                let e = format!("{e:#}");
                metrics.record_failure(&e);
                if last_failure.as_deref() != Some(e.as_str()) {
                    tracing::error!("heartbeat failed: {e}");
                }
                last_failure = Some(e);
                code = ExitCode::FAILURE;
            }
            None => {
                tracing::warn!(
                    "heartbeat: shutdown limit reached mid-heartbeat; notices still being sent \
                     stay in the outbox and the next heartbeat resends them (marked \
                     possible_duplicate)"
                );
            }
        }
        if let Some(since) = stopping {
            let left = SHUTDOWN_LIMIT.saturating_sub(since.elapsed());
            stop_runs(&mut runs, left).await;
            break;
        }
        check.on_beat(&mut runs);
        if args.once {
            // The runs this heartbeat started finish before the process exits (or stop on a signal).
            tokio::select! {
                _ = runs.finish() => {}
                _ = &mut stop => {
                    tracing::info!("heartbeat: stopping on signal");
                    stop_runs(&mut runs, SHUTDOWN_LIMIT).await;
                }
            }
            break;
        }
        code = ExitCode::SUCCESS;
        let wait = args.interval.saturating_sub(started.elapsed());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => {
                tracing::info!("heartbeat: stopping on signal");
                stop_runs(&mut runs, SHUTDOWN_LIMIT).await;
                break;
            }
        }
    }
    if let Some(ghost) = ghost {
        ghost.stop().await;
    }
    app.audit.flush().await;
    Ok(code)
}

/// Interrupts the agent runs, waiting at most `limit` for them to end.
async fn stop_runs(runs: &mut Runs, limit: Duration) {
    if tokio::time::timeout(limit, runs.stop()).await.is_err() {
        tracing::warn!("heartbeat: agent runs did not stop within the shutdown limit");
    }
}

/// Starts the Data Ghost's schedule when asked for (`--ghost` or GHOST_CRON); with `--once`
/// runs it once instead.
async fn start_ghost(
    app: &App,
    args: &HeartbeatArgs,
) -> anyhow::Result<Option<crate::ghost::command::GhostSchedule>> {
    use crate::ghost::command::{DEFAULT_CRON, FirstRun, GhostSchedule, options_from_env};
    if !args.ghost && args.ghost_cron.is_none() {
        return Ok(None);
    }
    let Some(url) = args.ghost_database.clone().filter(|u| !u.is_empty()) else {
        anyhow::bail!(
            "the Data Ghost needs a database: set DATABASE_URL or pass --ghost-database URL \
             (or unset GHOST_CRON and drop --ghost)"
        );
    };
    let opts = options_from_env(url)?;
    if args.once {
        match crate::ghost::run_once(app, &opts).await {
            Ok(run) => crate::ghost::command::log_run(&run),
            Err(e) => tracing::error!("ghost: run failed: {e}"),
        }
        return Ok(None);
    }
    let cron = args.ghost_cron.as_deref().unwrap_or(DEFAULT_CRON);
    let first = if args.no_initial_run {
        FirstRun::OnSchedule
    } else {
        FirstRun::AtStart
    };
    Ok(Some(
        GhostSchedule::start(app.clone(), opts, cron, first, false).await?,
    ))
}

/// The model settings of the agent runs, or why there are none.
fn provider(args: &HeartbeatArgs) -> Result<ProviderConfig, String> {
    crate::agent::command::provider_from_env(
        args.provider,
        args.model.clone(),
        crate::agent::limits::DEFAULT_MAX_TOKENS,
        None,
    )
    .map_err(|e| format!("{e:#}"))
}

/// What one heartbeat did.
enum Beat {
    /// The rules in force and their evaluation.
    Done(Arc<Vec<Rule>>, Evaluation),
    /// Another evaluator held the monitor lease (another replica, a `pi-mcp monitor` run).
    Skipped(Busy),
}

/// One heartbeat.
async fn beat(
    monitor: &Monitor,
    watcher: &mut RulesWatcher,
    metrics: &Metrics,
    started: Instant,
) -> anyhow::Result<Beat> {
    let rules = watcher.refresh();
    let (evaluation, delivery) = match monitor.beat(&rules).await {
        Ok(done) => done,
        Err(MonitorError::Busy(busy)) => return Ok(Beat::Skipped(busy)),
        Err(e) => return Err(e.into()),
    };
    let pending = outbox::pending_count(&monitor.store).await?;
    let seconds = started.elapsed().as_secs_f64();
    metrics.record(&evaluation, &delivery, pending, watcher.invalid, seconds);
    let count = |k: StateKind| evaluation.rules.iter().filter(|r| r.state == k).count();
    tracing::info!(
        "heartbeat: {} rules (ok {}, pending {}, firing {}, no_data {}, error {}), {} notices queued, {} delivered, {} in outbox, {:.0} ms",
        evaluation.rules.len(),
        count(StateKind::Ok),
        count(StateKind::Pending),
        count(StateKind::Firing),
        count(StateKind::NoData),
        count(StateKind::Error),
        evaluation.notices,
        delivery.delivered,
        pending,
        seconds * 1000.0
    );
    Ok(Beat::Done(rules, evaluation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_a_minimum() {
        assert_eq!(parse_interval("5"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_interval("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_interval("0.5"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_interval("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_interval("10ms").unwrap_err().contains("minimum"));
        assert!(parse_interval("5 days").is_err());
    }
}
