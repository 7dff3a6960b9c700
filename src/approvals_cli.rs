//! `pi-mcp approvals`: list, show, approve and deny queued commands. Approving a shell command
//! re-checks it against the policy in force first: a command that policy denies is not
//! approved but marked denied (by `policy`), said plainly, and audited as not run, so the
//! queue, the audit log and what finally runs tell one story. Every decision is written to
//! the audit log, and so is every expiry noticed on the way. Commands and labels are printed
//! with their control and format characters escaped (`display::terminal`): a command cannot
//! paint itself on the operator's terminal as another.

use std::path::PathBuf;
use std::process::ExitCode;

use pi_mcp::app::Globals;
use pi_mcp::display::{json_for_terminal, terminal};
use pi_mcp::store::approvals;
use pi_mcp::store::{AuditLog, Store};
use pi_mcp::tools::answer::{Answer, Answerer};

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
                println!(
                    "{}",
                    json_for_terminal(&serde_json::to_string_pretty(&all)?)
                );
            } else if all.is_empty() {
                println!("(no approvals)");
            } else {
                for a in &all {
                    println!(
                        "{}  {:<8} risk {:>3}  {}  {}{}",
                        a.id,
                        a.status,
                        a.risk,
                        a.created_at,
                        terminal(&a.command),
                        a.requested_by
                            .as_deref()
                            .map(|by| format!("  (asked by {})", terminal(by)))
                            .unwrap_or_default()
                    );
                }
            }
        }
        ApprovalsCommand::Show { id } => match approvals::get(store, id).await? {
            Some(a) => println!("{}", json_for_terminal(&serde_json::to_string_pretty(&a)?)),
            None => anyhow::bail!("no approval `{id}`; `pi-mcp approvals list` shows them"),
        },
        ApprovalsCommand::Approve { id, reason } => {
            return answer(globals, store, log, id, true, reason.as_deref()).await;
        }
        ApprovalsCommand::Deny { id, reason } => {
            return answer(globals, store, log, id, false, reason.as_deref()).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The user deciding.
fn decider() -> String {
    std::env::var("USER").unwrap_or_else(|_| CLIENT.into())
}

/// Approves or denies `id` through the same answer code as the console: a shell command the
/// policy in force now denies is not approved but marked denied, said plainly, exit 1.
async fn answer(
    globals: &Globals,
    store: &Store,
    log: &AuditLog,
    id: &str,
    approve: bool,
    reason: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let ws = globals.workspace()?;
    let guard = globals.runtime_guard(&globals.trusted_paths(&ws)?)?;
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    let answerer = Answerer {
        store,
        audit: log,
        guard: &guard,
        roots: ws.roots(),
        home: &home,
        client: CLIENT,
    };
    match answerer.answer(id, approve, &decider(), reason).await? {
        Answer::Decided(a) => {
            println!("{} `{}`: {}", a.status, a.id, terminal(&a.command));
            Ok(ExitCode::SUCCESS)
        }
        Answer::RefusedByPolicy(a, summary) => {
            eprintln!(
                "pi-mcp: approval `{}` NOT approved: the policy in force now denies `{}`: {summary}. It is \
                 marked denied and will not run.",
                a.id,
                terminal(&a.command)
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
