//! The approval queue behind `ask` decisions when no one can approve on the spot (the MCP
//! client cannot elicit): the command becomes a pending approval in the state store, is
//! announced on Slack (`SLACK_WEBHOOK_URL`), and the call waits up to the policy's
//! `approval_wait_secs` for a human to run `pi-mcp approvals approve ID`. An approved command
//! runs once, for its exact text and directory, when the model calls `bash` with it again.
//! Each step (queued, answered on the spot, used, expired) is audited under the approval's id;
//! a human's decision is audited where it is made (the CLI, the Slack endpoint).

use std::time::Duration;

use crate::guard::Verdict;
use crate::store::approvals::{self, Approval, Subject};
use crate::store::{AuditLog, Store};

/// The audit log's `client` for steps the server takes itself.
const SERVER: &str = "pi-mcp";
/// The audit log's `client` for answers given through MCP elicitation.
const ELICITATION: &str = "elicitation";

/// How often a waiting call looks for a decision.
const POLL: Duration = Duration::from_millis(250);
/// The longest command an announcement shows (a Slack message holds a few thousand characters).
const SLACK_COMMAND_CHARS: usize = 2_500;
/// How long the Slack announcement may take.
const SLACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Pending approvals in the state store, with their announcement channel.
#[derive(Debug, Clone)]
pub struct ApprovalQueue {
    store: Store,
    ttl: Duration,
    wait: Duration,
    slack_webhook: Option<String>,
    /// Add Approve/Deny buttons (the HTTP server answers Slack's interactive requests).
    slack_buttons: bool,
    /// Where each step of an approval's life is recorded.
    audit: Option<AuditLog>,
}

/// One request for approval: who asked, and the exact call (its key in the queue).
#[derive(Debug, Clone, Copy)]
struct Ask<'a> {
    requested_by: &'a str,
    tool: &'a str,
    command: &'a str,
    cwd: &'a str,
}

/// What became of a command that needed approval.
#[derive(Debug, Clone, PartialEq)]
pub enum Queued {
    /// Approved (now, or before this call): run it; the approval is used up, except with
    /// [`ApprovalQueue::request_kept`].
    Approved(String),
    /// Denied by a human while the call waited.
    Denied(Approval),
    /// Still pending after the wait.
    Pending(Approval),
}

impl ApprovalQueue {
    pub fn new(store: Store, ttl: Duration, wait: Duration, slack_webhook: Option<String>) -> Self {
        ApprovalQueue {
            store,
            ttl,
            wait,
            slack_webhook: slack_webhook.filter(|u| !u.is_empty()),
            slack_buttons: false,
            audit: None,
        }
    }

    /// Records every step of an approval's life in `audit`.
    pub fn with_audit(mut self, audit: AuditLog) -> Self {
        self.audit = Some(audit);
        self
    }

    fn record(&self, subject: Subject<'_>, decision: &str, outcome: &str, client: &str) {
        if let Some(audit) = &self.audit {
            audit.record(approvals::audit_step(subject, decision, outcome, client));
        }
    }

    /// Marks (and audits) the approvals that expired since the last look.
    async fn notice_expired(&self) {
        if let Some(audit) = &self.audit {
            approvals::audit_expired(&self.store, audit, SERVER).await;
        }
    }

    /// Audits an answer given on the spot (MCP elicitation) under a fresh approval id: `true`
    /// when the user accepted, in which case the command is used (runs) right away. Returns
    /// the id.
    pub fn answered_on_the_spot(
        &self,
        command: &str,
        verdict: &Verdict,
        accepted: bool,
        why: &str,
    ) -> String {
        let id = approvals::new_id();
        let reasons = serde_json::to_value(&verdict.reasons).unwrap_or_default();
        let subject = Subject {
            id: &id,
            command,
            risk: i64::from(verdict.risk),
            reasons: &reasons,
        };
        if accepted {
            self.record(
                subject,
                "allow",
                "approved by the user (MCP elicitation)",
                ELICITATION,
            );
            self.record(subject, "allow", "used: the command runs now", SERVER);
        } else {
            let outcome = format!("denied by the user (MCP elicitation): {why}");
            self.record(subject, "deny", &outcome, ELICITATION);
        }
        id
    }

    /// Adds Approve/Deny buttons to announcements (when Slack interactivity is set up).
    pub fn with_slack_buttons(mut self, on: bool) -> Self {
        self.slack_buttons = on;
        self
    }

