//! The built-in Pi agent: a model, a short system prompt, pi-mcp's own tools (reached as an MCP
//! client, in-process) and a loop that runs until the model stops calling tools or a limit is
//! reached. [`run`] is the one entry point: `pi-mcp agent` and the heartbeat both call it.

pub mod calls;
pub mod command;
pub mod facts;
pub mod gate;
pub mod limits;
pub mod mcp_client;
pub mod progress;
pub mod provider;
pub mod transcript;
pub mod turn;
pub mod verify;

use std::path::PathBuf;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use limits::Limits;
pub use provider::{ProviderConfig, ProviderKind, Usage};

use crate::app::App;
use crate::server::prompts;

/// What kind of run this is; it picks the system prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Investigate and fix an incident (the `sre` prompt; verification enforced).
    Sre,
    /// Analyse a database and write a report (the `data_ghost` prompt).
    #[value(name = "data_ghost")]
    DataGhost,
    /// A plain question.
    Ask,
    /// The heartbeat's periodic check against the workspace's standing instructions
    /// (`HEARTBEAT.md`): the `sre` prompt; an answer of just `HEARTBEAT_OK` means nothing needs
    /// attention. It may not change anything on its own (its state-changing calls become
    /// approvals), so there is no fix to verify. Investigations of firing rules run in `Sre`.
    /// Library-only: not offered on the command line, and a run in this mode always has the
    /// approval gate ([`RunRequest::read_only_asks`]) whatever its request says.
    #[value(skip)]
    Heartbeat,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Sre => "sre",
            Mode::DataGhost => "data_ghost",
            Mode::Ask => "ask",
            Mode::Heartbeat => "heartbeat",
        }
    }

    /// Whether the run must report a post-fix verification before it may finish.
    pub fn enforces_verification(self) -> bool {
        matches!(self, Mode::Sre)
    }

    /// Whether runs in this mode may never change state without a human's approval.
    pub fn always_asks(self) -> bool {
        matches!(self, Mode::Heartbeat)
    }
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub mode: Mode,
    /// The task, question or incident text.
    pub task: String,
    pub provider: ProviderConfig,
    pub limits: Limits,
    /// Plan only: calls that can change state are refused (read-only tools and bash commands
    /// that only observe still run).
    pub dry_run: bool,
    /// Autonomous runs with `remediate: false`: calls that can change state (tools that are not
    /// read-only, bash commands that do more than observe) become pending approvals
    /// (`pi-mcp approvals`) instead of running.
    pub read_only_asks: bool,
    /// Run a turn's tool calls one after another instead of in parallel.
    pub sequential: bool,
    /// A Claude Desktop style `mcpServers` file of external servers to attach.
    pub mcp_config: Option<PathBuf>,
    /// Extra standing instructions appended to the system prompt (e.g. HEARTBEAT.md).
    pub extra_instructions: Option<String>,
    /// Cancelled on Ctrl-C (or by the heartbeat on shutdown): the run ends cleanly.
    pub cancel: CancellationToken,
    /// What started the run, as the human answering its approvals reads it
    /// (e.g. "investigation of rule disk-full").
    pub requested_by: String,
}

/// Why the run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model gave its final answer.
    FinalAnswer,
    /// `max_steps` reached; the answer is the model's summary.
    MaxSteps,
    TokenBudget,
    Timeout,
    Interrupted,
    /// The model kept answering with nothing.
    EmptyAnswer,
    /// The model API failed for good (after retries).
    ModelError(String),
}

