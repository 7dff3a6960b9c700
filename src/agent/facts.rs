//! What a run did, as pi-mcp itself saw it rather than as the model tells it: the read-only
//! calls that ran, the changes that ran (with their exit status), the calls that were refused,
//! the approvals waiting for a human, and whether a check ran after the last change and what
//! it returned. Reports (the heartbeat's summaries, the transcript) open with these facts and
//! only then quote the model's answer, so a run that announces a fix it did not make, or did
//! not verify, is labelled as such in its first line.

use serde::Serialize;

use super::mcp_client::CallOutcome;
use super::verify::{self, Effect};
use crate::guard::Decision;

/// Characters of a call's arguments (or command) quoted in the facts.
pub const WHAT_CHARS: usize = 200;
/// Characters of the verification's result quoted in the facts.
pub const RESULT_CHARS: usize = 300;
/// Calls listed by name in a report line before "and N more".
pub const LISTED_CALLS: usize = 8;

/// The facts of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunFacts {
    /// Read-only calls (read-only tools, observation-only `bash`) that ran.
    pub checks: Vec<CallFact>,
    /// Calls that may have changed state and reached the tool (also those that failed).
    pub changes: Vec<CallFact>,
    /// Calls that neither check nor change (`notify`, `ghost`).
    pub other_calls: Vec<CallFact>,
    /// Changes held for a human: not run.
    pub pending_approvals: Vec<PendingApproval>,
    /// Calls refused (by the policy, a human, or the run's dry-run rule): not run.
    pub refused: Vec<Refusal>,
    pub verification: Verification,
}

/// One call that reached its tool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallFact {
    pub step: u32,
    pub tool: String,
    /// A `bash` call's command, else its arguments as JSON (clipped).
    pub what: String,
    pub ok: bool,
    /// `exit 0`, `exit 1`, `timeout`, `ok` or `error`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// A change waiting for a human.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingApproval {
    pub id: String,
    pub tool: String,
    pub command: String,
    pub expires_at: String,
    /// What a human runs to approve it (the model then calls it again and it runs once).
    pub approve: String,
}

impl PendingApproval {
    pub fn new(id: &str, tool: &str, command: &str, expires_at: &str) -> PendingApproval {
        PendingApproval {
            id: id.to_string(),
            tool: tool.to_string(),
            command: command.to_string(),
            expires_at: expires_at.to_string(),
            approve: format!("pi-mcp approvals approve {id}"),
        }
    }
}

/// A call that was refused and did not run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    pub tool: String,
    pub what: String,
    /// `policy`, `human` or `dry_run`.
    pub by: String,
    /// The rules that refused it (for `policy`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// The approval a human (or the policy) denied, if there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
}

/// Whether a check ran after the last change that ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Verification {
    pub status: VerificationStatus,
    /// The last check after the last change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CallFact>,
    /// The start of what that check returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    /// No change ran, so there was nothing to verify.
    #[default]
    NoChange,
    /// A change ran and no check ran after it (or only in parallel with it).
    Missing,
    /// The last check after the last change succeeded.
    Passed,
    /// The last check after the last change failed.
    Failed,
}

/// How one call of a turn ended, as the ledger hears of it.
#[derive(Debug)]
pub enum Noted<'a> {
    /// It reached its tool; `outcome` carries what pi-mcp's server said about it.
    Ran {
        effect: Effect,
        outcome: &'a CallOutcome,
    },
    /// Held back by the run itself (its approval gate, its dry-run rule): did not run.
    Held(Held),
    /// Answered without running anything (cached, duplicate, invalid, unknown tool).
    Nothing,
}

/// A call the run held back before it reached its tool.
#[derive(Debug, Clone, PartialEq)]
pub enum Held {
    /// Waiting for a human's approval.
    Pending(PendingApproval),
    /// Refused (a human denied its approval, the dry-run rule).
    Refused(Refusal),
}

/// One call of a turn: its tool, what it asked for, and how it ended.
#[derive(Debug)]
pub struct TurnCall<'a> {
    pub tool: &'a str,
    pub what: String,
    pub noted: Noted<'a>,
}

/// The first line of a report and its machine-readable status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Headline {
    /// `not_fixed`, `unverified`, `verified` or `no_change`.
    pub status: &'static str,
    pub text: String,
}

