//! `pi-mcp monitor` and `pi-mcp heartbeat` through the built binary. Each run is a separate
//! process, so every test also proves that state, cooldowns and the outbox survive restarts.
//! [`lifecycle`]: local sources and the alert lifecycle; [`cloudwatch`]: metric rules against
//! LocalStack and log-group rules against moto; [`faults`]: the daemon under failing sources,
//! channels and rules files; [`lease`]: crashes mid-send and concurrent evaluators;
//! [`daemon`]: health, failure counts and shutdown; [`live`]: subscribers hear about transitions,
//! approvals and reports.

#[path = "../support/mod.rs"]
mod support;

mod cloudwatch;
mod daemon;
mod faults;
mod lease;
mod lifecycle;
mod live;

use std::path::PathBuf;

use serde_json::{Value, json};
use support::{HookReceiver, Workspace, cli_ok};

/// The environment of every run: the loopback policy, fast notify retries, the receiver.
pub(crate) fn env_for(policy: &std::path::Path, hook: &str) -> Vec<(String, String)> {
    vec![
        ("PI_MCP_POLICY".into(), policy.display().to_string()),
        ("PI_MCP_NOTIFY_RETRY_BASE_MS".into(), "10".into()),
        ("ALERT_WEBHOOK_URL".into(), hook.into()),
        ("SLACK_WEBHOOK_URL".into(), String::new()),
        ("SMTP_URL".into(), String::new()),
        ("ALERT_WEBHOOK_SECRET".into(), String::new()),
        ("ALERT_WEBHOOK_HEADERS".into(), String::new()),
        ("PI_MCP_ALERTS".into(), String::new()),
    ]
}

pub(crate) fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// A dead-man's switch on `app.log`: fires when no `alive` line arrived in the window.
pub(crate) fn alive_rule(extra: Value) -> Value {
    let mut rule = json!({
        "id": "app-alive",
        "name": "App heartbeat lines",
        "type": "log_keyword",
        "params": {"path": "app.log", "keyword": "alive", "window_minutes": 60},
        "condition": {"operator": "lt", "threshold": 1},
        "channels": ["webhook"],
        "cooldown_minutes": 60,
        "runbook": "https://runbooks.example/app-alive"
    });
    if let (Some(r), Some(e)) = (rule.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    rule
}

pub(crate) fn write_rules(ws: &Workspace, rules: &[Value]) -> PathBuf {
    ws.write("alerts.json", json!({"rules": rules}).to_string())
}

/// `pi-mcp monitor --json` (a heartbeat without the daemon), parsed.
pub(crate) fn monitor_json(ws: &Workspace, env: &[(String, String)], extra: &[&str]) -> Value {
    let mut args = vec!["monitor", "--rules", "alerts.json", "--json"];
    args.extend_from_slice(extra);
    let out = cli_ok(ws.path(), &args, &as_refs(env));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("monitor --json: {e}: {out}"))
}

pub(crate) fn state_of(v: &Value, rule: &str) -> String {
    v["rules"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["rule"] == rule))
        .map(|r| r["state"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

pub(crate) fn kinds(hook: &HookReceiver) -> Vec<String> {
    hook.bodies()
        .iter()
        .map(|b| b["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// One rule's report in a `monitor --json` evaluation (`Null` when absent).
pub(crate) fn report_of(v: &Value, rule: &str) -> Value {
    v["rules"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["rule"] == rule))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The notices `hook` received for `rule`, by kind, oldest first.
pub(crate) fn kinds_for(hook: &HookReceiver, rule: &str) -> Vec<String> {
    hook.bodies()
        .iter()
        .filter(|b| b["rule_id"] == rule)
        .map(|b| b["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// `env` plus the AWS variables pointing CloudWatch at `metrics` and CloudWatch Logs at
/// `logs`, with test credentials.
pub(crate) fn with_aws(
    mut env: Vec<(String, String)>,
    metrics: &str,
    logs: &str,
) -> Vec<(String, String)> {
    for (k, v) in [
        ("AWS_ENDPOINT_URL_CLOUDWATCH", metrics),
        ("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", logs),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ] {
        env.push((k.into(), v.into()));
    }
    env
}

/// A name no other test (or earlier run against the same stand-in) uses.
pub(crate) fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}{nanos}")
}

/// A new, empty PostgreSQL database named after `prefix` and this process on the server of
/// `base` (a `postgres://.../db` URL); returns its URL.
pub(crate) async fn fresh_pg_database(base: &str, prefix: &str) -> String {
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(base).await.unwrap();
    let name = format!("{prefix}_{}", std::process::id());
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    match base.rfind('/') {
        Some(i) => format!("{}/{name}", &base[..i]),
        None => panic!("PI_MCP_TEST_PG_URL has no database part: {base}"),
    }
}