    /// Uses an earlier approval of exactly this command in this directory, if there is one.
    /// The approval is used up (and audited as used).
    pub async fn approved_before(&self, tool: &str, command: &str, cwd: &str) -> Option<String> {
        self.notice_expired().await;
        let id = match approvals::consume(&self.store, tool, command, cwd).await {
            Ok(id) => id?,
            Err(e) => {
                tracing::error!("approvals: {e}");
                return None;
            }
        };
        match approvals::get(&self.store, &id).await {
            Ok(Some(a)) => self.record(a.subject(), "allow", "used: the command runs now", SERVER),
            Ok(None) => {}
            Err(e) => tracing::error!("approvals: {e}"),
        }
        Some(id)
    }

    /// Queues the command, announces it, and waits for a decision up to the configured time.
    /// An approval given meanwhile is used up ([`Queued::Approved`]: run it now).
    /// `requested_by` names who asked, for the human who answers (stored with the approval).
    pub async fn request(
        &self,
        requested_by: &str,
        tool: &str,
        command: &str,
        cwd: &str,
        verdict: &Verdict,
    ) -> Result<Queued, String> {
        let ask = Ask {
            requested_by,
            tool,
            command,
            cwd,
        };
        self.request_then(ask, verdict, true).await
    }

    /// Like [`ApprovalQueue::request`], but an approval given meanwhile is left for the call
    /// that runs the command to use up (the `bash` tool, when the policy itself asks).
    pub async fn request_kept(
        &self,
        requested_by: &str,
        tool: &str,
        command: &str,
        cwd: &str,
        verdict: &Verdict,
    ) -> Result<Queued, String> {
        let ask = Ask {
            requested_by,
            tool,
            command,
            cwd,
        };
        self.request_then(ask, verdict, false).await
    }

    /// An approved, unused approval of exactly this command in this directory, left unused.
    pub async fn approved_waiting(&self, tool: &str, command: &str, cwd: &str) -> Option<String> {
        self.notice_expired().await;
        match approvals::find_approved(&self.store, tool, command, cwd).await {
            Ok(a) => a.map(|a| a.id),
            Err(e) => {
                tracing::error!("approvals: {e}");
                None
            }
        }
    }

    /// Voids an approved, unused approval of a command the policy in force now denies (marked
    /// `denied` by the policy and audited as not run); returns it.
    pub async fn void_approved(
        &self,
        tool: &str,
        command: &str,
        cwd: &str,
        verdict: &Verdict,
    ) -> Option<Approval> {
        let approved = match approvals::find_approved(&self.store, tool, command, cwd).await {
            Ok(a) => a?,
            Err(e) => {
                tracing::error!("approvals: {e}");
                return None;
            }
        };
        let summary = verdict.summary();
        let note = format!("the policy in force denies it: {summary}");
        match approvals::refuse(&self.store, &approved.id, &note).await {
            Ok(a) => {
                if let Some(audit) = &self.audit {
                    audit.record(approvals::refusal_audit_entry(&a, &summary, SERVER));
                }
                Some(a)
            }
            Err(e) => {
                tracing::error!("approvals: {e}");
                None
            }
        }
    }

    async fn request_then(
        &self,
        ask: Ask<'_>,
        verdict: &Verdict,
        use_up: bool,
    ) -> Result<Queued, String> {
        let Ask {
            tool, command, cwd, ..
        } = ask;
        // The same request already waiting (a model retrying a refused call): wait on it again
        // rather than queue and announce a second one.
        let existing = approvals::find_pending(&self.store, tool, command, cwd)
            .await
            .ok()
            .flatten();
        let approval = match existing {
            Some(a) => {
                if let Err(e) = approvals::add_requester(&self.store, &a, ask.requested_by).await {
                    tracing::warn!("approval {}: could not add who else asked: {e}", a.id);
                }
                a
            }
            None => self.queue_new(ask, verdict).await?,
        };
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let current = approvals::get(&self.store, &approval.id)
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| approval.clone());
            match current.status.as_str() {
                "approved" if !use_up => return Ok(Queued::Approved(current.id)),
                "approved" => {
                    if let Some(id) = self.approved_before(tool, command, cwd).await {
                        return Ok(Queued::Approved(id));
                    }
                }
                "denied" => return Ok(Queued::Denied(current)),
                "expired" => {
                    self.notice_expired().await;
                    return Ok(Queued::Pending(current));
                }
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Queued::Pending(current));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stores a new pending approval, audits it and announces it on Slack.
    async fn queue_new(&self, ask: Ask<'_>, verdict: &Verdict) -> Result<Approval, String> {
        let reasons = serde_json::to_value(&verdict.reasons).unwrap_or_default();
        let new = approvals::NewApproval {
            requested_by: ask.requested_by,
            tool: ask.tool,
            command: ask.command,
            cwd: ask.cwd,
            risk: i64::from(verdict.risk),
            reasons: &reasons,
        };
        let approval = approvals::create(&self.store, new, self.ttl)
            .await
            .map_err(|e| format!("could not queue the approval: {e}"))?;
        let outcome = format!(
            "pending: waiting for a human (`pi-mcp approvals approve {}`{}), expires {}",
            approval.id,
            if self.slack_webhook.is_some() {
                ", announced on Slack"
            } else {
                ""
            },
            approval.expires_at
        );
        self.record(approval.subject(), "ask", &outcome, SERVER);
        self.announce(&approval, verdict).await;
        Ok(approval)
    }

