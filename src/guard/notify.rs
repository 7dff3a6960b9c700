//! The policy's `notify` section: which channels may be used at all and which destinations
//! (Slack webhook URLs, generic webhook URLs, email recipients) each may reach, as globs. A
//! notification to a channel or destination the allow-list does not name is denied, so a
//! prompt-injected model cannot mail a report to an outsider or post it to its own webhook.
//!
//! Destinations the operator configured in the server's own environment (`SLACK_WEBHOOK_URL`,
//! `ALERT_WEBHOOK_URL`, `SMTP_URL`, `ALERT_EMAIL_TO`) are not the agent's to choose, so they are
//! trusted as configured, whatever their scheme or host ([`super::Guard::judge_configured_notify`]):
//! only the channel switch and the operator's Rego files apply to them. The allow-list governs
//! what a tool call, or a file the agent can edit, can choose.
//!
//! URLs are judged in a normalised form, `scheme://host[:port]/path` (lower-case scheme and
//! host, no user info, query or fragment), so `https://hooks.slack.com@evil.example/services/x`
//! is judged as the `evil.example` URL it really is.

use globset::GlobBuilder;

use super::lazy::LazyGlobSet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::decision::{Decision, Verdict};
use super::policy::PolicyError;

/// The channels pi-mcp can deliver to (the names used in the policy and by the `notify` tool).
pub const CHANNELS: &[&str] = &["slack", "email", "webhook"];

/// Rule id of a denial for a channel the policy does not enable (or that does not exist).
pub const RULE_CHANNEL: &str = "notify-channel";
/// Rule id of a denial for a destination the channel's allow-list does not match.
pub const RULE_DESTINATION: &str = "notify-destination";

/// Which channels and destinations notifications may use. Every list holds globs (`*` also
/// crosses `/`); URLs are matched as `scheme://host[:port]/path`, email addresses lower-cased.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NotifyPolicy {
    /// Channels that may be used: any of `slack`, `email`, `webhook`.
    #[serde(default = "default_channels")]
    pub channels: Vec<String>,
    /// Slack incoming-webhook URLs that may be posted to.
    #[serde(default = "default_slack_webhooks")]
    pub slack_webhooks: Vec<String>,
    /// Generic webhook URLs that may be posted to.
    #[serde(default = "default_webhook_urls")]
    pub webhook_urls: Vec<String>,
    /// Email recipients that may be mailed (e.g. `*@example.com`).
    #[serde(default = "default_email_recipients")]
    pub email_recipients: Vec<String>,
}

fn default_channels() -> Vec<String> {
    CHANNELS.iter().map(|c| c.to_string()).collect()
}
fn default_slack_webhooks() -> Vec<String> {
    vec!["https://hooks.slack.com/services/*".into()]
}
fn default_webhook_urls() -> Vec<String> {
    vec!["https://*".into()]
}
fn default_email_recipients() -> Vec<String> {
    vec!["*@*".into()]
}

impl Default for NotifyPolicy {
    fn default() -> Self {
        NotifyPolicy {
            channels: default_channels(),
            slack_webhooks: default_slack_webhooks(),
            webhook_urls: default_webhook_urls(),
            email_recipients: default_email_recipients(),
        }
    }
}

/// The `notify` section compiled into glob sets.
#[derive(Debug, Clone)]
pub struct NotifyRules {
    channels: Vec<String>,
    slack: LazyGlobSet,
    webhook: LazyGlobSet,
    email: LazyGlobSet,
}

impl NotifyRules {
    /// Builds the sets now: `(field, why)` for one that does not compile.
    pub(super) fn force(&self) -> Result<(), (String, String)> {
        for (field, set) in [
            ("notify.slack_webhooks", &self.slack),
            ("notify.webhook_urls", &self.webhook),
            ("notify.email_recipients", &self.email),
        ] {
            set.force().map_err(|m| (field.to_string(), m))?;
        }
        Ok(())
    }

