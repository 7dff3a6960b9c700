//! Tool definitions (names, descriptions, JSON Schemas from the parameter types) and the
//! dispatch from an MCP `tools/call` to `tools::*`, with argument errors reported to the model
//! and every call written to the audit log.

use std::time::Instant;

use base64::Engine;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, JsonObject, ProgressToken, ResourceContents,
    Tool, ToolAnnotations,
};
use rmcp::{ErrorData, Peer, RoleServer};
use serde::de::DeserializeOwned;

use super::PiServer;
use super::approval::ElicitationApprover;
use super::call_meta::{self, ApprovalRef, CallMeta};
use super::ghost_tool::{self, GHOST_DESCRIPTION, GhostParams};
use super::mrtr::{self, AskVia, MrtrApprover, Outcome, QueueOnly};
use crate::guard::{Decision, Verdict};
use crate::redact::{self, Redactor};
use crate::store::AuditEntry;
use crate::tools::ToolError;
use crate::tools::bash::{self, BashParams};
use crate::tools::cloudwatch::{self, CloudWatchParams};
use crate::tools::edit::{self, EditParams};
use crate::tools::notify::tool::{self as notify, NotifyParams};
use crate::tools::read::{self, ReadOutput, ReadParams};
use crate::tools::sql::{self, SqlParams};

const READ_DESCRIPTION: &str = "Read a file inside the workspace. Text comes back as lines (at most 2000 lines or 50 KiB; \
use offset/limit to page, the reply says how to continue). PNG, JPEG, GIF and WebP files come back as images. \
Protected files (.env, keys, credentials) are never readable.";
const EDIT_DESCRIPTION: &str = "Edit a file inside the workspace by exact text replacement: old_text must occur exactly \
once (add surrounding lines to make it unique). `edits` applies several replacements at once, all or nothing. \
old_text \"\" with a path that does not exist creates the file. Keeps BOM, line endings and permissions; \
returns a unified diff.";
const BASH_DESCRIPTION: &str = "Run a shell command with `bash -c` inside the workspace. A policy judges the command \
first: a refused command is not run and the reply names the rule (take another approach); a risky one needs a \
human's approval. Output (stdout and stderr merged) keeps the last 2000 lines / 50 KiB; when cut, the whole \
output is saved under .pi-mcp/ and named. Non-zero exit is an error. The default timeout is 120 s and kills \
all child processes.";

const NOTIFY_DESCRIPTION: &str = "Send a notification on Slack, email or a webhook configured on the server \
(SLACK_WEBHOOK_URL; SMTP_URL + ALERT_EMAIL_FROM/ALERT_EMAIL_TO; ALERT_WEBHOOK_URL). The policy allow-lists \
channels and destinations; a refused one is not sent. Attachments are workspace files (email attaches them). \
Transient failures are retried; the reply names the channel, the destination and the attempts.";

const SQL_DESCRIPTION: &str = "Run one SQL statement on DATABASE_URL or a database named in the policy \
(PostgreSQL or SQLite; use that dialect). Read-only: one SELECT, WITH ... SELECT, EXPLAIN, SHOW or reading \
PRAGMA per call; writes, side-effecting functions and utility statements are refused (unless the policy \
marks the database writable). Returns a text table plus structured JSON {columns, rows, truncated, \
elapsed_ms}; rows stop at max_rows (default 200). Aggregate in SQL rather than fetching many rows.";

/// The tools this server offers under `guard`'s policy: `sql` loses its read-only annotation
/// when the policy has a writable database.
pub fn definitions_for(guard: &crate::guard::Guard) -> Vec<Tool> {
    let writable = guard.file().sql.any_writable();
    definitions()
        .into_iter()
        .map(|t| {
            if t.name == "sql" && writable {
                t.with_annotations(
                    ToolAnnotations::with_title("Query a database")
                        .read_only(false)
                        .destructive(true),
                )
            } else {
                t
            }
        })
        .collect()
}

