//! A human's answer to a pending approval, the same from every face that takes one (the
//! `pi-mcp approvals` CLI, the web console): approving a shell command re-checks it against
//! the policy in force first, and a command that policy now denies is not approved but marked
//! denied (by `policy`) and audited as not run; otherwise the decision is recorded in the
//! store and the audit log with who made it. A `bash` call waiting on the approval sees the
//! new status in the store and is released exactly once (the store's conditional update).

use std::path::{Path, PathBuf};

use crate::guard::{Decision, Guard, PathContext};
use crate::store::approvals::{self, Approval, DecideError};
use crate::store::{AuditLog, Store};

/// What became of an answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Approved or denied as asked.
    Decided(Approval),
    /// Asked to approve, but the policy in force denies the command: marked denied by
    /// `policy`, with the verdict's summary.
    RefusedByPolicy(Approval, String),
}

/// Who answers, and with what to judge a command again.
pub struct Answerer<'a> {
    pub store: &'a Store,
    pub audit: &'a AuditLog,
    /// The policy in force, as the tools apply it.
    pub guard: &'a Guard,
    /// The workspace roots commands are judged within.
    pub roots: &'a [PathBuf],
    pub home: &'a Path,
    /// The audit log's client (`cli`, `console`).
    pub client: &'a str,
}

impl Answerer<'_> {
    /// Approves (`approve`) or denies approval `id` as `by`, with an optional reason.
    pub async fn answer(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        reason: Option<&str>,
    ) -> Result<Answer, DecideError> {
        if approve {
            let current = approvals::get(self.store, id)
                .await?
                .ok_or_else(|| DecideError::NotFound(id.to_string()))?;
            if current.status == "pending" && matches!(current.tool.as_str(), "bash" | "agent:bash")
            {
                let paths = PathContext {
                    cwd: PathBuf::from(&current.cwd),
                    roots: self.roots.to_vec(),
                    home: self.home.to_path_buf(),
                };
                let verdict = self.guard.judge_command(&current.command, &paths);
                if verdict.decision == Decision::Deny {
                    let summary = verdict.summary();
                    let note = format!("the policy in force denies it: {summary}");
                    let refused = approvals::refuse(self.store, &current.id, &note).await?;
                    self.audit.record(approvals::refusal_audit_entry(
                        &refused,
                        &summary,
                        self.client,
                    ));
                    return Ok(Answer::RefusedByPolicy(refused, summary));
                }
            }
        }
        let a = approvals::decide(self.store, id, approve, by, reason).await?;
        self.audit.record(approvals::decision_audit_entry(
            &a,
            approve,
            by,
            reason,
            self.client,
        ));
        Ok(Answer::Decided(a))
    }
}