impl RunFacts {
    /// Notes one turn's calls in the order asked; `ordered`: they ran one after another (a
    /// check in the same parallel turn as a change may have finished before it).
    pub fn record_turn(&mut self, step: u32, calls: Vec<TurnCall<'_>>, ordered: bool) {
        let changed_in_parallel = !ordered
            && calls.iter().any(|c| {
                matches!(&c.noted, Noted::Ran { effect: Effect::Change, outcome } if reached(outcome))
            });
        for call in calls {
            match call.noted {
                Noted::Ran { effect, outcome } => self.ran(
                    step,
                    call.tool,
                    call.what,
                    effect,
                    outcome,
                    changed_in_parallel,
                ),
                Noted::Held(Held::Pending(p)) => self.pending_approvals.push(p),
                Noted::Held(Held::Refused(r)) => self.refused.push(r),
                Noted::Nothing => {}
            }
        }
        if changed_in_parallel {
            self.verification = Verification {
                status: VerificationStatus::Missing,
                check: None,
                result: None,
            };
        }
    }

    fn ran(
        &mut self,
        step: u32,
        tool: &str,
        what: String,
        effect: Effect,
        outcome: &CallOutcome,
        changed_in_parallel: bool,
    ) {
        let meta = outcome.meta.as_ref();
        // Refused by the server's guard, or held there for a human: it did not run.
        if let Some(m) = meta.filter(|m| !m.ran && m.decision != Decision::Allow) {
            match &m.approval {
                Some(a) if a.status == "pending" => self
                    .pending_approvals
                    .push(PendingApproval::new(&a.id, tool, &what, &a.expires_at)),
                approval => self.refused.push(Refusal {
                    tool: tool.to_string(),
                    what,
                    // The guard's own deny, or an approval a human denied.
                    by: if m.decision == Decision::Deny {
                        "policy"
                    } else {
                        "human"
                    }
                    .to_string(),
                    rules: m.rules.clone(),
                    approval: approval.as_ref().map(|a| a.id.clone()),
                }),
            }
            return;
        }
        let exit_code = meta.and_then(|m| m.exit_code);
        let status = match (meta, exit_code) {
            (Some(m), _) if m.timed_out => "timeout".to_string(),
            (_, Some(c)) => format!("exit {c}"),
            _ if outcome.is_error => "error".to_string(),
            _ => "ok".to_string(),
        };
        let fact = CallFact {
            step,
            tool: tool.to_string(),
            what,
            ok: !outcome.is_error,
            status,
            exit_code,
        };
        match effect {
            Effect::Check => {
                if !changed_in_parallel && self.verification.status != VerificationStatus::NoChange
                {
                    self.verification = Verification {
                        status: if fact.ok {
                            VerificationStatus::Passed
                        } else {
                            VerificationStatus::Failed
                        },
                        check: Some(fact.clone()),
                        result: Some(crate::tools::notify::clip(
                            outcome.text.trim(),
                            RESULT_CHARS,
                        )),
                    };
                }
                self.checks.push(fact);
            }
            Effect::Change => {
                if reached(outcome) {
                    self.verification = Verification {
                        status: VerificationStatus::Missing,
                        check: None,
                        result: None,
                    };
                }
                self.changes.push(fact);
            }
            Effect::Neutral => self.other_calls.push(fact),
        }
    }

    /// The report's first line: what is true of the run whatever its answer says, and when
    /// the answer claims a fix that the facts do not show, that too.
    pub fn headline(&self, answer: &str) -> Headline {
        let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let failed: Vec<&CallFact> = self.changes.iter().filter(|c| !c.ok).collect();
        let (status, mut text) = if !self.pending_approvals.is_empty() {
            let ids: Vec<&str> = self
                .pending_approvals
                .iter()
                .map(|p| p.id.as_str())
                .collect();
            (
                "not_fixed",
                format!(
                    "Not fixed: {} await{} approval ({})",
                    count(self.pending_approvals.len(), "change"),
                    if self.pending_approvals.len() == 1 {
                        "s"
                    } else {
                        ""
                    },
                    ids.join(", ")
                ),
            )
        } else if self.changes.is_empty() {
            (
                "no_change",
                format!(
                    "No change made: {}{}",
                    count(self.checks.len(), "read-only call"),
                    match self.refused.len() {
                        0 => String::new(),
                        n => format!(", {} refused", count(n, "call")),
                    }
                ),
            )
        } else {
            match self.verification.status {
                VerificationStatus::Passed if failed.is_empty() => (
                    "verified",
                    format!(
                        "Changed and verified: {} ran; the check after the last one passed",
                        count(self.changes.len(), "change")
                    ),
                ),
                VerificationStatus::Failed => (
                    "not_fixed",
                    "Not fixed: the check after the last change failed".to_string(),
                ),
                _ if !failed.is_empty() => (
                    "not_fixed",
                    format!(
                        "Not fixed: {} of {} failed (`{}`: {})",
                        failed.len(),
                        count(self.changes.len(), "change"),
                        failed[0].what,
                        failed[0].status
                    ),
                ),
                _ => (
                    "unverified",
                    format!(
                        "Unverified: {} ran and no check ran after the last one",
                        count(self.changes.len(), "change")
                    ),
                ),
            }
        };
        if status != "verified" && verify::claims_fix(answer) {
            text.push_str("; the model's answer claims a fix");
        }
        Headline { status, text }
    }

