//! The 2026-07-28 revision over Streamable HTTP, checked on the wire with raw requests (what
//! the conformance suite can only check with its own fixture tools): each request's stream
//! carries that request's messages and nothing else, no `notifications/message` arrives for a
//! request that did not ask for a log level, and DNS-rebinding protection and the bearer token
//! hold for stateless requests as they do for sessions; and no request of pi-mcp's needs a client
//! capability it cannot do without, so an `ask` without elicitation is queued, never `-32021`.

mod support;

use serde_json::{Value, json};
use support::{HttpServer, Workspace};

const TOKEN: &str = "stateless-test-token";
const VERSION: &str = "2026-07-28";

/// A self-contained 2026-07-28 request: `_meta` with version, capabilities and client info
/// (beside any `_meta` in `params`), the `Mcp-Method` / `Mcp-Name` headers, and `token`.
fn request(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    (id, method, name): (u64, &str, Option<&str>),
    mut params: Value,
) -> reqwest::RequestBuilder {
    let meta = params["_meta"].as_object_mut().map(std::mem::take);
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1.0.0"},
    });
    if let (Some(meta), Some(all)) = (meta, params["_meta"].as_object_mut()) {
        all.extend(meta);
    }
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", VERSION)
        .header("mcp-method", method)
        .json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
    if let Some(name) = name {
        req = req.header("mcp-name", name);
    }
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req
}

/// Every JSON-RPC message of a response, whether it came as JSON or as an SSE stream.
async fn messages(response: reqwest::Response) -> Vec<Value> {
    assert!(response.status().is_success(), "{}", response.status());
    let sse = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let body = response.text().await.unwrap();
    if !sse {
        return vec![serde_json::from_str(&body).unwrap()];
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// `<ws>/tiny.db` with two tables, named `tiny` in a policy; returns the policy path.
async fn tiny_db(ws: &Workspace) -> String {
    let url = format!("sqlite://{}", ws.path().join("tiny.db").display());
    support::shop::sqlite_script(
        &url,
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO a VALUES (1, 'x');
         CREATE TABLE b (id INTEGER PRIMARY KEY, n REAL); INSERT INTO b VALUES (1, 2.5);",
    )
    .await;
    let policy = json!({ "sql": { "databases": { "tiny": { "url": url } } } });
    ws.write("policy.json", policy.to_string())
        .display()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_stream_carries_only_its_own_messages_and_no_unrequested_logs() {
    let ws = Workspace::new();
    let policy = tiny_db(&ws).await;
    let server = HttpServer::start_with_env(ws.path(), Some(TOKEN), &[("PI_MCP_POLICY", &policy)])
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let url = server.url();
    let call = |id: u64, tool: &str, args: Value, token: &str| {
        request(
            &http,
            url,
            Some(TOKEN),
            (id, "tools/call", Some(tool)),
            json!({"name": tool, "arguments": args, "_meta": {"progressToken": token}}),
        )
        .send()
    };
    // Three requests in flight at once: a ghost run (progress per table), a bash command and
    // a listing.
    let (ghost, bash, list) = tokio::join!(
        call(1, "ghost", json!({"database": "tiny"}), "ghost-progress"),
        call(2, "bash", json!({"command": "echo two"}), "bash-progress"),
        request(&http, url, Some(TOKEN), (3, "tools/list", None), json!({})).send(),
    );
    let streams = [
        (1, "ghost-progress", messages(ghost.unwrap()).await),
        (2, "bash-progress", messages(bash.unwrap()).await),
        (3, "", messages(list.unwrap()).await),
    ];
    for (id, token, stream) in &streams {
        let mut answered = 0;
        for m in stream {
            assert_ne!(
                m["method"], "notifications/message",
                "no log message without a requested log level: {m}"
            );
            if m.get("id").is_some() {
                assert_eq!(
                    m["id"], *id,
                    "another request's response on stream {id}: {m}"
                );
                assert!(m.get("result").is_some(), "{m}");
                answered += 1;
            } else {
                assert_eq!(m["method"], "notifications/progress", "stream {id}: {m}");
                assert_eq!(
                    m["params"]["progressToken"], *token,
                    "another request's progress on stream {id}: {m}"
                );
            }
        }
        assert_eq!(
            answered, 1,
            "stream {id} answers its request once: {stream:?}"
        );
    }
    // The ghost stream did carry notifications, so the check above was not vacuous.
    let ghost_progress = streams[0]
        .2
        .iter()
        .filter(|m| m.get("id").is_none())
        .count();
    assert_eq!(ghost_progress, 2, "one per table: {:?}", streams[0].2);
    assert_eq!(
        streams[0].2.last().unwrap()["id"],
        1,
        "the result comes last"
    );
}

#[tokio::test]
async fn dns_rebinding_protection_and_the_token_hold_for_stateless_requests() {
    let ws = Workspace::new();
    let server = HttpServer::start(ws.path(), Some(TOKEN)).await.unwrap();
    let http = reqwest::Client::new();
    let list = |token| {
        request(
            &http,
            server.url(),
            token,
            (7, "tools/list", None),
            json!({}),
        )
    };
    let ok = messages(list(Some(TOKEN)).send().await.unwrap()).await;
    assert!(ok[0]["result"]["tools"].is_array(), "{ok:?}");

    let status = |r: reqwest::RequestBuilder| async move { r.send().await.unwrap().status() };
    assert_eq!(status(list(None)).await.as_u16(), 401, "no token");
    assert_eq!(
        status(list(Some("wrong"))).await.as_u16(),
        401,
        "wrong token"
    );
    let foreign_host = list(Some(TOKEN)).header("host", "evil.example.com");
    assert_eq!(status(foreign_host).await.as_u16(), 403, "foreign Host");
    let foreign_origin = list(Some(TOKEN)).header("origin", "http://evil.example.com");
    assert_eq!(status(foreign_origin).await.as_u16(), 403, "foreign Origin");
    let local_origin = list(Some(TOKEN)).header("origin", "http://localhost:3000");
    assert!(status(local_origin).await.is_success(), "a local Origin");
}

/// pi-mcp has no request that needs a client capability it cannot do without: an `ask` from a
/// client that declared no elicitation is queued (HTTP 200, a tool result naming the pending
/// approval), never `-32021` / HTTP 400.
#[tokio::test]
async fn an_ask_without_elicitation_is_queued_not_refused_for_a_missing_capability() {
    let ws = Workspace::new();
    let server = HttpServer::start(ws.path(), Some(TOKEN)).await.unwrap();
    let http = reqwest::Client::new();
    let asking = "python3 -c 'open(\"runs.txt\", \"a\").write(\"ran\\n\")'";
    let response = request(
        &http,
        server.url(),
        Some(TOKEN),
        (9, "tools/call", Some("bash")),
        json!({"name": "bash", "arguments": {"command": asking}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answer = messages(response).await;
    let result = &answer.last().unwrap()["result"];
    assert_eq!(result["isError"], true, "{answer:?}");
    assert_eq!(result["_meta"]["pi-mcp"]["approval"]["status"], "pending");
    assert!(!ws.path().join("runs.txt").exists());
}
