//! The record of a run: `reports/agent/<UTC timestamp>-<mode>.md` for people and a `.jsonl` of
//! events next to it for programs, both appended as the run goes (an interrupted run still
//! leaves everything up to the interruption): each step, tool call, decision, result and the
//! token usage.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::facts::{Headline, RunFacts};
use super::provider::Usage;

/// How much of a tool result the Markdown shows (the JSONL keeps what the model saw).
const MARKDOWN_RESULT_CHARS: usize = 4_000;

/// One thing that happened.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    RunStart {
        mode: &'a str,
        provider: &'a str,
        model: &'a str,
        task: &'a str,
        tools: Vec<&'a str>,
        max_steps: u32,
        dry_run: bool,
    },
    ModelReply {
        step: u32,
        text: &'a str,
        tool_calls: Vec<Value>,
        stop: &'a str,
        usage: Usage,
        elapsed_ms: f64,
    },
    ToolCall {
        step: u32,
        id: &'a str,
        tool: &'a str,
        /// Always a JSON object, whatever the provider's wire format (`{}` when unusable).
        arguments: &'a Value,
        /// Why the arguments could not be used, with what the model sent (`decision: invalid`).
        #[serde(skip_serializing_if = "Option::is_none")]
        arguments_error: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        raw_arguments: Option<&'a Value>,
        /// executed, cached, duplicate, refused_dry_run, approval, refused, invalid, unknown_tool
        decision: &'a str,
    },
    ToolResult {
        step: u32,
        id: &'a str,
        tool: &'a str,
        is_error: bool,
        text: &'a str,
        truncated: bool,
        elapsed_ms: f64,
    },
    /// A progress notification a running tool call sent (before its result).
    Progress {
        step: u32,
        id: &'a str,
        tool: &'a str,
        progress: f64,
        total: Option<f64>,
        message: &'a str,
    },
    /// Something the loop did on its own (a retry, a nudge, a limit).
    Note { step: u32, text: &'a str },
    RunEnd {
        stop_reason: &'a str,
        steps: u32,
        usage: Usage,
        verification_reported: Option<bool>,
        /// Time of the loop itself: the run less model API waits and tool calls.
        loop_overhead_ms: f64,
        /// What pi-mcp saw the run do, and the report's first line from it.
        headline: &'a Headline,
        facts: &'a RunFacts,
        final_answer: &'a str,
    },
}

/// An open transcript.
pub struct Transcript {
    markdown: PathBuf,
    jsonl: PathBuf,
    md: File,
    events: File,
}

