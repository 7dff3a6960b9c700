//! The `notify` tool: the model sends a message on a configured channel. The channel is judged
//! before anything else (so an unknown one is a policy denial, audited as such), attachments
//! must be workspace files the policy does not protect, and the [`Notifier`] does the rest.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Channel, Delivery, Message, Notifier};
use crate::guard::Decision;
use crate::severity::Severity;
use crate::tools::{ToolContext, ToolError};

/// Most attachments one call may send.
pub const MAX_ATTACHMENTS: usize = 10;

/// Parameters of `notify`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyParams {
    /// Where to send: `slack`, `email` or `webhook` (each must be configured on the server and
    /// allowed by its policy).
    #[schemars(with = "Channel")]
    pub channel: String,
    /// Subject line (email subject, Slack header, webhook `subject`).
    #[serde(default)]
    pub subject: Option<String>,
    /// The message itself.
    pub text: String,
    /// How serious it is: info, warning or critical.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Workspace files to send along (email attaches them; Slack and webhooks list their names).
    #[serde(default)]
    pub attachments: Vec<String>,
}

/// Sends one notification for the model.
pub async fn run(ctx: &ToolContext, p: NotifyParams) -> Result<Delivery, ToolError> {
    let verdict = ctx.guard.judge_notify_channel(&p.channel);
    if verdict.decision != Decision::Allow {
        return Err(ToolError::denied(verdict.summary(), verdict));
    }
    let channel: Channel = p.channel.parse().map_err(ToolError::new)?;
    if p.text.trim().is_empty() {
        return Err(ToolError::new("`text` is empty: give the message to send"));
    }
    if p.attachments.len() > MAX_ATTACHMENTS {
        return Err(ToolError::new(format!(
            "{} attachments given; at most {MAX_ATTACHMENTS} per notification",
            p.attachments.len()
        )));
    }
    let mut attachments = Vec::with_capacity(p.attachments.len());
    for a in &p.attachments {
        let path = ctx.workspace.resolve(a, false, ctx.guard.protected())?;
        ctx.check_access("notify", &path)?;
        attachments.push(path);
    }
    let msg = Message {
        channel,
        subject: p.subject.filter(|s| !s.trim().is_empty()),
        text: p.text,
        severity: p.severity,
        attachments,
        data: None,
    };
    Notifier::from_env(ctx.guard.clone())
        .send(&msg)
        .await
        .map_err(|e| ToolError {
            message: e.message,
            verdict: e.verdict,
            approval: None,
        })
}
