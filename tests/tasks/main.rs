//! Long-running calls as MCP tasks (SEP-2663, `io.modelcontextprotocol/tasks`) through real
//! clients speaking 2026-07-28 (the revision SEP-2663 extends): rmcp's client over stdio and
//! stateless Streamable HTTP, and the Python `mcp` SDK (`python_client.py`). [`tools`]: a `ghost` run as a
//! task with progress, its inlined result and its cancellation; `bash` tasks cancelled mid-run,
//! checked by effect (the canary file never appears, none of its processes is left); an
//! approval inside a task (`input_required`, answered by `tasks/update`); a client without the
//! extension or on a 2025-11-25 session, which gets the plain result; the Python SDK. [`sql`]:
//! `sql` calls as tasks, and a cancelled PostgreSQL task's query cancelled on the server.

#[path = "../support/mod.rs"]
mod support;

mod sql;
mod tools;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientConfig, CreateTaskResult,
    GetTaskParams, GetTaskResult, Implementation, ProgressNotificationParam,
};
use rmcp::service::NotificationContext;
use rmcp::service::RunningService;
use rmcp::{ClientHandler, Peer, RoleClient};
use serde_json::Value;
use support::{Workspace, audit_entries};

/// How long a test waits for something that must happen before it gives up (a guard against
/// hanging, not a timing assertion).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A client that declares the tasks extension (and elicitation, to answer approvals in a
/// task), and keeps the progress notifications it receives.
#[derive(Clone, Default)]
pub struct TaskClient {
    pub no_tasks: bool,
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for TaskClient {
    fn get_info(&self) -> ClientConfig {
        let caps = if self.no_tasks {
            ClientCapabilities::default()
        } else {
            ClientCapabilities::builder()
                .enable_elicitation()
                .enable_tasks()
                .build()
        };
        ClientConfig::new(caps, Implementation::new("tasks-test-client", "1.0.0"))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }
}

/// `pi-mcp serve --stdio` under `policy` (a policy file's JSON), with a [`TaskClient`].
pub async fn serve(ws: &Workspace, policy: Value) -> RunningService<RoleClient, TaskClient> {
    let policy = ws.write("policy.json", policy.to_string());
    let policy = policy.display().to_string();
    support::spawn_stdio_modern_with(ws.path(), &["--policy", &policy], TaskClient::default())
        .await
        .expect("start pi-mcp")
}

pub fn params(tool: &str, args: Value) -> CallToolRequestParams {
    let mut p = CallToolRequestParams::new(tool.to_owned());
    p.arguments = args.as_object().cloned();
    p
}

/// `tools/call` that must answer with a task.
pub async fn start(client: &Peer<RoleClient>, p: CallToolRequestParams) -> CreateTaskResult {
    match client.call_tool_once(p).await.expect("tools/call") {
        CallToolResponse::Task(t) => t,
        other => panic!("expected a task, got {other:?}"),
    }
}

pub async fn get(client: &Peer<RoleClient>, id: &str) -> GetTaskResult {
    client
        .get_task(GetTaskParams::new(id))
        .await
        .expect("tasks/get")
}

/// Polls `tasks/get` until `done` holds for the task's wire form.
pub async fn poll_until(
    client: &Peer<RoleClient>,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let now = serde_json::to_value(get(client, id).await).unwrap();
        if done(&now) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id} never got there: {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn terminal(t: &Value) -> bool {
    matches!(
        t["status"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

/// The audit log's lifecycle steps of task `id` once there are at least `n`.
pub async fn task_steps(ws: &Path, id: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let steps: Vec<Value> = audit_entries(ws, &[])
            .into_iter()
            .filter(|e| e["tool"] == "task" && e["arguments"]["task_id"] == id)
            .collect();
        if steps.len() >= n {
            return steps;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {id}: {steps:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
