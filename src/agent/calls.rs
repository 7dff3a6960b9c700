//! One turn's tool calls: each is checked (arguments, tool name, dry run, approvals for
//! `remediate: false` runs), answered from an identical earlier check when nothing changed
//! state since, run (in parallel unless configured sequential), truncated to the per-result
//! budget, and recorded in the transcript. A `bash` call whose command only observes (see
//! [`crate::guard::observe`]) counts as read-only: dry runs and `remediate: false` runs let it
//! run, still through the server's guard, approvals and audit like every call.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::task::JoinSet;

use super::facts::{self, Held, Noted, Refusal, RunFacts, TurnCall};
use super::gate::{self, Gate};
use super::limits::truncate_result;
use super::mcp_client::{AgentTool, CallOutcome, Caller, ToolBox};
use super::provider::{ToolCall, ToolResult};
use super::transcript::{Event, Transcript};
use super::verify::{Effect, Evidence};
use crate::app::App;
use crate::guard::PathContext;

pub use super::gate::REMEDIATE_FALSE_RULE;

/// How a turn's calls are run.
#[derive(Debug, Clone)]
pub struct CallSettings {
    pub dry_run: bool,
    pub read_only_asks: bool,
    pub sequential: bool,
    pub max_result_chars: usize,
    /// Who the run's approvals say asked (see [`super::RunRequest::requested_by`]).
    pub requested_by: String,
}

/// A result kept for identical later calls.
#[derive(Debug, Clone)]
struct Cached {
    step: u32,
    outcome: CallOutcome,
}

/// Runs tool calls for the loop, remembering results across turns.
pub struct CallRunner<'a> {
    app: &'a App,
    toolbox: &'a ToolBox,
    settings: CallSettings,
    cache: HashMap<String, Cached>,
    /// What counts as a post-change check (for SRE verification).
    pub evidence: Evidence,
    /// What ran, what was refused, what waits for a human (for the run's report).
    pub facts: RunFacts,
    /// Calls that actually ran.
    pub executed: u32,
    /// Wall time spent waiting for tool calls to run.
    pub exec_time: Duration,
}

/// What to do with one call.
enum Plan {
    /// Answered without running: (text, is_error, decision, what the run held back).
    Answer(String, bool, &'static str, Option<Held>),
    /// Identical to the earlier call of this turn at this index: shares its result.
    Duplicate(usize),
    Run {
        caller: Caller,
        arguments: Map<String, Value>,
        key: String,
        effect: Effect,
    },
}

impl Plan {
    fn decision(&self) -> &'static str {
        match self {
            Plan::Answer(_, _, d, _) => d,
            Plan::Duplicate(_) => "duplicate",
            Plan::Run { .. } => "executed",
        }
    }
}

impl<'a> CallRunner<'a> {
    pub fn new(app: &'a App, toolbox: &'a ToolBox, settings: CallSettings) -> Self {
        CallRunner {
            app,
            toolbox,
            settings,
            cache: HashMap::new(),
            evidence: Evidence::default(),
            facts: RunFacts::default(),
            executed: 0,
            exec_time: Duration::ZERO,
        }
    }

