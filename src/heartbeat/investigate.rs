//! Alert investigations: when a rule with `on_fire.investigate` turns `firing` in a heartbeat,
//! an SRE agent run starts with the alert as its incident (rule, value, threshold, recent
//! values, runbook), within the rule's own step and time budget, at most one per rule at a time
//! and at most `--max-investigations` at once (later ones wait for a slot). With
//! `remediate: false` its state-changing calls become pending approvals. Its summary goes to the
//! rule's channels; its start and end are in the audit log.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Semaphore;

use super::report::{self, AlertFacts};
use super::runs::{RunContext, Runs};
use crate::agent::{self, Limits, Mode, RunOutcome, RunRequest, StopReason};
use crate::monitor::state::{self, RuleState, StateKind};
use crate::monitor::{Evaluation, Rule, RuleReport};

/// Investigations running at once unless `PI_HEARTBEAT_MAX_INVESTIGATIONS` says otherwise.
pub const DEFAULT_MAX_INVESTIGATIONS: u16 = 2;
/// Model turns of an investigation unless the rule's `on_fire.max_steps` says otherwise.
pub const DEFAULT_INVESTIGATION_STEPS: u32 = 20;
/// Wall-clock limit of an investigation unless the rule's `on_fire.timeout_minutes` says otherwise.
pub const DEFAULT_INVESTIGATION_MINUTES: u64 = 15;
/// Recent values quoted in the incident (newest last).
pub const INCIDENT_RECENT_VALUES: usize = 10;

/// Starts and bounds the investigations of one daemon.
pub struct Investigations {
    /// Rules with an investigation running or waiting for a slot.
    busy: Arc<Mutex<HashSet<String>>>,
    slots: Arc<Semaphore>,
}

impl Investigations {
    pub fn new(max: usize) -> Investigations {
        let max = max.max(1);
        Investigations {
            busy: Arc::default(),
            slots: Arc::new(Semaphore::new(max)),
        }
    }

    /// Starts an investigation for each rule of `evaluation` that has just turned `firing` and
    /// asks for one; returns how many started.
    pub async fn on_evaluation(
        &self,
        runs: &mut Runs,
        rules: &[Rule],
        evaluation: &Evaluation,
    ) -> usize {
        let mut started = 0;
        for report in evaluation.rules.iter().filter(|r| just_fired(r)) {
            let Some(rule) = rules.iter().find(|r| r.id() == report.rule) else {
                continue;
            };
            if !rule.spec.on_fire.investigate {
                continue;
            }
            if !self.claim(rule.id()) {
                tracing::warn!(
                    "heartbeat: rule `{}` fired again while its investigation is still running; not starting another",
                    rule.id()
                );
                continue;
            }
            let Some(ctx) = runs.context("the investigation of a firing rule") else {
                self.release(rule.id());
                continue;
            };
            let recent = match state::load_one(&ctx.app.store, rule.id()).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(
                        "heartbeat: rule `{}`: recent values unavailable: {e}",
                        rule.id()
                    );
                    None
                }
            };
            let incident = incident(rule, report, recent.as_ref());
            let alert = AlertFacts::new(rule, report);
            let claim = Claim {
                busy: self.busy.clone(),
                rule: rule.id().to_string(),
            };
            let (rule, slots) = (rule.clone(), self.slots.clone());
            runs.spawn(async move {
                let _claim = claim;
                investigate(ctx, rule, alert, incident, slots).await;
            });
            started += 1;
        }
        started
    }

    fn claim(&self, rule: &str) -> bool {
        self.busy
            .lock()
            .map(|mut b| b.insert(rule.to_string()))
            .unwrap_or(false)
    }

    fn release(&self, rule: &str) {
        if let Ok(mut b) = self.busy.lock() {
            b.remove(rule);
        }
    }
}

/// A rule's place in the busy set, given back when its run ends however it ends.
struct Claim {
    busy: Arc<Mutex<HashSet<String>>>,
    rule: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut b) = self.busy.lock() {
            b.remove(&self.rule);
        }
    }
}

/// Whether this evaluation moved the rule into `firing`.
/// The rule started firing with this evaluation, and no one silenced it: a silence means a
/// human is on it, so no run starts (its summary would be a notification too).
fn just_fired(report: &RuleReport) -> bool {
    report.state == StateKind::Firing
        && report.previous != StateKind::Firing
        && report.silence.is_none()
}