impl Transcript {
    /// Creates `<dir>/agent/<timestamp>-<mode>.{md,jsonl}`.
    pub fn create(reports_dir: &Path, mode: &str) -> std::io::Result<Transcript> {
        let dir = reports_dir.join("agent");
        std::fs::create_dir_all(&dir)?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
        // Two runs started in the same millisecond (concurrent investigations) each get their
        // own files: the name is taken with create_new, never checked and then created.
        let mut n = 1;
        loop {
            let base = match n {
                1 => format!("{stamp}-{mode}"),
                n => format!("{stamp}-{mode}-{n}"),
            };
            let markdown = dir.join(format!("{base}.md"));
            let md = match File::options().write(true).create_new(true).open(&markdown) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => {
                    n += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let jsonl = dir.join(format!("{base}.jsonl"));
            return Ok(Transcript {
                md,
                events: File::create(&jsonl)?,
                markdown,
                jsonl,
            });
        }
    }

    pub fn markdown_path(&self) -> &Path {
        &self.markdown
    }

    pub fn jsonl_path(&self) -> &Path {
        &self.jsonl
    }

    /// Appends an event to both files; a write failure is logged, never fatal to the run.
    pub fn record(&mut self, event: &Event<'_>) {
        let line = serde_json::to_string(event)
            .unwrap_or_else(|e| format!("{{\"event\":\"unserialisable\",\"error\":\"{e}\"}}"));
        // Transcripts live under reports/ (served as MCP resources): secrets in arguments,
        // results or the model's text are redacted as in the audit log.
        let line = crate::redact::text(&line);
        let md = crate::redact::text(&markdown_of(event));
        if let Err(e) =
            writeln!(self.events, "{line}").and_then(|()| self.md.write_all(md.as_bytes()))
        {
            tracing::warn!("agent transcript {}: {e}", self.markdown.display());
        }
    }
}

fn markdown_of(event: &Event<'_>) -> String {
    match event {
        Event::RunStart {
            mode,
            provider,
            model,
            task,
            tools,
            max_steps,
            dry_run,
        } => format!(
            "# pi-mcp agent run ({mode})\n\n- started: {}\n- provider: {provider}, model: {model}\n- tools: {}\n- max steps: {max_steps}{}\n\n## Task\n\n{task}\n\n",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            tools.join(", "),
            if *dry_run {
                " (dry run: state-changing calls refused)"
            } else {
                ""
            }
        ),
        Event::ModelReply {
            step,
            text,
            tool_calls,
            stop,
            usage,
            elapsed_ms,
        } => {
            let mut s = format!(
                "## Step {step}\n\nModel ({stop}, {} in / {} out tokens, {elapsed_ms:.1} ms):\n\n",
                usage.input_tokens, usage.output_tokens
            );
            if !text.trim().is_empty() {
                s.push_str(&quote(text));
            }
            if !tool_calls.is_empty() {
                s.push_str(&format!("{} tool call(s).\n\n", tool_calls.len()));
            }
            s
        }
        Event::ToolCall {
            tool,
            arguments,
            arguments_error,
            raw_arguments,
            decision,
            id,
            ..
        } => {
            let pretty = serde_json::to_string_pretty(arguments).unwrap_or_default();
            let mut s = format!("### `{tool}` ({id}): {decision}\n\n```json\n{pretty}\n```\n\n");
            if let Some(why) = arguments_error {
                let raw = raw_arguments.map(|r| r.to_string()).unwrap_or_default();
                s.push_str(&format!(
                    "Arguments not usable: {why}. As sent:\n\n```\n{raw}\n```\n\n"
                ));
            }
            s
        }
        Event::ToolResult {
            tool,
            is_error,
            text,
            truncated,
            elapsed_ms,
            ..
        } => {
            let shown: String = text.chars().take(MARKDOWN_RESULT_CHARS).collect();
            let more = if text.chars().count() > MARKDOWN_RESULT_CHARS {
                "\n[... shortened here; the .jsonl has the whole result]"
            } else {
                ""
            };
            format!(
                "Result of `{tool}`{}{} ({elapsed_ms:.1} ms):\n\n```\n{shown}{more}\n```\n\n",
                if *is_error { " (error)" } else { "" },
                if *truncated {
                    " (truncated for the model)"
                } else {
                    ""
                },
            )
        }
        Event::Progress {
            tool,
            progress,
            total,
            message,
            ..
        } => {
            let of_total = total.map(|t| format!("/{t}")).unwrap_or_default();
            let message = if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            };
            format!("- `{tool}` progress {progress}{of_total}{message}\n\n")
        }
        Event::Note { step, text } => format!("> **Loop (step {step}):** {text}\n\n"),
        Event::RunEnd {
            stop_reason,
            steps,
            usage,
            verification_reported,
            headline,
            facts,
            final_answer,
            ..
        } => {
            let verification = match verification_reported {
                Some(true) => "\n- verification: reported by the model",
                Some(false) => "\n- verification: NOT reported by the model",
                None => "",
            };
            let seen: String = facts.lines().iter().map(|l| format!("{l}\n")).collect();
            let answer = if final_answer.trim().is_empty() {
                "(the run ended without an answer)\n\n".to_string()
            } else {
                quote(final_answer)
            };
            format!(
                "## Result\n\n**{}**\n\n- stop reason: {stop_reason}\n- steps: {steps}\n- tokens: {} in / {} out{verification}\n\n## What pi-mcp saw\n\n{seen}\n## Final answer (the model's words)\n\n{answer}",
                headline.text, usage.input_tokens, usage.output_tokens
            )
        }
    }
}

fn quote(text: &str) -> String {
    let mut s: String = text.lines().map(|l| format!("> {l}\n")).collect();
    s.push('\n');
    s
}
