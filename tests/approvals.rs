//! Approvals when the client cannot be asked: an `ask` becomes a pending approval in the state
//! store, is announced on Slack, and is approved or denied with `pi-mcp approvals`; an approved
//! command runs exactly once, for its exact text; approvals expire; every step of an approval's
//! life (queued, decided, used, expired) is audited under its id.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Workspace, audit_entries, call, cli, cli_ok, spawn_stdio, spawn_stdio_env, text_of};

// Rated `ask` by the default policy (inline-code); harmless when it runs.
const ASKING: &str = "python3 -c 'open(\"made.txt\", \"a\").write(\"x\")'";

/// Calls bash with [`ASKING`] in the background (the call waits for a decision).
fn ask_in_background(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
) -> tokio::task::JoinHandle<rmcp::model::CallToolResult> {
    ask_in_background_with(client, ASKING)
}

/// Calls bash with `command` in the background.
fn ask_in_background_with(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    command: &str,
) -> tokio::task::JoinHandle<rmcp::model::CallToolResult> {
    let (peer, command) = (client.peer().clone(), command.to_string());
    tokio::spawn(async move { call(&peer, "bash", json!({ "command": command })).await })
}

/// The Slack message's mrkdwn sections, joined, and its preformatted command.
fn slack_parts(message: &Value) -> (String, String) {
    let blocks = message["blocks"].as_array().unwrap();
    let sections: Vec<&str> = blocks
        .iter()
        .filter(|b| b["type"] == "section")
        .map(|b| b["text"]["text"].as_str().unwrap())
        .collect();
    let command = blocks
        .iter()
        .find(|b| b["type"] == "rich_text")
        .map(|b| {
            b["elements"][0]["elements"][0]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .unwrap_or_default();
    (sections.join("\n"), command)
}

fn pending_id(text: &str) -> String {
    let start = text.find("approval `").expect("an approval id") + "approval `".len();
    text[start..].split('`').next().unwrap().to_string()
}

/// The shipped policy with some fields changed, written into the workspace.
fn policy_with(ws: &Workspace, changes: Value) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut policy: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/policies/security.json")).unwrap(),
    )
    .unwrap();
    for (k, v) in changes.as_object().unwrap() {
        policy[k] = v.clone();
    }
    ws.write("policy.json", policy.to_string())
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn an_approved_command_runs_once_and_only_as_approved() {
    let ws = Workspace::new();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    let r = call(&client, "bash", json!({ "command": ASKING })).await;
    assert_eq!(r.is_error, Some(true));
    let text = text_of(&r);
    assert!(
        text.contains("pending") && text.contains("pi-mcp approvals approve"),
        "{text}"
    );
    assert!(!ws.path().join("made.txt").exists());
    let id = pending_id(&text);

    let listed: Vec<Value> =
        serde_json::from_str(&cli_ok(ws.path(), &["approvals", "list", "--json"], &[])).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"], "pending");
    assert_eq!(listed[0]["command"], ASKING);

    cli_ok(
        ws.path(),
        &["approvals", "approve", &id, "--reason", "looks fine"],
        &[],
    );
    // Different text is not covered by the approval.
    let r = call(&client, "bash", json!({ "command": format!("{ASKING} ") })).await;
    assert_eq!(r.is_error, Some(true));
    assert!(!ws.path().join("made.txt").exists());
    // The exact text runs, once.
    let r = call(&client, "bash", json!({ "command": ASKING })).await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert_eq!(ws.read("made.txt"), "x");
    let r = call(&client, "bash", json!({ "command": ASKING })).await;
    assert_eq!(r.is_error, Some(true), "an approval is used once");
    assert_eq!(ws.read("made.txt"), "x");
    client.cancel().await.unwrap();

    let shown: Value =
        serde_json::from_str(&cli_ok(ws.path(), &["approvals", "show", &id], &[])).unwrap();
    assert_eq!(shown["status"], "used");
    let again = cli(ws.path(), &["approvals", "approve", &id], &[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not pending"));
    let audit = audit_entries(ws.path(), &[]);
    assert!(
        audit
            .iter()
            .any(|e| e["tool"] == "approval"
                && e["outcome"].as_str().unwrap().contains("looks fine")),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_denied_command_is_reported_and_does_not_run() {
    let ws = Workspace::new();
    let policy = policy_with(&ws, json!({"approval_wait_secs": 20}));
    let client = spawn_stdio(ws.path(), &["--policy", &policy])
        .await
        .unwrap();
    let waiting = ask_in_background(&client);
    // Deny it from the CLI while the call waits.
    let id = loop {
        let listed: Vec<Value> =
            serde_json::from_str(&cli_ok(ws.path(), &["approvals", "list", "--json"], &[]))
                .unwrap();
        if let Some(a) = listed.first() {
            break a["id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    cli_ok(
        ws.path(),
        &["approvals", "deny", &id, "--reason", "not in prod hours"],
        &[],
    );
    let r = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("denied") && text_of(&r).contains("not in prod hours"),
        "{}",
        text_of(&r)
    );
    assert!(!ws.path().join("made.txt").exists());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_waiting_call_runs_as_soon_as_it_is_approved_and_slack_hears_about_it() {
    // A Slack incoming-webhook stand-in that records what it receives.
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let received = received.clone();
            move |body: String| async move {
                received
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let ws = Workspace::new();
    let policy = policy_with(&ws, json!({"approval_wait_secs": 20}));
    std::fs::rename(&policy, ws.path().join("p.json")).unwrap();
    let policy = ws.path().join("p.json");
    let client = spawn_stdio_env(
        ws.path(),
        &[
            ("SLACK_WEBHOOK_URL", &hook),
            ("PI_MCP_POLICY", policy.to_str().unwrap()),
        ],
    )
    .await
    .unwrap();
    let waiting = ask_in_background(&client);
    let id = loop {
        let msgs = received.lock().unwrap().clone();
        if let Some(m) = msgs.first() {
            let (sections, command) = slack_parts(m);
            assert_eq!(command, ASKING, "the command, verbatim: {m}");
            assert!(sections.contains("pi-mcp approvals approve"), "{m}");
            let text = m["text"].as_str().unwrap().to_string();
            break text.split('`').nth(1).unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    cli_ok(ws.path(), &["approvals", "approve", &id], &[]);
    let r = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert_eq!(ws.read("made.txt"), "x");

    // A command written to rewrite the announcement (close the code block, ping the channel,
    // link a fake approval page) and carrying a secret: it stays literal text, masked, and
    // sends the approver to where it is shown in full.
    let forged = "python3 -c 'print(2)' # ``` *verified safe* <!channel> \
                  <https://evil.example/approve|Approve here> ghp_0123456789abcdefghijABCDEFGHIJ012345 \
                  \u{202e}hs.txt";
    let _waiting = ask_in_background_with(&client, forged);
    let message = loop {
        if let Some(m) = received.lock().unwrap().get(1).cloned() {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (sections, command) = slack_parts(&message);
    assert!(
        !sections.contains("<!channel>") && !sections.contains("<https://evil"),
        "nothing the command says formats the message: {sections}"
    );
    assert!(command.contains("<!channel>"), "literal text: {command}");
    assert!(
        !command.contains("ghp_0123"),
        "the secret is masked: {command}"
    );
    assert!(
        command.contains("\\u{202e}hs.txt"),
        "direction-changing characters show as escapes: {command}"
    );
    assert!(
        sections.contains("invisible or direction-changing characters"),
        "and the approver is sent where it is shown in full: {sections}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn approvals_expire() {
    let ws = Workspace::new();
    let policy = policy_with(&ws, json!({"approval_ttl_secs": 1}));
    let client = spawn_stdio(ws.path(), &["--policy", &policy])
        .await
        .unwrap();
    let r = call(&client, "bash", json!({ "command": ASKING })).await;
    let id = pending_id(&text_of(&r));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let out = cli(ws.path(), &["approvals", "approve", &id], &[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expired"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn slack_buttons_approve_with_a_valid_signature_only() {
    use hmac::{Hmac, KeyInit, Mac};
    const SECRET: &str = "slack-signing-secret";
    let ws = Workspace::new();
    let server =
        support::HttpServer::start_with_env(ws.path(), None, &[("SLACK_SIGNING_SECRET", SECRET)])
            .await
            .unwrap();
    let url = server.url().to_string();
    let base = url.trim_end_matches("/mcp").to_string();

    let transport = rmcp::transport::StreamableHttpClientTransport::from_uri(url.clone());
    let client = rmcp::ServiceExt::serve((), transport).await.unwrap();
    let r = call(&client, "bash", json!({ "command": ASKING })).await;
    let id = pending_id(&text_of(&r));

    let post = |body: String, ts: i64, secret: &str| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        let sig = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
        reqwest::Client::new()
            .post(format!("{base}/slack/interactive"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", sig)
            .body(body)
            .send()
    };
    let payload = json!({"type": "block_actions", "user": {"username": "oncall"}, "actions": [{"action_id": "approve", "value": format!("approve:{id}")}]});
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        post(body.clone(), now, "wrong-secret")
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        post(body.clone(), now - 600, SECRET)
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let shown: Value =
        serde_json::from_str(&cli_ok(ws.path(), &["approvals", "show", &id], &[])).unwrap();
    assert_eq!(
        shown["status"], "pending",
        "refused requests change nothing"
    );

    let ok = post(body, now, SECRET).await.unwrap();
    assert!(ok.status().is_success());
    let shown: Value =
        serde_json::from_str(&cli_ok(ws.path(), &["approvals", "show", &id], &[])).unwrap();
    assert_eq!(shown["status"], "approved");
    assert_eq!(shown["decided_by"], "oncall");
    let r = call(&client, "bash", json!({ "command": ASKING })).await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert_eq!(ws.read("made.txt"), "x");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_audit_log_follows_an_approval_from_queue_to_run_and_to_expiry() {
    let ws = Workspace::new();
    let policy = policy_with(&ws, json!({"approval_ttl_secs": 4}));
    let client = spawn_stdio(ws.path(), &["--policy", &policy])
        .await
        .unwrap();
    let used = pending_id(&text_of(
        &call(&client, "bash", json!({ "command": ASKING })).await,
    ));
    cli_ok(
        ws.path(),
        &["approvals", "approve", &used, "--reason", "checked"],
        &[],
    );
    let r = call(&client, "bash", json!({ "command": ASKING })).await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    let steps = support::approval_steps(ws.path(), &used, 3).await;
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert!(
        steps[0].starts_with("pending") && steps[0].contains(&used),
        "{steps:?}"
    );
    assert!(
        steps[1].starts_with("approved by") && steps[1].contains("checked"),
        "{steps:?}"
    );
    assert!(steps[2].starts_with("used"), "{steps:?}");

    // Another request is left to expire; the next look at the approvals notices it, once.
    let other = format!("{ASKING} # again");
    let expiring = pending_id(&text_of(
        &call(&client, "bash", json!({ "command": other })).await,
    ));
    tokio::time::sleep(Duration::from_millis(4500)).await;
    cli_ok(ws.path(), &["approvals", "list"], &[]);
    cli_ok(ws.path(), &["approvals", "list"], &[]);
    let steps = support::approval_steps(ws.path(), &expiring, 2).await;
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(steps[0].starts_with("pending"), "{steps:?}");
    assert!(steps[1].starts_with("expired"), "{steps:?}");
    let text = cli_ok(ws.path(), &["audit", "--tail", "50"], &[]);
    assert!(text.contains(&expiring) && text.contains(&used), "{text}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn asking_again_for_a_pending_command_waits_on_the_same_approval() {
    let ws = Workspace::new();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    let first = pending_id(&text_of(
        &call(&client, "bash", json!({ "command": ASKING })).await,
    ));
    // A model retrying the refused call: no second request for the human to answer.
    let again = pending_id(&text_of(
        &call(&client, "bash", json!({ "command": ASKING })).await,
    ));
    assert_eq!(again, first);
    // Other text is another request.
    let other = pending_id(&text_of(
        &call(&client, "bash", json!({ "command": format!("{ASKING} ") })).await,
    ));
    assert_ne!(other, first);
    let listed: Vec<Value> =
        serde_json::from_str(&cli_ok(ws.path(), &["approvals", "list", "--json"], &[])).unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    // Once decided, the same text asks anew.
    cli_ok(ws.path(), &["approvals", "deny", &first], &[]);
    let after = text_of(&call(&client, "bash", json!({ "command": ASKING })).await);
    assert_ne!(pending_id(&after), first, "{after}");
    assert!(!ws.path().join("made.txt").exists());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_approval_the_policy_now_denies_is_voided_not_used() {
    let ws = Workspace::new();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    let r = call(&client, "bash", json!({ "command": ASKING })).await;
    let id = pending_id(&text_of(&r));
    client.cancel().await.unwrap();
    cli_ok(ws.path(), &["approvals", "approve", &id], &[]);

    // The policy changes after the approval: python3 is now blocked.
    let root = env!("CARGO_MANIFEST_DIR");
    let mut blocks: Value = serde_json::from_str::<Value>(
        &std::fs::read_to_string(format!("{root}/policies/security.json")).unwrap(),
    )
    .unwrap()["block"]
        .clone();
    blocks.as_array_mut().unwrap().push(json!({
        "id": "no-python", "description": "no python here", "match": {"program": ["python3"]}
    }));
    let policy = policy_with(&ws, json!({ "block": blocks }));
    let client = spawn_stdio(ws.path(), &["--policy", &policy])
        .await
        .unwrap();
    let r = call(&client, "bash", json!({ "command": ASKING })).await;
    let text = text_of(&r);
    assert_eq!(r.is_error, Some(true), "{text}");
    assert!(
        text.contains(&format!("Approval `{id}` was given for this command"))
            && text.contains("policy in force now denies it")
            && text.contains("NOT run"),
        "{text}"
    );
    // The result says so to programs too.
    let meta = r.meta.as_ref().expect("_meta").0["pi-mcp"].clone();
    assert_eq!(meta["decision"], "deny", "{meta}");
    assert_eq!(meta["ran"], false, "{meta}");
    assert_eq!(meta["approval"]["id"], id.as_str(), "{meta}");
    client.cancel().await.unwrap();
    assert!(!ws.path().join("made.txt").exists());

    let shown: Value =
        serde_json::from_str(&cli_ok(ws.path(), &["approvals", "show", &id], &[])).unwrap();
    assert_eq!(shown["status"], "denied", "{shown}");
    assert_eq!(shown["decided_by"], "policy", "{shown}");
    let steps: Vec<Value> = audit_entries(ws.path(), &[])
        .into_iter()
        .filter(|e| e["tool"] == "approval" && e["arguments"]["id"] == id.as_str())
        .collect();
    assert!(
        steps.iter().any(|e| e["outcome"]
            .as_str()
            .unwrap()
            .contains("the command was NOT run and will not be")),
        "{steps:?}"
    );
    assert!(
        !steps
            .iter()
            .any(|e| e["outcome"].as_str().unwrap().contains("runs now")),
        "{steps:?}"
    );
}

#[tokio::test]
async fn the_cli_shows_a_command_s_control_characters_as_escapes() {
    let ws = Workspace::new();
    let policy = policy_with(&ws, json!({}));
    let client = spawn_stdio(ws.path(), &["--policy", &policy])
        .await
        .unwrap();
    // Written to repaint itself on a terminal: return, clear the line, reverse the text.
    let painted = "python3 -c 'print(1)' # \r\u{1b}[2K\u{202e}ls -la";
    let r = call(&client, "bash", json!({ "command": painted })).await;
    let id = pending_id(&text_of(&r));
    let listed = cli_ok(ws.path(), &["approvals", "list"], &[]);
    assert!(
        listed.contains(&id) && listed.contains("# \\r\\u{1b}[2K\\u{202e}ls -la"),
        "{listed:?}"
    );
    let shown = cli_ok(ws.path(), &["approvals", "show", &id], &[]);
    for out in [&listed, &shown] {
        assert!(
            !out.contains(['\r', '\u{1b}', '\u{202e}']),
            "nothing reaches the terminal raw: {out:?}"
        );
    }
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        shown["command"], painted,
        "the JSON still decodes to the command"
    );
    client.cancel().await.unwrap();
}

/// A client named for the test, to tell two askers apart.
struct Named;

impl rmcp::ClientHandler for Named {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        rmcp::model::ClientConfig::new(
            rmcp::model::ClientCapabilities::default(),
            rmcp::model::Implementation::new("second-client", "1.0.0"),
        )
    }
}

#[tokio::test]
async fn a_pending_approval_names_everyone_who_asked_for_it() {
    let ws = Workspace::new();
    let policy = policy_with(&ws, json!({}));
    let first = spawn_stdio(ws.path(), &["--policy", &policy])
        .await
        .unwrap();
    let id = pending_id(&text_of(
        &call(&first, "bash", json!({ "command": ASKING })).await,
    ));
    let second = support::spawn_stdio_full(ws.path(), &["--policy", &policy], &[], Named)
        .await
        .unwrap();
    let again = pending_id(&text_of(
        &call(&second, "bash", json!({ "command": ASKING })).await,
    ));
    assert_eq!(again, id, "the same command shares the pending approval");
    let shown: Value =
        serde_json::from_str(&cli_ok(ws.path(), &["approvals", "show", &id], &[])).unwrap();
    let by = shown["requested_by"].as_str().unwrap();
    assert!(
        by.starts_with("client rmcp (self-declared); also client second-client (self-declared)"),
        "{by}"
    );
    first.cancel().await.unwrap();
    second.cancel().await.unwrap();
}
