//! The daemon's health and Prometheus metrics: `GET /healthz` and `GET /metrics` on the
//! optional `--listen` address. `/healthz` answers 503 (with a JSON body saying why) when the
//! last heartbeat failed as a whole, or when none completed within two intervals plus
//! [`HEALTH_GRACE`]; a replica that skipped its beats because another one holds the monitor
//! lease is healthy (`standby`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::monitor::state::StateKind;
use crate::monitor::{Evaluation, outbox::DeliveryReport};

/// Slack on top of two intervals before a missing heartbeat makes the daemon unhealthy (a
/// slow heartbeat, a scrape just before the next one).
pub const HEALTH_GRACE: Duration = Duration::from_secs(30);

/// Counters and gauges of the daemon, and its health.
#[derive(Debug)]
pub struct Metrics {
    inner: Mutex<Counters>,
    health: Mutex<Health>,
    interval: Duration,
}

/// The last completed heartbeat, and the daemon's failure counts so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastBeat {
    pub at_unix: i64,
    pub seconds: f64,
    pub heartbeats: u64,
    pub heartbeat_failures: u64,
    pub notification_failures: u64,
}

/// What `/healthz` judges from.
#[derive(Debug, Clone)]
struct Health {
    started: Instant,
    /// When the last heartbeat completed (or was skipped for another evaluator).
    last_beat: Option<Instant>,
    standby: bool,
    /// Why the last heartbeat failed as a whole (cleared by the next completed one).
    failure: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Counters {
    heartbeats: u64,
    heartbeat_failures: u64,
    evaluations: u64,
    rules_by_state: BTreeMap<&'static str, u64>,
    /// Ids of the rules silenced at the last heartbeat.
    silenced: Vec<String>,
    notifications_delivered: u64,
    notification_failures: u64,
    outbox_pending: i64,
    invalid_rules: u64,
    duration_sum: f64,
    last_duration: f64,
    last_beat_unix: i64,
}

impl Metrics {
    /// Metrics of a daemon that beats every `interval`.
    pub fn new(interval: Duration) -> Metrics {
        Metrics {
            inner: Mutex::new(Counters::default()),
            health: Mutex::new(Health {
                started: Instant::now(),
                last_beat: None,
                standby: false,
                failure: None,
            }),
            interval,
        }
    }

    fn set_health(&self, standby: bool, failure: Option<String>) {
        if let Ok(mut h) = self.health.lock() {
            if failure.is_none() {
                h.last_beat = Some(Instant::now());
                h.standby = standby;
            }
            h.failure = failure;
        }
    }

    /// Records a heartbeat skipped because another evaluator holds the monitor lease.
    pub fn record_standby(&self) {
        self.set_health(true, None);
    }

