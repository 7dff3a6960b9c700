//! `pi-mcp agent`: one run of the Pi loop from the command line. Settings come from flags, then
//! the environment (`PI_PROVIDER`, `PI_MODEL`, `ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`,
//! `OPENAI_API_KEY`, `OPENAI_BASE_URL`); the answer goes to stdout (or JSON with `--json`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::limits::{
    DEFAULT_MAX_STEPS, DEFAULT_MAX_TOKENS, Limits, MAX_RESULT_CHARS, MODEL_REQUEST_TIMEOUT,
};
use super::{Mode, ProviderConfig, ProviderKind, RunRequest, StopReason};
use crate::app::{App, Globals};

/// Anthropic's API when `ANTHROPIC_BASE_URL` is not set.
pub const ANTHROPIC_DEFAULT_BASE: &str = "https://api.anthropic.com";
/// OpenAI's API when `OPENAI_BASE_URL` is not set.
pub const OPENAI_DEFAULT_BASE: &str = "https://api.openai.com/v1";
/// Models used when neither `--model` nor `PI_MODEL` names one.
pub const ANTHROPIC_DEFAULT_MODEL: &str = "claude-sonnet-4-5";
pub const OPENAI_DEFAULT_MODEL: &str = "gpt-4.1-mini";
/// Exit status of a run stopped by Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

/// Arguments of `pi-mcp agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// sre: investigate and fix (verification enforced); data_ghost: analyse a database; ask: a question.
    #[arg(long, value_enum, default_value = "ask")]
    pub mode: Mode,
    /// Wire format: anthropic (Messages API) or openai (Chat Completions; also Ollama,
    /// llama.cpp, vLLM, LM Studio via OPENAI_BASE_URL). Default: whichever API key is set.
    #[arg(long, value_enum, env = "PI_PROVIDER")]
    pub provider: Option<ProviderKind>,
    /// Model name (default: PI_MODEL, else a current default of the provider).
    #[arg(long, env = "PI_MODEL")]
    pub model: Option<String>,
    /// Model turns before the model is asked for a summary.
    #[arg(long, default_value_t = DEFAULT_MAX_STEPS)]
    pub max_steps: u32,
    /// max_tokens of each model reply.
    #[arg(long, default_value_t = DEFAULT_MAX_TOKENS)]
    pub max_tokens: u32,
    /// Sampling temperature (default: the provider's).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Stop once this many tokens (input + output, summed over requests) are used.
    #[arg(long, value_name = "TOKENS")]
    pub token_budget: Option<u64>,
    /// Wall-clock limit of the run: seconds, or with a unit (90s, 10m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Characters of one tool result the model sees (the rest is cut with a note).
    #[arg(long, default_value_t = MAX_RESULT_CHARS, value_name = "CHARS")]
    pub max_result_chars: usize,
    /// Plan only: calls that can change state are refused (read-only tools and bash commands
    /// that only observe still run).
    #[arg(long)]
    pub dry_run: bool,
    /// Print {final_answer, transcript, stop_reason, usage, ...} as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run a turn's tool calls one after another instead of in parallel.
    #[arg(long)]
    pub sequential: bool,
    /// External MCP servers to attach, in Claude Desktop's format: {"mcpServers": {...}}.
    #[arg(long, value_name = "FILE")]
    pub mcp_config: Option<PathBuf>,
    /// The task, incident or question (several words are joined with spaces).
    #[arg(required = true, trailing_var_arg = true, value_name = "TASK")]
    pub task: Vec<String>,
}

/// Parses `90`, `90s`, `10m`, `1h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: u64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (examples: 90, 90s, 10m, 1h)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (use s, m or h)"
            ));
        }
    };
    Ok(Duration::from_secs(secs))
}

/// The provider settings from the flags and the environment.
pub fn provider_config(args: &AgentArgs) -> anyhow::Result<ProviderConfig> {
    provider_from_env(
        args.provider,
        args.model.clone(),
        args.max_tokens,
        args.temperature,
    )
}

