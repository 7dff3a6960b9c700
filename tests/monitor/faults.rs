//! Bad input for the daemon: CloudWatch unreachable, the database down, the webhook answering
//! 500, SMTP down, the rules file replaced by garbage mid-run. The daemon keeps beating,
//! reports each problem once per change (not every heartbeat), and loses no alert: what could
//! not be sent is delivered once its channel is back, by the same daemon or the next one.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::support::{
    self, Daemon, HookReceiver, Workspace, audit_entries, loopback_notify_policy,
};
use super::{alive_rule, as_refs, env_for, with_aws, write_rules};

/// A TCP port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("address").port()
}

/// Successful `monitor.notify` deliveries in the audit log, as (rule, channel, kind).
fn delivered(ws: &Workspace, env: &[(String, String)]) -> Vec<(String, String, String)> {
    audit_entries(ws.path(), &as_refs(env))
        .iter()
        .filter(|e| e["tool"] == "monitor.notify" && e["outcome"] == "ok")
        .map(|e| {
            let a = &e["arguments"];
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (s(&a["rule"]), s(&a["channel"]), s(&a["kind"]))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_keeps_beating_reports_once_and_loses_no_alert() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    hook.fail_with(500);
    let dead = format!("http://127.0.0.1:{}", closed_port());
    let mut env = with_aws(
        env_for(&loopback_notify_policy(&ws), &hook.url("/hook")),
        &dead,
        &dead,
    );
    let marker = format!("faults-{}", std::process::id());
    for (k, v) in [
        (
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{}/none", closed_port()),
        ),
        (
            "SMTP_URL",
            format!("smtp://127.0.0.1:{}?tls=none", closed_port()),
        ),
        ("ALERT_EMAIL_FROM", "pi-mcp@example.test".into()),
        ("ALERT_EMAIL_TO", "oncall@example.test".into()),
    ] {
        env.retain(|(name, _)| name != k);
        env.push((k.into(), v));
    }
    ws.write("app.log", "quiet\n");
    let rules = [
        alive_rule(json!({"channels": ["webhook", "email"], "name": marker})),
        json!({"id": "cpu", "type": "metric",
               "params": {"namespace": "AWS/EC2", "metric_name": "CPUUtilization"},
               "condition": {"operator": "gt", "threshold": 80}, "channels": ["webhook"]}),
        json!({"id": "orders", "type": "db_query",
               "params": {"query": "SELECT count(*) FROM orders"},
               "condition": {"operator": "gt", "threshold": 2}, "channels": ["webhook"]}),
    ];
    write_rules(&ws, &rules);
    let daemon = Daemon::start(
        ws.path(),
        &["--rules", "alerts.json", "--interval", "300ms"],
        &as_refs(&env),
    );
    daemon.wait_for("heartbeat: 3 rules", 4).await;
    // Each problem once, though it persists on every heartbeat.
    for needle in [
        "rule `cpu`: evaluation failed",
        "rule `orders`: evaluation failed",
        "firing notice on webhook failed, kept in the outbox",
        "firing notice on email failed, kept in the outbox",
    ] {
        assert_eq!(daemon.count(needle), 1, "`{needle}`:\n{}", daemon.text());
    }
    assert_eq!(daemon.count("error 2)"), daemon.count("heartbeat: 3 rules"));
    // A failing channel is retried with backoff on the notice's first heartbeat only; later
    // heartbeats make one quiet attempt each.
    assert_eq!(daemon.count("attempt 1 failed"), 2, "{}", daemon.text());
    // The database that is down fails at once (remembered between heartbeats), not after a
    // connection timeout per heartbeat.
    assert_eq!(daemon.count("pool timed out"), 0, "{}", daemon.text());

    // Garbage mid-run: reported once; the last good rules keep running.
    ws.write("alerts.json", "[{\"id\": ");
    let beats = daemon.count("heartbeat: 3 rules");
    daemon.wait_for("heartbeat: 3 rules", beats + 3).await;
    assert_eq!(daemon.count("rules file unusable"), 1, "{}", daemon.text());

    // The webhook recovers: its queued notice goes out on the next heartbeat.
    hook.recover();
    daemon.wait_for("1 delivered", 1).await;
    let beats = daemon.count("heartbeat: 3 rules");
    daemon.wait_for("heartbeat: 3 rules", beats + 2).await;
    assert!(daemon.stop().await.success());
    // Email is still down: still reported only once.
    assert_eq!(
        delivered(&ws, &env),
        [("app-alive".into(), "webhook".into(), "firing".into())]
    );

    // The next daemon, with SMTP back, delivers the email that waited in the outbox.
    let Some(addr) = support::require_service("PI_MCP_TEST_SMTP_ADDR") else {
        return;
    };
    let Some(maildir) = support::require_service("PI_MCP_TEST_SMTP_MAILDIR") else {
        return;
    };
    env.retain(|(k, _)| k != "SMTP_URL");
    env.push(("SMTP_URL".into(), format!("smtp://{addr}?tls=none")));
    write_rules(&ws, &rules);
    let out = support::cli(
        ws.path(),
        &["heartbeat", "--once", "--rules", "alerts.json"],
        &as_refs(&env),
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("1 delivered, 0 in outbox"), "{log}");
    assert_eq!(
        delivered(&ws, &env),
        [
            ("app-alive".into(), "webhook".into(), "firing".into()),
            ("app-alive".into(), "email".into(), "firing".into())
        ]
    );
    let found = std::fs::read_dir(PathBuf::from(maildir).join("new"))
        .expect("maildir")
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|m| m.contains(&marker))
        .count();
    assert_eq!(found, 1, "the alert email arrived once");
}