    /// Runs one turn's calls and returns their results in the order of `calls`.
    pub async fn run_turn(
        &mut self,
        step: u32,
        calls: &[ToolCall],
        transcript: &mut Transcript,
    ) -> Vec<ToolResult> {
        let mut plans = Vec::with_capacity(calls.len());
        let mut first_of: HashMap<String, usize> = HashMap::new();
        for (i, call) in calls.iter().enumerate() {
            let key = call
                .arguments
                .as_ref()
                .ok()
                .map(|a| call_key(&call.name, a));
            // An identical call of this turn is neither run nor asked about a second time.
            let plan = match key.as_ref().and_then(|k| first_of.get(k)) {
                Some(&first) => Plan::Duplicate(first),
                None => self.plan(call).await,
            };
            if let Some(k) = key {
                first_of.entry(k).or_insert(i);
            }
            let arguments = call.arguments_object();
            let arguments_error = call.arguments_error();
            transcript.record(&Event::ToolCall {
                step,
                id: &call.id,
                tool: &call.name,
                arguments: &arguments,
                arguments_error,
                raw_arguments: arguments_error.map(|_| &call.raw_arguments),
                decision: plan.decision(),
            });
            plans.push(plan);
        }
        let started = Instant::now();
        let mut ran = self.execute(&plans).await;
        self.exec_time += started.elapsed();
        let effects: Vec<(Effect, bool)> = plans
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match (p, ran.get(&i)) {
                (Plan::Run { effect, .. }, Some((o, _))) => Some((*effect, !o.is_error)),
                _ => None,
            })
            .collect();
        let ordered = self.settings.sequential || effects.len() < 2;
        self.evidence.record_turn(&effects, ordered);
        // A call that may have changed state makes every earlier result stale, and the
        // results of checks that ran alongside it may predate it: none of them is kept.
        let changed = effects.iter().any(|(e, _)| *e == Effect::Change);
        if changed {
            self.cache.clear();
        }
        let mut outcomes: Vec<CallOutcome> = Vec::with_capacity(calls.len());
        let mut results = Vec::with_capacity(calls.len());
        for (i, (call, plan)) in calls.iter().zip(&plans).enumerate() {
            let (outcome, elapsed_ms) = match plan {
                Plan::Answer(text, is_error, ..) => {
                    (CallOutcome::new(text.clone(), *is_error), 0.0)
                }
                Plan::Duplicate(first) => {
                    let shared = outcomes.get(*first).map_or_else(
                        || CallOutcome::new("The call did not complete; try again.", true),
                        |o| {
                            CallOutcome::new(
                                format!(
                                    "[Identical to another call in this turn; answered from its result instead of \
                                     running again.]\n{}",
                                    o.text
                                ),
                                o.is_error,
                            )
                        },
                    );
                    (shared, 0.0)
                }
                Plan::Run { key, effect, .. } => match ran.remove(&i) {
                    Some((outcome, ms)) => {
                        self.executed += 1;
                        for p in &outcome.progress {
                            transcript.record(&Event::Progress {
                                step,
                                id: &call.id,
                                tool: &call.name,
                                progress: p.progress,
                                total: p.total,
                                message: p.message.as_deref().unwrap_or_default(),
                            });
                        }
                        // Only checks are answered again, and only while nothing changed state;
                        // a failed call (a timeout, throttling) may succeed when tried again.
                        if *effect == Effect::Check && !changed && !outcome.is_error {
                            let mut cached = outcome.clone();
                            cached.progress.clear();
                            self.cache.insert(
                                key.clone(),
                                Cached {
                                    step,
                                    outcome: cached,
                                },
                            );
                        }
                        (outcome, ms)
                    }
                    None => (
                        CallOutcome::new(
                            "The call did not complete (its task ended unexpectedly); try again.",
                            true,
                        ),
                        0.0,
                    ),
                },
            };
            let (text, truncated) = truncate_result(&outcome.text, self.settings.max_result_chars);
            transcript.record(&Event::ToolResult {
                step,
                id: &call.id,
                tool: &call.name,
                is_error: outcome.is_error,
                text: &text,
                truncated,
                elapsed_ms,
            });
            results.push(ToolResult {
                call_id: call.id.clone(),
                text,
                is_error: outcome.is_error,
            });
            outcomes.push(outcome);
        }
        let noted = calls
            .iter()
            .zip(&plans)
            .zip(&outcomes)
            .map(|((call, plan), outcome)| TurnCall {
                tool: &call.name,
                what: facts::what_of(&call.name, &call.arguments_object()),
                noted: match plan {
                    Plan::Run { effect, .. } => Noted::Ran {
                        effect: *effect,
                        outcome,
                    },
                    Plan::Answer(.., Some(held)) => Noted::Held(held.clone()),
                    Plan::Answer(.., None) | Plan::Duplicate(_) => Noted::Nothing,
                },
            })
            .collect();
        self.facts.record_turn(step, noted, ordered);
        results
    }

    async fn plan(&self, call: &ToolCall) -> Plan {
        let arguments = match &call.arguments {
            Ok(a) => a.clone(),
            Err(why) => {
                return Plan::Answer(
                    format!(
                        "Your call to `{}` could not be run: {why}. Send the arguments as one JSON object that \
                         matches the tool's input schema, then call it again.",
                        call.name
                    ),
                    true,
                    "invalid",
                    None,
                );
            }
        };
        let Some(tool) = self.toolbox.find(&call.name) else {
            return Plan::Answer(
                format!(
                    "There is no tool named `{}`. Call one of these by its exact name: {}.",
                    call.name,
                    self.toolbox.names().join(", ")
                ),
                true,
                "unknown_tool",
                None,
            );
        };
        let key = call_key(&call.name, &arguments);
        if let Some(earlier) = self.cache.get(&key) {
            return Plan::Answer(
                format!(
                    "[This call is identical to one made at step {}; nothing changed state since, so here is that \
                     result again instead of running it twice. Change the arguments if you need a fresh result \
                     (to poll a probe that changes over time, start the command with `sleep 5;`).]\n{}",
                    earlier.step, earlier.outcome.text
                ),
                earlier.outcome.is_error,
                "cached",
                None,
            );
        }
        let mut effect = self.effect(tool, &arguments);
        if effect != Effect::Check && self.settings.dry_run {
            let refused = Refusal {
                tool: call.name.clone(),
                what: facts::what_of(&tool.remote_name, &Value::Object(arguments.clone())),
                by: "dry_run".into(),
                rules: Vec::new(),
                approval: None,
            };
            return Plan::Answer(
                format!(
                    "DRY RUN: `{}` can change state, so it was not run. Describe what it would do as part of your \
                     plan, and use read-only tools (and observation-only shell commands) to gather facts.",
                    call.name
                ),
                true,
                "refused_dry_run",
                Some(Held::Refused(refused)),
            );
        }
        if effect != Effect::Check && self.settings.read_only_asks {
            match gate::remediate_false(self.app, tool, &arguments, &self.settings.requested_by)
                .await
            {
                Gate::Pass => {}
                // The server refuses it (and audits the refusal): nothing changes state.
                Gate::Refused => effect = Effect::Neutral,
                Gate::Held(text, held) => return Plan::Answer(text, true, "approval", Some(held)),
            }
        }
        let Some(caller) = self.toolbox.caller(tool) else {
            return Plan::Answer(
                format!("The server of `{}` is not connected.", call.name),
                true,
                "unknown_tool",
                None,
            );
        };
        Plan::Run {
            caller,
            arguments,
            key,
            effect,
        }
    }

    /// What a call would do: read-only tools and observation-only `bash` commands check;
    /// `notify` and `ghost` are neutral; everything else may change state.
    fn effect(&self, tool: &AgentTool, args: &Map<String, Value>) -> Effect {
        if tool.read_only || self.is_observation(tool, args) {
            Effect::Check
        } else if tool.local && matches!(tool.remote_name.as_str(), "notify" | "ghost") {
            Effect::Neutral
        } else {
            Effect::Change
        }
    }

    /// A `bash` call of pi-mcp's own server whose command only observes (see
    /// [`crate::guard::observe`]), judged in the directory it would run in.
    fn is_observation(&self, tool: &AgentTool, args: &Map<String, Value>) -> bool {
        if !tool.local || tool.remote_name != "bash" {
            return false;
        }
        let Some(command) = args.get("command").and_then(Value::as_str) else {
            return false;
        };
        let ctx = &self.app.tools;
        let Ok(cwd) = ctx
            .workspace
            .resolve_dir(args.get("cwd").and_then(Value::as_str))
        else {
            return false;
        };
        let paths = PathContext {
            cwd,
            roots: ctx.workspace.roots().to_vec(),
            home: ctx.home.clone(),
        };
        ctx.guard.is_observation(command, &paths)
    }

    /// Runs the planned calls; returns (outcome, elapsed ms) by call index.
    async fn execute(&self, plans: &[Plan]) -> HashMap<usize, (CallOutcome, f64)> {
        let mut out = HashMap::new();
        let runs = plans.iter().enumerate().filter_map(|(i, p)| match p {
            Plan::Run {
                caller, arguments, ..
            } => Some((i, caller.clone(), arguments.clone())),
            Plan::Answer(..) | Plan::Duplicate(_) => None,
        });
        if self.settings.sequential {
            for (i, caller, args) in runs {
                let started = Instant::now();
                let outcome = caller.call(args).await;
                out.insert(i, (outcome, millis(started)));
            }
            return out;
        }
        let mut set = JoinSet::new();
        for (i, caller, args) in runs {
            set.spawn(async move {
                let started = Instant::now();
                let outcome = caller.call(args).await;
                (i, outcome, millis(started))
            });
        }
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, outcome, ms)) => {
                    out.insert(i, (outcome, ms));
                }
                Err(e) => tracing::error!("agent: a tool call task failed: {e}"),
            }
        }
        out
    }
}

/// Milliseconds since `started`, to the microsecond.
pub fn millis(started: Instant) -> f64 {
    (started.elapsed().as_micros() as f64) / 1000.0
}

/// A call's identity: tool name and arguments with object keys sorted.
fn call_key(name: &str, args: &Map<String, Value>) -> String {
    format!("{name} {}", canonical(&Value::Object(args.clone())))
}

/// `value` with object keys sorted.
pub(crate) fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_keys_ignore_argument_order() {
        let a: Map<String, Value> = serde_json::from_str(r#"{"path": "x", "limit": 3}"#).unwrap();
        let b: Map<String, Value> = serde_json::from_str(r#"{"limit": 3, "path": "x"}"#).unwrap();
        assert_eq!(call_key("read", &a), call_key("read", &b));
        assert_ne!(call_key("read", &a), call_key("edit", &b));
    }
}
