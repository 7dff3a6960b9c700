//! The loop: ask the model, run the tools it calls, send the results back, until it gives a
//! final answer or a limit ends the run (steps, token budget, wall-clock time, Ctrl-C). It
//! handles the model's slips (an empty reply, a reply cut at `max_tokens`, an SRE answer
//! without verification) by telling the model, and always finishes the transcript.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::calls::{CallRunner, CallSettings};
use super::limits::{
    CHARS_PER_TOKEN, EMPTY_REPLY_NUDGES, MAX_TOKENS_CONTINUATIONS, estimate_usage,
};
use super::mcp_client::ToolBox;
use super::provider::{
    Message, ModelReply, Provider, ProviderError, Request, StopKind, ToolSpec, Usage,
};
use super::transcript::{Event, Transcript};
use super::{AgentError, RunOutcome, RunRequest, StopReason, system_prompt, verify};
use crate::app::App;

/// Asked of the model when the step limit is reached.
const SUMMARY_REQUEST: &str = "You have reached this run's step limit, so no more tools will run. Reply now \
without tool calls: summarise what you found, what you changed, how you checked it, and what is left to do.";
const EMPTY_REPLY_NUDGE: &str =
    "Your last reply was empty. Either call a tool or give your final answer.";
const MAX_TOKENS_NUDGE: &str = "Your last reply was cut off at the max_tokens limit. Continue from where it \
stopped, more briefly; any tool call in the cut reply was not run.";

/// Runs the agent to the end (see [`super::run`]).
pub async fn run(app: &App, request: RunRequest) -> Result<RunOutcome, AgentError> {
    let provider = Provider::new(request.provider.clone())?;
    let system = system_prompt(app, &request)?;
    let toolbox =
        ToolBox::connect(app, request.mcp_config.as_deref(), &request.requested_by).await?;
    let transcript =
        Transcript::create(&app.reports_dir, request.mode.as_str()).map_err(|source| {
            AgentError::Transcript {
                dir: app.reports_dir.join("agent"),
                source,
            }
        });
    let mut transcript = match transcript {
        Ok(t) => t,
        Err(e) => {
            toolbox.close().await;
            return Err(e);
        }
    };
    let specs = toolbox.specs();
    transcript.record(&Event::RunStart {
        mode: request.mode.as_str(),
        provider: provider.config().kind.as_str(),
        model: &provider.config().model,
        task: &request.task,
        tools: specs.iter().map(|t| t.name.as_str()).collect(),
        max_steps: request.limits.max_steps,
        dry_run: request.dry_run,
    });
    let settings = CallSettings {
        dry_run: request.dry_run,
        read_only_asks: request.read_only_asks || request.mode.always_asks(),
        sequential: request.sequential,
        max_result_chars: request.limits.max_result_chars,
        requested_by: request.requested_by.clone(),
    };
    let deadline = request
        .limits
        .timeout
        .map(|t| tokio::time::Instant::now() + t);
    let mut run = Run {
        request: &request,
        provider: &provider,
        system: &system,
        specs: &specs,
        calls: CallRunner::new(app, &toolbox, settings),
        transcript: &mut transcript,
        messages: vec![Message::User {
            text: request.task.clone(),
        }],
        usage: Usage::default(),
        step: 0,
        deadline,
        wire_time: Duration::ZERO,
        usage_estimated: false,
    };
    let started = Instant::now();
    let (stop, answer, verification) = run.drive().await;
    let waited = run.wire_time + run.calls.exec_time;
    let loop_overhead_ms = (started.elapsed().saturating_sub(waited).as_micros() as f64) / 1000.0;
    let steps = run.step;
    let usage = run.usage;
    let facts = std::mem::take(&mut run.calls.facts);
    drop(run);
    let headline = facts.headline(&answer);
    transcript.record(&Event::RunEnd {
        stop_reason: stop.as_str(),
        steps,
        usage,
        verification_reported: verification,
        loop_overhead_ms,
        headline: &headline,
        facts: &facts,
        final_answer: &answer,
    });
    toolbox.close().await;
    app.audit.flush().await;
    Ok(RunOutcome {
        final_answer: answer,
        stop_reason: stop,
        steps,
        usage,
        verification_reported: verification,
        headline,
        facts,
        transcript_markdown: transcript.markdown_path().to_path_buf(),
        transcript_jsonl: transcript.jsonl_path().to_path_buf(),
    })
}

