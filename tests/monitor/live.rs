//! Live resources through real clients: an rmcp client on 2025-11-25 (`resources/subscribe`
//! over stdio) and a raw 2026-07-28 `subscriptions/listen` stream over HTTP hear an alert
//! transition made by `pi-mcp monitor` in another process, an approval created and decided,
//! and a new Data Ghost report; nothing they did not subscribe to.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{ResourceUpdatedNotificationParam, SubscribeRequestParams};
use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};

use super::support::{self, HttpServer, Workspace, call, cli_ok};
use super::{alive_rule, as_refs, env_for};

/// Long enough for a few watcher turns on a loaded machine; not a timing assertion.
const HEAR_WITHIN: Duration = Duration::from_secs(60);
const ASKING: &str = "python3 -c 'open(\"made.txt\", \"a\").write(\"x\")'";

/// Records the resource notifications the server sends.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<String>>>);

impl Heard {
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    async fn wait_for(&self, what: &str) {
        let deadline = tokio::time::Instant::now() + HEAR_WITHIN;
        while !self.all().iter().any(|h| h == what) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never heard `{what}`; heard {:?}",
                self.all()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

impl ClientHandler for Heard {
    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.0.lock().unwrap().push(params.uri);
    }

    async fn on_resource_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.0.lock().unwrap().push("list_changed".into());
    }
}

/// A workspace whose `app-alive` rule fires (no `alive` line yet), and its environment.
fn firing_workspace(hook: &str) -> (Workspace, Vec<(String, String)>) {
    let ws = Workspace::new();
    // PI_MCP_ALERTS is "" here: the default configs/alerts.json applies.
    let env = env_for(&support::loopback_notify_policy(&ws), hook);
    ws.write("app.log", "quiet\n");
    ws.write(
        "configs/alerts.json",
        json!({"rules": [alive_rule(json!({}))]}).to_string(),
    );
    let out = cli_ok(ws.path(), &["monitor"], &as_refs(&env));
    assert!(out.contains("firing"), "{out}");
    (ws, env)
}

fn resolve_the_alert(ws: &Workspace, env: &[(String, String)]) {
    ws.write("app.log", "quiet\nalive\n");
    let out = cli_ok(ws.path(), &["monitor"], &as_refs(env));
    assert!(out.contains("resolved"), "{out}");
}

fn write_report(ws: &Workspace, database: &str) {
    ws.write(
        &format!("reports/{database}/latest.md"),
        "# Data Ghost: shop\n\nNo drift.\n",
    );
}

// resources/subscribe is deprecated in rmcp only because 2026-07-28 replaced it; this is the
// 2025-11-25 client on purpose.
#[allow(deprecated)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2025_11_25_subscriber_hears_transitions_approvals_and_reports() {
    let hook = support::HookReceiver::start().await;
    let (ws, env) = firing_workspace(&hook.url("/hook"));
    let heard = Heard::default();
    let client = support::spawn_stdio_full(ws.path(), &[], &as_refs(&env), heard.clone())
        .await
        .unwrap();
    for uri in [
        "pi-mcp://alerts/app-alive",
        "pi-mcp://approvals",
        "pi-mcp://reports/shop/latest",
    ] {
        client
            .subscribe(SubscribeRequestParams::new(uri))
            .await
            .unwrap_or_else(|e| panic!("subscribe {uri}: {e}"));
    }
    // Let the watcher take its first look before anything changes.
    tokio::time::sleep(Duration::from_secs(2)).await;

    resolve_the_alert(&ws, &env);
    heard.wait_for("pi-mcp://alerts/app-alive").await;

    // A command the policy asks about, from a client that cannot be asked: it queues.
    let queued = call(client.peer(), "bash", json!({ "command": ASKING })).await;
    assert!(support::text_of(&queued).contains("pending"), "{queued:?}");
    heard.wait_for("pi-mcp://approvals").await;
    heard.clear();
    let listed: Value =
        serde_json::from_str(&cli_ok(ws.path(), &["approvals", "list", "--json"], &[])).unwrap();
    let id = listed[0]["id"]
        .as_str()
        .expect("a pending approval")
        .to_string();
    cli_ok(
        ws.path(),
        &["approvals", "deny", &id, "--reason", "not now"],
        &[],
    );
    heard.wait_for("pi-mcp://approvals").await;

    write_report(&ws, "shop");
    heard.wait_for("pi-mcp://reports/shop/latest").await;
    heard.wait_for("list_changed").await;

    // Unsubscribed from the report: a newer one is not announced as an update.
    client
        .unsubscribe(rmcp::model::UnsubscribeRequestParams::new(
            "pi-mcp://reports/shop/latest",
        ))
        .await
        .unwrap();
    heard.clear();
    write_report(&ws, "orders");
    heard.wait_for("list_changed").await;
    assert!(
        !heard
            .all()
            .iter()
            .any(|h| h.starts_with("pi-mcp://reports/")),
        "{:?}",
        heard.all()
    );
    client.cancel().await.unwrap();
}

/// `subscriptions/listen` (2026-07-28) over HTTP: the stream is acknowledged, then carries the
/// subscribed rule's transition, tagged with the subscription id, and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2026_07_28_listen_stream_hears_the_subscribed_rule_only() {
    let hook = support::HookReceiver::start().await;
    let (ws, env) = firing_workspace(&hook.url("/hook"));
    let server = HttpServer::start_with_env(ws.path(), None, &as_refs(&env))
        .await
        .unwrap();
    let body = json!({
        "jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen",
        "params": {
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "live-test", "version": "1"}
            },
            "notifications": {"resourceSubscriptions": ["pi-mcp://alerts/app-alive"]}
        }
    });
    let response = reqwest::Client::new()
        .post(server.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let mut stream = response;
    let mut seen = String::new();
    let mut next_event = async || -> Value {
        loop {
            if let Some(end) = seen.find("\n\n") {
                let event: String = seen.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:"))
                    && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                {
                    return v;
                }
                continue;
            }
            let chunk = tokio::time::timeout(HEAR_WITHIN, stream.chunk())
                .await
                .expect("the stream went quiet")
                .unwrap()
                .expect("the stream ended");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    let ack = next_event().await;
    assert_eq!(
        ack["method"], "notifications/subscriptions/acknowledged",
        "{ack}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    resolve_the_alert(&ws, &env);
    write_report(&ws, "shop"); // not subscribed: must not arrive
    let update = next_event().await;
    assert_eq!(
        update["method"], "notifications/resources/updated",
        "{update}"
    );
    assert_eq!(
        update["params"]["uri"], "pi-mcp://alerts/app-alive",
        "{update}"
    );
    assert_eq!(
        update["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], "listen-1",
        "{update}"
    );
}
