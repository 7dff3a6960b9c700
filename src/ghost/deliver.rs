//! Delivery of a run, as data: which messages a run produces for the notify channels (a Slack
//! summary with the top findings, an email with the Markdown and the charts attached, a webhook
//! with JSON). Nothing is produced when no change or finding reaches the configured severity,
//! unless quiet runs are configured to be delivered too. Sending is the notify tool's job.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::json;

use super::GhostRun;
use crate::severity::Severity;

/// Findings listed in the Slack summary.
pub const SLACK_TOP_FINDINGS: usize = 5;

/// A notify channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Slack,
    Email,
    Webhook,
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub channel: Channel,
    pub subject: String,
    pub text: String,
    pub severity: Severity,
    pub attachments: Vec<PathBuf>,
    pub data: Option<serde_json::Value>,
}

/// Which runs are delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPolicy {
    /// Deliver when a schema change or finding is at least this severe.
    pub min_severity: Severity,
    /// Deliver runs with nothing at that level too.
    pub deliver_quiet_runs: bool,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            min_severity: Severity::Warning,
            deliver_quiet_runs: false,
        }
    }
}

/// The messages `run` produces under `policy`; `markdown` is the report's text.
pub fn plan(run: &GhostRun, markdown: &str, policy: &DeliveryPolicy) -> Vec<Message> {
    let mut items: Vec<(Severity, String)> = run
        .schema_changes
        .iter()
        .map(|c| (c.severity(), c.describe()))
        .chain(
            run.findings
                .iter()
                .map(|f| (f.severity, format!("`{}`: {}", f.table, f.message))),
        )
        .chain(run.errors.iter().map(|e| (Severity::Warning, e.clone())))
        .filter(|(s, _)| *s >= policy.min_severity)
        .collect();
    if items.is_empty() && !policy.deliver_quiet_runs {
        return Vec::new();
    }
    items.sort_by_key(|(s, _)| std::cmp::Reverse(*s));
    let severity = items.first().map_or(Severity::Info, |(s, _)| *s);
    let subject = if items.is_empty() {
        format!("Data Ghost: nothing new in {}", run.database)
    } else {
        format!(
            "Data Ghost: {} item(s) at {} or above in {} (highest: {severity})",
            items.len(),
            policy.min_severity,
            run.database
        )
    };
    let report = run.report_path.display().to_string();
    let mut slack = format!("*{subject}*\n");
    for (s, m) in items.iter().take(SLACK_TOP_FINDINGS) {
        slack.push_str(&format!("• [{s}] {m}\n"));
    }
    if items.len() > SLACK_TOP_FINDINGS {
        slack.push_str(&format!(
            "… and {} more\n",
            items.len() - SLACK_TOP_FINDINGS
        ));
    }
    slack.push_str(&format!("Report: {report}"));
    let mut attachments = vec![run.report_path.clone()];
    attachments.extend(run.charts.iter().cloned());
    let data = json!({
        "event": "ghost.run",
        "run_id": run.run_id,
        "database": run.database,
        "taken_at": run.taken_at,
        "severity": severity,
        "report": report,
        "tables_profiled": run.tables_profiled,
        "tables_failed": run.tables_failed,
        "schema_changes": run.schema_changes,
        "findings": run.findings,
        "errors": run.errors,
    });
    vec![
        Message {
            channel: Channel::Slack,
            subject: subject.clone(),
            text: slack,
            severity,
            attachments: Vec::new(),
            data: None,
        },
        Message {
            channel: Channel::Email,
            subject: subject.clone(),
            text: markdown.to_string(),
            severity,
            attachments,
            data: None,
        },
        Message {
            channel: Channel::Webhook,
            subject,
            text: String::new(),
            severity,
            attachments: Vec::new(),
            data: Some(data),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ghost::anomaly::{Finding, FindingKind};

    fn run(findings: Vec<Finding>) -> GhostRun {
        GhostRun {
            run_id: "r1".into(),
            database: "shop".into(),
            backend: Some("sqlite".into()),
            taken_at: "2026-01-01T00:00:00.000Z".into(),
            elapsed_ms: 1,
            first_run: false,
            tables_profiled: 1,
            tables_failed: 0,
            schema_changes: Vec::new(),
            findings,
            errors: Vec::new(),
            profiles: Vec::new(),
            report_path: PathBuf::from("/r/shop/x/report.md"),
            latest_path: PathBuf::from("/r/shop/latest.md"),
            charts: vec![PathBuf::from("/r/shop/x/rows-orders.png")],
            messages: Vec::new(),
        }
    }

    fn finding(severity: Severity, message: &str) -> Finding {
        Finding {
            severity,
            kind: FindingKind::RowCount,
            table: "orders".into(),
            column: None,
            message: message.into(),
        }
    }

    #[test]
    fn quiet_runs_deliver_nothing_unless_configured() {
        let quiet = run(vec![finding(Severity::Info, "steady")]);
        assert!(plan(&quiet, "# r", &DeliveryPolicy::default()).is_empty());
        let always = DeliveryPolicy {
            deliver_quiet_runs: true,
            ..DeliveryPolicy::default()
        };
        let msgs = plan(&quiet, "# r", &always);
        assert_eq!(msgs.len(), 3);
        assert!(msgs[0].subject.contains("nothing new"));
    }

    #[test]
    fn findings_at_the_bar_make_three_messages() {
        let r = run(vec![
            finding(Severity::Warning, "rose a bit"),
            finding(Severity::Critical, "fell from 100 to 5"),
        ]);
        let msgs = plan(&r, "# report", &DeliveryPolicy::default());
        let channels: Vec<Channel> = msgs.iter().map(|m| m.channel).collect();
        assert_eq!(channels, [Channel::Slack, Channel::Email, Channel::Webhook]);
        assert!(msgs.iter().all(|m| m.severity == Severity::Critical));
        // Slack lists the most severe first.
        let slack = &msgs[0].text;
        assert!(slack.find("fell from").unwrap() < slack.find("rose a bit").unwrap());
        // Email carries the Markdown and the report + charts.
        assert_eq!(msgs[1].text, "# report");
        assert_eq!(msgs[1].attachments.len(), 2);
        // The webhook carries JSON.
        let data = msgs[2].data.as_ref().unwrap();
        assert_eq!(data["database"], "shop");
        assert_eq!(data["findings"].as_array().unwrap().len(), 2);
        let critical_only = DeliveryPolicy {
            min_severity: Severity::Critical,
            ..DeliveryPolicy::default()
        };
        assert!(
            plan(&r, "", &critical_only)[0]
                .subject
                .starts_with("Data Ghost: 1 item")
        );
    }
}
