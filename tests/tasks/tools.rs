//! Tasks for `ghost` and `bash` calls, approvals inside a task, clients without the
//! extension, and the Python SDK.

use std::time::Duration;

use rmcp::model::{
    CallToolResponse, CancelTaskParams, GetTaskParams, NumberOrString, ProgressToken,
    ProtocolVersion, RequestMetaObject, UpdateTaskParams,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt as _, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{Peer, RoleClient};
use serde_json::{Value, json};

use super::support::{
    self, HttpServer, Workspace, audit_entries, shop, spawn_stdio_modern_with, spawn_stdio_with,
    text_of,
};
use super::{PATIENCE, TaskClient, get, params, poll_until, start, task_steps, terminal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ghost_run_is_a_task_with_progress_and_an_inlined_result() {
    let ws = Workspace::new();
    let policy = shop::policy(&ws, &shop::shop_db(&ws).await);
    let handler = TaskClient::default();
    let progress = handler.progress.clone();
    let client = spawn_stdio_modern_with(ws.path(), &["--policy", &policy], handler)
        .await
        .expect("start pi-mcp");

    let mut p = params("ghost", json!({ "database": "shop" }));
    p.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
        NumberOrString::String("ghost-task".into()),
    )));
    let created = start(&client, p).await;
    let wire = serde_json::to_value(&created).unwrap();
    assert_eq!(wire["resultType"], "task", "{wire}");
    assert_eq!(wire["ttlMs"], 3_600_000, "{wire}");
    assert_eq!(wire["pollIntervalMs"], 1_000, "{wire}");
    let id = created.task.task_id.clone();
    // Durable at once: tasks/get knows the task as soon as the call answered.
    let first = serde_json::to_value(get(&client, &id).await).unwrap();
    assert_eq!(first["taskId"], id.as_str());

    let done = poll_until(&client, &id, terminal).await;
    assert_eq!(done["status"], "completed", "{done}");
    let result = &done["result"];
    assert_ne!(result["isError"], true, "{done}");
    assert_eq!(result["structuredContent"]["tables_profiled"], 3, "{done}");
    support::schema::assert_matches_output_schema("ghost", &result["structuredContent"]);
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("3 table(s) profiled"), "{text}");
    assert!(
        done["statusMessage"]
            .as_str()
            .is_some_and(|m| m.contains("3 of 3 tables profiled")),
        "the status message says how far the run got: {done}"
    );

    // Progress per table under the call's token.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while progress.lock().unwrap().len() < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut seen: Vec<f64> = progress
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.progress)
        .collect();
    seen.sort_by(f64::total_cmp);
    assert_eq!(seen, [1.0, 2.0, 3.0]);

    client.cancel().await.unwrap();
    let steps = task_steps(ws.path(), &id, 2).await;
    let decisions: Vec<&str> = steps
        .iter()
        .map(|s| s["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["created", "completed"], "{steps:?}");
    assert_eq!(steps[0]["arguments"]["tool"], "ghost");
    let ghost = audit_entries(ws.path(), &[]);
    assert!(
        ghost.iter().any(|e| e["tool"] == "ghost"
            && e["outcome"].as_str().unwrap().starts_with("ok: 3 table(s)")),
        "the call itself is audited as ever: {ghost:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_ghost_task_stops_and_writes_no_report() {
    let ws = Workspace::new();
    let url = shop::shop_db(&ws).await;
    let policy = shop::policy(&ws, &url);
    // Another connection holds the database exclusively: the run waits on its lock.
    let mut holder = shop::sqlite_script(
        &url,
        "BEGIN EXCLUSIVE; INSERT INTO products VALUES (3, 'c-3', 3.5);",
    )
    .await;
    let client = spawn_stdio_modern_with(ws.path(), &["--policy", &policy], TaskClient::default())
        .await
        .expect("start pi-mcp");
    let created = start(&client, params("ghost", json!({ "database": "shop" }))).await;
    let id = created.task.task_id;
    client
        .cancel_task(CancelTaskParams::new(id.clone()))
        .await
        .expect("tasks/cancel acks");
    let done = poll_until(&client, &id, terminal).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert!(done.get("result").is_none(), "{done}");
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    // Cancelling a finished task acks and changes nothing.
    client
        .cancel_task(CancelTaskParams::new(id.clone()))
        .await
        .expect("idempotent");
    assert_eq!(
        serde_json::to_value(get(&client, &id).await).unwrap()["status"],
        "cancelled"
    );
    client.cancel().await.unwrap();

    let steps = task_steps(ws.path(), &id, 3).await;
    let decisions: Vec<&str> = steps
        .iter()
        .map(|s| s["decision"].as_str().unwrap())
        .collect();
    assert!(
        decisions.starts_with(&["created", "cancel"]) && decisions.contains(&"cancelled"),
        "{steps:?}"
    );
    let entries = audit_entries(ws.path(), &[]);
    assert!(
        !entries.iter().any(|e| e["tool"] == "ghost"),
        "the dropped run never finished: {entries:?}"
    );
    let reports = ws.path().join("reports");
    let written = std::fs::read_dir(&reports).map(|d| d.count()).unwrap_or(0);
    assert_eq!(written, 0, "no report under {}", reports.display());
}

/// The processes whose command line contains `marker` (the test's own `bash -c` and `sleep`).
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) && !cmdline.contains("cargo") {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

/// A command that writes `started.txt`, sleeps `marker` seconds (the marker finds its processes)
/// and then writes `canary.txt`.
fn sleeper(marker: &str) -> String {
    format!("echo started > started.txt; sleep {marker}; echo late > canary.txt")
}

/// Waits until the [`sleeper`] in `ws` has started.
async fn wait_started(ws: &std::path::Path) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !ws.join("started.txt").exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the command never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until no process with `marker` in its command line is left.
async fn wait_gone(marker: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "left running: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `bash` task cancelled while its command sleeps: nothing of it is left, and the file it
/// would have written after the sleep never appears.
async fn cancel_bash_mid_run(client: &Peer<RoleClient>, ws: &Workspace, marker: &str) -> String {
    let command = sleeper(marker);
    let created = start(
        client,
        params("bash", json!({ "command": command, "timeout_secs": 120 })),
    )
    .await;
    let id = created.task.task_id;
    wait_started(ws.path()).await;
    let started = tokio::time::Instant::now();
    assert_eq!(
        serde_json::to_value(get(client, &id).await).unwrap()["status"],
        "working"
    );
    client
        .cancel_task(CancelTaskParams::new(id.clone()))
        .await
        .expect("tasks/cancel");
    let done = poll_until(client, &id, terminal).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    // The whole process group was killed: neither bash nor its sleep is left.
    wait_gone(marker).await;
    // Past the moment the command would have written its canary.
    let secs: f64 = marker.parse().unwrap();
    tokio::time::sleep_until(started + Duration::from_secs_f64(secs + 1.0)).await;
    assert!(
        !ws.path().join("canary.txt").exists(),
        "the cancelled command went on to write its canary"
    );
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bash_task_cancelled_over_stdio_kills_its_process_group() {
    let ws = Workspace::new();
    let client = spawn_stdio_modern_with(ws.path(), &[], TaskClient::default())
        .await
        .expect("start pi-mcp");
    let id = cancel_bash_mid_run(&client, &ws, "3.217").await;
    client.cancel().await.unwrap();
    let steps = task_steps(ws.path(), &id, 3).await;
    assert_eq!(steps[0]["arguments"]["tool"], "bash");
    assert!(
        steps[0]["outcome"]
            .as_str()
            .unwrap()
            .contains("task_after_secs (30 s)"),
        "{steps:?}"
    );
}

/// A client that goes away mid-task: when `serve --stdio` ends, its running tasks end with
/// it, and a `bash` task's processes do not outlive the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_bash_task_ends_with_the_session() {
    let ws = Workspace::new();
    let client = spawn_stdio_modern_with(ws.path(), &[], TaskClient::default())
        .await
        .expect("start pi-mcp");
    let marker = "7.713";
    let command = sleeper(marker);
    start(
        &client,
        params("bash", json!({ "command": command, "timeout_secs": 120 })),
    )
    .await;
    wait_started(ws.path()).await;
    client.cancel().await.unwrap();
    wait_gone(marker).await;
    assert!(!ws.path().join("canary.txt").exists());
}

async fn http_client(
    server: &HttpServer,
    handler: TaskClient,
) -> RunningService<RoleClient, TaskClient> {
    let transport = StreamableHttpClientTransport::from_uri(server.url().to_string());
    let modern = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    handler
        .serve_with_lifecycle(transport, modern)
        .await
        .expect("connect over HTTP (2026-07-28)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bash_task_cancelled_over_stateless_http_kills_its_process_group() {
    let ws = Workspace::new();
    let server = HttpServer::start(ws.path(), None).await.unwrap();
    let client = http_client(&server, TaskClient::default()).await;
    let info = client.peer_info().map(|i| i.protocol_version.clone());
    assert_eq!(info, Some(ProtocolVersion::V_2026_07_28));
    cancel_bash_mid_run(&client, &ws, "3.319").await;
}

const ASKING: &str = "python3 -c 'open(\"runs.txt\", \"a\").write(\"ran\\n\")'";

fn runs(ws: &Workspace) -> usize {
    std::fs::read_to_string(ws.path().join("runs.txt"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// A held command in a task: `input_required` with the question, then the answer by
/// `tasks/update`; returns the settled task.
async fn answer_in_task(client: &Peer<RoleClient>, approve: bool, timeout_secs: u64) -> Value {
    let created = start(
        client,
        params(
            "bash",
            json!({ "command": ASKING, "timeout_secs": timeout_secs }),
        ),
    )
    .await;
    let id = created.task.task_id;
    let asked = poll_until(client, &id, |t| {
        t["status"] == "input_required" || terminal(t)
    })
    .await;
    assert_eq!(asked["status"], "input_required", "{asked}");
    let question = &asked["inputRequests"]["approval"];
    assert_eq!(question["method"], "elicitation/create", "{asked}");
    let message = question["params"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("runs.txt"),
        "the command is shown: {message}"
    );
    let answer = json!({ "action": "accept", "content": { "approve": approve } });
    let mut responses = rmcp::model::InputResponses::new();
    responses.insert("approval".into(), answer);
    client
        .update_task(UpdateTaskParams::new(id.clone(), responses))
        .await
        .expect("tasks/update");
    poll_until(client, &id, terminal).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_inside_a_task_is_input_required_and_answered_by_tasks_update() {
    let ws = Workspace::new();
    let server = HttpServer::start(ws.path(), None).await.unwrap();
    let client = http_client(&server, TaskClient::default()).await;

    let done = answer_in_task(&client, true, 60).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["result"]["isError"], false, "{done}");
    assert_eq!(runs(&ws), 1, "approved: ran once");

    let done = answer_in_task(&client, false, 60).await;
    assert_eq!(
        done["status"], "completed",
        "a refusal is a tool error: {done}"
    );
    assert_eq!(done["result"]["isError"], true, "{done}");
    assert_eq!(runs(&ws), 1, "declined: not run");

    let entries = audit_entries(ws.path(), &[]);
    let steps: Vec<&str> = entries
        .iter()
        .filter(|e| e["tool"] == "task")
        .map(|e| e["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps.iter().filter(|s| **s == "input_required").count(),
        2,
        "{steps:?}"
    );
    assert_eq!(
        steps.iter().filter(|s| **s == "update").count(),
        2,
        "{steps:?}"
    );
}

/// A short command (timeout under `task_after_secs`) runs inline, unless the policy holds it
/// for a human: then it is a task too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_command_held_for_approval_runs_as_a_task() {
    let ws = Workspace::new();
    let client = spawn_stdio_modern_with(ws.path(), &[], TaskClient::default())
        .await
        .expect("start pi-mcp");
    let quick = client
        .call_tool_once(params(
            "bash",
            json!({ "command": "echo quick", "timeout_secs": 10 }),
        ))
        .await
        .unwrap();
    assert!(matches!(quick, CallToolResponse::Complete(_)), "{quick:?}");
    let done = answer_in_task(&client, true, 10).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(runs(&ws), 1, "approved in the task: ran once");
    client.cancel().await.unwrap();
    let entries = audit_entries(ws.path(), &[]);
    let created: Vec<&Value> = entries
        .iter()
        .filter(|e| e["tool"] == "task" && e["decision"] == "created")
        .collect();
    assert_eq!(created.len(), 1, "{entries:?}");
    let why = created[0]["outcome"].as_str().unwrap_or_default();
    assert!(why.contains("holds its command for a human"), "{why}");
}

/// A plain `bash` call that would be a task, from `client`: the plain result.
async fn plain_result(client: &Peer<RoleClient>) {
    let r = client
        .call_tool_once(params(
            "bash",
            json!({ "command": "echo plain", "timeout_secs": 120 }),
        ))
        .await
        .unwrap();
    let CallToolResponse::Complete(r) = r else {
        panic!("expected the plain result, got {r:?}");
    };
    assert!(text_of(&r).contains("plain"), "{}", text_of(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_extension_gets_the_plain_result() {
    let ws = Workspace::new();
    let handler = TaskClient {
        no_tasks: true,
        ..TaskClient::default()
    };
    let client = spawn_stdio_modern_with(ws.path(), &[], handler)
        .await
        .expect("start pi-mcp");
    let info = client.peer_info().unwrap();
    assert!(
        info.capabilities.supports_tasks(),
        "the server advertises the extension"
    );
    plain_result(&client).await;
    let err = client
        .get_task(GetTaskParams::new("any"))
        .await
        .expect_err("tasks/get needs the extension");
    assert!(err.to_string().contains("-32021"), "{err}");
    client.cancel().await.unwrap();

    // A 2025-11-25 session that lists the extension (the MCP Inspector does by default) gets
    // plain results too: SEP-2663 extends 2026-07-28.
    let legacy = spawn_stdio_with(ws.path(), &[], TaskClient::default())
        .await
        .expect("start pi-mcp");
    plain_result(&legacy).await;
    legacy.cancel().await.unwrap();
    let entries = audit_entries(ws.path(), &[]);
    assert!(!entries.iter().any(|e| e["tool"] == "task"), "{entries:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_task_id_is_invalid_params() {
    let ws = Workspace::new();
    let client = spawn_stdio_modern_with(ws.path(), &[], TaskClient::default())
        .await
        .expect("start pi-mcp");
    let err = client
        .get_task(GetTaskParams::new("no-such-task"))
        .await
        .expect_err("unknown");
    assert!(err.to_string().contains("-32602"), "{err}");
    client.cancel().await.unwrap();
}

/// The Python `mcp` SDK (2026-07-28 over stdio) with a small tasks extension of its own
/// (tests/tasks/python_client.py): a task resolved by polling, a task cancelled mid-run (checked here
/// by effect), and the plain result without the extension.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_runs_polls_and_cancels_tasks() {
    let Some(python) = support::require_service("PI_MCP_TEST_PYTHON_MCP") else {
        return;
    };
    let ws = Workspace::new();
    let marker = "3.421";
    let expect = [
        "protocol 2026-07-28",
        "created: working ttlMs=3600000 pollIntervalMs=1000",
        "task result: from-a-task",
        "cancelled: cancelled",
        "no extension: plain result",
        "no extension: tasks/get -32021",
    ];
    let script = "tasks/python_client.py";
    support::python_client(&python, script, support::bin(), &ws, marker, &expect).await;
    let ended = tokio::time::Instant::now();
    assert!(
        processes_with(marker).is_empty(),
        "{:?}",
        processes_with(marker)
    );
    let secs: f64 = marker.parse().unwrap();
    tokio::time::sleep_until(ended + Duration::from_secs_f64(secs + 1.0)).await;
    assert!(
        !ws.path().join("canary.txt").exists(),
        "the cancelled command wrote its canary"
    );
    let entries = audit_entries(ws.path(), &[]);
    let cancelled = entries
        .iter()
        .filter(|e| e["tool"] == "task" && e["decision"] == "cancelled")
        .count();
    assert_eq!(cancelled, 1, "{entries:?}");
}