    /// Compiles the section; errors name the field (`notify.webhook_urls[2]`).
    pub fn compile(policy: &NotifyPolicy, file: &str) -> Result<NotifyRules, PolicyError> {
        let err = |field: String, message: String| PolicyError::Rule {
            file: file.to_string(),
            rule: "-".into(),
            field,
            message,
        };
        for (i, c) in policy.channels.iter().enumerate() {
            if !CHANNELS.contains(&c.as_str()) {
                return Err(err(
                    format!("notify.channels[{i}]"),
                    format!("unknown channel `{c}`: use {}", CHANNELS.join(", ")),
                ));
            }
        }
        let set = |name: &str, globs: &[String], case_insensitive: bool| {
            let mut b = Vec::new();
            for (i, g) in globs.iter().enumerate() {
                let glob = GlobBuilder::new(g)
                    .case_insensitive(case_insensitive)
                    .build()
                    .map_err(|e| err(format!("notify.{name}[{i}]"), e.to_string()))?;
                b.push(glob);
            }
            Ok(LazyGlobSet::allow_list(b))
        };
        Ok(NotifyRules {
            channels: policy.channels.clone(),
            slack: set("slack_webhooks", &policy.slack_webhooks, false)?,
            webhook: set("webhook_urls", &policy.webhook_urls, false)?,
            email: set("email_recipients", &policy.email_recipients, true)?,
        })
    }
}

/// `scheme://host[:port]/path` of an http(s) URL, or why it is not one.
pub fn normalized_url(url: &str) -> Result<String, String> {
    let uri: http::Uri = url
        .trim()
        .parse()
        .map_err(|e| format!("`{url}` is not a valid URL ({e})"))?;
    let scheme = uri
        .scheme_str()
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| format!("`{url}` has no scheme (use https://...)"))?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("`{url}` is not an http(s) URL"));
    }
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("`{url}` has no host"))?
        .to_ascii_lowercase();
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!("{scheme}://{host}{port}{}", uri.path()))
}

/// `scheme://host[:port]/first-segment/…`: webhook URLs carry their secret in the path
/// (Slack's `T…/B…/token`) or the query, so only the start is shown.
pub fn shown_url(url: &str) -> String {
    let Ok(normal) = normalized_url(url) else {
        return "[unparsable URL]".into();
    };
    let (origin, path) = match normal.match_indices('/').nth(2) {
        Some((i, _)) => normal.split_at(i),
        None => (normal.as_str(), ""),
    };
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    match (segments.next(), segments.next()) {
        (None, _) => origin.to_string(),
        (Some(first), None) => format!("{origin}/{first}"),
        (Some(first), Some(_)) => format!("{origin}/{first}/…"),
    }
}

impl super::Guard {
    /// Judges whether `channel` may be used at all: unknown or not enabled by the policy's
    /// `notify.channels` → deny (`notify-channel`).
    pub fn judge_notify_channel(&self, channel: &str) -> Verdict {
        let rules = &self.notify;
        if !CHANNELS.contains(&channel) {
            return self.notify_deny(
                RULE_CHANNEL,
                format!(
                    "unknown notification channel `{channel}`: use one of {}",
                    CHANNELS.join(", ")
                ),
            );
        }
        if !rules.channels.iter().any(|c| c == channel) {
            return self.notify_deny(
                RULE_CHANNEL,
                format!(
                    "the policy does not enable the `{channel}` channel (notify.channels: {})",
                    rules.channels.join(", ")
                ),
            );
        }
        Verdict::allow()
    }

    /// Judges one notification: the channel must be enabled and `destination` (a webhook URL
    /// or one email recipient) must match the channel's allow-list, else deny naming the rule
    /// (`notify-channel`, `notify-destination`). The policy's Rego files then see
    /// `{command: destination, commands: [["notify", channel, destination]], tool: "notify"}`.
    pub fn judge_notify(&self, channel: &str, destination: &str) -> Verdict {
        let verdict = self.judge_notify_channel(channel);
        if verdict.decision == Decision::Deny {
            return verdict;
        }
        let rules = &self.notify;
        let (globs, field, candidate) = match channel {
            "slack" => (
                &rules.slack,
                "notify.slack_webhooks",
                normalized_url(destination),
            ),
            "webhook" => (
                &rules.webhook,
                "notify.webhook_urls",
                normalized_url(destination),
            ),
            _ => (
                &rules.email,
                "notify.email_recipients",
                email_address(destination),
            ),
        };
        let verdict = match candidate {
            Err(why) => self.notify_deny(RULE_DESTINATION, why),
            Ok(c) if globs.is_match(&c) => Verdict::allow(),
            Ok(c) => {
                let shown = if channel == "email" { c } else { shown_url(&c) };
                self.notify_deny(
                    RULE_DESTINATION,
                    format!("`{shown}` is not in the policy's {field} allow-list for `{channel}`"),
                )
            }
        };
        self.notify_rego(channel, destination, verdict)
    }

