//! The channels' own health check for `pi-mcp doctor`: for each channel, whether its variables
//! are set and parse, whether the policy lets it be used, and which alert rules depend on it;
//! and, on request, a real test notice through the same [`Notifier`] every sender uses.

use std::collections::HashMap;

use super::config::{self, ChannelConfig, Origin};
use super::{Channel, Message, Notifier, email, webhook};
use crate::guard::notify::{normalized_url, shown_url};
use crate::guard::{Decision, Guard};
use crate::health::Check;

/// One check per channel. `used` maps a channel to the alert rules that send on it (a rule's
/// channel that is not configured fails: its notices could never leave).
pub fn health(
    guard: &Guard,
    config: &ChannelConfig,
    used: &HashMap<Channel, Vec<String>>,
) -> Vec<Check> {
    let mut out: Vec<Check> = Channel::ALL
        .into_iter()
        .map(|c| {
            let rules = used.get(&c).map(Vec::as_slice).unwrap_or_default();
            channel(guard, config, c, rules)
        })
        .collect();
    if out.iter().all(|c| c.detail.starts_with("not configured")) {
        out.push(Check::warn(
            "channels",
            "no channel is configured: alerts, Data Ghost reports and heartbeat checks are only \
             logged",
            format!(
                "set {} (Slack), {} (webhook) or {} with {} and {} (email)",
                config::SLACK_WEBHOOK_URL,
                config::ALERT_WEBHOOK_URL,
                config::SMTP_URL,
                config::ALERT_EMAIL_FROM,
                config::ALERT_EMAIL_TO
            ),
        ));
    }
    out
}

fn channel(guard: &Guard, cfg: &ChannelConfig, c: Channel, rules: &[String]) -> Check {
    let name = format!("channel {c}");
    let users = if rules.is_empty() {
        String::new()
    } else {
        format!(" (used by {})", crate::health::rules_list(rules))
    };
    let (configured, var) = match c {
        Channel::Slack => (cfg.slack_webhook_url.is_some(), config::SLACK_WEBHOOK_URL),
        Channel::Webhook => (cfg.webhook_url.is_some(), config::ALERT_WEBHOOK_URL),
        Channel::Email => (
            cfg.smtp_url.is_some() || cfg.email_from.is_some() || !cfg.email_to.is_empty(),
            config::SMTP_URL,
        ),
    };
    if !configured {
        if rules.is_empty() {
            return Check::ok(name, format!("not configured ({var} is not set)"));
        }
        return Check::fail(
            name,
            format!("not configured{users}: {var} is not set, so these notices never leave"),
            format!("set {var} in the server's environment, or take `{c}` out of those rules"),
        );
    }
    let enabled = guard.judge_notify_channel(c.as_str());
    if enabled.decision == Decision::Deny {
        return Check::warn(
            name,
            format!("configured, but {}{users}", enabled.summary()),
            format!("add \"{c}\" to the policy's notify.channels, or unset {var}"),
        )
        .needed_if(!rules.is_empty());
    }
    let described = match c {
        Channel::Slack => url_channel(guard, cfg, c, cfg.slack_webhook_url.as_deref(), var),
        Channel::Webhook => {
            url_channel(guard, cfg, c, cfg.webhook_url.as_deref(), var).and_then(|shown| {
                if let Some(spec) = &cfg.webhook_headers {
                    webhook::parse_headers(spec)
                        .map_err(|e| (e, config::ALERT_WEBHOOK_HEADERS.to_string()))?;
                }
                let signed = if cfg.webhook_secret.is_some() {
                    "signed with ALERT_WEBHOOK_SECRET"
                } else {
                    "unsigned (set ALERT_WEBHOOK_SECRET to sign)"
                };
                Ok(format!("{shown}, {signed}"))
            })
        }
        Channel::Email => email_channel(guard, cfg),
    };
    match described {
        Ok(detail) => Check::ok(name, format!("{detail}{users}")),
        Err((why, var)) => Check::fail(
            name,
            format!("{why}{users}"),
            format!("correct {var} in the server's environment"),
        ),
    }
}

