//! Notifications on Slack, email and a generic webhook: the `notify` tool, and the
//! [`Notifier`] the monitor's outbox, the Data Ghost and the agent heartbeat deliver through.
//! Every delivery is judged by the policy first: the channel must be enabled, and a
//! destination the agent could have chosen must match the `notify` allow-list (the operator's
//! own environment is trusted as configured, see [`config::Origin`]); transient failures are retried with backoff ([`retry`]), and what is
//! reported names the destination with its secrets removed.

pub mod attachments;
pub mod config;
pub mod email;
pub mod health;
pub mod http;
pub mod retry;
pub mod slack;
pub mod tool;
pub mod webhook;

use std::path::PathBuf;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::guard::notify::shown_url;
use crate::guard::{Decision, Guard, Verdict};
use crate::severity::Severity;

use config::ChannelConfig;
use retry::RetryPolicy;

/// Where a notification goes.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Slack,
    Email,
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Slack, Channel::Email, Channel::Webhook];

    /// The name used in the policy, the tool and the rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Slack => "slack",
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Channel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown channel `{s}`: use slack, email or webhook"))
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub channel: Channel,
    pub subject: Option<String>,
    pub text: String,
    pub severity: Option<Severity>,
    /// Files to send along (email attaches them; Slack and webhooks name them).
    pub attachments: Vec<PathBuf>,
    /// Extra structured payload: merged into the webhook JSON body, rendered as Slack blocks
    /// fields; its `idempotency_key` (if any) becomes the email's Message-ID.
    pub data: Option<serde_json::Value>,
}

impl Message {
    /// A message with only a channel and text.
    pub fn new(channel: Channel, text: impl Into<String>) -> Self {
        Message {
            channel,
            subject: None,
            text: text.into(),
            severity: None,
            attachments: Vec::new(),
            data: None,
        }
    }
}

/// A notification that arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub channel: Channel,
    /// Where it went, secrets removed (`https://hooks.slack.com/services/…`, recipients).
    pub destination: String,
    /// Attempts it took (1 when the first try succeeded).
    pub attempts: u32,
    /// The receiver's acknowledgement (`HTTP 200 ok`, `SMTP 250`).
    pub status: String,
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plural = if self.attempts == 1 { "" } else { "s" };
        write!(
            f,
            "Delivered on {} to {} ({} attempt{plural}; {}).",
            self.channel, self.destination, self.attempts, self.status
        )
    }
}

/// A notification that did not arrive.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    pub message: String,
    /// Worth trying again later (the receiver was down, busy or rate-limiting).
    pub transient: bool,
    /// Set when the policy refused the notification.
    pub verdict: Option<Verdict>,
}

impl NotifyError {
    pub fn permanent(message: impl Into<String>) -> Self {
        NotifyError {
            message: message.into(),
            transient: false,
            verdict: None,
        }
    }

    pub fn denied(message: impl Into<String>, verdict: Verdict) -> Self {
        NotifyError {
            message: message.into(),
            transient: false,
            verdict: Some(verdict),
        }
    }
}

/// Delivers notifications on the configured channels, within the policy. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Notifier {
    guard: Arc<Guard>,
    config: Arc<ChannelConfig>,
    retry: RetryPolicy,
}

/// Where one message goes, resolved from the configuration and judged.
enum Route {
    Slack {
        url: String,
    },
    Email {
        server: email::SmtpServer,
        from: String,
        to: Vec<String>,
    },
    Webhook {
        url: String,
        headers: reqwest::header::HeaderMap,
    },
}

impl Notifier {
    /// Channels from the environment (see [`config`]), retries from [`RetryPolicy::from_env`].
    pub fn from_env(guard: Arc<Guard>) -> Notifier {
        Notifier::new(guard, ChannelConfig::from_env(), RetryPolicy::from_env())
    }

    pub fn new(guard: Arc<Guard>, config: ChannelConfig, retry: RetryPolicy) -> Notifier {
        Notifier {
            guard,
            config: Arc::new(config),
            retry,
        }
    }

    /// Judges `msg`, then delivers it, retrying transient failures.
    pub async fn send(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        self.deliver(msg, self.retry).await
    }

    /// Judges `msg`, then makes one attempt (callers that retry across heartbeats).
    pub async fn send_once(&self, msg: &Message) -> Result<Delivery, NotifyError> {
        self.deliver(msg, self.retry.once()).await
    }

    async fn deliver(&self, msg: &Message, policy: RetryPolicy) -> Result<Delivery, NotifyError> {
        let route = self.route(msg.channel)?;
        let destination = route.shown();
        let files = attachments::load(&self.guard, &msg.attachments).await?;
        let names: Vec<String> = files.iter().map(|a| a.name.clone()).collect();
        let what = format!("notify {} to {destination}", msg.channel);
        let result = match &route {
            Route::Slack { url } => {
                retry::run(policy, &what, || slack::deliver(url, msg, &names)).await
            }
            Route::Webhook { url, headers } => {
                let secret = self.config.webhook_secret.as_deref();
                retry::run(policy, &what, || {
                    webhook::deliver(url, secret, headers, msg, &names)
                })
                .await
            }
            Route::Email { server, from, to } => {
                let email = email::build(from, to, msg, &files)
                    .map_err(|f| NotifyError::permanent(f.message))?;
                retry::run(policy, &what, || email::deliver(server, email.clone())).await
            }
        };
        match result {
            Ok((status, attempts)) => {
                tracing::info!("{what}: delivered after {attempts} attempt(s): {status}");
                Ok(Delivery {
                    channel: msg.channel,
                    destination,
                    attempts,
                    status,
                })
            }
            Err((failure, attempts)) => {
                let plural = if attempts == 1 { "" } else { "s" };
                Err(NotifyError {
                    message: format!(
                        "{} to {destination} failed after {attempts} attempt{plural}: {}{}",
                        msg.channel,
                        failure.message,
                        if failure.transient {
                            " (transient: it may succeed later)"
                        } else {
                            ""
                        }
                    ),
                    transient: failure.transient,
                    verdict: None,
                })
            }
        }
    }

