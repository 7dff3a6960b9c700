//! The approval queue behind `ask` decisions when no one can approve on the spot (the MCP
//! client cannot elicit): the command becomes a pending approval in the state store, is
//! announced on Slack (`SLACK_WEBHOOK_URL`), and the call waits up to the policy's
//! `approval_wait_secs` for a human to run `pi-mcp approvals approve ID`. An approved command
//! runs once, for its exact text and directory, when the model calls `bash` with it again.

use std::time::Duration;

use crate::guard::Verdict;
use crate::store::Store;
use crate::store::approvals::{self, Approval};

/// How often a waiting call looks for a decision.
const POLL: Duration = Duration::from_millis(250);
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
}

/// What became of a command that needed approval.
#[derive(Debug, Clone, PartialEq)]
pub enum Queued {
    /// Approved (now, or before this call): run it; the approval is used up.
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
        }
    }

    /// Adds Approve/Deny buttons to announcements (when Slack interactivity is set up).
    pub fn with_slack_buttons(mut self, on: bool) -> Self {
        self.slack_buttons = on;
        self
    }

    /// Uses an earlier approval of exactly this command in this directory, if there is one.
    pub async fn approved_before(&self, tool: &str, command: &str, cwd: &str) -> Option<String> {
        match approvals::consume(&self.store, tool, command, cwd).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!("approvals: {e}");
                None
            }
        }
    }

    /// Queues the command, announces it, and waits for a decision up to the configured time.
    pub async fn request(
        &self,
        tool: &str,
        command: &str,
        cwd: &str,
        verdict: &Verdict,
    ) -> Result<Queued, String> {
        let reasons = serde_json::to_value(&verdict.reasons).unwrap_or_default();
        let approval = approvals::create(
            &self.store,
            tool,
            command,
            cwd,
            i64::from(verdict.risk),
            &reasons,
            self.ttl,
        )
        .await
        .map_err(|e| format!("could not queue the approval: {e}"))?;
        self.announce(&approval, verdict).await;
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            let current = approvals::get(&self.store, &approval.id)
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| approval.clone());
            match current.status.as_str() {
                "approved" => {
                    if let Some(id) = self.approved_before(tool, command, cwd).await {
                        return Ok(Queued::Approved(id));
                    }
                }
                "denied" => return Ok(Queued::Denied(current)),
                "expired" => return Ok(Queued::Pending(current)),
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(Queued::Pending(current));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Posts the request to the Slack incoming webhook, if one is configured; a failure is logged.
    async fn announce(&self, a: &Approval, verdict: &Verdict) {
        let Some(url) = &self.slack_webhook else {
            return;
        };
        let reasons: Vec<String> = verdict
            .deciding_reasons()
            .map(|r| format!("• [{}] {}", r.rule, r.message))
            .collect();
        let text = format!(
            "pi-mcp needs approval `{}` (risk {}/100) to run in `{}`:\n```{}```\n{}\nApprove: `pi-mcp approvals approve {}` · Deny: `pi-mcp approvals deny {}` (expires {})",
            a.id,
            a.risk,
            a.cwd,
            a.command,
            reasons.join("\n"),
            a.id,
            a.id,
            a.expires_at
        );
        let mut blocks =
            vec![serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})];
        if self.slack_buttons {
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
