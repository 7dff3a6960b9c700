//! The `pi-mcp heartbeat` daemon as a child process: it beats on its interval with one log
//! line each, notifies a firing rule once across heartbeats, keeps the last good rules when the
//! rules file is replaced by garbage (reporting it once), serves /healthz and /metrics, and
//! stops cleanly on SIGTERM.

mod support;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::{HookReceiver, Workspace, loopback_notify_policy};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Lines the daemon wrote to stderr so far.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn count(&self, needle: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    fn find(&self, needle: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(needle))
            .cloned()
    }

    async fn wait_for(&self, needle: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.count(needle) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {n}x `{needle}` within 30 s; output:\n{}",
                self.0.lock().unwrap().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_beats_reloads_serves_metrics_and_stops_on_sigterm() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    let policy = loopback_notify_policy(&ws);
    ws.write("app.log", "quiet\n");
    let rule = json!({
        "id": "app-alive", "type": "log_keyword",
        "params": {"path": "app.log", "keyword": "alive", "window_minutes": 60},
        "condition": {"operator": "lt", "threshold": 1}, "channels": ["webhook"]
    });
    ws.write("alerts.json", json!({"rules": [rule]}).to_string());
    let mut child = tokio::process::Command::new(support::bin())
        .arg("--workspace")
        .arg(ws.path())
        .args(["heartbeat", "--rules", "alerts.json", "--interval", "300ms"])
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("PI_MCP_STATE_URL")
        .envs(support::state_env(ws.path()))
        .env("PI_MCP_POLICY", &policy)
        .env("PI_MCP_NOTIFY_RETRY_BASE_MS", "10")
        .env("ALERT_WEBHOOK_URL", hook.url("/hook"))
        .env("SLACK_WEBHOOK_URL", "")
        .env("SMTP_URL", "")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn pi-mcp heartbeat");
    let lines = Lines::default();
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let sink = lines.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            eprintln!("[heartbeat] {line}");
            sink.0.lock().unwrap().push(line);
        }
    });
    lines.wait_for("heartbeat: 1 rules", 3).await;
    assert_eq!(hook.bodies().len(), 1, "one notice across three heartbeats");
    let listening = lines.find("listening on http://").expect("listen line");
    let base = listening
        .split("listening on ")
        .nth(1)
        .expect("an address")
        .trim()
        .to_string();
    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("pi_mcp_monitor_rules{state=\"firing\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("pi_mcp_heartbeat_duration_seconds_count"));
    assert!(metrics.contains("pi_mcp_monitor_notifications_total 1"));

    // Garbage mid-run: reported once, the last good rules keep running (still firing, no
    // resolution sent), the daemon keeps beating.
    ws.write("alerts.json", "{ this is not json");
    let beats = lines.count("heartbeat: 1 rules");
    lines.wait_for("heartbeat: 1 rules", beats + 3).await;
    assert_eq!(lines.count("rules file unusable"), 1);
    assert_eq!(hook.bodies().len(), 1);

    // A good edit is picked up: the rule now resolves.
    ws.write("app.log", "quiet\nalive\n");
    ws.write("alerts.json", json!({"rules": [rule]}).to_string());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while hook.bodies().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no resolution");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hook.bodies()[1]["kind"], "resolved");

    let pid = nix::unistd::Pid::from_raw(child.id().expect("pid") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the daemon stops within 10 s")
        .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(lines.count("stopping on signal"), 1);
}

/// Issue 11: the operator's own `http://` receivers, named only in the server's environment,
/// get the notices without any policy file (the shipped policy allows only https webhooks and
/// hooks.slack.com for destinations the agent could choose).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_configured_http_channels_deliver_without_a_policy_file() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    ws.write("app.log", "quiet\n");
    let rule = json!({
        "id": "app-alive", "type": "log_keyword",
        "params": {"path": "app.log", "keyword": "alive", "window_minutes": 60},
        "condition": {"operator": "lt", "threshold": 1}, "channels": ["webhook", "slack"]
    });
    ws.write("alerts.json", json!({"rules": [rule]}).to_string());
    let status = tokio::process::Command::new(support::bin())
        .arg("--workspace")
        .arg(ws.path())
        .args(["heartbeat", "--once", "--rules", "alerts.json"])
        .env_remove("PI_MCP_STATE_URL")
        .env_remove("PI_MCP_POLICY")
        .envs(support::state_env(ws.path()))
        .env("PI_MCP_NOTIFY_RETRY_BASE_MS", "10")
        .env("ALERT_WEBHOOK_URL", hook.url("/internal/alerts"))
        .env("SLACK_WEBHOOK_URL", hook.url("/slack-relay/T0/B0/token"))
        .env("SMTP_URL", "")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .await
        .expect("run pi-mcp heartbeat --once");
    assert!(status.success(), "{status}");
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    let webhook = bodies
        .iter()
        .find(|b| b["rule_id"] == "app-alive")
        .unwrap_or_else(|| panic!("the webhook notice: {bodies:?}"));
    assert_eq!(webhook["kind"], "firing");
    assert!(
        bodies.iter().any(|b| b.get("blocks").is_some()),
        "the Slack notice: {bodies:?}"
    );
}
