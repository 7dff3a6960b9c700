//! Delivery of a run through `tools::notify`: a Slack summary with the top findings, an email
//! with the Markdown and the charts attached, a webhook with the run as JSON, on the channels
//! that are configured. Nothing is sent when no change or finding reaches the configured
//! severity, unless quiet runs are configured to be delivered too. [`plan`] is pure data;
//! [`send`] hands the messages to the [`Notifier`].

use serde::Serialize;
use serde_json::json;

use super::GhostRun;
use crate::severity::Severity;
use crate::tools::notify::config::ChannelConfig;
use crate::tools::notify::{Channel, Message, Notifier};

/// Findings listed in the Slack summary.
pub const SLACK_TOP_FINDINGS: usize = 5;

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DeliveryOutcome {
    pub channel: Channel,
    pub subject: String,
    pub attachments: usize,
    pub delivered: bool,
    /// The receiver's acknowledgement, or why it failed.
    pub detail: String,
}

/// The channels `config` has settings for.
pub fn configured_channels(config: &ChannelConfig) -> Vec<Channel> {
    let mut out = Vec::new();
    if config.slack_webhook_url.is_some() {
        out.push(Channel::Slack);
    }
    if config.smtp_url.is_some() && config.email_from.is_some() && !config.email_to.is_empty() {
        out.push(Channel::Email);
    }
    if config.webhook_url.is_some() {
        out.push(Channel::Webhook);
    }
    out
}

/// Sends `messages`; a failed channel does not stop the others.
pub async fn send(notifier: &Notifier, messages: &[Message]) -> Vec<DeliveryOutcome> {
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        let (delivered, detail) = match notifier.send(m).await {
            Ok(d) => (true, d.to_string()),
            Err(e) => {
                tracing::warn!("ghost: delivery on {} failed: {e}", m.channel);
                (false, e.to_string())
            }
        };
        out.push(DeliveryOutcome {
            channel: m.channel,
            subject: m.subject.clone().unwrap_or_default(),
            attachments: m.attachments.len(),
            delivered,
            detail,
        });
    }
    out
}

/// Which runs are delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPolicy {
    /// Deliver when a schema change or finding is at least this severe.
    pub min_severity: Severity,
    /// Deliver runs with nothing at that level too.
    pub deliver_quiet_runs: bool,
    /// False: deliver nothing whatever the run found (the `ghost` tool's default).
    pub enabled: bool,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            min_severity: Severity::Warning,
            deliver_quiet_runs: false,
            enabled: true,
        }
    }
}

impl DeliveryPolicy {
    /// Delivers nothing.
    pub fn off() -> Self {
        DeliveryPolicy {
            enabled: false,
            ..DeliveryPolicy::default()
        }
    }
}

/// The messages `run` produces under `policy` on the `channels` given; `markdown` is the
/// report's text.
pub fn plan(
    run: &GhostRun,
    markdown: &str,
    policy: &DeliveryPolicy,
    channels: &[Channel],
) -> Vec<Message> {
    if !policy.enabled {
        return Vec::new();
    }
    let mut items: Vec<(Severity, String)> = run
        .items()
        .into_iter()
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
    channels
        .iter()
        .map(|channel| {
            let (text, attachments, data) = match channel {
                Channel::Slack => (slack.clone(), Vec::new(), None),
                Channel::Email => (markdown.to_string(), attachments.clone(), None),
                Channel::Webhook => (subject.clone(), Vec::new(), Some(data.clone())),
            };
            Message {
                channel: *channel,
                subject: Some(subject.clone()),
                text,
                severity: Some(severity),
                attachments,
                data,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ghost::anomaly::{Finding, FindingKind};
    use std::path::PathBuf;

    fn run(findings: Vec<Finding>) -> GhostRun {
        GhostRun {
            backend: Some("sqlite".into()),
            elapsed_ms: 1,
            first_run: false,
            tables_profiled: 1,
            findings,
            report_path: PathBuf::from("/r/shop/x/report.md"),
            latest_path: PathBuf::from("/r/shop/latest.md"),
            charts: vec![PathBuf::from("/r/shop/x/rows-orders.png")],
            ..GhostRun::started(
                "r1".into(),
                "shop".into(),
                "2026-01-01T00:00:00.000Z".into(),
            )
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
        assert!(plan(&quiet, "# r", &DeliveryPolicy::default(), &Channel::ALL).is_empty());
        let always = DeliveryPolicy {
            deliver_quiet_runs: true,
            ..DeliveryPolicy::default()
        };
        let msgs = plan(&quiet, "# r", &always, &Channel::ALL);
        assert_eq!(msgs.len(), 3);
        assert!(msgs[0].subject.as_deref().unwrap().contains("nothing new"));
        let loud = run(vec![finding(Severity::Critical, "fell to 0")]);
        assert!(plan(&loud, "# r", &DeliveryPolicy::off(), &Channel::ALL).is_empty());
    }

    #[test]
    fn findings_at_the_bar_make_three_messages() {
        let r = run(vec![
            finding(Severity::Warning, "rose a bit"),
            finding(Severity::Critical, "fell from 100 to 5"),
        ]);
        let msgs = plan(&r, "# report", &DeliveryPolicy::default(), &Channel::ALL);
        let channels: Vec<Channel> = msgs.iter().map(|m| m.channel).collect();
        assert_eq!(channels, [Channel::Slack, Channel::Email, Channel::Webhook]);
        assert!(msgs.iter().all(|m| m.severity == Some(Severity::Critical)));
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
        let msgs = plan(&r, "", &critical_only, &[Channel::Webhook]);
        assert_eq!(msgs.len(), 1, "only the configured channels");
        assert!(
            msgs[0]
                .subject
                .as_deref()
                .unwrap()
                .starts_with("Data Ghost: 1 item")
        );
    }
}
