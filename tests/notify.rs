//! The `notify` tool through the built binary over stdio: Slack and the generic webhook against
//! an axum receiver in the test (JSON, HMAC signature, custom headers, retries after 500s, a
//! 429's Retry-After, permanent 400s, Slack's `ok`), email through the real aiosmtpd, and the
//! policy (unknown or disabled channel, attachments outside the workspace or protected: denied,
//! nothing sent, audited as deny), while destinations from the server's own environment are
//! trusted as configured, outside the allow-list.

mod support;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use support::{Workspace, audit_entries, call, require_service, spawn_stdio_env, text_of};

/// Retry base delay the server under test uses, so retried tests stay fast.
const FAST_RETRY_MS: &str = "10";
const SECRET: &str = "test-signing-secret";

/// One scripted answer of the receiver.
#[derive(Clone)]
struct Reply {
    status: u16,
    retry_after: Option<&'static str>,
    body: &'static str,
}

const OK: Reply = Reply {
    status: 200,
    retry_after: None,
    body: "ok",
};

fn reply(status: u16, body: &'static str) -> Reply {
    Reply {
        status,
        retry_after: None,
        body,
    }
}

/// One request the receiver saw.
#[derive(Clone)]
struct Hit {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    at: Instant,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    hits: Vec<Hit>,
}

/// A local stand-in for Slack and webhook receivers: answers from a script, then `200 ok`.
#[derive(Clone, Default)]
struct Receiver {
    state: Arc<Mutex<Script>>,
    base: String,
}

impl Receiver {
    async fn start() -> Receiver {
        let state = Arc::new(Mutex::new(Script::default()));
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            state,
            base: format!("http://{addr}"),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn script(&self, replies: &[Reply]) {
        self.state.lock().unwrap().replies = replies.iter().cloned().collect();
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.lock().unwrap().hits.clone()
    }
}

async fn record(
    State(state): State<Arc<Mutex<Script>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    s.hits.push(Hit {
        path: uri.path().to_string(),
        headers,
        body: body.to_vec(),
        at: Instant::now(),
    });
    let r = s.replies.pop_front().unwrap_or(OK);
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    match r.retry_after {
        Some(v) => (status, [("retry-after", v)], r.body).into_response(),
        None => (status, r.body).into_response(),
    }
}

/// Writes the shipped policy with a `notify` section that allows the loopback receiver.
fn loopback_policy(ws: &Workspace) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/security.json");
    let text = std::fs::read_to_string(shipped).expect("read policies/security.json");
    let mut policy: Value = serde_json::from_str(&text).expect("policy JSON");
    policy["notify"] = json!({
        "channels": ["slack", "email", "webhook"],
        "slack_webhooks": ["http://127.0.0.1:*/slack*"],
        "webhook_urls": ["http://127.0.0.1:*/hook*"],
        "email_recipients": ["*@example.test"]
    });
    let dir = ws.path().join("policy");
    std::fs::create_dir_all(&dir).expect("policy dir");
    let path = dir.join("notify-policy.json");
    std::fs::write(&path, policy.to_string()).expect("write policy");
    path
}

/// The server's environment: the loopback policy, fast retries, then `extra`.
fn server_env<'a>(policy: &'a Path, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let policy = policy.to_str().expect("UTF-8 path");
    let mut env = vec![
        ("PI_MCP_POLICY", policy),
        ("PI_MCP_NOTIFY_RETRY_BASE_MS", FAST_RETRY_MS),
        ("SLACK_WEBHOOK_URL", ""),
        ("SMTP_URL", ""),
        ("ALERT_WEBHOOK_URL", ""),
        ("ALERT_WEBHOOK_SECRET", ""),
        ("ALERT_WEBHOOK_HEADERS", ""),
    ];
    env.extend_from_slice(extra);
    env
}