/// The provider settings for `kind` (default: whichever API key is set) and `model` (default:
/// the provider's current default), with base URL and key from the environment. The heartbeat
/// uses this too.
pub fn provider_from_env(
    kind: Option<ProviderKind>,
    model: Option<String>,
    max_tokens: u32,
    temperature: Option<f32>,
) -> anyhow::Result<ProviderConfig> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let kind = match kind {
        Some(k) => k,
        None if env("ANTHROPIC_API_KEY").is_some() => ProviderKind::Anthropic,
        None if env("OPENAI_API_KEY").is_some() || env("OPENAI_BASE_URL").is_some() => {
            ProviderKind::Openai
        }
        None => bail!(
            "no model provider: pass --provider anthropic|openai or set PI_PROVIDER \
             (and ANTHROPIC_API_KEY, or OPENAI_API_KEY / OPENAI_BASE_URL)"
        ),
    };
    let (base_var, default_base, key_var, default_model) = match kind {
        ProviderKind::Anthropic => (
            "ANTHROPIC_BASE_URL",
            ANTHROPIC_DEFAULT_BASE,
            "ANTHROPIC_API_KEY",
            ANTHROPIC_DEFAULT_MODEL,
        ),
        ProviderKind::Openai => (
            "OPENAI_BASE_URL",
            OPENAI_DEFAULT_BASE,
            "OPENAI_API_KEY",
            OPENAI_DEFAULT_MODEL,
        ),
    };
    let base_url = env(base_var).unwrap_or_else(|| default_base.to_string());
    let api_key = env(key_var);
    if api_key.is_none() && base_url == default_base {
        bail!(
            "{key_var} is not set: the {} API needs a key (or point {base_var} at a local server)",
            kind.as_str()
        );
    }
    Ok(ProviderConfig {
        kind,
        model: model.unwrap_or_else(|| default_model.to_string()),
        base_url,
        api_key,
        max_tokens,
        temperature,
        request_timeout: MODEL_REQUEST_TIMEOUT,
    })
}

/// Runs `pi-mcp agent`. With `--json`, a run that cannot start still prints JSON (with
/// `stop_reason: "not_started"` and the error) besides the error on stderr.
pub async fn run(globals: &Globals, args: &AgentArgs) -> anyhow::Result<ExitCode> {
    match start(globals, args).await {
        Err(e) if args.json => {
            let value = serde_json::json!({
                "final_answer": null,
                "stop_reason": "not_started",
                "error": format!("{e:#}"),
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
            Err(e)
        }
        other => other,
    }
}

async fn start(globals: &Globals, args: &AgentArgs) -> anyhow::Result<ExitCode> {
    let provider = provider_config(args)?;
    let app = App::open(globals, false).await?;
    app.report_sandbox()?;
    let cancel = CancellationToken::new();
    let stop = crate::server::shutdown_signal().context("cannot install the Ctrl-C handler")?;
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        stop.await;
        tracing::info!("agent: stopping on signal; finishing the transcript");
        on_signal.cancel();
    });
    let request = RunRequest {
        mode: args.mode,
        task: args.task.join(" "),
        provider,
        limits: Limits {
            max_steps: args.max_steps,
            token_budget: args.token_budget,
            timeout: args.timeout,
            max_result_chars: args.max_result_chars,
        },
        dry_run: args.dry_run,
        read_only_asks: false,
        sequential: args.sequential,
        mcp_config: args.mcp_config.clone(),
        extra_instructions: None,
        cancel,
        requested_by: "pi-mcp agent on the command line".into(),
    };
    let outcome = super::run(&app, request).await?;
    if args.json {
        let value = serde_json::json!({
            "final_answer": outcome.final_answer,
            "transcript": outcome.transcript_markdown,
            "transcript_jsonl": outcome.transcript_jsonl,
            "stop_reason": outcome.stop_reason.as_str(),
            "error": match &outcome.stop_reason { StopReason::ModelError(e) => Some(e), _ => None },
            "steps": outcome.steps,
            "usage": outcome.usage,
            "verification_reported": outcome.verification_reported,
            "headline": outcome.headline,
            "facts": outcome.facts,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{}", outcome.final_answer);
        eprintln!("pi-mcp agent: {}", outcome.headline.text);
        eprintln!(
            "pi-mcp agent: {} after {} step(s), {} tokens; transcript: {}",
            outcome.stop_reason.as_str(),
            outcome.steps,
            outcome.usage.total(),
            outcome.transcript_markdown.display()
        );
    }
    if outcome.verification_reported == Some(false) {
        eprintln!("pi-mcp agent: warning: the run did not report a verification step");
    }
    let failure = match &outcome.stop_reason {
        StopReason::FinalAnswer | StopReason::MaxSteps => return Ok(ExitCode::SUCCESS),
        StopReason::Interrupted => return Ok(ExitCode::from(EXIT_INTERRUPTED)),
        StopReason::ModelError(e) => e.clone(),
        StopReason::EmptyAnswer => "the model sent only empty replies, even when asked again; \
             try another model or rephrase the task"
            .to_string(),
        StopReason::TokenBudget => format!(
            "the token budget ({} tokens) was spent before the model finished; raise --token-budget",
            args.token_budget.unwrap_or_default()
        ),
        StopReason::Timeout => {
            "the run reached its --timeout before the model finished".to_string()
        }
    };
    eprintln!("pi-mcp agent: error: {failure}");
    Ok(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_minutes_and_hours() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
