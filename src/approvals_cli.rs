//! `pi-mcp approvals`: list, show, approve and deny queued commands. Approving a shell command
//! re-checks it against the policy in force first: a command that policy denies is not
//! approved but marked denied (by `policy`), said plainly, and audited as not run, so the
//! queue, the audit log and what finally runs tell one story. Every decision is written to
//! the audit log, and so is every expiry noticed on the way.

use std::path::PathBuf;
use std::process::ExitCode;

use pi_mcp::app::Globals;
use pi_mcp::guard::{Decision, PathContext, Verdict};
use pi_mcp::store::approvals::{self, Approval};
use pi_mcp::store::{AuditLog, Store};

use crate::cli::ApprovalsCommand;

/// The audit log's client for decisions made here.
const CLIENT: &str = "cli";

/// Runs `pi-mcp approvals ...`.
pub async fn run(globals: &Globals, cmd: &ApprovalsCommand) -> anyhow::Result<ExitCode> {
    let ws = globals.workspace()?;
    let store = globals.open_store(&ws).await?;
    let log = AuditLog::start(store.clone());
    approvals::audit_expired(&store, &log, CLIENT).await;
    let result = inner(globals, &store, cmd, &log).await;
    log.flush().await;
    result
}

async fn inner(
    globals: &Globals,
    store: &Store,
    cmd: &ApprovalsCommand,
    log: &AuditLog,
) -> anyhow::Result<ExitCode> {
    match cmd {
        ApprovalsCommand::List { json, limit } => {
            let all = approvals::list(store, (*limit).max(0)).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                println!("(no approvals)");
            } else {
                for a in &all {
                    println!(
                        "{}  {:<8} risk {:>3}  {}  {}",
                        a.id,
                        a.status,
                        a.risk,
                        a.created_at,
                        a.command.replace('\n', "\\n")
                    );
                }
            }
        }
        ApprovalsCommand::Show { id } => match approvals::get(store, id).await? {
            Some(a) => println!("{}", serde_json::to_string_pretty(&a)?),
            None => anyhow::bail!("no approval `{id}`; `pi-mcp approvals list` shows them"),
        },
        ApprovalsCommand::Approve { id, reason } => {
            let current = approvals::get(store, id)
                .await?
                .ok_or_else(|| approvals::DecideError::NotFound(id.clone()))?;
            if current.status == "pending"
                && let Some(verdict) = recheck(globals, &current)?
                && verdict.decision == Decision::Deny
            {
                return refuse(store, log, &current, &verdict).await;
            }
            let by = decider();
            let a = approvals::decide(store, id, true, &by, reason.as_deref()).await?;
            log.record(approvals::decision_audit_entry(
                &a,
                true,
                &by,
                reason.as_deref(),
                CLIENT,
            ));
            println!("{} `{}`: {}", a.status, a.id, a.command);
        }
        ApprovalsCommand::Deny { id, reason } => {
            let by = decider();
            let a = approvals::decide(store, id, false, &by, reason.as_deref()).await?;
            log.record(approvals::decision_audit_entry(
                &a,
                false,
                &by,
                reason.as_deref(),
                CLIENT,
            ));
            println!("{} `{}`: {}", a.status, a.id, a.command);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The user deciding.
fn decider() -> String {
    std::env::var("USER").unwrap_or_else(|_| CLIENT.into())
}

/// The policy in force's verdict on a queued shell command, judged in the directory it would
/// run in; `None` for approvals of other tools (their calls pass the server's checks as they run).
fn recheck(globals: &Globals, a: &Approval) -> anyhow::Result<Option<Verdict>> {
    if a.tool != "bash" && a.tool != "agent:bash" {
        return Ok(None);
    }
    let ws = globals.workspace()?;
    let guard = globals.runtime_guard(&globals.trusted_paths(&ws)?)?;
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    let paths = PathContext {
        cwd: PathBuf::from(&a.cwd),
        roots: ws.roots().to_vec(),
        home,
    };
    Ok(Some(guard.judge_command(&a.command, &paths)))
}

/// Marks a pending approval denied by the policy in force, audits that it will not run, and
/// says so; exits 1 (nothing was approved).
async fn refuse(
    store: &Store,
    log: &AuditLog,
    a: &Approval,
    verdict: &Verdict,
) -> anyhow::Result<ExitCode> {
    let summary = verdict.summary();
    let note = format!("the policy in force denies it: {summary}");
    let refused = approvals::refuse(store, &a.id, &note).await?;
    log.record(approvals::refusal_audit_entry(&refused, &summary, CLIENT));
    eprintln!(
        "pi-mcp: approval `{}` NOT approved: the policy in force now denies `{}`: {summary}. It is \
         marked denied and will not run.",
        a.id, a.command
    );
    Ok(ExitCode::FAILURE)
}
