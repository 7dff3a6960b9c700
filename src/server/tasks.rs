//! Long-running tool calls as MCP tasks (SEP-2663, the `io.modelcontextprotocol/tasks`
//! extension), on rmcp's [`TaskManager`].
//!
//! A `ghost` run, a `bash` call whose timeout is above the policy's `task_after_secs` or whose
//! command waits for a human's approval, and a `sql` call whose statement timeout is above
//! `task_after_secs`, answer a 2026-07-28 `tools/call` at once with a `CreateTaskResult`
//! when the request declared the extension in its `_meta` capabilities (2025-11-25 sessions
//! get plain results: see [`client_declared`]). The call itself runs in the background, exactly as it would inline (guard,
//! approvals, audit, redaction). The client polls `tasks/get` (the result is inlined there when
//! the task completes), answers an approval with `tasks/update` while the task is
//! `input_required`, and may `tasks/cancel`: cancellation drops the running call, which kills a
//! `bash` command's whole process group and stops a `sql` statement in the database. Clients
//! that did not declare the extension get the plain result, as before. Every step of a task's life is in
//! the audit log under the tool name [`TASK_AUDIT_TOOL`].

use std::time::Instant;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CreateTaskResult, ElicitRequest,
    ElicitRequestParams, ElicitationSchema, GetTaskResult, InputRequest, JsonObject,
    ProtocolVersion,
};
use rmcp::service::RequestContext;
use rmcp::task_manager::{TaskContext, TaskExit, TaskManager, TaskOptions};
use rmcp::{ErrorData, Peer, RoleServer};

use super::PiServer;
use super::approval::{ApprovalForm, approval_message};
use super::mrtr::AskVia;
use crate::guard::{Decision, Guard};
use crate::redact;
use crate::store::{AuditEntry, AuditLog};
use crate::tools::bash::{self, BashParams};
use crate::tools::{Approval, ApprovalRequest};

/// The audit log's tool name for a task's lifecycle (created, input required, completed,
/// failed, cancelled); `arguments` carry the task id and the call's tool.
pub const TASK_AUDIT_TOOL: &str = "task";

/// How long a task and its result are kept (`ttlMs`): an hour, well past the longest call
/// (the policy's largest `bash` timeout, a `ghost` run, a human's approval).
pub const TASK_TTL_MS: u64 = 3_600_000;

/// How often a client should poll `tasks/get` (`pollIntervalMs`).
pub const POLL_INTERVAL_MS: u64 = 1_000;

/// The key of the approval question in a task's `inputRequests` (and of its answer in
/// `tasks/update`'s `inputResponses`).
pub const APPROVAL_INPUT_KEY: &str = "approval";

/// The task a call runs in, for the code deep in the call that may ask a human or report
/// progress (approvals, the ghost's per-table progress).
#[derive(Clone)]
pub struct InTask {
    pub task: TaskContext,
    /// The client declared elicitation, so an approval question in `inputRequests` can be
    /// answered; otherwise the approval goes to the queue as for any client that cannot elicit.
    pub elicits: bool,
    audit: AuditLog,
}

tokio::task_local! {
    static CURRENT: InTask;
}

/// The task the calling code runs in, if it runs in one.
pub fn current() -> Option<InTask> {
    CURRENT.try_with(|c| c.clone()).ok()
}

/// The process's tasks (shared by every session: under 2026-07-28 each request may come on a
/// connection of its own).
#[derive(Clone, Default)]
pub struct Tasks {
    manager: TaskManager,
}

/// Why this call should run as a task, or `None` to run it inline. Arguments that do not parse
/// run inline, where the tool explains what is wrong with them.
pub fn why_task(guard: &Guard, tool: &str, args: &JsonObject) -> Option<String> {
    let after = guard.file().task_after_secs;
    let asked = |key: &str| args.get(key).and_then(|v| v.as_u64());
    let above = |what: &str, secs: u64| {
        (secs > after).then(|| {
            format!("its {what} ({secs} s) is above the policy's task_after_secs ({after} s)")
        })
    };
    match tool {
        "ghost" => Some("a Data Ghost run profiles every table of a database".into()),
        "bash" if args.get("timeout_secs").is_none_or(|v| v.is_u64()) => above(
            "timeout",
            asked("timeout_secs").unwrap_or(guard.timeouts().default_secs),
        ),
        "sql" if args.get("timeout_secs").is_none_or(|v| v.is_u64()) => {
            let cap = guard.file().sql.timeout_secs;
            above(
                "statement timeout",
                asked("timeout_secs").map_or(cap, |t| t.min(cap)),
            )
        }
        _ => None,
    }
}

