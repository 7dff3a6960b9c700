//! Where notifications go, read from the environment: the Slack incoming webhook, the SMTP
//! server and addresses, the generic webhook with its secret and extra headers. Empty values
//! count as unset; malformed ones are reported when a notification needs them, naming the
//! variable. Settings carry where they came from ([`Origin`]): the server's own environment is
//! the operator's and trusted as configured; anything else is judged by the policy's allow-list.

/// Slack incoming-webhook URL.
pub const SLACK_WEBHOOK_URL: &str = "SLACK_WEBHOOK_URL";
/// SMTP server: `smtp://user:pass@host:587` (STARTTLS), `smtps://...:465`, `smtp://host:25?tls=none`.
pub const SMTP_URL: &str = "SMTP_URL";
/// Sender address of alert email.
pub const ALERT_EMAIL_FROM: &str = "ALERT_EMAIL_FROM";
/// Recipients of alert email, comma separated.
pub const ALERT_EMAIL_TO: &str = "ALERT_EMAIL_TO";
/// Generic webhook URL.
pub const ALERT_WEBHOOK_URL: &str = "ALERT_WEBHOOK_URL";
/// Secret for the webhook's `X-Pi-Signature: sha256=<hex>` header.
pub const ALERT_WEBHOOK_SECRET: &str = "ALERT_WEBHOOK_SECRET";
/// Extra webhook headers: `"K: V; K2: V2"` or a JSON object.
pub const ALERT_WEBHOOK_HEADERS: &str = "ALERT_WEBHOOK_HEADERS";

/// Who chose a [`ChannelConfig`]'s destinations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Origin {
    /// The server's own environment: the operator's, out of the agent's reach. Destinations are
    /// allowed as configured (any scheme, any host); the channel switch still applies.
    Operator,
    /// Anything the agent could have chosen or edited: every destination is judged by the
    /// policy's `notify` allow-list.
    #[default]
    Judged,
}

/// The channels' settings. Its `Debug` hides every value that can hold a secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Who chose the destinations below.
    pub origin: Origin,
    pub slack_webhook_url: Option<String>,
    pub smtp_url: Option<String>,
    pub email_from: Option<String>,
    pub email_to: Vec<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub webhook_headers: Option<String>,
}

impl std::fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| v.as_ref().map(|_| "<set>");
        f.debug_struct("ChannelConfig")
            .field("origin", &self.origin)
            .field("slack_webhook_url", &set(&self.slack_webhook_url))
            .field("smtp_url", &set(&self.smtp_url))
            .field("email_from", &self.email_from)
            .field("email_to", &self.email_to)
            .field("webhook_url", &set(&self.webhook_url))
            .field("webhook_secret", &set(&self.webhook_secret))
            .field("webhook_headers", &set(&self.webhook_headers))
            .finish()
    }
}

impl ChannelConfig {
    /// Reads the process environment.
    pub fn from_env() -> Self {
        ChannelConfig::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the operator's settings through `get` (the server's environment, or a map in
    /// tests): [`Origin::Operator`].
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        ChannelConfig {
            origin: Origin::Operator,
            slack_webhook_url: var(SLACK_WEBHOOK_URL),
            smtp_url: var(SMTP_URL),
            email_from: var(ALERT_EMAIL_FROM),
            email_to: var(ALERT_EMAIL_TO)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            webhook_url: var(ALERT_WEBHOOK_URL),
            webhook_secret: var(ALERT_WEBHOOK_SECRET),
            webhook_headers: var(ALERT_WEBHOOK_HEADERS),
        }
    }
}

/// The message for a setting a channel needs but does not have.
pub fn missing(var: &str, channel: &str) -> String {
    format!(
        "{var} is not set: the `{channel}` channel is not configured on this server \
         (set {var} in the server's environment, or use another channel)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_a_comma_list_and_empty_means_unset() {
        let c = ChannelConfig::from_lookup(|k| match k {
            ALERT_EMAIL_TO => Some(" a@x.io, ,b@y.io ".into()),
            SLACK_WEBHOOK_URL => Some("  ".into()),
            _ => None,
        });
        assert_eq!(c.email_to, vec!["a@x.io", "b@y.io"]);
        assert_eq!(c.slack_webhook_url, None);
        assert!(missing(SMTP_URL, "email").starts_with("SMTP_URL is not set"));
    }
}