const CLOUDWATCH_DESCRIPTION: &str = "Read AWS CloudWatch (read-only): `action` list_metrics (find exact \
names and dimensions), get_metric_data (several metrics at once, one statistic each), get_metric_statistics \
(several statistics of one metric), filter_log_events (search a log group with a filter pattern), \
describe_alarms. Times are ISO-8601 or relative (`now`, `-30m`, `-2h`, `-1d`); the default window is the \
last hour. Returns a compact summary plus the full result as structured JSON. The policy limits which \
namespaces and log groups may be read.";

/// The tools this server offers (annotations as under a policy without writable databases).
pub fn definitions() -> Vec<Tool> {
    let tools = vec![
        Tool::new(
            "read",
            READ_DESCRIPTION,
            super::schemas::input::<ReadParams>(),
        )
        .with_annotations(ToolAnnotations::with_title("Read a file").read_only(true)),
        Tool::new(
            "edit",
            EDIT_DESCRIPTION,
            super::schemas::input::<EditParams>(),
        )
        .with_annotations(
            ToolAnnotations::with_title("Edit a file")
                .read_only(false)
                .destructive(true),
        ),
        Tool::new(
            "bash",
            BASH_DESCRIPTION,
            super::schemas::input::<BashParams>(),
        )
        .with_annotations(
            ToolAnnotations::with_title("Run a guarded shell command")
                .read_only(false)
                .destructive(true),
        ),
        Tool::new(
            "notify",
            NOTIFY_DESCRIPTION,
            super::schemas::input::<NotifyParams>(),
        )
        .with_annotations(
            ToolAnnotations::with_title("Send a notification")
                .read_only(false)
                .destructive(false)
                .open_world(true),
        ),
        Tool::new("sql", SQL_DESCRIPTION, super::schemas::input::<SqlParams>())
            .with_annotations(ToolAnnotations::with_title("Query a database").read_only(true)),
        Tool::new(
            "cloudwatch",
            CLOUDWATCH_DESCRIPTION,
            super::schemas::input::<CloudWatchParams>(),
        )
        .with_annotations(
            ToolAnnotations::with_title("Read AWS CloudWatch metrics, logs and alarms")
                .read_only(true)
                .destructive(false)
                .open_world(true),
        ),
        Tool::new(
            "ghost",
            GHOST_DESCRIPTION,
            super::schemas::input::<GhostParams>(),
        )
        .with_annotations(
            ToolAnnotations::with_title("Run the Data Ghost on a database")
                .read_only(false)
                .destructive(false)
                .idempotent(false),
        ),
    ];
    tools
        .into_iter()
        .map(|t| match super::schemas::output(&t.name) {
            Some(schema) => t.with_raw_output_schema(schema),
            None => t,
        })
        .collect()
}

/// `result` with `value` as its structured content (the type the tool's `outputSchema` is
/// generated from). A value that does not serialize (it cannot happen with these types) turns
/// the result into an error rather than a result without the content its schema promises.
fn with_structured<T: serde::Serialize>(result: CallToolResult, value: &T) -> CallToolResult {
    with_json(result, serde_json::to_value(value))
}

/// [`with_structured`] for a value already turned into JSON (rows moved in, not copied).
fn with_json(
    mut result: CallToolResult,
    value: Result<serde_json::Value, serde_json::Error>,
) -> CallToolResult {
    match value {
        Ok(v) => {
            result.structured_content = Some(v);
            result
        }
        Err(e) => CallToolResult::error(vec![ContentBlock::text(format!(
            "the result could not be encoded as JSON ({e}); retry the call, or narrow it"
        ))]),
    }
}

/// Parses arguments into a tool's parameter type, or explains exactly what is wrong.
fn parse<T: DeserializeOwned>(tool: &str, args: &JsonObject) -> Result<T, String> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            format!("invalid arguments for `{tool}`: {inner}. See the tool's input schema.")
        } else {
            format!("invalid argument `{path}` for `{tool}`: {inner}. See the tool's input schema.")
        }
    })
}