impl StopReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            StopReason::FinalAnswer => "final_answer",
            StopReason::MaxSteps => "max_steps",
            StopReason::TokenBudget => "token_budget",
            StopReason::Timeout => "timeout",
            StopReason::Interrupted => "interrupted",
            StopReason::EmptyAnswer => "empty_answer",
            StopReason::ModelError(_) => "model_error",
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    pub final_answer: String,
    pub stop_reason: StopReason,
    pub steps: u32,
    pub usage: Usage,
    /// For modes that enforce verification: whether the final answer reported one.
    pub verification_reported: Option<bool>,
    /// The report's first line, from the facts (not from the answer).
    pub headline: facts::Headline,
    /// What pi-mcp saw the run do: checks, changes, refusals, pending approvals, verification.
    pub facts: facts::RunFacts,
    pub transcript_markdown: PathBuf,
    pub transcript_jsonl: PathBuf,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("prompt `{name}`: {detail}")]
    Prompt { name: String, detail: String },
    #[error(transparent)]
    Mcp(#[from] mcp_client::McpError),
    #[error(transparent)]
    Provider(#[from] provider::ProviderError),
    #[error("cannot write the transcript under {dir}: {source}")]
    Transcript {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The system prompt of `ask` runs.
const ASK_PROMPT: &str = "You are Pi, pi-mcp's built-in assistant. Answer the user's question, using the tools \
to look things up when that helps. Be brief and exact; quote what you rely on.";

/// Said to every run: how the loop works.
const LOOP_RULES: &str = "You are running as pi-mcp's autonomous agent. Every tool call passes a security policy: \
a refused call names the rule that refused it; take another approach rather than rewording it. Calls to tools \
may run in parallel when you make several in one turn. When you are done, reply with your final answer and no \
tool calls.";

/// Said to dry runs.
const DRY_RUN_RULES: &str = "This is a DRY RUN: only read-only tools and shell commands that only observe (df, \
ps, tail/grep of logs, curl GET probes, systemctl status, ...; no file written) run. Calls that can change \
state are refused; describe what you would do instead, as a plan.";

/// Said to runs that may not change anything without a human (`remediate: false`, the
/// heartbeat check).
const ASKS_RULES: &str = "This run may not change anything on its own: calls that can change state wait as \
approvals for a human and are NOT run. Read-only tools run, and so do shell commands that only observe (for \
example df, free, ps, ss, tail/grep/cat of logs, curl GET probes without -o/-d/-X, systemctl status, \
journalctl, kubectl get/describe/logs, git status/log/diff, find without -exec/-delete) as long as they write \
no file (no `>` redirection except to /dev/null).";

/// The system prompt for a request: the mode's prompt file rendered with the task, plus the
/// loop's rules.
pub fn system_prompt(app: &App, request: &RunRequest) -> Result<String, AgentError> {
    let base = match request.mode {
        Mode::Ask => ASK_PROMPT.to_string(),
        Mode::Sre | Mode::Heartbeat => render(app, "sre", &[("incident", &request.task)])?,
        Mode::DataGhost => render(
            app,
            "data_ghost",
            &[(
                "database",
                "the database named in the task (the `ghost` tool runs the Data Ghost on it and \
                 writes a report; the `sql` tool investigates)",
            )],
        )?,
    };
    let mut parts = vec![base, LOOP_RULES.to_string()];
    if request.mode.enforces_verification() {
        parts.push(verify::INSTRUCTION.to_string());
    }
    if request.dry_run {
        parts.push(DRY_RUN_RULES.to_string());
    } else if request.read_only_asks || request.mode.always_asks() {
        parts.push(ASKS_RULES.to_string());
    }
    if let Some(extra) = request
        .extra_instructions
        .as_deref()
        .filter(|s| !s.trim().is_empty())
    {
        parts.push(format!("Standing instructions:\n{extra}"));
    }
    Ok(parts.join("\n\n"))
}

fn render(app: &App, name: &str, args: &[(&str, &str)]) -> Result<String, AgentError> {
    let prompt_error = |detail: String| AgentError::Prompt {
        name: name.to_string(),
        detail,
    };
    let all = prompts::load_all(app.prompts_dir.as_deref()).map_err(prompt_error)?;
    let prompt = all
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| prompt_error("no prompt file declares this name".into()))?;
    let args: serde_json::Map<String, serde_json::Value> = args
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let rendered = prompt.render(&args).map_err(prompt_error)?;
    Ok(rendered
        .messages
        .iter()
        .filter_map(|m| m.content.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n\n"))
}

/// Runs the agent to the end; the transcript is written whatever the stop reason.
pub async fn run(app: &App, request: RunRequest) -> Result<RunOutcome, AgentError> {
    turn::run(app, request).await
}
