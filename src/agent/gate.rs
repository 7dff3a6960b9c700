//! The approval gate of runs that may not change anything on their own (`remediate: false`,
//! the heartbeat check): a call that may change state waits as an approval for a human. The
//! strictest decision wins here as everywhere: a `bash` command the policy denies is refused
//! (the server refuses and audits it), never queued; one the policy allows or asks about is
//! queued once, carrying the policy's own risk and reasons beside this rule's, under the same
//! key the `bash` tool uses, so one human approval lets it run exactly once.

use serde_json::{Map, Value};

use super::facts::{Held, PendingApproval, Refusal};
use super::mcp_client::AgentTool;
use crate::app::App;
use crate::guard::{Decision, PathContext, Verdict};
use crate::tools::approvals::{ApprovalQueue, Queued};

/// The rule name approvals of `remediate: false` runs carry.
pub const REMEDIATE_FALSE_RULE: &str = "agent-remediate-false";

/// What this rule says to the approval's reader.
const REMEDIATE_FALSE_REASON: &str =
    "this autonomous run may not change state (remediate: false) without a human's approval";

/// What becomes of a state-changing call.
#[derive(Debug)]
pub enum Gate {
    /// It may reach its server (which still judges, asks and audits it): approved earlier.
    Pass,
    /// The policy denies it: it goes to the server, which refuses and audits it; nothing runs
    /// and nothing is queued.
    Refused,
    /// Held here, not run: the answer for the model and what the run's facts note.
    Held(String, Held),
}

/// Gates one state-changing call of a run without remediation.
/// `requested_by` names the run on the approvals it queues.
pub async fn remediate_false(
    app: &App,
    tool: &AgentTool,
    args: &Map<String, Value>,
    requested_by: &str,
) -> Gate {
    let Some(queue) = app.tools.approvals.as_deref() else {
        let text = format!(
            "`{}` changes state and this run may not change anything without a human's approval, but no \
             approval queue is configured. Investigate with read-only tools and report what should be done.",
            tool.spec.name
        );
        return Gate::Held(
            text,
            Held::Refused(refusal(tool, describe(tool, args), "human", None)),
        );
    };
    if tool.local && tool.remote_name == "bash" {
        return bash(app, queue, tool, args, requested_by).await;
    }
    let command = describe(tool, args);
    let cwd = app.tools.workspace.primary().display().to_string();
    let label = format!("agent:{}", tool.spec.name);
    if queue
        .approved_before(&label, &command, &cwd)
        .await
        .is_some()
    {
        return Gate::Pass;
    }
    let verdict = Verdict::single(Decision::Ask, REMEDIATE_FALSE_RULE, REMEDIATE_FALSE_REASON);
    let queued = queue
        .request(requested_by, &label, &command, &cwd, &verdict)
        .await;
    held(tool, &command, queued)
}

/// A `bash` call: judged by the policy in force first, in the directory it would run in.
async fn bash(
    app: &App,
    queue: &ApprovalQueue,
    tool: &AgentTool,
    args: &Map<String, Value>,
    requested_by: &str,
) -> Gate {
    let Some(command) = args.get("command").and_then(Value::as_str) else {
        // Malformed: the server says what is wrong and runs nothing.
        return Gate::Refused;
    };
    let ctx = &app.tools;
    let Ok(cwd) = ctx
        .workspace
        .resolve_dir(args.get("cwd").and_then(Value::as_str))
    else {
        return Gate::Refused;
    };
    let paths = PathContext {
        cwd: cwd.clone(),
        roots: ctx.workspace.roots().to_vec(),
        home: ctx.home.clone(),
    };
    // Judging may consult osv-scanner (a subprocess): off the async thread.
    let verdict = {
        let (guard, command) = (ctx.guard.clone(), command.to_string());
        match tokio::task::spawn_blocking(move || guard.judge_command(&command, &paths)).await {
            Ok(v) => v,
            Err(_) => return Gate::Refused,
        }
    };
    if verdict.decision == Decision::Deny {
        return Gate::Refused;
    }
    let cwd = cwd.display().to_string();
    // Approved earlier: when the policy itself asks, the `bash` tool uses the approval up as
    // it runs the command; when it allows, nothing there would, so it is used up here.
    let use_here = verdict.decision == Decision::Allow;
    if queue
        .approved_waiting("bash", command, &cwd)
        .await
        .is_some()
    {
        return pass(queue, command, &cwd, use_here).await;
    }
    let verdict = verdict.merge(Verdict::single(
        Decision::Ask,
        REMEDIATE_FALSE_RULE,
        REMEDIATE_FALSE_REASON,
    ));
    match queue
        .request_kept(requested_by, "bash", command, &cwd, &verdict)
        .await
    {
        Ok(Queued::Approved(_)) => pass(queue, command, &cwd, use_here).await,
        other => held(tool, command, other),
    }
}

/// Lets an approved `bash` command through, using its approval up first when `use_here`.
async fn pass(queue: &ApprovalQueue, command: &str, cwd: &str, use_here: bool) -> Gate {
    if use_here && queue.approved_before("bash", command, cwd).await.is_none() {
        // Used up by a racing call meanwhile: it ran once already.
        return Gate::Held(
            "The approval of this command was used by another call just now; it was NOT run again."
                .to_string(),
            Held::Refused(Refusal {
                tool: "bash".into(),
                what: command.to_string(),
                by: "human".into(),
                rules: Vec::new(),
                approval: None,
            }),
        );
    }
    Gate::Pass
}

/// The answer for a call that was queued (or could not be).
fn held(tool: &AgentTool, command: &str, queued: Result<Queued, String>) -> Gate {
    let name = &tool.spec.name;
    match queued {
        Ok(Queued::Approved(_)) => Gate::Pass,
        Ok(Queued::Denied(a)) => Gate::Held(
            format!(
                "{} denied approval `{}`; `{name}` was NOT run{}. Take another approach.",
                match a.decided_by.as_deref() {
                    Some(crate::store::approvals::POLICY) => "The policy in force",
                    _ => "A human",
                },
                a.id,
                a.note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default(),
            ),
            Held::Refused(refusal(tool, command.to_string(), "human", Some(a.id))),
        ),
        Ok(Queued::Pending(a)) => Gate::Held(
            format!(
                "This run may not change state on its own (remediate: false), so `{name}` was NOT run. It waits as \
                 approval `{}` (expires {}). Continue with read-only tools and observation-only shell commands, and put \
                 the proposed change in your report.",
                a.id, a.expires_at
            ),
            Held::Pending(PendingApproval::new(&a.id, name, command, &a.expires_at)),
        ),
        Err(e) => Gate::Held(
            format!("`{name}` was NOT run: {e}"),
            Held::Refused(refusal(tool, command.to_string(), "human", None)),
        ),
    }
}

fn refusal(tool: &AgentTool, what: String, by: &str, approval: Option<String>) -> Refusal {
    Refusal {
        tool: tool.spec.name.clone(),
        what,
        by: by.to_string(),
        rules: Vec::new(),
        approval,
    }
}

/// What the approval shows: a `bash` command as is, other calls as their arguments (keys
/// sorted, so the same call is the same approval).
fn describe(tool: &AgentTool, args: &Map<String, Value>) -> String {
    match args.get("command").and_then(Value::as_str) {
        Some(c) if tool.remote_name == "bash" => c.to_string(),
        _ => super::calls::canonical(&Value::Object(args.clone())).to_string(),
    }
}
