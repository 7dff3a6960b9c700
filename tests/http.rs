//! Streamable HTTP: a real rmcp client with the bearer token calls a tool; requests without it
//! get 401; a non-loopback bind without a token is refused; SIGTERM stops the server cleanly.

mod support;

use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;
use support::{HttpServer, Workspace, bin, call, text_of};

const TOKEN: &str = "test-token-0123456789";

fn initialize_body() -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
           "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
}

#[tokio::test]
async fn tools_work_with_the_token_and_401_without_it() {
    let ws = Workspace::new();
    ws.write("hello.txt", "hello over http\n");
    let server = HttpServer::start(ws.path(), Some(TOKEN)).await.unwrap();

    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.url().to_string()).auth_header(TOKEN),
    );
    let client = ().serve(transport).await.unwrap();
    assert_eq!(
        client
            .peer_info()
            .unwrap()
            .server_info
            .as_ref()
            .unwrap()
            .name,
        "pi-mcp"
    );
    let r = call(&client, "read", json!({"path": "hello.txt"})).await;
    assert_eq!(text_of(&r), "hello over http\n");
    let r = call(&client, "bash", json!({"command": "shred hello.txt"})).await;
    assert_eq!(r.is_error, Some(true));
    assert_eq!(ws.read("hello.txt"), "hello over http\n");
    client.cancel().await.unwrap();

    let http = reqwest::Client::new();
    for auth in [None, Some("Bearer wrong-token"), Some(TOKEN)] {
        let mut req = http
            .post(server.url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(&initialize_body());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let status = req.send().await.unwrap().status();
        assert_eq!(status.as_u16(), 401, "auth {auth:?} must be refused");
    }
}

#[tokio::test]
async fn wrong_bearer_tokens_are_throttled_per_address() {
    let ws = Workspace::new();
    let server = HttpServer::start(ws.path(), Some(TOKEN)).await.unwrap();
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let status = |http: reqwest::Client, token: &str| {
        let req = http
            .post(server.url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(token)
            .json(&initialize_body());
        async move { req.send().await.unwrap().status().as_u16() }
    };
    for _ in 0..10 {
        assert_eq!(status(from("127.0.0.2"), "guess").await, 401);
    }
    assert_eq!(
        status(from("127.0.0.2"), TOKEN).await,
        429,
        "a guessing address waits, even with the right token"
    );
    // Every loopback address counts as one (a local process cannot fill the table with 127/8
    // sources); remote addresses count apart (unit-tested in console::throttle).
    assert_eq!(status(from("127.0.0.1"), TOKEN).await, 429);
}

#[tokio::test]
async fn dns_rebinding_hosts_and_origins_are_refused() {
    let ws = Workspace::new();
    let server = HttpServer::start(ws.path(), None).await.unwrap();
    let http = reqwest::Client::new();
    let post = |host: Option<&str>, origin: Option<&str>| {
        let mut req = http
            .post(server.url())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(&initialize_body());
        if let Some(h) = host {
            req = req.header("host", h);
        }
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    assert!(post(None, None).await.unwrap().status().is_success());
    assert_eq!(
        post(Some("evil.example.com"), None)
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        post(None, Some("http://evil.example.com"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    assert!(
        post(None, Some("http://localhost:3000"))
            .await
            .unwrap()
            .status()
            .is_success()
    );
}

#[tokio::test]
async fn a_public_bind_needs_a_token() {
    let ws = Workspace::new();
    let out = tokio::process::Command::new(bin())
        .args([
            "--workspace",
            ws.path().to_str().unwrap(),
            "serve",
            "--http",
            "0.0.0.0:0",
        ])
        .envs(support::state_env(ws.path()))
        .env_remove("PI_MCP_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("without a bearer token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Where `bash` children can reach this machine's loopback (network `open`, the sandbox off, an
/// entry listing the port), a loopback bind needs a token too: a child could otherwise use the
/// console or answer its own approvals over /mcp.
#[tokio::test]
async fn a_loopback_bind_children_can_reach_needs_a_token() {
    let ws = Workspace::new();
    let cases = [
        (
            json!({"network": {"mode": "open"}}),
            "network mode is `open`",
        ),
        (json!({"sandbox": "off"}), "turns the sandbox off"),
        (
            json!({"network": {"mode": "allowlist", "allow": ["127.0.0.1"]}}),
            "entry `127.0.0.1` reaches it",
        ),
    ];
    for (policy, why) in cases {
        let path = ws.write("reach-policy.json", policy.to_string());
        let out = tokio::process::Command::new(bin())
            .args(["--workspace", ws.path().to_str().unwrap()])
            .args([
                "--policy",
                path.to_str().unwrap(),
                "serve",
                "--http",
                "127.0.0.1:0",
            ])
            .envs(support::state_env(ws.path()))
            .env_remove("PI_MCP_TOKEN")
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{policy}: {stderr}");
        assert!(
            stderr.contains("bash children can reach it") && stderr.contains(why),
            "{policy}: {stderr}"
        );
    }
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let ws = Workspace::new();
    let mut child = tokio::process::Command::new(bin())
        .args([
            "--workspace",
            ws.path().to_str().unwrap(),
            "serve",
            "--http",
            "127.0.0.1:0",
        ])
        .envs(support::state_env(ws.path()))
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.contains("listening on") {
            break;
        }
    }
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn deleting_an_unknown_mutated_or_ended_session_is_404() {
    let ws = Workspace::new();
    let server = HttpServer::start(ws.path(), Some(TOKEN)).await.unwrap();
    let http = reqwest::Client::new();
    let init = http
        .post(server.url())
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert!(init.status().is_success());
    let id = init
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .expect("a session id")
        .to_string();
    let delete = |session: Option<String>, host: Option<&'static str>| {
        let mut req = http
            .delete(server.url())
            .bearer_auth(TOKEN)
            .header("mcp-protocol-version", "2025-06-18");
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        if let Some(h) = host {
            req = req.header("host", h);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(delete(Some("no-such-session".into()), None).await, 404);
    assert_eq!(
        delete(Some(format!("{id}x")), None).await,
        404,
        "mutated id"
    );
    // rmcp's other answers stand: a foreign Host, a DELETE without a session id.
    assert_eq!(
        delete(Some("no-such-session".into()), Some("evil.example.com")).await,
        403
    );
    assert_eq!(delete(None, None).await, 400);
    assert_eq!(delete(Some(id.clone()), None).await, 202);
    assert_eq!(delete(Some(id), None).await, 404, "an ended session");
}
