//! Delivery through the notify channels: a run with a change at the configured severity sends a
//! Slack summary, a webhook with the run as JSON and (with aiosmtpd) an email with the report and
//! charts attached; a quiet run sends nothing unless asked to.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use serde_json::{Value, json};

use crate::{ghost_env, sqlite_db, support};

type Hits = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

async fn record(State(hits): State<Hits>, uri: Uri, body: Bytes) -> &'static str {
    hits.lock()
        .unwrap()
        .push((uri.path().to_string(), body.to_vec()));
    "ok"
}

/// A Slack and webhook stand-in answering `200 ok`; returns its base URL and what it saw.
async fn receiver() -> (String, Hits) {
    let hits = Hits::default();
    let app = axum::Router::new()
        .fallback(record)
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), hits)
}

/// The shipped policy with a notify section allowing the loopback receiver.
fn loopback_policy(ws: &support::Workspace) -> String {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/security.json");
    let mut policy: Value =
        serde_json::from_str(&std::fs::read_to_string(shipped).unwrap()).unwrap();
    policy["notify"] = json!({
        "channels": ["slack", "email", "webhook"],
        "slack_webhooks": ["http://127.0.0.1:*/slack*"],
        "webhook_urls": ["http://127.0.0.1:*/hook*"],
        "email_recipients": ["*@example.test"]
    });
    let path = ws.write("policy/ghost-policy.json", policy.to_string());
    path.display().to_string()
}

// The receiver answers on the runtime's workers while the test waits on the child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_at_the_bar_are_delivered_and_quiet_runs_are_not() {
    let ws = support::Workspace::new();
    let (db, url) = sqlite_db(ws.path(), "deliv").await;
    db.exec("CREATE TABLE a (id INTEGER); CREATE TABLE b (id INTEGER);")
        .await;
    let (base, hits) = receiver().await;
    let policy = loopback_policy(&ws);
    let (slack, hook) = (format!("{base}/slack"), format!("{base}/hook"));
    let smtp = support::require_service("PI_MCP_TEST_SMTP_ADDR");
    let smtp_url = smtp
        .as_ref()
        .map(|a| format!("smtp://{a}?tls=none"))
        .unwrap_or_default();
    let env = [
        ("PI_MCP_POLICY", policy.as_str()),
        ("SLACK_WEBHOOK_URL", slack.as_str()),
        ("ALERT_WEBHOOK_URL", hook.as_str()),
        ("SMTP_URL", smtp_url.as_str()),
        ("ALERT_EMAIL_FROM", "ghost@example.test"),
        ("ALERT_EMAIL_TO", "ops@example.test"),
        ("PI_MCP_NOTIFY_RETRY_BASE_MS", "10"),
    ];
    let first = ghost_env(ws.path(), &url, &[], &env);
    assert_eq!(
        first["deliveries"],
        json!([]),
        "a baseline run delivers nothing"
    );
    assert!(hits.lock().unwrap().is_empty());

    db.exec("DROP TABLE b;").await;
    let second = ghost_env(ws.path(), &url, &[], &env);
    let deliveries = second["deliveries"].as_array().unwrap();
    assert_eq!(
        deliveries.len(),
        if smtp.is_some() { 3 } else { 2 },
        "{deliveries:#?}"
    );
    assert!(
        deliveries.iter().all(|d| d["delivered"] == true),
        "{deliveries:#?}"
    );
    let seen = hits.lock().unwrap().clone();
    let slack_body: Value =
        serde_json::from_slice(&seen.iter().find(|h| h.0 == "/slack").unwrap().1).unwrap();
    assert!(
        slack_body["text"]
            .as_str()
            .unwrap()
            .contains("table `b` dropped"),
        "{slack_body}"
    );
    let hook_body: Value =
        serde_json::from_slice(&seen.iter().find(|h| h.0 == "/hook").unwrap().1).unwrap();
    assert_eq!(hook_body["event"], "ghost.run");
    assert_eq!(hook_body["database"], "deliv");
    assert_eq!(hook_body["severity"], "critical");
    assert_eq!(hook_body["schema_changes"][0]["kind"], "table_dropped");
    if let Some(maildir) = smtp.and(support::require_service("PI_MCP_TEST_SMTP_MAILDIR")) {
        let mails: Vec<String> = std::fs::read_dir(std::path::Path::new(&maildir).join("new"))
            .unwrap()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .filter(|m| m.contains("deliv"))
            .collect();
        assert!(
            mails
                .iter()
                .any(|m| m.contains("report.md") && m.contains("rows-a-")),
            "an email with the report and a chart attached"
        );
    }

    // Nothing new and nothing at the bar: no message; unless quiet runs are delivered.
    let before = hits.lock().unwrap().len();
    let third = ghost_env(ws.path(), &url, &[], &env);
    assert_eq!(third["deliveries"], json!([]));
    assert_eq!(hits.lock().unwrap().len(), before);
    let fourth = ghost_env(ws.path(), &url, &["--deliver-quiet"], &env);
    assert!(!fourth["deliveries"].as_array().unwrap().is_empty());
    let last = hits.lock().unwrap().last().unwrap().clone();
    assert!(String::from_utf8_lossy(&last.1).contains("nothing new"));
}
