//! Approvals under MCP 2026-07-28 (stateless, no server-to-client requests): an `ask`
//! answers `tools/call` with an input-required result (an elicitation request plus a sealed
//! `requestState`); the retry with the user's answer runs the command exactly once. Driven
//! through rmcp's client over stdio and Streamable HTTP, and through the Python `mcp` SDK;
//! effects are counted in a file the command appends to.

mod support;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, InputRequiredResult, InputResponses, ProtocolVersion,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt as _, RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{Peer, RoleClient};
use serde_json::json;
use support::user::User;
use support::{HttpServer, Workspace, text_of};

/// Rated `ask` by the default policy (rule inline-code); harmless: it appends one line.
const ASKING: &str = "python3 -c 'open(\"runs.txt\", \"a\").write(\"ran\\n\")'";
const TOKEN: &str = "mrtr-test-token";

/// The protocol revision the client and server agreed on.
fn protocol(client: &RunningService<RoleClient, User>) -> Option<ProtocolVersion> {
    client
        .peer()
        .peer_info()
        .map(|i| i.protocol_version.clone())
}

fn runs(ws: &Workspace) -> usize {
    std::fs::read_to_string(ws.path().join("runs.txt"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn bash(command: &str) -> CallToolRequestParams {
    let mut p = CallToolRequestParams::new("bash");
    p.arguments = json!({ "command": command }).as_object().cloned();
    p
}

fn answer(approve: bool) -> InputResponses {
    let mut r = InputResponses::new();
    r.insert(
        "approval".into(),
        json!({"action": "accept", "content": {"approve": approve}}),
    );
    r
}

/// The first round of an `ask`: an input-required result with the approval question.
async fn first_round(peer: &Peer<RoleClient>, command: &str) -> InputRequiredResult {
    match peer.call_tool_once(bash(command)).await {
        Ok(CallToolResponse::InputRequired(r)) => r,
        other => panic!("expected an input-required result, got {other:?}"),
    }
}

/// A retry with `state` and the user's answer.
async fn retry(
    peer: &Peer<RoleClient>,
    command: &str,
    state: &str,
    approve: bool,
) -> Result<CallToolResponse, ServiceError> {
    let params = bash(command)
        .with_input_responses(answer(approve))
        .with_request_state(state);
    peer.call_tool_once(params).await
}

fn assert_invalid_params(r: Result<CallToolResponse, ServiceError>, what: &str) {
    match r {
        Err(ServiceError::McpError(e)) => {
            assert_eq!(e.code.0, -32602, "{what}: {e:?}");
            assert!(e.message.contains("nothing ran"), "{what}: {}", e.message);
        }
        other => panic!("{what}: expected a -32602 error, got {other:?}"),
    }
}

/// The whole story on one connection: the SDK's automatic round trip, then a manual one, a
/// replay, a tampered state, a state for another command, and a declined answer.
async fn approval_round_trips(client: &RunningService<RoleClient, User>, ws: &Workspace) {
    // rmcp's high-level call fulfils the input request through the handler and retries.
    let r = client.call_tool(bash(ASKING)).await.expect("tools/call");
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert_eq!(runs(ws), 1, "approved: the command ran exactly once");
    let asked = client.service().asked.lock().unwrap().join("\n");
    for part in [
        ASKING,
        "inline-code",
        "risk",
        "approval ",
        ws.path().to_str().unwrap(),
    ] {
        assert!(asked.contains(part), "missing {part:?} in {asked}");
    }

    // By hand: what the input-required result carries.
    let peer = client.peer();
    let first = first_round(peer, ASKING).await;
    let wire = serde_json::to_value(&first).unwrap();
    assert_eq!(wire["resultType"], "input_required");
    let question = &wire["inputRequests"]["approval"];
    assert_eq!(question["method"], "elicitation/create", "{wire}");
    assert!(
        question["params"]["requestedSchema"]["properties"]["approve"].is_object(),
        "{wire}"
    );
    let details = &wire["_meta"]["pi-mcp"]["approval"];
    assert_eq!(details["command"], ASKING, "{wire}");
    assert_eq!(details["tool"], "bash");
    assert_eq!(details["risk"], 50);
    assert_eq!(details["reasons"][0]["rule"], "inline-code", "{wire}");
    let id = details["id"].as_str().unwrap().to_string();
    let state = first.request_state.clone().expect("a requestState");
    assert_eq!(runs(ws), 1, "asking ran nothing");

    // A tampered state (the conformance suite's tamper) is refused; nothing runs.
    assert_invalid_params(
        retry(peer, ASKING, &format!("{state}-TAMPERED"), true).await,
        "tampered",
    );
    // The state is bound to its command: it does not approve another one.
    let other = "python3 -c 'open(\"runs.txt\", \"a\").write(\"other\\n\")'";
    assert_invalid_params(retry(peer, other, &state, true).await, "another command");
    assert_eq!(runs(ws), 1);

    // A retry without a usable answer is asked again (SEP-2322: re-request, not an error),
    // under the same approval; nothing runs and the state stays good.
    let mut wrong = InputResponses::new();
    wrong.insert(
        "wrong_key".into(),
        json!({"action": "accept", "content": {}}),
    );
    wrong.insert("approval".into(), json!(12345));
    let params = bash(ASKING)
        .with_input_responses(wrong)
        .with_request_state(state.as_str());
    match peer.call_tool_once(params).await {
        Ok(CallToolResponse::InputRequired(again)) => {
            let wire = serde_json::to_value(&again).unwrap();
            assert_eq!(wire["_meta"]["pi-mcp"]["approval"]["id"], id.as_str());
            assert!(again.request_state.is_some());
        }
        other => panic!("expected the question again, got {other:?}"),
    }
    assert_eq!(runs(ws), 1);

    // The genuine retry runs it once ...
    match retry(peer, ASKING, &state, true).await {
        Ok(CallToolResponse::Complete(r)) => {
            assert_eq!(r.is_error, Some(false), "{}", text_of(&r))
        }
        other => panic!("expected a complete result, got {other:?}"),
    }
    assert_eq!(runs(ws), 2);
    // ... and a replay of the same state does not run it again.
    assert_invalid_params(retry(peer, ASKING, &state, true).await, "replayed");
    assert_eq!(runs(ws), 2);

    // Declined: the model gets the refusal, nothing runs.
    let first = first_round(peer, ASKING).await;
    let declined_id = serde_json::to_value(&first).unwrap()["_meta"]["pi-mcp"]["approval"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let state = first.request_state.unwrap();
    match retry(peer, ASKING, &state, false).await {
        Ok(CallToolResponse::Complete(r)) => {
            assert_eq!(r.is_error, Some(true));
            let text = text_of(&r);
            assert!(
                text.contains("NOT run") && text.contains("did not approve"),
                "{text}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(runs(ws), 2);

    // Every step is audited under the approval id.
    let steps = support::approval_steps(ws.path(), &id, 8).await;
    let expected = [
        "asked the user",
        "rejected: requestState failed verification",
        "rejected: requestState failed verification",
        "asked again: the retry carried no usable answer",
        "approved by the user",
        "used: the command runs now",
        "ran: exit 0",
        "rejected: requestState replayed",
    ];
    for (step, want) in steps.iter().zip(expected) {
        assert!(step.starts_with(want), "{want:?} vs {steps:?}");
    }
    let steps = support::approval_steps(ws.path(), &declined_id, 2).await;
    assert!(steps[0].starts_with("asked the user"), "{steps:?}");
    assert!(
        steps[1].starts_with("denied by the user (input-required result)"),
        "{steps:?}"
    );
    // No request asked for a log level, so no log message came.
    let logs = client.service().logs.lock().unwrap().clone();
    assert!(
        logs.is_empty(),
        "unrequested notifications/message: {logs:?}"
    );
}

#[tokio::test]
async fn an_approval_is_an_input_required_round_trip_over_stdio() {
    let ws = Workspace::new();
    let client = support::spawn_stdio_modern(ws.path(), User::new(true))
        .await
        .unwrap();
    assert_eq!(protocol(&client), Some(ProtocolVersion::V_2026_07_28));
    approval_round_trips(&client, &ws).await;
    client.cancel().await.unwrap();
}

/// An rmcp client of `server` speaking 2026-07-28.
async fn http_client(
    server: &HttpServer,
    user: User,
    token: Option<&str>,
) -> Result<RunningService<RoleClient, User>, rmcp::service::ClientInitializeError> {
    let modern = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    http_client_with(server, user, token, modern).await
}

async fn http_client_with(
    server: &HttpServer,
    user: User,
    token: Option<&str>,
    lifecycle: ClientLifecycleMode,
) -> Result<RunningService<RoleClient, User>, rmcp::service::ClientInitializeError> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(server.url().to_string());
    if let Some(t) = token {
        config = config.auth_header(t);
    }
    let transport = StreamableHttpClientTransport::from_config(config);
    user.serve_with_lifecycle(transport, lifecycle).await
}

/// 2025-11-25 clients keep the in-call elicitation request (a session, `initialize`), over
/// HTTP as over stdio (tests/elicitation.rs).
#[tokio::test]
async fn a_2025_11_25_client_is_still_asked_in_the_call_over_http() {
    let ws = Workspace::new();
    let server = HttpServer::start(ws.path(), Some(TOKEN)).await.unwrap();
    let user = User::new(true);
    let asked = user.asked.clone();
    let client = http_client_with(&server, user, Some(TOKEN), ClientLifecycleMode::Initialize)
        .await
        .unwrap();
    assert_eq!(protocol(&client), Some(ProtocolVersion::V_2025_11_25));
    // The input-required path is never taken: the first call answers with the result.
    match client.peer().call_tool_once(bash(ASKING)).await {
        Ok(CallToolResponse::Complete(r)) => {
            assert_eq!(r.is_error, Some(false), "{}", text_of(&r))
        }
        other => panic!("expected a complete result, got {other:?}"),
    }
    assert_eq!(runs(&ws), 1);
    assert_eq!(asked.lock().unwrap().len(), 1, "asked once, in the call");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_approval_is_an_input_required_round_trip_over_http() {
    let ws = Workspace::new();
    let server = HttpServer::start(ws.path(), Some(TOKEN)).await.unwrap();
    let client = http_client(&server, User::new(true), Some(TOKEN))
        .await
        .unwrap();
    assert_eq!(protocol(&client), Some(ProtocolVersion::V_2026_07_28));
    approval_round_trips(&client, &ws).await;
    // A state is bound to the process that sealed it, not to a connection: a second client
    // cannot replay it either (the ledger is per process).
    client.cancel().await.unwrap();
    // The bearer token holds under 2026-07-28 too.
    assert!(http_client(&server, User::new(true), None).await.is_err());
    assert!(
        http_client(&server, User::new(true), Some("wrong"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_modern_client_without_elicitation_gets_the_approval_queue() {
    let ws = Workspace::new();
    let mut user = User::new(true);
    user.elicits = false;
    let client = support::spawn_stdio_modern(ws.path(), user).await.unwrap();
    let r = client.call_tool(bash(ASKING)).await.expect("tools/call");
    assert_eq!(r.is_error, Some(true));
    let text = text_of(&r);
    assert!(
        text.contains("pending as approval") && text.contains("pi-mcp approvals approve"),
        "{text}"
    );
    assert_eq!(runs(&ws), 0);
    assert!(client.service().asked.lock().unwrap().is_empty());
    client.cancel().await.unwrap();
}

/// The Python `mcp` SDK (2026-07-28 client, its own input-required driver) against
/// `serve --stdio` and `serve --http`: approve, decline, tamper (tests/mrtr_python.py).
#[tokio::test]
async fn the_python_sdk_answers_an_approval_round_trip() {
    let Some(python) = support::require_service("PI_MCP_TEST_PYTHON_MCP") else {
        return;
    };
    let ws = Workspace::new();
    python_round_trip(&python, &ws, support::bin()).await;
    assert_eq!(runs(&ws), 1, "only the approved call ran");

    let ws = Workspace::new();
    let server = HttpServer::start(ws.path(), None).await.unwrap();
    python_round_trip(&python, &ws, server.url()).await;
    assert_eq!(runs(&ws), 1, "only the approved call ran");
}

/// Runs tests/mrtr_python.py against `server` (the binary for stdio, or an HTTP URL).
async fn python_round_trip(python: &str, ws: &Workspace, server: &str) {
    let expect = [
        "protocol 2026-07-28",
        "approved: ok",
        "declined: refused",
        "tampered: -32602",
    ];
    support::python_client(python, "mrtr_python.py", server, ws, ASKING, &expect).await;
}
