//! The web console end to end. One daemon (`pi-mcp heartbeat --listen --token`) with a firing
//! rule that starts an investigation (a scripted fake model API), a Data Ghost report, a local
//! webhook receiver, and an MCP client holding two `bash` calls that wait for approval; then
//! ONE Node script drives Debian's Chromium through Playwright over the whole journey
//! (`tests/console/journey.mjs`): sign in (a wrong token first), the firing rule and its chart,
//! silencing it (the heartbeats that follow notify nothing), approving one held command (the
//! held MCP call returns its output) and denying the other (the call gets the refusal), a
//! report with its charts, the investigation, the audit log filtered to the approval, live
//! updates, a phone-sized screen. The script reaches this test through a small control server
//! (notice count, rule threshold, the held calls' results). Screenshots of every page go to
//! `$CARGO_TARGET_TMPDIR/console` (or `PI_MCP_TEST_ARTIFACTS/console`).
//!
//! Plain HTTP, no browser: a sign-in with a wrong token, a request without a session, without
//! the CSRF token, from another Origin or for another Host are refused.

mod fake_llm;
mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use fake_llm::{FakeLlm, anthropic};
use rmcp::model::ReadResourceRequestParams;
use serde_json::{Value, json};
use support::{
    Daemon, HookReceiver, HttpServer, Workspace, call, cli_ok, loopback_notify_policy,
    require_service, spawn_stdio_env, text_of,
};

const TOKEN: &str = "console-test-token";
/// Rated `ask` by the default policy (inline code); each prints a word the test looks for.
const APPROVE_CMD: &str = "python3 -c 'print(\"console-approved\")'";
const DENY_CMD: &str = "python3 -c 'print(\"console-denied\")'";
const LIVE_CMD: &str = "python3 -c 'print(\"console-live\")'";

fn rules(threshold: f64) -> String {
    json!({"rules": [{
        "id": "app-errors", "name": "App errors", "type": "log_keyword",
        "params": {"path": "app.log", "keyword": "ERROR", "window_minutes": 60},
        "condition": {"operator": "gt", "threshold": threshold},
        "channels": ["webhook"], "cooldown_minutes": 0, "send_resolved": true,
        "runbook": "https://runbooks.example.test/app-errors",
        "on_fire": {"investigate": true, "max_steps": 3}
    }]})
    .to_string()
}

/// The results of the held calls, by name, once they return.
type Held = Arc<Mutex<HashMap<String, (bool, String)>>>;

#[derive(Clone)]
struct Control {
    hook: Arc<HookReceiver>,
    rules: PathBuf,
    held: Held,
    peer: rmcp::Peer<rmcp::RoleClient>,
}

fn hold(peer: &rmcp::Peer<rmcp::RoleClient>, held: &Held, name: &str, command: &str) {
    let (peer, held, name, command) = (
        peer.clone(),
        held.clone(),
        name.to_string(),
        command.to_string(),
    );
    tokio::spawn(async move {
        let r = call(&peer, "bash", json!({ "command": command })).await;
        held.lock()
            .unwrap()
            .insert(name, (r.is_error == Some(true), text_of(&r)));
    });
}

/// The alert notices (firing, repeat, resolved) the webhook received.
fn notices(hook: &HookReceiver) -> usize {
    hook.bodies()
        .iter()
        .filter(|b| matches!(b["kind"].as_str(), Some("firing" | "repeat" | "resolved")))
        .count()
}