#[tokio::test]
async fn slack_gets_text_and_blocks_and_must_answer_ok() {
    let rx = Receiver::start().await;
    let ws = Workspace::new();
    let policy = loopback_policy(&ws);
    let url = rx.url("/slack/T0/B0/secret-token");
    let env = server_env(&policy, &[("SLACK_WEBHOOK_URL", &url)]);
    let client = spawn_stdio_env(ws.path(), &env)
        .await
        .expect("server starts");

    let args = json!({"channel": "slack", "subject": "Disk almost full", "text": "db-1 at *93%*",
                      "severity": "critical"});
    let r = call(&client, "notify", args.clone()).await;
    let text = text_of(&r);
    assert_eq!(r.is_error, Some(false), "{text}");
    assert!(
        text.contains("slack") && text.contains(&rx.url("/slack/…")),
        "{text}"
    );
    assert!(
        !text.contains("secret-token"),
        "the webhook's secret path is not shown: {text}"
    );
    let hits = rx.hits();
    assert_eq!(hits.len(), 1);
    let body = hits[0].json();
    assert_eq!(body["text"], "[CRITICAL] Disk almost full: db-1 at *93%*");
    assert_eq!(body["blocks"][0]["type"], "header");
    assert_eq!(body["blocks"][0]["text"]["text"], "Disk almost full");
    assert_eq!(body["blocks"][1]["text"]["text"], "db-1 at *93%*");
    assert_eq!(
        hits[0].headers["content-type"].to_str().ok(),
        Some("application/json")
    );

    // HTTP 200 without Slack's `ok` is not a delivery, and it is not retried.
    rx.script(&[reply(200, "invalid_blocks")]);
    let r = call(&client, "notify", args).await;
    let text = text_of(&r);
    assert_eq!(r.is_error, Some(true), "{text}");
    assert!(
        text.contains("without the `ok`") && text.contains("invalid_blocks"),
        "{text}"
    );
    assert_eq!(rx.hits().len(), 2, "one attempt only");
    client.cancel().await.expect("stop the server");
}

#[tokio::test]
async fn webhook_is_signed_with_custom_headers_and_retried_after_500s() {
    let rx = Receiver::start().await;
    let ws = Workspace::new();
    ws.write("reports/daily.md", "# Daily\n");
    let policy = loopback_policy(&ws);
    let url = rx.url("/hook/alerts?tenant=7");
    let env = server_env(
        &policy,
        &[
            ("ALERT_WEBHOOK_URL", &url),
            ("ALERT_WEBHOOK_SECRET", SECRET),
            ("ALERT_WEBHOOK_HEADERS", "X-Team: ops; X-Env: test"),
        ],
    );
    let client = spawn_stdio_env(ws.path(), &env)
        .await
        .expect("server starts");
    rx.script(&[reply(500, "boom"), reply(503, "busy"), reply(200, "")]);
    let r = call(
        &client,
        "notify",
        json!({"channel": "webhook", "subject": "Latency", "text": "p99 over 2 s",
               "severity": "warning", "attachments": ["reports/daily.md"]}),
    )
    .await;
    let text = text_of(&r);
    assert_eq!(r.is_error, Some(false), "{text}");
    assert!(text.contains("3 attempts"), "{text}");
    assert!(
        text.contains(&rx.url("/hook/…")) && !text.contains("tenant"),
        "{text}"
    );
    let hits = rx.hits();
    assert_eq!(hits.len(), 3, "500, 503, then delivered");
    let last = &hits[2];
    assert_eq!(last.path, "/hook/alerts");
    let body = last.json();
    assert_eq!(
        (&body["subject"], &body["text"], &body["severity"]),
        (&json!("Latency"), &json!("p99 over 2 s"), &json!("warning"))
    );
    assert_eq!(body["attachments"], json!(["daily.md"]));
    let sent_at = body["sent_at"].as_str().unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(sent_at).is_ok(),
        "{sent_at}"
    );
    // The signature verifies over the exact body bytes.
    let signature = last.headers["x-pi-signature"].to_str().unwrap_or_default();
    let given = hex::decode(signature.strip_prefix("sha256=").unwrap_or_default()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&last.body);
    assert!(mac.verify_slice(&given).is_ok(), "signature {signature}");
    assert_eq!(last.headers["x-team"], "ops");
    assert_eq!(last.headers["x-env"], "test");
    client.cancel().await.expect("stop the server");
}