/// Who asks, for the human who answers an approval: the agent run this in-process server
/// serves, or the client's self-declared name (a label any client can choose, marked so).
fn requester(server: &PiServer, peer: &Peer<RoleServer>) -> String {
    if let Some(run) = &server.run {
        return run.clone();
    }
    match peer.peer_info() {
        Some(info) => format!(
            "client {} (self-declared)",
            crate::display::label(&info.client_info.name, 80)
        ),
        None => "an MCP client that gave no name".into(),
    }
}

/// Runs one tool call and audits it; `progress` is the call's progress token, if it has one;
/// `via` is how a human may be asked (in the call, by an input-required result, or not at all).
pub async fn call(
    server: &PiServer,
    name: &str,
    args: JsonObject,
    peer: Peer<RoleServer>,
    progress: Option<ProgressToken>,
    via: AskVia,
) -> Result<CallToolResponse, ErrorData> {
    let started = Instant::now();
    let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let client = peer
        .peer_info()
        .map(|i| i.client_info.name.clone())
        .unwrap_or_else(|| "unknown".into());
    let ctx = &server.tools;
    let mut traffic = None;
    // What the result says about itself in `_meta` (see `call_meta`): a command's exit status
    // and the approval a held command waits as.
    let mut exit: Option<(Option<i32>, bool)> = None;
    let mut approval = None;
    // What an input-required round decided (2026-07-28 clients that elicit).
    let mut round = None;
    // Each tool's future is boxed: this one, which rmcp's per-request task holds and moves,
    // stays small instead of as large as the largest tool's (12 KiB; issue 14).
    let (result, verdict, mut outcome): (CallToolResult, Verdict, String) = match name {
        "read" => match parse::<ReadParams>(name, &args) {
            Err(msg) => invalid(msg),
            Ok(p) => match Box::pin(read::read(ctx, p)).await {
                Ok(ReadOutput::Text(t)) => (
                    CallToolResult::success(vec![ContentBlock::text(t)]),
                    Verdict::allow(),
                    "ok".into(),
                ),
                Ok(ReadOutput::Image { mime, data }) => {
                    let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
                    (
                        CallToolResult::success(vec![ContentBlock::image(b64, mime)]),
                        Verdict::allow(),
                        "ok (image)".into(),
                    )
                }
                Err(e) => failed(e),
            },
        },
        "edit" => match parse::<EditParams>(name, &args) {
            Err(msg) => invalid(msg),
            Ok(p) => match Box::pin(edit::edit(ctx, p)).await {
                Ok(diff) => (
                    CallToolResult::success(vec![ContentBlock::text(diff)]),
                    Verdict::allow(),
                    "ok".into(),
                ),
                Err(e) => failed(e),
            },
        },
        "bash" => match parse::<BashParams>(name, &args) {
            Err(msg) => invalid(msg),
            Ok(p) => {
                let in_call = ElicitationApprover::new(peer.clone());
                let by_input = match &via {
                    AskVia::InputRequired(retry) => Some(MrtrApprover::new(
                        &server.mrtr,
                        &server.audit,
                        retry.clone(),
                    )),
                    _ => None,
                };
                let approver: &dyn crate::tools::Approver = match (&via, &by_input) {
                    (_, Some(m)) => m,
                    (AskVia::Queue, _) => &QueueOnly,
                    _ => &in_call,
                };
                // Only a bash call can queue an approval: the asker is named for it alone.
                let ran = Box::pin(bash::run(ctx, p, approver, &requester(server, &peer))).await;
                round = by_input.and_then(|m| m.take());
                match ran {
                    Ok(r) => {
                        let mut outcome = match (r.timed_out, r.exit_code) {
                            (true, _) => "timeout".to_string(),
                            (false, Some(c)) => format!("exit {c}"),
                            (false, None) => "killed".to_string(),
                        };
                        if let Some(Outcome::Accepted(a)) = &round {
                            mrtr::record_ran(&server.audit, a, &outcome);
                        }
                        if let Some(t) = r.traffic.as_ref().filter(|t| !t.connections.is_empty()) {
                            outcome.push_str(&egress_summary(t));
                        }
                        traffic = r.traffic.clone();
                        exit = Some((r.exit_code, r.timed_out));
                        let content = vec![ContentBlock::text(r.text.clone())];
                        let result = if r.is_error() {
                            CallToolResult::error(content)
                        } else {
                            CallToolResult::success(content)
                        };
                        (result, r.verdict, outcome)
                    }
                    Err(e) => {
                        approval = e.approval.as_deref().map(ApprovalRef::from);
                        failed(e)
                    }
                }
            }
        },
        "notify" => match parse::<NotifyParams>(name, &args) {
            Err(msg) => invalid(msg),
            Ok(p) => match Box::pin(notify::run(ctx, p)).await {
                Ok(d) => (
                    CallToolResult::success(vec![ContentBlock::text(d.to_string())]),
                    Verdict::allow(),
                    format!("delivered ({} attempts)", d.attempts),
                ),
                Err(e) => failed(e),
            },
        },
        "sql" => match parse::<SqlParams>(name, &args) {
            Err(msg) => invalid(msg),
            Ok(p) => match Box::pin(sql::run(ctx, p)).await {
                Ok(out) => {
                    let outcome = format!(
                        "ok: {} rows{}",
                        out.rows.rows.len(),
                        if out.rows.truncated {
                            " (truncated)"
                        } else {
                            ""
                        }
                    );
                    let text = out.text();
                    let verdict = out.verdict.clone();
                    let result = with_json(
                        CallToolResult::success(vec![ContentBlock::text(text)]),
                        out.into_structured().into_value(),
                    );
                    (result, verdict, outcome)
                }
                Err(e) => failed(e),
            },
        },
        "cloudwatch" => match parse::<CloudWatchParams>(name, &args) {
            Err(msg) => invalid(msg),
            Ok(p) => {
                let action = p.action.as_str();
                match Box::pin(cloudwatch::run(ctx, p)).await {
                    Ok(out) => {
                        let result = with_structured(
                            CallToolResult::success(vec![ContentBlock::text(out.text)]),
                            &out.structured,
                        );
                        (result, Verdict::allow(), format!("ok ({action})"))
                    }
                    Err(e) => failed(e),
                }
            }
        },
        "ghost" => match parse::<GhostParams>(name, &args) {
            Err(msg) => invalid(msg),
            Ok(p) => match Box::pin(ghost_tool::run(server, p, peer.clone(), progress)).await {
                Ok(out) => (out.result, out.verdict, out.outcome),
                Err(e) => failed(e),
            },
        },
        other => {
            let names: Vec<String> = definitions()
                .into_iter()
                .map(|t| t.name.to_string())
                .collect();
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool `{other}`; available tools: {}",
                    names.join(", ")
                ),
                None,
            ));
        }
    };
    let mut result = result;
    let answer = match round {
        Some(Outcome::Ask(asked)) => {
            outcome = "input required: the user is asked (MCP 2026-07-28)".into();
            Some(Ok(CallToolResponse::InputRequired(*asked)))
        }
        Some(Outcome::Rejected(e)) => {
            outcome = format!("rejected: {}", e.message);
            Some(Err(e))
        }
        _ => None,
    };
    let ran = match exit {
        Some(_) => true,
        None => verdict.decision == Decision::Allow && result.is_error != Some(true),
    };
    let mut meta = CallMeta::new(&verdict, ran);
    if let Some((code, timed_out)) = exit {
        meta.exit_code = code;
        meta.timed_out = timed_out;
    }
    meta.approval = approval;
    call_meta::attach(&mut result, &meta);
    let redactions = redact_result(&ctx.redactor, &mut result);
    let staged = server.audit.stage(AuditEntry {
        id: 0,
        ts: ts.clone(),
        tool: name.to_string(),
        arguments: redact::json(serde_json::Value::Object(args)),
        decision: verdict.decision.to_string(),
        risk: i64::from(verdict.risk),
        reasons: redact::json(serde_json::to_value(&verdict.reasons).unwrap_or_default()),
        duration_ms: started.elapsed().as_millis() as i64,
        outcome: redact::text(&outcome),
        client: client.clone(),
        redactions: i64::try_from(redactions).unwrap_or(i64::MAX),
    });
    // Each connection the command asked the egress proxy for, under the call's time and client.
    for c in traffic.iter().flat_map(|t| &t.connections) {
        server.audit.record(AuditEntry {
            id: 0,
            ts: ts.clone(),
            tool: EGRESS_AUDIT_TOOL.into(),
            arguments: redact::json(serde_json::to_value(c).unwrap_or_default()),
            decision: if c.allowed { "allow" } else { "deny" }.into(),
            risk: 0,
            reasons: serde_json::Value::Array(Vec::new()),
            duration_ms: 0,
            outcome: match (&c.error, c.allowed) {
                (None, _) => format!("{} bytes out, {} in", c.bytes_sent, c.bytes_received),
                (Some(e), true) => format!("failed: {}", redact::text(e)),
                (Some(e), false) => format!("refused: {e}"),
            },
            client: client.clone(),
            redactions: 0,
        });
    }
    // The audit rows are in the journal once this returns (calls answered together share one
    // write): a crash from then on does not lose them. Without a working journal, or with
    // `audit_before_answer`, the answer leaves only once they are committed to the store
    // (calls answered together share one commit).
    staged.journaled().await;
    if ctx.guard.file().audit_before_answer || !server.audit.crash_safe() {
        server.audit.flush().await;
    }
    answer.unwrap_or(Ok(CallToolResponse::Complete(result)))
}