/// The control server the browser script calls.
async fn control(state: Control) -> String {
    let app = axum::Router::new()
        .route(
            "/notices",
            axum::routing::get(|State(c): State<Control>| async move {
                axum::Json(json!({"count": notices(&c.hook)}))
            }),
        )
        .route(
            "/threshold/{v}",
            axum::routing::post(|State(c): State<Control>, UrlPath(v): UrlPath<f64>| async move {
                std::fs::write(&c.rules, rules(v)).unwrap();
                "ok"
            }),
        )
        .route(
            "/hold-live",
            axum::routing::post(|State(c): State<Control>| async move {
                hold(&c.peer, &c.held, "live", LIVE_CMD);
                "ok"
            }),
        )
        .route(
            "/held/{name}",
            axum::routing::get(|State(c): State<Control>, UrlPath(name): UrlPath<String>| async move {
                for _ in 0..600 {
                    if let Some((is_error, text)) = c.held.lock().unwrap().get(&name).cloned() {
                        return axum::Json(json!({"is_error": is_error, "text": text}));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                axum::Json(json!({"is_error": null, "text": "the held call did not return within 60 s"}))
            }),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// Where screenshots go.
fn artifacts() -> PathBuf {
    let base = std::env::var_os("PI_MCP_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    let dir = base.join("console");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn pending_count(ws: &Workspace) -> usize {
    let listed: Vec<Value> =
        serde_json::from_str(&cli_ok(ws.path(), &["approvals", "list", "--json"], &[])).unwrap();
    listed.iter().filter(|a| a["status"] == "pending").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let (Some(node), Some(playwright), Some(chromium)) = (
        require_service("PI_MCP_TEST_NODE"),
        require_service("PI_MCP_TEST_PLAYWRIGHT"),
        require_service("PI_MCP_TEST_CHROMIUM"),
    ) else {
        return;
    };
    let ws = Workspace::new();
    let hook = Arc::new(HookReceiver::start().await);
    let policy_path = loopback_notify_policy(&ws);
    let mut policy: Value =
        serde_json::from_str(&std::fs::read_to_string(&policy_path).unwrap()).unwrap();
    // The held calls wait for a human for as long as the journey takes.
    policy["approval_wait_secs"] = json!(600);
    std::fs::write(&policy_path, policy.to_string()).unwrap();
    let policy = policy_path.to_str().unwrap().to_string();
    ws.write("app.log", "ok\nERROR worker pool exhausted\n");
    let rules_path = ws.write("alerts.json", rules(0.0));
    cli_ok(ws.path(), &["ghost", "demo"], &[]);

    // An MCP client whose two bash calls wait for a human.
    let client = spawn_stdio_env(
        ws.path(),
        &[("PI_MCP_POLICY", &policy), ("PI_MCP_ALERTS", "alerts.json")],
    )
    .await
    .unwrap();
    let held: Held = Arc::default();
    hold(client.peer(), &held, "approve", APPROVE_CMD);
    hold(client.peer(), &held, "deny", DENY_CMD);
    while pending_count(&ws).await < 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each names the client that asked (its self-declared name), for the console's "Asked by".
    let listed: Vec<Value> =
        serde_json::from_str(&cli_ok(ws.path(), &["approvals", "list", "--json"], &[])).unwrap();
    let asker = format!(
        "client {} (self-declared)",
        rmcp::ClientHandler::get_info(&()).client_info.name
    );
    for a in &listed {
        assert_eq!(a["requested_by"], asker.as_str(), "{a}");
    }

    let fake = FakeLlm::start(vec![
        anthropic::tools(
            "Observe: the log should say what is failing.",
            &[("toolu_1", "bash", json!({"command": "tail -n 5 app.log"}))],
        ),
        anthropic::text("The worker pool is exhausted (app.log). Nothing was changed."),
    ])
    .await;
    let daemon = Daemon::start(
        ws.path(),
        &[
            "--rules",
            "alerts.json",
            "--interval",
            "1s",
            "--listen",
            "127.0.0.1:0",
            "--token",
            TOKEN,
        ],
        &[
            ("PI_MCP_POLICY", &policy),
            ("PI_PROVIDER", "anthropic"),
            ("ANTHROPIC_BASE_URL", &fake.base),
            ("ANTHROPIC_API_KEY", "test-anthropic-key"),
            ("ALERT_WEBHOOK_URL", &hook.url("/hook")),
            ("PI_MCP_NOTIFY_RETRY_BASE_MS", "10"),
            ("SLACK_WEBHOOK_URL", ""),
            ("SMTP_URL", ""),
        ],
    );
    daemon.wait_for("web console at http://", 1).await;
    let text = daemon.text();
    let url = text
        .split("web console at ")
        .nth(1)
        .and_then(|r| r.split(|c: char| c == ')' || c.is_whitespace()).next())
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    daemon
        .wait_for("investigation of `app-errors` ended", 1)
        .await;
    assert_eq!(
        notices(&hook),
        1,
        "the firing notice went out before the silence"
    );

    let control_url = control(Control {
        hook: hook.clone(),
        rules: rules_path,
        held: held.clone(),
        peer: client.peer().clone(),
    })
    .await;
    let out = artifacts();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/console/journey.mjs");
    let status = tokio::process::Command::new(&node)
        .arg(&script)
        .env("PI_MCP_TEST_PLAYWRIGHT", &playwright)
        .env("PI_MCP_TEST_CHROMIUM", &chromium)
        .env("CONSOLE_URL", &url)
        .env("CONSOLE_TOKEN", TOKEN)
        .env("CONTROL_URL", &control_url)
        .env("ARTIFACTS", &out)
        .kill_on_drop(true)
        .status()
        .await
        .expect("run node");
    assert!(status.success(), "the browser journey failed: {status}");

    // The silence set in the browser shows everywhere the rule's state does.
    let metrics = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("pi_mcp_monitor_rule_silenced{rule=\"app-errors\"} 1"),
        "{metrics}"
    );
    let dry = cli_ok(
        ws.path(),
        &["monitor", "--dry-run", "--json", "--rules", "alerts.json"],
        &[("PI_MCP_POLICY", &policy)],
    );
    let dry: Value = serde_json::from_str(&dry).unwrap();
    assert_eq!(
        dry["rules"][0]["silence"]["comment"], "known issue, fix deploying",
        "{dry}"
    );
    let read = client
        .read_resource(ReadResourceRequestParams::new("pi-mcp://alerts"))
        .await
        .unwrap();
    let read = serde_json::to_string(&read).unwrap();
    assert!(read.contains("known issue, fix deploying"), "{read}");
    // The approved command ran once; the denied one did not; who decided is on record.
    let audit = support::audit_entries(ws.path(), &[]);
    let decisions: Vec<&Value> = audit
        .iter()
        .filter(|e| e["tool"] == "approval" && e["client"] == "console")
        .collect();
    assert_eq!(
        decisions.len(),
        3,
        "approve, deny, and the keyboard's deny: {decisions:?}"
    );
    assert!(
        decisions
            .iter()
            .all(|e| e["outcome"].as_str().unwrap().contains("console session")),
        "{decisions:?}"
    );
    client.cancel().await.unwrap();
    daemon.stop().await;
}

/// reqwest's `form` needs a feature the crate does not enable; this is the same.
trait FormBody {
    fn form_body<T: serde::Serialize>(self, pairs: T) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body<T: serde::Serialize>(self, pairs: T) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(pairs).unwrap())
    }
}

/// A `serve --http --token` and a signed-in session (cookie, CSRF token).
struct Signed {
    server: HttpServer,
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Signed {
    /// A form post from the console's own origin, in the session, with its CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("origin", &self.base)
            .form_body(form)
            .send()
            .await
            .unwrap()
    }

    /// A page in the session.
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
    }
}

async fn signed_in(ws: &Workspace, env: &[(&str, &str)]) -> Signed {
    let server = HttpServer::start_with_env(ws.path(), Some(TOKEN), env)
        .await
        .unwrap();
    let base = server.url().trim_end_matches("/mcp").to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{base}/login"))
        .header("origin", &base)
        .form_body([("token", TOKEN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Max-Age="),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let page = http
        .get(format!("{base}/approvals"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    Signed {
        server,
        http,
        base,
        cookie,
        csrf,
    }
}

#[tokio::test]
async fn the_console_refuses_what_it_must() {
    let ws = Workspace::new();
    let s = signed_in(&ws, &[]).await;
    let (http, base) = (&s.http, &s.base);

    // No session: a page sends to the sign-in, a form post is refused.
    let r = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let r = http
        .post(format!("{base}/approvals/abc/decide"))
        .header("origin", base)
        .form_body([("csrf", s.csrf.as_str()), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no session");

    // A wrong token signs nothing in.
    let r = http
        .post(format!("{base}/login"))
        .header("origin", base)
        .form_body([("token", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());

    // With a session: no CSRF token, a wrong one, another Origin, no Origin: refused.
    let post = |form: Vec<(&'static str, String)>, origin: Option<&str>| {
        let mut req = http
            .post(format!("{base}/alerts/app-errors/silence"))
            .header("cookie", &s.cookie)
            .form_body(form);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let silence = |csrf: &str| {
        vec![
            ("csrf", csrf.to_string()),
            ("length", "1h".to_string()),
            ("comment", "x".to_string()),
        ]
    };
    let r = post(silence("")[1..].to_vec(), Some(base)).await.unwrap();
    assert_eq!(r.status(), 403, "no CSRF token");
    assert!(r.text().await.unwrap().contains("CSRF"));
    let r = post(silence("wrong"), Some(base)).await.unwrap();
    assert_eq!(r.status(), 403, "a wrong CSRF token");
    let r = post(silence(&s.csrf), Some("http://evil.example"))
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "another Origin");
    assert!(r.text().await.unwrap().contains("origin"));
    let r = post(silence(&s.csrf), None).await.unwrap();
    assert_eq!(r.status(), 403, "no Origin or Referer");
    // The right token and Origin pass the gate (the rule does not exist: a message, no silence).
    let r = post(silence(&s.csrf), Some(base)).await.unwrap();
    assert_eq!(r.status(), 303);

    // Another Host (DNS rebinding) is refused before anything else.
    let r = http
        .get(format!("{base}/login"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Signing out ends the session.
    assert_eq!(s.post("/logout", &[]).await.status(), 303);
    assert_eq!(s.get("/approvals").await.status(), 303, "the session ended");
    drop(s.server);

    // Sessions live in the store: a restarted server still knows one, unless the token
    // changed (rotating a leaked token locks its holder out at once).
    let s = signed_in(&ws, &[]).await;
    let s = restarted(s, &ws, &[], TOKEN).await;
    assert_eq!(
        s.get("/approvals").await.status(),
        200,
        "kept over a restart"
    );
    let s = restarted(s, &ws, &[], "a-rotated-token").await;
    assert_eq!(
        s.get("/approvals").await.status(),
        303,
        "ended by the new token"
    );

    // Wrong tokens are counted per address (all of loopback as one; remote addresses apart,
    // unit-tested in console::throttle): a guessing address waits, even with the right token.
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let sign_in = |http: reqwest::Client, token: &'static str| {
        let base = s.base.clone();
        async move {
            http.post(format!("{base}/login"))
                .header("origin", &base)
                .form_body([("token", token)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for _ in 0..10 {
        assert_eq!(sign_in(from("127.0.0.2"), "guess").await, 401);
    }
    assert_eq!(sign_in(from("127.0.0.2"), "a-rotated-token").await, 429);
    assert_eq!(sign_in(from("127.0.0.1"), "a-rotated-token").await, 429);
    drop(s.server);
}

/// Session `s` (its cookie and CSRF token) on a new server over the same store (`env`) with
/// `token`; the old server stops first.
async fn restarted(s: Signed, ws: &Workspace, env: &[(&str, &str)], token: &str) -> Signed {
    let Signed {
        server,
        http,
        cookie,
        csrf,
        ..
    } = s;
    drop(server);
    let server = HttpServer::start_with_env(ws.path(), Some(token), env)
        .await
        .unwrap();
    Signed {
        base: server.url().trim_end_matches("/mcp").to_string(),
        server,
        http,
        cookie,
        csrf,
    }
}

/// Silences rule `app-errors` in session `s` for `length`.
async fn silence(s: &Signed, length: &str) -> reqwest::Response {
    s.post(
        "/alerts/app-errors/silence",
        &[("length", length), ("comment", "on it")],
    )
    .await
}

/// The silences of a PostgreSQL store: set and lifted in the console; the monitor evaluates a
/// silenced rule without notifying, and a silence "until it resolves" ends when it resolves.
#[tokio::test]
async fn silences_live_in_postgres_too() {
    let Some(base) = require_service("PI_MCP_TEST_PG_URL") else {
        return;
    };
    let url = support::fresh_pg_database(&base).await;
    let ws = Workspace::new();
    ws.write("app.log", "ERROR once\n");
    ws.write("alerts.json", rules(0.0));
    let env = [
        ("PI_MCP_STATE_URL", url.as_str()),
        ("PI_MCP_ALERTS", "alerts.json"),
    ];
    let s = signed_in(&ws, &env).await;
    let monitor = |ws: &Workspace, dry: bool| {
        let args: &[&str] = if dry {
            &["monitor", "--dry-run", "--json"]
        } else {
            &["monitor", "--json"]
        };
        serde_json::from_str::<Value>(&cli_ok(ws.path(), args, &env)).unwrap()["rules"][0].clone()
    };

    // For an hour, then lifted by hand.
    assert_eq!(silence(&s, "1h").await.status(), 303);
    let set = monitor(&ws, true)["silence"].clone();
    assert_eq!(set["comment"], "on it", "{set}");
    assert!(set["ends_at"].is_string(), "{set}");
    assert!(
        set["created_by"]
            .as_str()
            .unwrap()
            .starts_with("console session")
    );
    let id = set["id"].as_str().unwrap();
    let page = s.get("/alerts").await.text().await.unwrap();
    assert!(page.contains(&format!("/silences/{id}/lift")), "{page}");
    let r = s.post(&format!("/silences/{id}/lift"), &[]).await;
    assert_eq!(r.status(), 303);
    assert!(monitor(&ws, true)["silence"].is_null());

    // Until it resolves: the rule fires muted, then resolves, and the silence ends with it.
    assert_eq!(silence(&s, "resolved").await.status(), 303);
    let fired = monitor(&ws, false);
    assert_eq!(fired["state"], "firing", "{fired}");
    assert_eq!(fired["muted"], "firing", "{fired}");
    assert!(fired["notice"].is_null(), "{fired}");
    assert!(fired["silence"]["ends_at"].is_null(), "{fired}");
    ws.write("alerts.json", rules(1000.0));
    let resolved = monitor(&ws, false);
    assert_eq!(resolved["state"], "ok", "{resolved}");
    assert!(
        resolved["notice"].is_null(),
        "never announced, so no resolution: {resolved}"
    );
    assert!(
        monitor(&ws, true)["silence"].is_null(),
        "ended on resolution"
    );
    // The session is in PostgreSQL: another server on the same store knows it.
    let s = restarted(s, &ws, &env, TOKEN).await;
    assert_eq!(
        s.get("/alerts").await.status(),
        200,
        "known to another server"
    );
}

/// A pending command with invisible or direction-changing characters reaches the approver
/// with them shown as escapes, under a warning: what the page shows is what would run.
#[tokio::test]
async fn a_disguised_command_shows_its_escapes_to_the_approver() {
    let ws = Workspace::new();
    let s = signed_in(&ws, &[]).await;
    let client = support::spawn_stdio(ws.path(), &[]).await.unwrap();
    let disguised = "python3 -c 'print(1)' # \u{202e}hs.txt";
    call(&client, "bash", json!({ "command": disguised })).await;
    let page = s.get("/approvals").await.text().await.unwrap();
    assert!(
        !page.contains('\u{202e}'),
        "the raw character is not on the page"
    );
    assert!(page.contains("# \\u{202e}hs.txt"), "{page}");
    assert!(
        page.contains("invisible or direction-changing characters"),
        "{page}"
    );
    client.cancel().await.unwrap();
    drop(s.server);
}