#[tokio::test]
async fn webhook_honours_retry_after_and_reports_4xx_at_once() {
    let rx = Receiver::start().await;
    let ws = Workspace::new();
    let policy = loopback_policy(&ws);
    let url = rx.url("/hook");
    let env = server_env(&policy, &[("ALERT_WEBHOOK_URL", &url)]);
    let client = spawn_stdio_env(ws.path(), &env)
        .await
        .expect("server starts");
    let args = json!({"channel": "webhook", "text": "hello"});

    rx.script(&[
        Reply {
            status: 429,
            retry_after: Some("1"),
            body: "slow down",
        },
        reply(200, ""),
    ]);
    let r = call(&client, "notify", args.clone()).await;
    let text = text_of(&r);
    assert_eq!(r.is_error, Some(false), "{text}");
    assert!(text.contains("2 attempts"), "{text}");
    let hits = rx.hits();
    let waited = hits[1].at - hits[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 must be honoured (waited {waited:?})"
    );

    rx.script(&[reply(400, "invalid_payload")]);
    let r = call(&client, "notify", args).await;
    let text = text_of(&r);
    assert_eq!(r.is_error, Some(true), "{text}");
    assert!(
        text.contains("HTTP 400") && text.contains("invalid_payload"),
        "{text}"
    );
    assert!(text.contains("1 attempt:"), "{text}");
    assert_eq!(rx.hits().len(), 3, "a 400 is not retried");
    client.cancel().await.expect("stop the server");
}

#[tokio::test]
async fn the_policy_denies_and_nothing_is_sent() {
    let rx = Receiver::start().await;
    let ws = Workspace::new();
    ws.write(".env", "DB_PASSWORD=hunter2\n");
    let outside = tempfile::NamedTempFile::new().expect("a file outside the workspace");
    let policy = loopback_policy(&ws);
    // The operator switched Slack off: its configured URL does not matter.
    let mut text: Value =
        serde_json::from_str(&std::fs::read_to_string(&policy).expect("read policy"))
            .expect("policy JSON");
    text["notify"]["channels"] = json!(["email", "webhook"]);
    std::fs::write(&policy, text.to_string()).expect("write policy");
    let slack = rx.url("/slack");
    let hook = rx.url("/hook");
    let env = server_env(
        &policy,
        &[("SLACK_WEBHOOK_URL", &slack), ("ALERT_WEBHOOK_URL", &hook)],
    );
    let client = spawn_stdio_env(ws.path(), &env)
        .await
        .expect("server starts");
    let outside_path = outside.path().to_string_lossy().into_owned();
    let cases = [
        (json!({"channel": "slack", "text": "x"}), "notify-channel"),
        (json!({"channel": "sms", "text": "x"}), "notify-channel"),
        (
            json!({"channel": "webhook", "text": "x", "attachments": [outside_path]}),
            "outside",
        ),
        (
            json!({"channel": "webhook", "text": "x", "attachments": [".env"]}),
            "protected",
        ),
    ];
    for (args, expected) in &cases {
        let r = call(&client, "notify", args.clone()).await;
        let text = text_of(&r);
        assert_eq!(r.is_error, Some(true), "{args}: {text}");
        assert!(
            text.contains(expected),
            "{args}: expected `{expected}` in: {text}"
        );
    }
    assert!(rx.hits().is_empty(), "nothing reaches any receiver");
    client.cancel().await.expect("stop the server");

    let audit = audit_entries(ws.path(), &[]);
    let notify: Vec<&Value> = audit.iter().filter(|e| e["tool"] == "notify").collect();
    assert_eq!(notify.len(), cases.len(), "{audit:?}");
    for e in notify {
        assert_eq!(e["decision"], "deny", "{e}");
    }
}

#[tokio::test]
async fn destinations_from_the_servers_environment_are_trusted_as_configured() {
    let rx = Receiver::start().await;
    let ws = Workspace::new();
    // The shipped policy: only https:// webhooks and hooks.slack.com are in its allow-list.
    let slack = rx.url("/relay/slack");
    let hook = rx.url("/internal/alerts");
    let mut env = server_env(Path::new(""), &[]);
    env.retain(|(k, _)| *k != "PI_MCP_POLICY");
    env.extend([
        ("SLACK_WEBHOOK_URL", slack.as_str()),
        ("ALERT_WEBHOOK_URL", hook.as_str()),
    ]);
    let client = spawn_stdio_env(ws.path(), &env)
        .await
        .expect("server starts");
    for channel in ["slack", "webhook"] {
        let r = call(
            &client,
            "notify",
            json!({"channel": channel, "text": "hello"}),
        )
        .await;
        let text = text_of(&r);
        assert_ne!(r.is_error, Some(true), "{channel}: {text}");
        assert!(text.contains("Delivered"), "{channel}: {text}");
    }
    let paths: Vec<String> = rx.hits().iter().map(|h| h.path.clone()).collect();
    assert_eq!(paths, ["/relay/slack", "/internal/alerts"]);
    client.cancel().await.expect("stop the server");
}