/// The incident text the SRE prompt is given.
pub fn incident(rule: &Rule, report: &RuleReport, state: Option<&RuleState>) -> String {
    let value = report
        .value
        .map_or_else(|| "no value".to_string(), |v| v.to_string());
    let mut text = format!(
        "Alert rule `{}` ({}, {} rule, severity {}) is FIRING: value {value}, condition {} \
         (threshold {}).",
        rule.id(),
        rule.display_name(),
        report.kind,
        rule.spec.severity.as_str(),
        rule.condition_text(),
        rule.spec.condition.threshold,
    );
    text.push_str(&format!(
        "\nWhat it watches: {}",
        serde_json::to_string(&rule.spec.params).unwrap_or_default()
    ));
    if let Some(s) = state.filter(|s| !s.recent.is_empty()) {
        let skip = s.recent.len().saturating_sub(INCIDENT_RECENT_VALUES);
        let values: Vec<String> = s.recent[skip..]
            .iter()
            .map(|(t, v)| format!("{} = {v}", t.format("%Y-%m-%dT%H:%M:%SZ")))
            .collect();
        text.push_str(&format!(
            "\nRecent values (oldest first): {}",
            values.join(", ")
        ));
    }
    if !rule.spec.labels.is_empty() {
        let labels: Vec<String> = rule
            .spec
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        text.push_str(&format!("\nLabels: {}", labels.join(", ")));
    }
    match &rule.spec.runbook {
        Some(r) => text.push_str(&format!("\nRunbook: {r}")),
        None => text.push_str("\nRunbook: none given."),
    }
    if !rule.spec.on_fire.remediate {
        text.push_str(
            "\nThis investigation may not change anything on its own (remediate: false): \
             state-changing calls become approvals for a human. Diagnose with read-only tools and \
             propose the fix.",
        );
    }
    text
}

/// One investigation: wait for a slot, run, report.
async fn investigate(
    ctx: RunContext,
    rule: Rule,
    alert: AlertFacts,
    incident: String,
    slots: Arc<Semaphore>,
) {
    let id = rule.id().to_string();
    let started = Instant::now();
    let _slot = tokio::select! {
        slot = slots.acquire_owned() => match slot {
            Ok(s) => s,
            Err(_) => return,
        },
        _ = ctx.cancel.cancelled() => {
            ctx.audit("heartbeat.investigate", json!({"rule": id}), "cancelled before it started", started);
            return;
        }
    };
    let on_fire = &rule.spec.on_fire;
    let limits = Limits {
        max_steps: on_fire.max_steps.unwrap_or(DEFAULT_INVESTIGATION_STEPS),
        timeout: Some(Duration::from_secs(
            on_fire
                .timeout_minutes
                .unwrap_or(DEFAULT_INVESTIGATION_MINUTES)
                .saturating_mul(60),
        )),
        ..Limits::default()
    };
    let args = json!({
        "rule": id,
        "remediate": on_fire.remediate,
        "max_steps": limits.max_steps,
        "timeout_secs": limits.timeout.map(|t| t.as_secs()),
    });
    tracing::info!(
        "heartbeat: investigation of `{id}` started (max {} steps, remediate {})",
        limits.max_steps,
        on_fire.remediate
    );
    ctx.audit("heartbeat.investigate", args.clone(), "started", started);
    let request = RunRequest {
        mode: Mode::Sre,
        task: incident,
        provider: ctx.provider.clone(),
        limits,
        dry_run: false,
        read_only_asks: !on_fire.remediate,
        sequential: false,
        mcp_config: None,
        extra_instructions: None,
        cancel: ctx.cancel.child_token(),
        requested_by: format!("investigation of rule {id}"),
    };
    match agent::run(&ctx.app, request).await {
        Ok(outcome) => finished(&ctx, &rule, &alert, args, &outcome, started).await,
        Err(e) => {
            tracing::error!("heartbeat: investigation of `{id}` could not run: {e}");
            ctx.audit(
                "heartbeat.investigate",
                args,
                &format!("failed: {e}"),
                started,
            );
            let text = format!(
                "The investigation of alert `{id}` could not run: {e}. The alert itself was notified as usual."
            );
            ctx.deliver(
                &rule.spec.channels,
                &format!("Investigation of {} failed", rule.display_name()),
                &text,
                rule.spec.severity,
                json!({"kind": "investigation", "rule": id, "stop_reason": "not_started"}),
            )
            .await;
        }
    }
}

/// Logs, audits and (unless the daemon is stopping) delivers a finished investigation.
async fn finished(
    ctx: &RunContext,
    rule: &Rule,
    alert: &AlertFacts,
    args: serde_json::Value,
    outcome: &RunOutcome,
    started: Instant,
) {
    let id = rule.id();
    let transcript = outcome.transcript_markdown.display().to_string();
    let reason = outcome.stop_reason.as_str();
    tracing::info!(
        "heartbeat: investigation of `{id}` ended ({reason}, {} steps); transcript {transcript}",
        outcome.steps
    );
    ctx.audit(
        "heartbeat.investigate",
        args,
        &format!(
            "finished: {reason} after {} steps; {}; transcript {transcript}",
            outcome.steps, outcome.headline.text
        ),
        started,
    );
    if outcome.stop_reason == StopReason::Interrupted {
        // The daemon is stopping: the transcript says so; no delivery holds up the shutdown.
        return;
    }
    if rule.spec.channels.is_empty() {
        tracing::warn!(
            "rule {id}: the investigation's summary is not delivered: the rule names no channels \
             (add \"channels\" to it); the transcript is {}",
            outcome.transcript_markdown.display()
        );
        return;
    }
    let subject = report::subject(rule.display_name(), outcome);
    let text = report::text(alert, outcome);
    let data = report::data(alert, outcome);
    ctx.deliver(
        &rule.spec.channels,
        &subject,
        &text,
        rule.spec.severity,
        data,
    )
    .await;
}
