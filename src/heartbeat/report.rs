//! The summary of an alert investigation as it reaches people (Slack, email, webhook): what
//! pi-mcp itself knows comes first (a first line that says whether anything was fixed and
//! verified, the alert, what ran, what changed with its exit status, what waits for approval
//! and how to approve it, whether a check ran after the last change), and the model's own
//! answer follows, quoted. The webhook JSON carries the same facts as fields, so a receiver
//! never has to read the model's prose to know that a change still waits for a human.

use serde::Serialize;
use serde_json::{Value, json};

use crate::agent::{RunOutcome, StopReason};
use crate::monitor::{Rule, RuleReport};

/// Characters of the final answer put in a notification.
pub const SUMMARY_CHARS: usize = 3_000;

/// The alert an investigation was about, as the evaluation that fired it saw it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertFacts {
    pub rule: String,
    pub name: String,
    pub severity: String,
    pub value: Option<f64>,
    pub condition: String,
    pub threshold: f64,
}

impl AlertFacts {
    pub fn new(rule: &Rule, report: &RuleReport) -> AlertFacts {
        AlertFacts {
            rule: rule.id().to_string(),
            name: rule.display_name().to_string(),
            severity: rule.spec.severity.as_str().to_string(),
            value: report.value,
            condition: rule.condition_text(),
            threshold: rule.spec.condition.threshold,
        }
    }

    fn line(&self) -> String {
        let value = self
            .value
            .map_or_else(|| "no value".to_string(), |v| v.to_string());
        format!(
            "Alert: {} ({}, {}) fired: value {value}, condition {}",
            self.rule, self.name, self.severity, self.condition
        )
    }
}

/// The subject of an investigation's summary: the rule and the facts' first line.
pub fn subject(rule_name: &str, outcome: &RunOutcome) -> String {
    let status = outcome.headline.status.replace('_', " ");
    match &outcome.stop_reason {
        StopReason::FinalAnswer => format!("Investigation of {rule_name}: {status}"),
        other => format!(
            "Investigation of {rule_name}: {status} ({})",
            other.as_str()
        ),
    }
}

/// The summary text: the facts' first line, the alert, the facts, how the run ended, then the
/// model's answer (clipped) quoted.
pub fn text(alert: &AlertFacts, outcome: &RunOutcome) -> String {
    facts_then_answer(Some(alert), outcome)
}

/// The same for a run without an alert (the `HEARTBEAT.md` check).
pub fn run_text(outcome: &RunOutcome) -> String {
    facts_then_answer(None, outcome)
}

fn facts_then_answer(alert: Option<&AlertFacts>, outcome: &RunOutcome) -> String {
    let mut lines = vec![outcome.headline.text.clone()];
    lines.extend(alert.map(AlertFacts::line));
    lines.extend(outcome.facts.lines());
    let mut run = format!(
        "Run: {} after {} step(s)",
        outcome.stop_reason.as_str(),
        outcome.steps
    );
    if let StopReason::ModelError(e) = &outcome.stop_reason {
        run.push_str(&format!("; the model API failed: {e}"));
    }
    lines.push(run);
    let answer = outcome.final_answer.trim();
    let answer = if answer.is_empty() {
        "> (the run ended without an answer)".to_string()
    } else {
        crate::tools::notify::clip(answer, SUMMARY_CHARS)
            .lines()
            .map(|l| format!("> {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "{}\n\nThe model's answer (its own words, not checked by pi-mcp):\n{answer}\n\nTranscript: {}",
        lines.join("\n"),
        outcome.transcript_markdown.display()
    )
}

/// The webhook fields: the same facts as the text, for programs.
pub fn data(alert: &AlertFacts, outcome: &RunOutcome) -> Value {
    json!({
        "kind": "investigation",
        "rule": alert.rule,
        "status": outcome.headline.status,
        "headline": outcome.headline.text,
        "alert": alert,
        "stop_reason": outcome.stop_reason.as_str(),
        "steps": outcome.steps,
        "read_only_calls": outcome.facts.checks.len(),
        "checks": outcome.facts.checks,
        "changes": outcome.facts.changes,
        "other_calls": outcome.facts.other_calls,
        "pending_approvals": outcome.facts.pending_approvals,
        "refused": outcome.facts.refused,
        "verification": outcome.facts.verification,
        "verification_reported": outcome.verification_reported,
        "model_answer": outcome.final_answer,
        "transcript": outcome.transcript_markdown.display().to_string(),
    })
}
