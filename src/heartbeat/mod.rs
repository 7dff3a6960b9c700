//! `pi-mcp heartbeat`: the daemon. Every interval it reloads the rules file if it changed,
//! evaluates the rules, delivers the outbox and logs one line; it keeps beating through
//! failing sources, channels and stores (each problem reported once per change), stops on
//! SIGTERM/SIGINT only between heartbeats (so in-flight notifications finish), and can serve
//! `/healthz` and Prometheus `/metrics`. `--once` runs a single heartbeat.

pub mod metrics;
pub mod reload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use crate::app::{App, Globals};
use crate::monitor::state::StateKind;
use crate::monitor::{Monitor, outbox};
use metrics::Metrics;
use reload::RulesWatcher;

/// Default interval between heartbeats, in minutes.
pub const DEFAULT_INTERVAL_MINUTES: f64 = 5.0;
/// Shortest interval accepted (a faster loop would only hammer the sources).
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);

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
    /// Serve GET /healthz and GET /metrics (Prometheus) on ADDR, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
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
    let monitor = crate::monitor::wiring::monitor(&app, "heartbeat").await;
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = args.listen {
        let bound = metrics::serve(addr, metrics.clone()).await?;
        tracing::info!("heartbeat: health and metrics listening on http://{bound}");
    }
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
    loop {
        let started = Instant::now();
        // A signal during a beat is noticed after it: in-flight notifications finish.
        match beat(&monitor, &mut watcher, &metrics, started).await {
            Ok(()) => {
                if last_failure.take().is_some() {
                    tracing::info!("heartbeat: recovered");
                }
            }
            Err(e) => {
                metrics.record_failure();
                let e = format!("{e:#}");
                if last_failure.as_deref() != Some(e.as_str()) {
                    tracing::error!("heartbeat failed: {e}");
                }
                last_failure = Some(e);
                code = ExitCode::FAILURE;
            }
        }
        if args.once {
            break;
        }
        code = ExitCode::SUCCESS;
        let wait = args.interval.saturating_sub(started.elapsed());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => {
                tracing::info!("heartbeat: stopping on signal");
                break;
            }
        }
    }
    app.audit.flush().await;
    Ok(code)
}

async fn beat(
    monitor: &Monitor,
    watcher: &mut RulesWatcher,
    metrics: &Metrics,
    started: Instant,
) -> anyhow::Result<()> {
    let rules = watcher.refresh();
    let evaluation = monitor.evaluate(&rules, false).await?;
    let delivery = monitor.deliver().await?;
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
    Ok(())
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