/// The destination as shown, or why it is unusable and which variable to correct.
type Described = Result<String, (String, String)>;

fn url_channel(
    guard: &Guard,
    cfg: &ChannelConfig,
    c: Channel,
    url: Option<&str>,
    var: &str,
) -> Described {
    let url = url.unwrap_or_default();
    let bad = |why: String| (format!("{var} is not usable: {why}"), var.to_string());
    normalized_url(url).map_err(bad)?;
    let verdict = judge(guard, cfg, c, url);
    if verdict.decision != Decision::Allow {
        return Err((verdict.summary(), var.to_string()));
    }
    let plain = if url.trim().to_ascii_lowercase().starts_with("http://") {
        ", plain http"
    } else {
        ""
    };
    Ok(format!("{}{plain}{}", shown_url(url), trust(cfg)))
}

fn email_channel(guard: &Guard, cfg: &ChannelConfig) -> Described {
    let smtp = cfg.smtp_url.as_deref().ok_or_else(|| {
        (
            config::missing(config::SMTP_URL, "email"),
            config::SMTP_URL.into(),
        )
    })?;
    let server =
        email::SmtpServer::parse(smtp).map_err(|why| (why, config::SMTP_URL.to_string()))?;
    let from = cfg.email_from.as_deref().ok_or_else(|| {
        (
            config::missing(config::ALERT_EMAIL_FROM, "email"),
            config::ALERT_EMAIL_FROM.to_string(),
        )
    })?;
    if cfg.email_to.is_empty() {
        return Err((
            config::missing(config::ALERT_EMAIL_TO, "email"),
            config::ALERT_EMAIL_TO.into(),
        ));
    }
    let probe = Message::new(Channel::Email, "pi-mcp doctor");
    email::build(from, &cfg.email_to, &probe, &[]).map_err(|f| {
        (
            f.message,
            format!("{} / {}", config::ALERT_EMAIL_FROM, config::ALERT_EMAIL_TO),
        )
    })?;
    for to in &cfg.email_to {
        let verdict = judge(guard, cfg, Channel::Email, to);
        if verdict.decision != Decision::Allow {
            return Err((verdict.summary(), config::ALERT_EMAIL_TO.into()));
        }
    }
    Ok(format!(
        "{} via {}{}",
        cfg.email_to.join(", "),
        server.shown(),
        trust(cfg)
    ))
}

fn judge(
    guard: &Guard,
    cfg: &ChannelConfig,
    c: Channel,
    destination: &str,
) -> crate::guard::Verdict {
    match cfg.origin {
        Origin::Operator => guard.judge_configured_notify(c.as_str(), destination),
        Origin::Judged => guard.judge_notify(c.as_str(), destination),
    }
}

fn trust(cfg: &ChannelConfig) -> &'static str {
    match cfg.origin {
        Origin::Operator => " (from the server's environment: trusted as configured)",
        Origin::Judged => " (within the policy's notify allow-list)",
    }
}

/// Sends one real test notice on `channel` (a single attempt, so the answer is immediate).
pub async fn send_test(notifier: &Notifier, channel: Channel) -> Check {
    let name = format!("send-test {channel}");
    let mut msg = Message::new(
        channel,
        "Test notice from `pi-mcp doctor --send-test`: this channel works. Nothing to do.",
    );
    msg.subject = Some("pi-mcp doctor: test notice".into());
    msg.severity = Some(crate::severity::Severity::Info);
    match notifier.send_once(&msg).await {
        Ok(delivery) => Check::ok(name, delivery.to_string()),
        Err(e) => Check::fail(
            name,
            e.message,
            "fix the receiver or the channel's variables (the message says which), then run \
             `pi-mcp doctor --send-test` again",
        ),
    }
}