    /// Judges a notification to a destination the operator configured in the server's own
    /// environment: the agent cannot change it, so the allow-list does not apply (any scheme,
    /// any host); the channel must still be enabled, and the policy's Rego files still decide.
    pub fn judge_configured_notify(&self, channel: &str, destination: &str) -> Verdict {
        let verdict = self.judge_notify_channel(channel);
        if verdict.decision == Decision::Deny {
            return verdict;
        }
        self.notify_rego(channel, destination, verdict)
    }

    /// `verdict` merged with what the policy's Rego files say about the notification.
    fn notify_rego(&self, channel: &str, destination: &str, verdict: Verdict) -> Verdict {
        let mut verdict = verdict;
        if let Some(rego) = &self.rego {
            // Rego sees a URL without its secret path or query (a reason that echoes its input
            // must not carry a webhook token into the audit log).
            let shown = if channel == "email" {
                destination.to_string()
            } else {
                normalized_url(destination)
                    .map_or_else(|_| "<invalid URL>".into(), |u| shown_url(&u))
            };
            let input = serde_json::json!({
                "command": shown,
                "commands": [["notify", channel, shown]],
                "cwd": "",
                "tool": "notify",
                "risk": 0,
            });
            verdict = verdict.merge(rego.judge(&input));
        }
        verdict
    }

    fn notify_deny(&self, rule: &str, message: String) -> Verdict {
        let mut v = Verdict::single(Decision::Deny, rule, message);
        for r in &mut v.reasons {
            r.source = Some(self.source.clone());
        }
        v
    }
}