#[tokio::test]
async fn email_problems_name_what_to_fix() {
    let ws = Workspace::new();
    let policy = loopback_policy(&ws);
    let env = server_env(&policy, &[]);
    let client = spawn_stdio_env(ws.path(), &env)
        .await
        .expect("server starts");
    let r = call(&client, "notify", json!({"channel": "email", "text": "x"})).await;
    let text = text_of(&r);
    assert_eq!(r.is_error, Some(true));
    assert!(text.starts_with("SMTP_URL is not set"), "{text}");
    client.cancel().await.expect("stop the server");

    // Nothing listens on the port: a connection failure is transient and retried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let smtp = format!("smtp://127.0.0.1:{port}?tls=none");
    let env = server_env(
        &policy,
        &[
            ("SMTP_URL", &smtp),
            ("ALERT_EMAIL_FROM", "pi@example.test"),
            ("ALERT_EMAIL_TO", "ops@example.test, root@elsewhere.example"),
        ],
    );
    let client = spawn_stdio_env(ws.path(), &env)
        .await
        .expect("server starts");
    // The recipients are the operator's (the policy allows only *@example.test): trusted, so
    // the send is tried and fails on the closed port, not on the allow-list.
    let r = call(&client, "notify", json!({"channel": "email", "text": "x"})).await;
    let text = text_of(&r);
    assert_eq!(r.is_error, Some(true));
    assert!(
        text.contains("failed after 4 attempts") && text.contains("transient"),
        "{text}"
    );
    assert!(!text.contains("notify-destination"), "{text}");
    client.cancel().await.expect("stop the server");
}

#[tokio::test]
async fn email_arrives_with_subject_body_and_attachment() {
    let Some(addr) = require_service("PI_MCP_TEST_SMTP_ADDR") else {
        return;
    };
    let Some(maildir) = require_service("PI_MCP_TEST_SMTP_MAILDIR") else {
        return;
    };
    let ws = Workspace::new();
    ws.write("reports/weekly.md", "# Weekly report\n\nAll green.\n");
    let policy = loopback_policy(&ws);
    let smtp = format!("smtp://{addr}?tls=none");
    let env = server_env(
        &policy,
        &[
            ("SMTP_URL", &smtp),
            ("ALERT_EMAIL_FROM", "pi-mcp@example.test"),
            ("ALERT_EMAIL_TO", "ops@example.test, oncall@example.test"),
        ],
    );
    let client = spawn_stdio_env(ws.path(), &env)
        .await
        .expect("server starts");
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let subject = format!("Weekly report {nonce}");
    let r = call(
        &client,
        "notify",
        json!({"channel": "email", "subject": subject, "text": "The weekly report is attached.",
               "severity": "info", "attachments": ["reports/weekly.md"]}),
    )
    .await;
    let text = text_of(&r);
    assert_eq!(r.is_error, Some(false), "{text}");
    assert!(
        text.contains("ops@example.test") && text.contains(&addr),
        "{text}"
    );
    client.cancel().await.expect("stop the server");

    let stored = find_message(Path::new(&maildir).join("new"), &subject).await;
    assert!(
        stored.contains(&format!("Subject: [INFO] {subject}")),
        "{stored}"
    );
    assert!(
        stored.contains("The weekly report is attached."),
        "{stored}"
    );
    assert!(
        stored.contains("X-MailFrom: pi-mcp@example.test"),
        "{stored}"
    );
    let rcpt = stored
        .lines()
        .find(|l| l.starts_with("X-RcptTo:"))
        .unwrap_or_default();
    assert!(
        rcpt.contains("ops@example.test") && rcpt.contains("oncall@example.test"),
        "{rcpt}"
    );
    assert!(stored.contains("text/markdown"), "{stored}");
    assert!(stored.contains("filename=\"weekly.md\""), "{stored}");
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        "# Weekly report\n\nAll green.\n",
    );
    assert!(
        stored.contains("# Weekly report") || stored.contains(&b64),
        "attachment content: {stored}"
    );
}

/// The maildir message whose text contains `needle` (waits up to 10 s for it).
async fn find_message(dir: PathBuf, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                if text.contains(needle) {
                    return text;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no message with `{needle}` in {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
