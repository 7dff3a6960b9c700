//! The daemon's health and shutdown: `/healthz` is 503 with a reason while heartbeats fail
//! and 200 again after they recover, `notification_failures_total` counts failed sends (not
//! the notices queued behind one), and a SIGTERM during a delivery that waits on a 429's
//! Retry-After lets the delivery finish and exits 0.

use std::time::Duration;

use serde_json::{Value, json};

use super::support::{Daemon, HookReceiver, Workspace, loopback_notify_policy, parse_listen_url};
use super::{alive_rule, as_refs, env_for, kinds_for, monitor_json, write_rules};

/// `env` with the state store in the workspace under an explicit URL.
fn with_store(ws: &Workspace, mut env: Vec<(String, String)>) -> (Vec<(String, String)>, String) {
    let url = format!("sqlite://{}", ws.path().join("daemon-state.db").display());
    env.push(("PI_MCP_STATE_URL".into(), url.clone()));
    (env, url)
}

/// The daemon's `http://ADDR` from its listen line.
fn base_of(daemon: &Daemon) -> String {
    daemon
        .text()
        .lines()
        .find_map(parse_listen_url)
        .expect("a listen line")
}

async fn healthz(base: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("GET /healthz");
    let code = r.status().as_u16();
    (code, r.json().await.expect("a JSON health body"))
}

/// The value of the unlabelled metric `name`.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

async fn rename_table(url: &str, from: &str, to: &str) {
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(url).await.expect("open the store");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE {from} RENAME TO {to}"
    )))
    .execute(&db)
    .await
    .expect("rename");
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_reports_failing_heartbeats_and_failures_count_sends() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    let (env, url) = with_store(
        &ws,
        env_for(&loopback_notify_policy(&ws), &hook.url("/hook")),
    );
    ws.write("app.log", "quiet\n");
    write_rules(&ws, &[alive_rule(json!({}))]);
    // A firing notice that fails, and its resolution queued behind it: two rows, one queue.
    hook.fail_with(500);
    monitor_json(&ws, &env, &[]);
    ws.write("app.log", "quiet\nalive\n");
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(v["delivery"]["deferred"], 2, "{v}");
    let daemon = Daemon::start(
        ws.path(),
        &[
            "--rules",
            "alerts.json",
            "--interval",
            "300ms",
            "--listen",
            "127.0.0.1:0",
        ],
        &as_refs(&env),
    );
    daemon.wait_for("heartbeat: 1 rules", 3).await;
    let base = base_of(&daemon);
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // One failed send per heartbeat (the queue's head); the row behind it is not a failure.
    let beats = metric(&text, "pi_mcp_heartbeats_total");
    assert!(beats >= 3.0, "{text}");
    assert_eq!(
        metric(&text, "pi_mcp_monitor_notification_failures_total"),
        beats,
        "{text}"
    );
    assert_eq!(
        metric(&text, "pi_mcp_monitor_outbox_pending"),
        2.0,
        "{text}"
    );
    let (code, body) = healthz(&base).await;
    assert_eq!((code, body["status"].as_str()), (200, Some("ok")), "{body}");
    // The store loses a table: every heartbeat fails as a whole.
    rename_table(&url, "monitor_rule_state", "monitor_rule_state_gone").await;
    daemon.wait_for("heartbeat failed", 1).await;
    let (code, body) = healthz(&base).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["status"], "failing", "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("monitor_rule_state"),
        "{body}"
    );
    rename_table(&url, "monitor_rule_state_gone", "monitor_rule_state").await;
    daemon.wait_for("heartbeat: recovered", 1).await;
    assert_eq!(healthz(&base).await.0, 200);
    hook.recover();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while kinds_for(&hook, "app-alive")
        .iter()
        .filter(|k| *k == "resolved")
        .count()
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            hook.bodies()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = daemon.stop().await;
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_delivery_lets_it_finish_and_exits_0() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    let (env, _) = with_store(
        &ws,
        env_for(&loopback_notify_policy(&ws), &hook.url("/hook")),
    );
    ws.write("app.log", "quiet\n");
    write_rules(&ws, &[alive_rule(json!({}))]);
    // Rate limited: the first answer asks for 3 s, the retry then succeeds.
    hook.script(&[(429, Some("3"))]);
    let daemon = Daemon::start(
        ws.path(),
        &["--rules", "alerts.json", "--interval", "1h"],
        &as_refs(&env),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while hook.bodies().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "{}", daemon.text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Mid-delivery (waiting on Retry-After): stop.
    let stopped = std::time::Instant::now();
    let text_before = daemon.text();
    assert!(!text_before.contains("heartbeat: 1 rules"), "{text_before}");
    let status = daemon.stop().await;
    assert!(status.success(), "{status}");
    assert!(
        stopped.elapsed() >= Duration::from_secs(2),
        "it waited for the delivery"
    );
    assert_eq!(kinds_for(&hook, "app-alive"), ["firing", "firing"]);
    // Delivered, not left behind: the next heartbeat has nothing to send.
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(v["delivery"]["delivered"], 0, "{v}");
    assert_eq!(hook.bodies().len(), 2);
}
