//! The daemon's health and Prometheus metrics: `GET /healthz` and `GET /metrics` on the
//! optional `--listen` address.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::monitor::state::StateKind;
use crate::monitor::{Evaluation, outbox::DeliveryReport};

/// Counters and gauges of the daemon.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Counters>,
}

#[derive(Debug, Default, Clone)]
struct Counters {
    heartbeats: u64,
    heartbeat_failures: u64,
    evaluations: u64,
    rules_by_state: BTreeMap<&'static str, u64>,
    notifications_delivered: u64,
    notification_failures: u64,
    outbox_pending: i64,
    invalid_rules: u64,
    duration_sum: f64,
    last_duration: f64,
    last_beat_unix: i64,
}

impl Metrics {
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
        c.notifications_delivered += delivery.delivered as u64;
        c.notification_failures += (delivery.deferred + delivery.failed) as u64;
        c.outbox_pending = outbox_pending;
        c.invalid_rules = invalid_rules as u64;
        c.duration_sum += seconds;
        c.last_duration = seconds;
        c.last_beat_unix = chrono::Utc::now().timestamp();
    }

    /// Records a heartbeat that could not run (e.g. the state store is down).
    pub fn record_failure(&self) {
        if let Ok(mut c) = self.inner.lock() {
            c.heartbeat_failures += 1;
        }
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
            "Deliveries that failed (kept in the outbox or refused).",
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

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

async fn metrics(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    )
}

/// Binds `addr` and serves the endpoints in the background; returns the bound address.
pub async fn serve(addr: SocketAddr, m: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(m);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("heartbeat HTTP endpoint stopped: {e}");
        }
    });
    Ok(bound)
}