/// A recipient address lower-cased, or why it is not one.
fn email_address(addr: &str) -> Result<String, String> {
    let a = addr.trim();
    let valid = a.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !domain.contains('@')
    }) && !a.chars().any(|c| c.is_whitespace() || "<>,;\"".contains(c));
    if valid {
        Ok(a.to_ascii_lowercase())
    } else {
        Err(format!(
            "`{addr}` is not a plain email address (user@domain)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Guard, PolicyFile};
    use super::*;

    fn guard(notify: &str) -> Guard {
        let text = format!("{{\"notify\": {notify}}}");
        let file = PolicyFile::parse(&text, "test.json").expect("policy parses");
        Guard::new(file, "test.json").expect("policy compiles")
    }

    fn rule_of(v: &Verdict) -> &str {
        v.reasons.first().map(|r| r.rule.as_str()).unwrap_or("-")
    }

    #[test]
    fn default_policy_allows_real_slack_and_https_and_any_recipient() {
        let g = Guard::load(None).expect("built-in policy");
        let ok = |c: &str, d: &str| g.judge_notify(c, d).decision == Decision::Allow;
        assert!(ok("slack", "https://hooks.slack.com/services/T0/B0/XYZ"));
        assert!(ok("webhook", "https://alerts.example.com/in?x=1"));
        assert!(ok("email", "Ops@Example.com"));
        let v = g.judge_notify("slack", "https://evil.example/services/T0");
        assert_eq!(
            (v.decision, rule_of(&v)),
            (Decision::Deny, RULE_DESTINATION)
        );
        assert!(
            v.summary().contains("notify.slack_webhooks"),
            "{}",
            v.summary()
        );
        let v = g.judge_notify("webhook", "http://127.0.0.1:9/hook");
        assert_eq!(
            v.decision,
            Decision::Deny,
            "plain http is not in the default"
        );
    }

    #[test]
    fn configured_destinations_skip_the_allow_list_but_not_the_channel_switch() {
        let g = guard(
            r#"{"channels": ["webhook", "email"], "webhook_urls": [], "email_recipients": []}"#,
        );
        let allowed = |c: &str, d: &str| g.judge_configured_notify(c, d).decision;
        assert_eq!(
            allowed("webhook", "http://alerts-relay.internal:8080/x"),
            Decision::Allow
        );
        assert_eq!(allowed("email", "oncall@anywhere.example"), Decision::Allow);
        // The same destinations chosen by someone else are judged by the allow-list.
        let v = g.judge_notify("webhook", "http://alerts-relay.internal:8080/x");
        assert_eq!(
            (v.decision, rule_of(&v)),
            (Decision::Deny, RULE_DESTINATION)
        );
        // A channel the operator switched off stays off.
        let v = g.judge_configured_notify("slack", "https://hooks.slack.com/services/x");
        assert_eq!((v.decision, rule_of(&v)), (Decision::Deny, RULE_CHANNEL));
    }

    #[test]
    fn unknown_and_disabled_channels_are_denied() {
        let g = guard(r#"{"channels": ["slack"]}"#);
        let v = g.judge_notify("sms", "+123");
        assert_eq!((v.decision, rule_of(&v)), (Decision::Deny, RULE_CHANNEL));
        assert!(
            v.summary().contains("slack, email, webhook"),
            "{}",
            v.summary()
        );
        let v = g.judge_notify("email", "a@b.c");
        assert_eq!((v.decision, rule_of(&v)), (Decision::Deny, RULE_CHANNEL));
        assert!(v.summary().contains("does not enable"), "{}", v.summary());
        assert_eq!(v.reasons[0].source.as_deref(), Some("test.json"));
    }

    #[test]
    fn destinations_are_normalised_before_matching() {
        let g = guard(
            r#"{"slack_webhooks": ["https://hooks.slack.com/services/*"],
                "webhook_urls": ["http://127.0.0.1:*/hook*"],
                "email_recipients": ["*@example.com"]}"#,
        );
        let deny = |c: &str, d: &str| g.judge_notify(c, d).decision == Decision::Deny;
        // User info cannot smuggle another host past the glob.
        assert!(deny(
            "slack",
            "https://hooks.slack.com@evil.example/services/x"
        ));
        assert!(!deny("slack", "HTTPS://HOOKS.SLACK.COM/services/x"));
        assert!(!deny("webhook", "http://127.0.0.1:8080/hook?sig=1"));
        assert!(deny("webhook", "http://127.0.0.2:8080/hook"));
        assert!(deny("webhook", "ftp://127.0.0.1:21/hook"));
        assert!(deny("webhook", "not a url"));
        assert!(!deny("email", "Ops@EXAMPLE.com"));
        assert!(deny("email", "ops@example.com.evil.example"));
        assert!(deny("email", "a@example.com, b@evil.example"));
    }

    #[test]
    fn denials_do_not_show_the_secret_part_of_a_url() {
        let g = Guard::load(None).expect("built-in policy");
        let v = g.judge_notify("slack", "https://evil.example/services/T0/B0/secret-token");
        assert!(!v.summary().contains("secret-token"), "{}", v.summary());
        assert!(
            v.summary().contains("https://evil.example/services/…"),
            "{}",
            v.summary()
        );
    }

    #[test]
    fn rego_files_see_notifications() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("n.rego"),
            "package pimcp\nimport rego.v1\n\
             decision := \"deny\" if { input.tool == \"notify\"; input.commands[0][1] == \"webhook\" }\n\
             reasons contains \"no webhooks on weekends\" if { decision == \"deny\" }\n",
        )
        .expect("write rego");
        let policy = dir.path().join("p.json");
        std::fs::write(&policy, r#"{"rego": ["n.rego"]}"#).expect("write policy");
        let g = Guard::load(Some(&policy)).expect("policy with rego");
        let v = g.judge_notify("webhook", "https://alerts.example.com/in");
        assert_eq!(v.decision, Decision::Deny);
        assert!(
            v.summary().contains("no webhooks on weekends"),
            "{}",
            v.summary()
        );
        let v = g.judge_notify("slack", "https://hooks.slack.com/services/T0/B0/x");
        assert_eq!(v.decision, Decision::Allow, "{}", v.summary());
    }

    #[test]
    fn bad_sections_are_reported_with_their_field() {
        let text = r#"{"notify": {"channels": ["slack", "pager"]}}"#;
        let file = PolicyFile::parse(text, "p.json").expect("parses");
        let err = Guard::new(file, "p.json")
            .expect_err("unknown channel")
            .to_string();
        assert!(
            err.contains("notify.channels[1]") && err.contains("pager"),
            "{err}"
        );
        let text = r#"{"notify": {"webhook_urls": ["https://[x"]}}"#;
        let file = PolicyFile::parse(text, "p.json").expect("parses");
        let err = Guard::new(file, "p.json")
            .expect_err("bad glob")
            .to_string();
        assert!(err.contains("notify.webhook_urls[0]"), "{err}");
    }
}
