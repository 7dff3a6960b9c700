//! What every face of the program opens the same way: the global options (workspace roots,
//! policy, state store, prompts, reports, OSV database) and the assembled application
//! (guard, store, audit log, tool context) that the server, the agent and the daemons share.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::guard::{Guard, Workspace};
use crate::store::{AuditLog, Store};
use crate::tools::ToolContext;
use crate::tools::approvals::ApprovalQueue;

/// Options every subcommand understands.
#[derive(Debug, Clone, Default, Args)]
pub struct Globals {
    /// Workspace root the tools are confined to (repeatable; default: the current directory).
    #[arg(long = "workspace", short = 'w', global = true, value_name = "DIR")]
    pub workspaces: Vec<PathBuf>,
    /// Policy file (default: the built-in policy, identical to policies/security.json).
    #[arg(long, global = true, env = "PI_MCP_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// State store URL: sqlite://PATH or postgres://... (default: <workspace>/.pi-mcp/state.db).
    #[arg(
        long,
        global = true,
        env = "PI_MCP_STATE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub state_url: Option<String>,
    /// Directory of prompt templates (default: <workspace>/prompts if present, else built-in).
    #[arg(long, global = true, env = "PI_MCP_PROMPTS", value_name = "DIR")]
    pub prompts: Option<PathBuf>,
    /// Directory of reports served as resources (default: <workspace>/reports).
    #[arg(long, global = true, env = "PI_MCP_REPORTS", value_name = "DIR")]
    pub reports: Option<PathBuf>,
    /// OSV advisory database that package installs are checked against
    /// (default: <workspace>/.pi-mcp/osv; `pi-mcp osv update` fills it).
    #[arg(long, global = true, env = "PI_MCP_OSV_DB", value_name = "DIR")]
    pub osv_db: Option<PathBuf>,
}

impl Globals {
    /// The workspace roots (default: the current directory).
    pub fn workspace(&self) -> anyhow::Result<Workspace> {
        let roots = if self.workspaces.is_empty() {
            vec![std::env::current_dir().context("cannot read the current directory")?]
        } else {
            self.workspaces.clone()
        };
        Workspace::new(&roots).map_err(anyhow::Error::msg)
    }

    /// The policy in force (`--policy`, or the built-in default).
    pub fn guard(&self) -> anyhow::Result<Guard> {
        Ok(Guard::load(self.policy.as_deref())?)
    }

    /// The policy, checking package installs against the OSV advisories found at start.
    pub fn guard_with_osv(&self, ws: &Workspace) -> anyhow::Result<Arc<Guard>> {
        let advisories = crate::tools::osv_scanner::advisories_at_start(&self.osv_db_dir(ws));
        Ok(Arc::new(self.guard()?.with_osv(advisories)))
    }

    /// The OSV database directory: `--osv-db`, else `<workspace>/.pi-mcp/osv`.
    pub fn osv_db_dir(&self, ws: &Workspace) -> PathBuf {
        self.osv_db
            .clone()
            .unwrap_or_else(|| ws.primary().join(".pi-mcp").join("osv"))
    }

    /// Opens the state store (`--state-url`, else `<workspace>/.pi-mcp/state.db`).
    pub async fn open_store(&self, ws: &Workspace) -> anyhow::Result<Store> {
        Ok(Store::open(self.state_url.as_deref(), ws.primary()).await?)
    }

    /// Prompt templates: `--prompts`, else `<workspace>/prompts` when present (else built-in).
    pub fn prompts_dir(&self, ws: &Workspace) -> Option<PathBuf> {
        self.prompts.clone().or_else(|| {
            let p = ws.primary().join("prompts");
            p.is_dir().then_some(p)
        })
    }

    /// Reports: `--reports`, else `<workspace>/reports`.
    pub fn reports_dir(&self, ws: &Workspace) -> PathBuf {
        self.reports
            .clone()
            .unwrap_or_else(|| ws.primary().join("reports"))
    }
}

/// The assembled program: one guard, one store, one audit log, one tool context.
#[derive(Clone)]
pub struct App {
    pub tools: ToolContext,
    pub store: Store,
    pub audit: AuditLog,
    pub prompts_dir: Option<PathBuf>,
    pub reports_dir: PathBuf,
}

impl App {
    /// Loads the policy (with OSV advisories), opens the store and starts the audit writer.
    /// `slack_buttons`: approvals announced on Slack carry Approve/Deny buttons (only when the
    /// HTTP face with a Slack signing secret can receive the clicks).
    pub async fn open(globals: &Globals, slack_buttons: bool) -> anyhow::Result<App> {
        let ws = globals.workspace()?;
        let guard = globals.guard_with_osv(&ws)?;
        let store = globals.open_store(&ws).await?;
        let audit = AuditLog::start(store.clone());
        let queue = ApprovalQueue::new(
            store.clone(),
            Duration::from_secs(guard.file().approval_ttl_secs),
            Duration::from_secs(guard.file().approval_wait_secs),
            std::env::var("SLACK_WEBHOOK_URL").ok(),
        )
        .with_slack_buttons(slack_buttons);
        let prompts_dir = globals.prompts_dir(&ws);
        let reports_dir = globals.reports_dir(&ws);
        let tools = ToolContext::new(ws, guard).with_approvals(queue);
        Ok(App {
            tools,
            store,
            audit,
            prompts_dir,
            reports_dir,
        })
    }

    /// The guard in force.
    pub fn guard(&self) -> &Arc<Guard> {
        &self.tools.guard
    }
}