/// A `bash` call whose command the policy holds for a human (an answer may take minutes) runs
/// as a task too, whatever its timeout; not a 2026-07-28 retry that already carries the answer
/// to an input-required result. Its command is judged here and again when it runs.
async fn held(
    server: &PiServer,
    request: &CallToolRequestParams,
    args: &JsonObject,
) -> Option<String> {
    if request.name != "bash"
        || request.request_state.is_some()
        || request.input_responses.is_some()
    {
        return None;
    }
    let params: BashParams =
        serde_json::from_value(serde_json::Value::Object(args.clone())).ok()?;
    let judged = bash::judge(&server.tools, &params).await.ok()?;
    (judged.verdict.decision == Decision::Ask)
        .then(|| "the policy holds its command for a human's approval".to_string())
}

/// True when this request speaks 2026-07-28 (or later) and declared the tasks extension in its
/// `_meta` capabilities. SEP-2663 extends the 2026-07-28 revision; a 2025-11-25 session that
/// lists the extension gets plain results, as before: the MCP Inspector advertises it by default
/// on legacy sessions too ("harmless on legacy, extensions ignored") and could not read a task.
pub fn client_declared(context: &RequestContext<RoleServer>) -> bool {
    let modern = context
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
    modern
        && context
            .client_capabilities()
            .is_some_and(|c| c.supports_tasks())
}