/// Masks the secrets in a tool result, the one place every result passes on its way out (to
/// an MCP client over stdio or HTTP, and to the agent, which calls this server over MCP too):
/// text content, embedded text resources and structured content, error messages included. When
/// something was masked, the result ends with a `[N secrets redacted]` text line. Returns N.
pub fn redact_result(redactor: &Redactor, result: &mut CallToolResult) -> usize {
    let mut count = 0;
    let mut mask = |text: &mut String| {
        let (out, n) = redactor.text(text);
        if n > 0 {
            *text = out.into_owned();
            count += n;
        }
    };
    for block in &mut result.content {
        match block {
            ContentBlock::Text(t) => mask(&mut t.text),
            ContentBlock::Resource(r) => {
                if let ResourceContents::TextResourceContents { text, .. } = &mut r.resource {
                    mask(text);
                }
            }
            // Images, audio and links carry no text to search.
            _ => {}
        }
    }
    if let Some(structured) = &mut result.structured_content {
        count += redactor.json(structured);
    }
    if count > 0 {
        result
            .content
            .push(ContentBlock::text(redact::count_line(count)));
    }
    count
}

/// The audit log's tool name for a connection a `bash` child asked the egress proxy for.
pub const EGRESS_AUDIT_TOOL: &str = "bash.egress";