    /// The configured destination of `channel`, judged by the policy.
    fn route(&self, channel: Channel) -> Result<Route, NotifyError> {
        self.judged(channel.as_str(), None)?;
        let cfg = &self.config;
        let need = |v: &Option<String>, var: &str| {
            v.clone()
                .ok_or_else(|| NotifyError::permanent(config::missing(var, channel.as_str())))
        };
        match channel {
            Channel::Slack => {
                let url = need(&cfg.slack_webhook_url, config::SLACK_WEBHOOK_URL)?;
                self.judged("slack", Some(&url))?;
                Ok(Route::Slack { url })
            }
            Channel::Webhook => {
                let url = need(&cfg.webhook_url, config::ALERT_WEBHOOK_URL)?;
                self.judged("webhook", Some(&url))?;
                let headers = match &cfg.webhook_headers {
                    Some(spec) => webhook::parse_headers(spec).map_err(NotifyError::permanent)?,
                    None => reqwest::header::HeaderMap::new(),
                };
                Ok(Route::Webhook { url, headers })
            }
            Channel::Email => {
                let smtp = need(&cfg.smtp_url, config::SMTP_URL)?;
                let server = email::SmtpServer::parse(&smtp).map_err(NotifyError::permanent)?;
                let from = need(&cfg.email_from, config::ALERT_EMAIL_FROM)?;
                if cfg.email_to.is_empty() {
                    return Err(NotifyError::permanent(config::missing(
                        config::ALERT_EMAIL_TO,
                        "email",
                    )));
                }
                for to in &cfg.email_to {
                    self.judged("email", Some(to))?;
                }
                Ok(Route::Email {
                    server,
                    from,
                    to: cfg.email_to.clone(),
                })
            }
        }
    }

    /// Refuses what the policy denies (a notification is never `ask`: nobody waits for it). A
    /// destination from the operator's own configuration is not held to the allow-list.
    fn judged(&self, channel: &str, destination: Option<&str>) -> Result<(), NotifyError> {
        let verdict = match (destination, self.config.origin) {
            (Some(d), config::Origin::Operator) => self.guard.judge_configured_notify(channel, d),
            (Some(d), config::Origin::Judged) => self.guard.judge_notify(channel, d),
            (None, _) => self.guard.judge_notify_channel(channel),
        };
        if verdict.decision == Decision::Allow {
            return Ok(());
        }
        let reasons: Vec<String> = verdict.deciding_reasons().map(|r| r.to_string()).collect();
        Err(NotifyError::denied(
            format!(
                "The policy does not allow this notification: {}",
                crate::redact::text(&reasons.join("; "))
            ),
            verdict,
        ))
    }
}

impl Route {
    /// The destination as reported: no credentials, no URL secrets.
    fn shown(&self) -> String {
        match self {
            Route::Slack { url } | Route::Webhook { url, .. } => shown_url(url),
            Route::Email { server, to, .. } => format!("{} via {}", to.join(", "), server.shown()),
        }
    }
}

/// `s` cut to at most `max` characters, ending in `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_match_the_policy() {
        let names: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names, crate::guard::notify::CHANNELS);
        assert_eq!("email".parse::<Channel>(), Ok(Channel::Email));
        assert!("sms".parse::<Channel>().is_err());
    }

    #[test]
    fn urls_are_shown_without_their_secrets() {
        assert_eq!(
            shown_url("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/services/…"
        );
        assert_eq!(
            shown_url("http://u:pw@127.0.0.1:8080/hook?sig=x"),
            "http://127.0.0.1:8080/hook"
        );
        assert_eq!(shown_url("https://example.com"), "https://example.com");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 3), "abc");
    }

    #[tokio::test]
    async fn missing_configuration_and_denials_are_reported_before_any_io() {
        let guard = Arc::new(Guard::load(None).expect("built-in policy"));
        let n = Notifier::new(
            guard.clone(),
            ChannelConfig::default(),
            RetryPolicy::default(),
        );
        let e = n
            .send(&Message::new(Channel::Email, "x"))
            .await
            .unwrap_err();
        assert!(
            e.message.starts_with("SMTP_URL is not set") && e.verdict.is_none(),
            "{e}"
        );
        // Destinations not from the operator's environment are held to the allow-list.
        let cfg = ChannelConfig {
            webhook_url: Some("http://127.0.0.1:9/hook".into()),
            ..ChannelConfig::default()
        };
        assert_eq!(cfg.origin, config::Origin::Judged);
        let n = Notifier::new(guard, cfg, RetryPolicy::default());
        let e = n
            .send(&Message::new(Channel::Webhook, "x"))
            .await
            .unwrap_err();
        let rule = e
            .verdict
            .as_ref()
            .and_then(|v| v.reasons.first())
            .map(|r| r.rule.clone());
        assert_eq!(rule.as_deref(), Some("notify-destination"), "{e}");
    }
}