/// The state of one run.
struct Run<'a> {
    request: &'a RunRequest,
    provider: &'a Provider,
    system: &'a str,
    specs: &'a [ToolSpec],
    calls: CallRunner<'a>,
    transcript: &'a mut Transcript,
    messages: Vec<Message>,
    usage: Usage,
    step: u32,
    deadline: Option<tokio::time::Instant>,
    /// Time spent waiting on the model API.
    wire_time: Duration,
    /// The API reported no usage at least once, so the totals are partly estimated.
    usage_estimated: bool,
}

/// (why it ended, the final answer, verification reported — for modes that enforce it).
type Ending = (StopReason, String, Option<bool>);

impl Run<'_> {
    async fn drive(&mut self) -> Ending {
        let enforce = self.request.mode.enforces_verification();
        let verified_flag = |v: bool| enforce.then_some(v);
        let mut empty_nudges = 0;
        let mut continuations = 0;
        let mut verification_asked = false;
        let mut last_text = String::new();
        loop {
            if self.step >= self.request.limits.max_steps {
                return self.summarise(verified_flag(false)).await;
            }
            self.step += 1;
            let reply = match self.ask_model(false).await {
                Ok(r) => r,
                Err(stop) => return (stop, last_text, verified_flag(false)),
            };
            if !reply.text.trim().is_empty() {
                last_text = reply.text.clone();
            }
            if let Some(budget) = self.request.limits.token_budget
                && self.usage.total() >= budget
            {
                self.note(&format!(
                    "token budget of {budget} reached ({} used); the run stops here",
                    self.usage.total()
                ));
                return (StopReason::TokenBudget, last_text, verified_flag(false));
            }
            if reply.stop == StopKind::MaxTokens && continuations < MAX_TOKENS_CONTINUATIONS {
                continuations += 1;
                self.note("the reply was cut at max_tokens; asking the model to continue");
                self.messages.push(Message::Assistant {
                    text: reply.text,
                    tool_calls: Vec::new(),
                });
                self.messages.push(Message::User {
                    text: MAX_TOKENS_NUDGE.into(),
                });
                continue;
            }
            if reply.tool_calls.is_empty() {
                if reply.text.trim().is_empty() {
                    if empty_nudges < EMPTY_REPLY_NUDGES {
                        empty_nudges += 1;
                        self.note("the model sent an empty reply; asking again");
                        self.messages.push(Message::User {
                            text: EMPTY_REPLY_NUDGE.into(),
                        });
                        continue;
                    }
                    self.note("the model sent empty replies; the run stops");
                    return (StopReason::EmptyAnswer, last_text, verified_flag(false));
                }
                let verified = verify::is_verified(&reply.text, self.calls.evidence);
                if enforce && !verified && !verification_asked {
                    verification_asked = true;
                    self.note(
                        "the model tried to finish without a verification step; asking once more",
                    );
                    self.messages.push(Message::Assistant {
                        text: reply.text,
                        tool_calls: Vec::new(),
                    });
                    self.messages.push(Message::User {
                        text: verify::NUDGE.into(),
                    });
                    continue;
                }
                return (StopReason::FinalAnswer, reply.text, verified_flag(verified));
            }
            self.messages.push(Message::Assistant {
                text: reply.text,
                tool_calls: reply.tool_calls.clone(),
            });
            let step = self.step;
            let turn = self
                .calls
                .run_turn(step, &reply.tool_calls, self.transcript);
            let results = match interruptible(self.request, self.deadline, turn).await {
                Ok(r) => r,
                Err(stop) => return (stop, last_text, verified_flag(false)),
            };
            self.messages.push(Message::ToolResults {
                results,
                note: None,
            });
        }
    }

    /// The step limit: one more request, without tools, for a summary.
    async fn summarise(&mut self, verification: Option<bool>) -> Ending {
        self.note(&format!(
            "step limit of {} reached; asking the model for a summary",
            self.request.limits.max_steps
        ));
        match self.messages.last_mut() {
            Some(Message::ToolResults { note, .. }) => *note = Some(SUMMARY_REQUEST.into()),
            _ => self.messages.push(Message::User {
                text: SUMMARY_REQUEST.into(),
            }),
        }
        let answer = match self.ask_model(true).await {
            Ok(r) if !r.text.trim().is_empty() => r.text,
            Ok(_) => "(the model gave no summary at the step limit)".to_string(),
            Err(stop) => return (stop, String::new(), verification),
        };
        (StopReason::MaxSteps, answer, verification)
    }

    /// One model request, ended early by Ctrl-C or the deadline; the reply is recorded.
    async fn ask_model(&mut self, no_tools: bool) -> Result<ModelReply, StopReason> {
        let retries: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let on_retry = |e: &ProviderError, delay: Duration| {
            if let Ok(mut r) = retries.lock() {
                r.push(format!(
                    "model request failed ({e}); retrying in {} ms",
                    delay.as_millis()
                ));
            }
        };
        let started = Instant::now();
        let request = Request {
            system: self.system,
            messages: &self.messages,
            tools: self.specs,
            no_tools,
        };
        let result = interruptible(
            self.request,
            self.deadline,
            self.provider.complete(&request, &on_retry),
        )
        .await;
        let notes = retries.into_inner().unwrap_or_default();
        for n in &notes {
            self.note(n);
        }
        let reply = match result {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                let text = format!("the model request failed for good: {e}");
                self.note(&text);
                return Err(StopReason::ModelError(e.to_string()));
            }
            Err(stop) => {
                self.note(&format!("the run was stopped ({})", stop.as_str()));
                return Err(stop);
            }
        };
        let mut reply = reply;
        if reply.usage.total() == 0 {
            reply.usage = estimate_usage(self.system, self.specs, &self.messages, &reply);
            if !self.usage_estimated {
                self.usage_estimated = true;
                self.note(&format!(
                    "the model API reported no token usage; usage (and --token-budget) is estimated from \
                     characters, about {CHARS_PER_TOKEN} per token"
                ));
            }
        }
        self.usage.add(reply.usage);
        self.wire_time += reply.wire_time;
        let calls: Vec<serde_json::Value> = reply
            .tool_calls
            .iter()
            .map(|c| {
                let mut call = serde_json::json!({"id": c.id, "name": c.name, "arguments": c.arguments_object()});
                if let Some(why) = c.arguments_error() {
                    call["arguments_error"] = why.into();
                    call["raw_arguments"] = c.raw_arguments.clone();
                }
                call
            })
            .collect();
        self.transcript.record(&Event::ModelReply {
            step: self.step,
            text: &reply.text,
            tool_calls: calls,
            stop: stop_name(reply.stop),
            usage: reply.usage,
            elapsed_ms: super::calls::millis(started),
        });
        Ok(reply)
    }

    fn note(&mut self, text: &str) {
        tracing::info!("agent step {}: {text}", self.step);
        self.transcript.record(&Event::Note {
            step: self.step,
            text,
        });
    }
}

fn stop_name(stop: StopKind) -> &'static str {
    match stop {
        StopKind::EndTurn => "end_turn",
        StopKind::ToolUse => "tool_use",
        StopKind::MaxTokens => "max_tokens",
        StopKind::Other => "other",
    }
}

/// Runs `work` unless the run is cancelled or its deadline passes first.
async fn interruptible<T>(
    request: &RunRequest,
    deadline: Option<tokio::time::Instant>,
    work: impl Future<Output = T>,
) -> Result<T, StopReason> {
    let timeout = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = work => Ok(r),
        _ = request.cancel.cancelled() => Err(StopReason::Interrupted),
        _ = timeout => Err(StopReason::Timeout),
    }
}