impl Tasks {
    /// Starts `request` as a task when the client declared the extension and the call is a
    /// long one; `None` runs it inline.
    pub async fn maybe_start(
        &self,
        server: &PiServer,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Option<CreateTaskResult> {
        if !client_declared(context) {
            return None;
        }
        let args = request.arguments.clone().unwrap_or_default();
        let why = match why_task(&server.tools.guard, &request.name, &args) {
            Some(why) => why,
            None => held(server, request, &args).await?,
        };
        let call = Call {
            server: server.clone(),
            tool: request.name.to_string(),
            args,
            peer: context.peer.clone(),
            progress: context.meta.get_progress_token(),
            elicits: context
                .client_capabilities()
                .is_some_and(|c| c.elicitation.is_some()),
        };
        let options = TaskOptions::new()
            .with_ttl_ms(TASK_TTL_MS)
            .with_poll_interval_ms(POLL_INTERVAL_MS)
            .with_status_message(format!("running `{}`: {why}", call.tool));
        let audit = server.audit.clone();
        let (tool, client) = (call.tool.clone(), client_name(&call.peer));
        let task = self
            .manager
            .spawn(options, move |ctx| Box::pin(call.run(ctx)));
        record(
            &audit,
            &task.task_id,
            &tool,
            &client,
            "created",
            &format!("runs as a task: {why}"),
        );
        Some(CreateTaskResult::new(task))
    }

    /// `tasks/get`.
    pub fn get(&self, task_id: &str) -> Result<GetTaskResult, ErrorData> {
        self.manager.get_task(task_id).map(GetTaskResult::new)
    }

    /// `tasks/update`: the answers to a task's input requests (an approval).
    pub fn update(
        &self,
        audit: &AuditLog,
        task_id: &str,
        responses: impl IntoIterator<Item = (String, serde_json::Value)>,
        client: &str,
    ) -> Result<(), ErrorData> {
        let keys: Vec<(String, serde_json::Value)> = responses.into_iter().collect();
        let named: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        let outcome = format!("answered input request(s): {}", named.join(", "));
        self.manager.update_task(task_id, keys)?;
        record(audit, task_id, "", client, "update", &outcome);
        Ok(())
    }

    /// `tasks/cancel`: the running call is dropped (its `bash` process group killed, its query's
    /// connection closed) and the task settles as `cancelled`. A finished task stays as it was.
    pub fn cancel(&self, audit: &AuditLog, task_id: &str, client: &str) -> Result<(), ErrorData> {
        self.manager.cancel_task(task_id)?;
        record(
            audit,
            task_id,
            "",
            client,
            "cancel",
            "the client asked to cancel",
        );
        Ok(())
    }
}

/// One tool call running as a task.
struct Call {
    server: PiServer,
    tool: String,
    args: JsonObject,
    peer: Peer<RoleServer>,
    progress: Option<rmcp::model::ProgressToken>,
    elicits: bool,
}

impl Call {
    async fn run(self, ctx: TaskContext) -> Result<CallToolResult, TaskExit> {
        let started = Instant::now();
        let client = client_name(&self.peer);
        let here = InTask {
            task: ctx.clone(),
            elicits: self.elicits,
            audit: self.server.audit.clone(),
        };
        let call = CURRENT.scope(
            here,
            // In a task a human is asked through the task (see [`ask_in_task`]), which the
            // in-call approver does when it finds itself in one; never by an input-required
            // result, which only a `tools/call` response can carry.
            super::tool_calls::call(
                &self.server,
                &self.tool,
                self.args.clone(),
                self.peer.clone(),
                self.progress.clone(),
                AskVia::InCall,
            ),
        );
        // Dropping `call` on cancellation is what stops the work: the bash runner's process
        // group guard kills every process of the command, a query's connection is closed.
        let (exit, step, outcome) = tokio::select! {
            biased;
            _ = ctx.cancelled() => (
                Err(TaskExit::Cancelled),
                "cancelled",
                format!("stopped after {} ms; nothing more runs", started.elapsed().as_millis()),
            ),
            done = call => match done.and_then(complete) {
                Ok(result) => {
                    let how = if result.is_error == Some(true) { "with a tool error" } else { "ok" };
                    let outcome = format!("{how} after {} ms", started.elapsed().as_millis());
                    (Ok(result), "completed", outcome)
                }
                Err(e) => {
                    let outcome = format!("protocol error: {}", e.message);
                    (Err(TaskExit::Error(e)), "failed", outcome)
                }
            },
        };
        record(
            &self.server.audit,
            ctx.task_id(),
            &self.tool,
            &client,
            step,
            &outcome,
        );
        exit
    }
}

/// The final result of a call run with [`AskVia::InCall`] (which never answers otherwise).
fn complete(response: CallToolResponse) -> Result<CallToolResult, ErrorData> {
    match response {
        CallToolResponse::Complete(result) => Ok(result),
        other => Err(ErrorData::internal_error(
            format!("a task's call answered with {other:?} instead of a result"),
            None,
        )),
    }
}

/// Asks for a human's approval from inside a task: the task turns `input_required` with the
/// question in `inputRequests` under [`APPROVAL_INPUT_KEY`], and the client's `tasks/update`
/// answers it (`{"action": "accept", "content": {"approve": true}}` runs the command).
pub async fn ask_in_task(here: &InTask, request: &ApprovalRequest) -> Approval {
    if !here.elicits {
        return Approval::Unavailable(
            "the MCP client does not support elicitation, so no one can be asked".into(),
        );
    }
    let task = &here.task;
    let Ok(schema) = ElicitationSchema::from_type::<ApprovalForm>() else {
        return Approval::Unavailable("the approval form could not be built".into());
    };
    let params = ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: approval_message(request, None),
        requested_schema: schema,
    };
    let waiting = format!("waiting for a human to approve: {}", request.command);
    task.set_status_message(&waiting);
    record(
        &here.audit,
        task.task_id(),
        &request.tool,
        "",
        "input_required",
        &waiting,
    );
    let asked = InputRequest::Elicitation(ElicitRequest::new(params));
    let answer = match tokio::time::timeout(
        super::approval::APPROVAL_TIMEOUT,
        task.request_input(APPROVAL_INPUT_KEY, asked),
    )
    .await
    {
        Err(_) => return Approval::Declined("no one answered in time".into()),
        Ok(Err(TaskExit::Cancelled)) => return Approval::Declined("the task was cancelled".into()),
        Ok(Err(TaskExit::Error(e))) => {
            return Approval::Unavailable(format!("asking the user failed: {}", e.message));
        }
        Ok(Ok(answer)) => answer,
    };
    task.set_status_message(format!("answered; running: {}", request.command));
    let action = answer.get("action").and_then(|a| a.as_str());
    let approve = answer
        .get("content")
        .and_then(|c| c.get("approve"))
        .and_then(|a| a.as_bool());
    match (action, approve) {
        (Some("accept"), Some(true)) => Approval::Approved,
        (Some("decline"), _) => Approval::Declined("the user declined".into()),
        (Some("cancel"), _) => Approval::Declined("the user dismissed the request".into()),
        _ => Approval::Declined("the user did not approve it".into()),
    }
}