    /// Posts the request to the Slack incoming webhook, if one is configured; a failure is logged.
    /// The caller's words (command, directory, who asked, the reasons quoting them) cannot
    /// format the message: the command is a preformatted rich-text element (literal text), the
    /// rest is escaped for mrkdwn. Secrets in the command are masked for Slack, invisible and
    /// direction-changing characters shown as escapes, a long command cut; when any of that
    /// changed it, the message has no buttons: what a human approves must be what they saw.
    async fn announce(&self, a: &Approval, verdict: &Verdict) {
        let Some(url) = &self.slack_webhook else {
            return;
        };
        let slack = crate::display::slack;
        let reasons: Vec<String> = verdict
            .deciding_reasons()
            .map(|r| {
                slack(&crate::redact::text(&format!(
                    "• [{}] {}",
                    r.rule, r.message
                )))
            })
            .collect();
        let for_slack = crate::redact::text(&a.command);
        let masked = for_slack != a.command;
        let (shown, disguised) = crate::display::visible(&for_slack);
        let long = shown.chars().count() > SLACK_COMMAND_CHARS;
        let shown = if long {
            let head: String = shown.chars().take(SLACK_COMMAND_CHARS).collect();
            format!("{head}\n… (cut here; the rest is in the console)")
        } else {
            shown
        };
        let text = format!("pi-mcp needs approval `{}` (risk {}/100)", a.id, a.risk);
        let short = |s: &str| s.chars().take(300).collect::<String>();
        let head = format!(
            "{text}, asked by {}, to run in `{}`:",
            slack(&short(
                a.requested_by.as_deref().unwrap_or("an unnamed caller")
            )),
            slack(&short(&a.cwd)),
        );
        let why_elsewhere = if disguised {
            Some(
                "The command contains invisible or direction-changing characters (shown as escapes)",
            )
        } else if masked {
            Some("Part of the command looks like a secret and is masked here")
        } else if long {
            Some("The command is too long to show here whole")
        } else {
            None
        };
        let how = if let Some(why) = why_elsewhere {
            format!(
                "{why}, so decide where it is shown in full: the console, or `pi-mcp approvals show {}` \
                 then `pi-mcp approvals approve {}` / `deny {}` (expires {})",
                a.id, a.id, a.id, a.expires_at
            )
        } else {
            format!(
                "Approve: `pi-mcp approvals approve {}` · Deny: `pi-mcp approvals deny {}` (expires {})",
                a.id, a.id, a.expires_at
            )
        };
        let section = |text: String| serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": text}});
        let mut blocks = vec![
            section(head),
            serde_json::json!({"type": "rich_text", "elements": [{"type": "rich_text_preformatted", "elements": [{"type": "text", "text": shown}]}]}),
            section(format!("{}\n{how}", reasons.join("\n"))),
        ];
        if self.slack_buttons && why_elsewhere.is_none() {
            let button = |label: &str, verb: &str, style: &str| serde_json::json!({"type": "button", "text": {"type": "plain_text", "text": label}, "style": style, "action_id": verb, "value": format!("{verb}:{}", a.id)});
            blocks.push(serde_json::json!({"type": "actions", "elements": [button("Approve", "approve", "primary"), button("Deny", "deny", "danger")]}));
        }
        let body = serde_json::json!({ "text": text, "blocks": blocks });
        let sent = reqwest::Client::new()
            .post(url)
            .timeout(SLACK_TIMEOUT)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!("approval {}: Slack answered {}", a.id, r.status()),
            Err(e) => tracing::warn!("approval {}: could not reach Slack: {e}", a.id),
        }
    }
}
