//! Human approval through MCP elicitation under 2025-11-25: when the client declared the
//! capability, the server asks in the middle of the call (a server-to-client request), the user
//! sees the command, its risk and the reasons, and approves or declines. Otherwise the approval
//! queue takes over (store, Slack, CLI). Under 2026-07-28 the same question travels as an
//! input-required result instead: see [`super::mrtr`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rmcp::service::ElicitationError;
use rmcp::{Peer, RoleServer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::tools::{Approval, ApprovalRequest, Approver};

/// How long a user has to answer an approval request.
pub const APPROVAL_TIMEOUT: Duration = Duration::from_secs(300);

/// The form the user fills in.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalForm {
    /// Run this command?
    pub approve: bool,
}

rmcp::elicit_safe!(ApprovalForm);

/// What the user is asked: the command, where it runs, its risk and the rules that want a
/// human (and the approval id, when the request has one already).
pub fn approval_message(request: &ApprovalRequest, approval_id: Option<&str>) -> String {
    let reasons: Vec<String> = request
        .verdict
        .deciding_reasons()
        .map(|r| format!("- [{}] {}", r.rule, r.message))
        .collect();
    let id = approval_id
        .map(|id| format!(" (approval {id})"))
        .unwrap_or_default();
    format!(
        "pi-mcp wants to run this {} command{id} (risk {}/100) in {}:\n\n{}\n\nWhy it needs approval:\n{}\n\nApprove it?",
        request.tool,
        request.verdict.risk,
        request.cwd.display(),
        request.command,
        reasons.join("\n")
    )
}

/// Asks the connected MCP client's user with an in-call elicitation request (2025-11-25).
pub struct ElicitationApprover {
    peer: Peer<RoleServer>,
}

impl ElicitationApprover {
    pub fn new(peer: Peer<RoleServer>) -> Self {
        ElicitationApprover { peer }
    }
}

impl Approver for ElicitationApprover {
    fn approve<'a>(
        &'a self,
        request: &'a ApprovalRequest,
    ) -> Pin<Box<dyn Future<Output = Approval> + Send + 'a>> {
        Box::pin(async move {
            // A call running as a task asks through the task (`input_required`, `tasks/update`).
            if let Some(task) = super::tasks::current() {
                return super::tasks::ask_in_task(&task, request).await;
            }
            let can_elicit = self
                .peer
                .peer_info()
                .is_some_and(|i| i.capabilities.elicitation.is_some());
            if !can_elicit {
                return Approval::Unavailable(
                    "the MCP client does not support elicitation, so no one can be asked".into(),
                );
            }
            let message = approval_message(request, None);
            match self
                .peer
                .elicit_with_timeout::<ApprovalForm>(message, Some(APPROVAL_TIMEOUT))
                .await
            {
                Ok(Some(form)) if form.approve => Approval::Approved,
                Ok(_) => Approval::Declined("the user did not approve it".into()),
                Err(ElicitationError::UserDeclined) => {
                    Approval::Declined("the user declined".into())
                }
                Err(ElicitationError::UserCancelled) => {
                    Approval::Declined("the user dismissed the request".into())
                }
                Err(ElicitationError::CapabilityNotSupported) => {
                    Approval::Unavailable("the MCP client does not support elicitation".into())
                }
                Err(e) => Approval::Unavailable(format!("asking the user failed: {e}")),
            }
        })
    }
}