    /// `/healthz`: the status code and a JSON body saying why.
    pub fn health(&self) -> (StatusCode, serde_json::Value) {
        let Ok(h) = self.health.lock().map(|h| h.clone()) else {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"status": "unknown", "reason": "health state unreadable"}),
            );
        };
        health_of(&h, self.interval, Instant::now())
    }

    /// Records one completed heartbeat.
    pub fn record(
        &self,
        evaluation: &Evaluation,
        delivery: &DeliveryReport,
        outbox_pending: i64,
        invalid_rules: usize,
        seconds: f64,
    ) {
        let Ok(mut c) = self.inner.lock() else { return };
        c.heartbeats += 1;
        c.evaluations += evaluation.rules.len() as u64;
        c.rules_by_state = StateKind::ALL.iter().map(|k| (k.as_str(), 0)).collect();
        for r in &evaluation.rules {
            *c.rules_by_state.entry(r.state.as_str()).or_default() += 1;
        }
        c.silenced = evaluation
            .rules
            .iter()
            .filter(|r| r.silence.is_some())
            .map(|r| r.rule.clone())
            .collect();
        c.notifications_delivered += delivery.delivered as u64;
        c.notification_failures += delivery.failed_attempts as u64;
        c.outbox_pending = outbox_pending;
        c.invalid_rules = invalid_rules as u64;
        c.duration_sum += seconds;
        c.last_duration = seconds;
        c.last_beat_unix = chrono::Utc::now().timestamp();
        drop(c);
        self.set_health(false, None);
    }

    /// Records a heartbeat that could not run (e.g. the state store is down), and why.
    pub fn record_failure(&self, why: &str) {
        if let Ok(mut c) = self.inner.lock() {
            c.heartbeat_failures += 1;
        }
        self.set_health(false, Some(why.to_string()));
    }

    /// The last heartbeat as the console's overview shows it (`None` before the first).
    pub fn last_beat(&self) -> Option<LastBeat> {
        let c = self.inner.lock().ok()?;
        (c.heartbeats > 0).then(|| LastBeat {
            at_unix: c.last_beat_unix,
            seconds: c.last_duration,
            heartbeats: c.heartbeats,
            heartbeat_failures: c.heartbeat_failures,
            notification_failures: c.notification_failures,
        })
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let c = self.inner.lock().map(|c| c.clone()).unwrap_or_default();
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<(String, String)>| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, value) in lines {
                out.push_str(&format!("{name}{labels} {value}\n"));
            }
        };
        let one = |v: String| vec![(String::new(), v)];
        metric(
            "pi_mcp_monitor_rules",
            "gauge",
            "Rules by alert state at the last heartbeat.",
            c.rules_by_state
                .iter()
                .map(|(s, n)| (format!("{{state=\"{s}\"}}"), n.to_string()))
                .collect(),
        );
        metric(
            "pi_mcp_monitor_silenced_rules",
            "gauge",
            "Rules silenced at the last heartbeat (evaluated, not notified).",
            one(c.silenced.len().to_string()),
        );
        metric(
            "pi_mcp_monitor_rule_silenced",
            "gauge",
            "1 for each rule silenced at the last heartbeat.",
            c.silenced
                .iter()
                .map(|id| (format!("{{rule=\"{}\"}}", label_value(id)), "1".to_string()))
                .collect(),
        );
        metric(
            "pi_mcp_monitor_invalid_rules",
            "gauge",
            "Rules skipped for problems in the rules file.",
            one(c.invalid_rules.to_string()),
        );
        metric(
            "pi_mcp_monitor_evaluations_total",
            "counter",
            "Rule evaluations.",
            one(c.evaluations.to_string()),
        );
        metric(
            "pi_mcp_monitor_notifications_total",
            "counter",
            "Notifications delivered.",
            one(c.notifications_delivered.to_string()),
        );
        metric(
            "pi_mcp_monitor_notification_failures_total",
            "counter",
            "Notification send attempts that failed (the notice kept in the outbox or refused).",
            one(c.notification_failures.to_string()),
        );
        metric(
            "pi_mcp_monitor_outbox_pending",
            "gauge",
            "Notifications waiting in the outbox.",
            one(c.outbox_pending.to_string()),
        );
        metric(
            "pi_mcp_heartbeats_total",
            "counter",
            "Completed heartbeats.",
            one(c.heartbeats.to_string()),
        );
        metric(
            "pi_mcp_heartbeat_failures_total",
            "counter",
            "Heartbeats that could not run.",
            one(c.heartbeat_failures.to_string()),
        );
        metric(
            "pi_mcp_heartbeat_duration_seconds",
            "summary",
            "Heartbeat duration.",
            // Suffixes, not labels: `name_sum` and `name_count`.
            vec![
                ("_sum".to_string(), format!("{}", c.duration_sum)),
                ("_count".to_string(), c.heartbeats.to_string()),
            ],
        );
        metric(
            "pi_mcp_heartbeat_last_duration_seconds",
            "gauge",
            "Duration of the last heartbeat.",
            one(format!("{}", c.last_duration)),
        );
        metric(
            "pi_mcp_heartbeat_last_timestamp_seconds",
            "gauge",
            "Unix time of the last completed heartbeat.",
            one(c.last_beat_unix.to_string()),
        );
        out
    }
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn health_of(h: &Health, interval: Duration, now: Instant) -> (StatusCode, serde_json::Value) {
    let limit = interval * 2 + HEALTH_GRACE;
    let since = now.saturating_duration_since(h.last_beat.unwrap_or(h.started));
    let last = h
        .last_beat
        .map(|t| now.saturating_duration_since(t).as_secs_f64());
    let body = |status: &str, reason: Option<String>| {
        serde_json::json!({
            "status": status,
            "reason": reason,
            "seconds_since_last_heartbeat": last,
            "interval_seconds": interval.as_secs_f64(),
        })
    };
    if let Some(why) = &h.failure {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            body("failing", Some(format!("the last heartbeat failed: {why}"))),
        );
    }
    if since > limit {
        let what = if h.last_beat.is_some() {
            "no heartbeat completed"
        } else {
            "the first heartbeat has not completed"
        };
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            body(
                "stale",
                Some(format!(
                    "{what} in {:.0} s (limit: two intervals + {} s)",
                    since.as_secs_f64(),
                    HEALTH_GRACE.as_secs()
                )),
            ),
        );
    }
    let status = if h.standby { "standby" } else { "ok" };
    (StatusCode::OK, body(status, None))
}

async fn healthz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    let (code, body) = m.health();
    (code, axum::Json(body))
}

async fn metrics(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    )
}

/// Binds `addr` and serves the endpoints (and the web console, if given) in the background;
/// returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    m: Arc<Metrics>,
    console: Option<(crate::console::Console, crate::console::Access)>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(m);
    if let Some((console, access)) = console {
        app = app.merge(console.router(bound, access));
    }
    tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("heartbeat HTTP endpoint stopped: {e}");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_503_after_a_failed_or_missing_heartbeat() {
        let t0 = Instant::now();
        let interval = Duration::from_secs(60);
        let mut h = Health {
            started: t0,
            last_beat: None,
            standby: false,
            failure: None,
        };
        assert_eq!(health_of(&h, interval, t0).0, StatusCode::OK);
        let late = t0 + interval * 2 + HEALTH_GRACE + Duration::from_secs(1);
        let (code, body) = health_of(&h, interval, late);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["status"], "stale");
        h.last_beat = Some(late);
        assert_eq!(health_of(&h, interval, late).0, StatusCode::OK);
        h.standby = true;
        assert_eq!(health_of(&h, interval, late).1["status"], "standby");
        h.failure = Some("state store: gone".into());
        let (code, body) = health_of(&h, interval, late);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body["reason"].as_str().unwrap().contains("gone"));
    }
}