/// The client's name from `initialize`, for the audit log (`unknown` when stateless).
pub fn client_name(peer: &Peer<RoleServer>) -> String {
    peer.peer_info()
        .map(|i| i.client_info.name.clone())
        .unwrap_or_else(|| "unknown".into())
}

/// One lifecycle step of a task in the audit log.
fn record(audit: &AuditLog, task_id: &str, tool: &str, client: &str, step: &str, outcome: &str) {
    let mut arguments = serde_json::Map::new();
    arguments.insert("task_id".into(), task_id.into());
    if !tool.is_empty() {
        arguments.insert("tool".into(), tool.into());
    }
    audit.record(AuditEntry {
        id: 0,
        ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        tool: TASK_AUDIT_TOOL.into(),
        arguments: serde_json::Value::Object(arguments),
        decision: step.into(),
        risk: 0,
        reasons: serde_json::Value::Array(Vec::new()),
        duration_ms: 0,
        outcome: redact::text(outcome),
        client: client.into(),
        redactions: 0,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(policy: &str) -> Guard {
        let file = crate::guard::policy::PolicyFile::parse(policy, "p.json").expect("policy");
        Guard::new(file, "p.json").expect("guard")
    }

    fn args(v: serde_json::Value) -> JsonObject {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn long_calls_are_tasks_and_short_ones_are_not() {
        let g = guard(r#"{"task_after_secs": 30, "timeouts": {"default_secs": 120}}"#);
        let bash = |v| why_task(&g, "bash", &args(v));
        assert!(bash(serde_json::json!({"command": "make"})).is_some());
        assert!(bash(serde_json::json!({"command": "ls", "timeout_secs": 30})).is_none());
        let why = bash(serde_json::json!({"command": "x", "timeout_secs": 31})).unwrap();
        assert!(
            why.contains("31 s") && why.contains("task_after_secs (30 s)"),
            "{why}"
        );
        // Bad arguments run inline, where the tool explains them.
        assert!(bash(serde_json::json!({"command": "x", "timeout_secs": "long"})).is_none());
        assert!(why_task(&g, "ghost", &args(serde_json::json!({}))).is_some());
        assert!(why_task(&g, "read", &args(serde_json::json!({"path": "a"}))).is_none());
    }

    #[test]
    fn sql_is_a_task_only_above_the_threshold_and_within_its_cap() {
        let g = guard(r#"{"task_after_secs": 10, "sql": {"timeout_secs": 60}}"#);
        let sql = |v| why_task(&g, "sql", &args(v));
        assert!(sql(serde_json::json!({"query": "select 1", "timeout_secs": 5})).is_none());
        assert!(sql(serde_json::json!({"query": "select 1"})).is_some());
        let why = sql(serde_json::json!({"query": "select 1", "timeout_secs": 900})).unwrap();
        assert!(why.contains("(60 s)"), "capped at the policy's: {why}");
        let g = guard(r#"{"task_after_secs": 60, "sql": {"timeout_secs": 60}}"#);
        assert!(why_task(&g, "sql", &args(serde_json::json!({"query": "select 1"}))).is_none());
    }

    #[test]
    fn a_zero_threshold_is_refused_with_the_fix() {
        let file = crate::guard::policy::PolicyFile::parse(r#"{"task_after_secs": 0}"#, "p.json")
            .expect("parses");
        let Err(err) = Guard::new(file, "p.json") else {
            panic!("task_after_secs 0 was accepted");
        };
        let err = err.to_string();
        assert!(
            err.contains("task_after_secs") && err.contains("at least 1"),
            "{err}"
        );
        let err = crate::guard::policy::PolicyFile::parse(r#"{"task_after_secs": -5}"#, "p.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("task_after_secs"), "{err}");
    }
}
