//! The guarded tools as plain async Rust: typed parameters in, typed results out, no MCP types.
//! Every tool asks the guard before it touches anything.

pub mod answer;
pub mod approvals;
pub mod bash;
pub mod cloudwatch;
pub mod edit;
pub mod notify;
pub mod osv_scanner;
pub mod osv_update;
pub mod output;
pub mod read;
pub mod sql;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use crate::guard::{Guard, PathError, Verdict, Workspace};
use crate::redact::Redactor;

/// The home directory `~` means: `$HOME`, else `/root`.
pub fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

/// What every tool needs: where it may work and the policy that judges it.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub workspace: Workspace,
    pub guard: Arc<Guard>,
    /// The home directory `~` means in commands.
    pub home: PathBuf,
    /// Where `ask` decisions wait for a human when the client cannot be asked.
    pub approvals: Option<Arc<approvals::ApprovalQueue>>,
    /// Masks secrets in every tool result (applied where results leave the tools, in
    /// `server::tool_calls`), built once from this process's secrets.
    pub redactor: Arc<Redactor>,
    /// What bounds a `bash` child (Landlock, namespaces, the egress proxy).
    pub sandbox: Arc<crate::sandbox::Sandbox>,
}

impl ToolContext {
    /// The tools for `workspace` under `guard`, with the sandbox the guard's policy describes.
    pub fn new(workspace: Workspace, guard: Arc<Guard>) -> Self {
        let home = home_dir();
        let sandbox = crate::sandbox::Sandbox::new(
            guard.file(),
            guard.hidden(),
            workspace.roots(),
            &home,
            &[],
        );
        ToolContext::with_sandbox(workspace, guard, home, Arc::new(sandbox))
    }

    /// The tools with a sandbox built beforehand (the app builds it from the parsed policy, to
    /// check its reach before the rules are compiled) for home directory `home`.
    pub fn with_sandbox(
        workspace: Workspace,
        guard: Arc<Guard>,
        home: PathBuf,
        sandbox: Arc<crate::sandbox::Sandbox>,
    ) -> Self {
        let redactor = Arc::new(Redactor::from_environment(
            &|name| guard.env_denied(name),
            &home,
        ));
        ToolContext {
            workspace: workspace.with_home(home.clone()),
            guard,
            home,
            approvals: None,
            redactor,
            sandbox,
        }
    }

    /// Lets `ask` decisions wait in `queue` when no one can be asked on the spot.
    pub fn with_approvals(mut self, queue: approvals::ApprovalQueue) -> Self {
        self.approvals = Some(Arc::new(queue));
        self
    }

    /// Refuses a file tool's access that the policy's Rego files do not allow.
    pub fn check_access(&self, tool: &str, path: &std::path::Path) -> Result<(), ToolError> {
        let verdict = self
            .guard
            .judge_access(tool, path, self.workspace.primary());
        if verdict.decision == crate::guard::Decision::Allow {
            return Ok(());
        }
        let reasons: Vec<String> = verdict
            .deciding_reasons()
            .map(|r| format!("[{}] {}", r.rule, r.message))
            .collect();
        Err(ToolError::denied(
            format!(
                "The policy does not allow `{tool}` on `{}`: {}",
                path.display(),
                reasons.join("; ")
            ),
            verdict,
        ))
    }

    /// The `.pi-mcp/` scratch directory of the primary root (bash's saved output), created on
    /// demand. Commands may write it; pi-mcp's own state lives elsewhere (`store::location`).
    pub fn scratch_dir(&self) -> std::io::Result<PathBuf> {
        let dir = self.workspace.primary().join(".pi-mcp");
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }
}

/// A failed call, worded for the model so it can fix the call.
#[derive(Debug, Clone)]
pub struct ToolError {
    pub message: String,
    /// Set when the guard refused the call (the audit log records the verdict).
    pub verdict: Option<Verdict>,
    /// The approval the call waits as, or that a human (or the policy) denied.
    pub approval: Option<Box<crate::store::approvals::Approval>>,
}

impl ToolError {
    pub fn new(message: impl Into<String>) -> Self {
        ToolError {
            message: message.into(),
            verdict: None,
            approval: None,
        }
    }

    pub fn denied(message: impl Into<String>, verdict: Verdict) -> Self {
        ToolError {
            message: message.into(),
            verdict: Some(verdict),
            approval: None,
        }
    }

    /// Names the approval the call waits as (or that was denied).
    pub fn with_approval(mut self, approval: crate::store::approvals::Approval) -> Self {
        self.approval = Some(Box::new(approval));
        self
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<PathError> for ToolError {
    fn from(e: PathError) -> Self {
        let verdict = match &e {
            PathError::Outside(..)
            | PathError::OutsideHome { .. }
            | PathError::LinkOutside { .. } => Some(Verdict::single(
                crate::guard::Decision::Deny,
                "workspace",
                e.to_string(),
            )),
            PathError::Protected(..) => Some(Verdict::single(
                crate::guard::Decision::Deny,
                "protected-path",
                e.to_string(),
            )),
            _ => None,
        };
        ToolError {
            message: e.to_string(),
            verdict,
            approval: None,
        }
    }
}

/// A request for a human to approve a command the guard rated `ask`.
#[derive(Debug, Clone)]
pub struct ApprovalRequest {
    pub tool: String,
    pub command: String,
    pub cwd: PathBuf,
    pub verdict: Verdict,
}

/// A human's answer, or why none could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    Approved,
    Declined(String),
    /// No way to ask anyone (the client cannot elicit): the call is refused with this reason.
    Unavailable(String),
    /// The face asks the human itself and answers the call without running the command (an
    /// MCP input-required result): nothing runs, nothing is queued; the reason says why.
    Deferred(String),
}

/// Something that can ask a human on the spot (MCP elicitation); when it cannot, the
/// [`approvals::ApprovalQueue`] keeps the request for `pi-mcp approvals` and Slack.
pub trait Approver: Send + Sync {
    fn approve<'a>(
        &'a self,
        request: &'a ApprovalRequest,
    ) -> Pin<Box<dyn Future<Output = Approval> + Send + 'a>>;

    /// Whether this approver audits its answers itself, under an approval id of its own;
    /// otherwise the caller audits an on-the-spot answer under a fresh id.
    fn audits_answers(&self) -> bool {
        false
    }
}