/// `; network: 2 allowed, 1 refused (evil.example:443)` for a call's outcome.
fn egress_summary(t: &crate::sandbox::proxy::Traffic) -> String {
    let allowed = t.connections.iter().filter(|c| c.allowed).count();
    let refused = t.refused();
    let mut s = format!(
        "; network: {allowed} allowed, {} refused",
        t.connections.len() - allowed
    );
    if !refused.is_empty() {
        s.push_str(&format!(" ({})", refused.join(", ")));
    }
    s
}

fn invalid(msg: String) -> (CallToolResult, Verdict, String) {
    let outcome = format!("error: {msg}");
    (
        CallToolResult::error(vec![ContentBlock::text(msg)]),
        Verdict::allow(),
        outcome,
    )
}

fn failed(e: ToolError) -> (CallToolResult, Verdict, String) {
    let (verdict, outcome) = match e.verdict {
        Some(v) if v.decision != Decision::Allow => {
            let o = if v.decision == Decision::Deny {
                "denied"
            } else {
                "not approved"
            };
            (v, o.to_string())
        }
        Some(v) => (v, format!("error: {}", e.message)),
        None => (Verdict::allow(), format!("error: {}", e.message)),
    };
    (
        CallToolResult::error(vec![ContentBlock::text(e.message)]),
        verdict,
        outcome,
    )
}