    /// The facts as report lines (plain text that reads well in Slack, email and Markdown).
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.push(format!(
            "Read-only calls: {}{}",
            self.checks.len(),
            listed(&self.checks)
        ));
        if self.changes.is_empty() {
            out.push("Changes that ran: none".to_string());
        } else {
            out.push(format!("Changes that ran: {}", self.changes.len()));
            for c in &self.changes {
                out.push(format!("- `{}` ({}): {}", c.what, c.tool, c.status));
            }
        }
        if !self.other_calls.is_empty() {
            out.push(format!(
                "Other calls: {}{}",
                self.other_calls.len(),
                listed(&self.other_calls)
            ));
        }
        if self.pending_approvals.is_empty() {
            out.push("Waiting for approval: none".to_string());
        } else {
            out.push(format!(
                "Waiting for approval: {} (not run)",
                self.pending_approvals.len()
            ));
            for p in &self.pending_approvals {
                out.push(format!(
                    "- {}: `{}` ({}); approve with `{}` (expires {})",
                    p.id, p.command, p.tool, p.approve, p.expires_at
                ));
            }
        }
        if !self.refused.is_empty() {
            out.push(format!("Refused (not run): {}", self.refused.len()));
            for r in &self.refused {
                let rules = if r.rules.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", r.rules.join(", "))
                };
                let approval = r
                    .approval
                    .as_deref()
                    .map(|a| format!(", approval {a}"))
                    .unwrap_or_default();
                out.push(format!(
                    "- `{}` ({}): refused by the {}{rules}{approval}",
                    r.what,
                    r.tool,
                    match r.by.as_str() {
                        "dry_run" => "dry-run rule",
                        other => other,
                    }
                ));
            }
        }
        out.push(
            match (&self.verification.status, &self.verification.check) {
                (VerificationStatus::NoChange, _) => {
                    "Verification: not applicable (no change ran)".to_string()
                }
                (VerificationStatus::Missing, _) | (_, None) => {
                    "Verification: none (no check ran after the last change)".to_string()
                }
                (status, Some(c)) => format!(
                    "Verification: {} `{}` ({}, {}) returned: {}",
                    if *status == VerificationStatus::Passed {
                        "passed:"
                    } else {
                        "FAILED:"
                    },
                    c.what,
                    c.tool,
                    c.status,
                    self.verification
                        .result
                        .as_deref()
                        .unwrap_or_default()
                        .replace('\n', " / ")
                ),
            },
        );
        out
    }
}

/// Whether a call reached its tool and may have done its work (a call without pi-mcp's facts,
/// from an external server, is taken to have).
fn reached(outcome: &CallOutcome) -> bool {
    outcome.meta.as_ref().is_none_or(|m| m.ran)
}

/// ` (bash: df -h; read: {...}; and 3 more)` for a report line.
fn listed(calls: &[CallFact]) -> String {
    if calls.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = calls
        .iter()
        .take(LISTED_CALLS)
        .map(|c| format!("{}: {}", c.tool, c.what))
        .collect();
    let more = match calls.len().saturating_sub(LISTED_CALLS) {
        0 => String::new(),
        n => format!("; and {n} more"),
    };
    format!(" ({}{more})", shown.join("; "))
}

/// What a call asked for, for the facts: a `bash` command as is, else the arguments as JSON.
pub fn what_of(tool_remote_name: &str, args: &serde_json::Value) -> String {
    let text = match args.get("command").and_then(serde_json::Value::as_str) {
        Some(c) if tool_remote_name == "bash" => c.to_string(),
        _ => args.to_string(),
    };
    crate::tools::notify::clip(&text, WHAT_CHARS)
}

#[cfg(test)]
mod tests;
