//! The email channel through SMTP (lettre). `SMTP_URL` says how to reach the server:
//! `smtp://user:pass@host:587` requires STARTTLS, `smtps://user:pass@host:465` is implicit
//! TLS, and `?tls=none` (e.g. `smtp://127.0.0.1:25?tls=none`) opts out for a local relay or
//! test sink; credentials are never sent in clear text to a host that is not loopback.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment as MimeAttachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::Message;
use super::attachments::Attachment;
use super::config::{ALERT_EMAIL_FROM, ALERT_EMAIL_TO, SMTP_URL};
use super::retry::Failure;

/// Time limit of one SMTP conversation step.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(20);
/// Subject of a notification that has none.
pub const DEFAULT_SUBJECT: &str = "pi-mcp notification";

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, which the server must offer.
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Implicit,
    /// No TLS at all (`?tls=none`): local relays and test sinks only.
    None,
}

/// A parsed `SMTP_URL`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpServer {
    pub security: Security,
    pub host: String,
    pub port: u16,
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl SmtpServer {
    /// Parses `SMTP_URL`; errors say what to write instead.
    pub fn parse(url: &str) -> Result<SmtpServer, String> {
        let bad = |why: String| format!("{SMTP_URL} is not usable: {why}");
        let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
            bad(format!(
                "not a URL ({e}); e.g. smtp://user:pass@mail.example.com:587"
            ))
        })?;
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host".into()))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let mut security = match parsed.scheme() {
            "smtp" => Security::StartTls,
            "smtps" => Security::Implicit,
            other => return Err(bad(format!("scheme `{other}`: use smtp:// or smtps://"))),
        };
        for (k, v) in parsed.query_pairs() {
            match (k.as_ref(), v.as_ref(), security) {
                ("tls", "none", Security::StartTls) => security = Security::None,
                ("tls", "required" | "starttls", Security::StartTls) => {}
                ("tls", "implicit" | "wrapper", _) => security = Security::Implicit,
                ("tls", other, _) => {
                    return Err(bad(format!(
                        "tls={other}: use tls=required (STARTTLS, the default for smtp://), \
                         tls=none (local relay) or smtps:// for implicit TLS"
                    )));
                }
                (other, _, _) => return Err(bad(format!("unknown parameter `{other}`"))),
            }
        }
        let port = parsed.port().unwrap_or(match security {
            Security::StartTls => 587,
            Security::Implicit => 465,
            Security::None => 25,
        });
        let credentials = (!parsed.username().is_empty()).then(|| {
            (
                decode_user_info(parsed.username()),
                decode_user_info(parsed.password().unwrap_or("")),
            )
        });
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if security == Security::None && credentials.is_some() && !loopback {
            return Err(bad(format!(
                "tls=none would send the password in clear text to `{host}`; \
                 drop tls=none (STARTTLS) or use smtps://"
            )));
        }
        Ok(SmtpServer {
            security,
            host,
            port,
            credentials,
        })
    }

    /// `smtp://host:port (STARTTLS)`, without credentials.
    pub fn shown(&self) -> String {
        let (scheme, how) = match self.security {
            Security::StartTls => ("smtp", "STARTTLS"),
            Security::Implicit => ("smtps", "TLS"),
            Security::None => ("smtp", "no TLS"),
        };
        format!("{scheme}://{}:{} ({how})", self.host, self.port)
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, Failure> {
        let tls_err = |e: lettre::transport::smtp::Error| {
            Failure::permanent(format!("cannot set up TLS for `{}`: {e}", self.host))
        };
        let builder = match self.security {
            Security::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&self.host).map_err(tls_err)?
            }
            Security::Implicit => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(&self.host).map_err(tls_err)?
            }
            Security::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host),
        };
        let builder = builder.port(self.port).timeout(Some(SMTP_TIMEOUT));
        let builder = match &self.credentials {
            Some((user, pass)) => builder.credentials(Credentials::new(user.clone(), pass.clone())),
            None => builder,
        };
        Ok(builder.build())
    }
}

/// The key of a message's `data` whose value (letters, digits, `-`) becomes the email's
/// Message-ID, so that a repeated message can be recognised.
pub const IDEMPOTENCY_KEY: &str = "idempotency_key";

/// The email for `msg`: `[SEVERITY] subject`, the text as the plain body, files attached.
pub fn build(
    from: &str,
    to: &[String],
    msg: &Message,
    attachments: &[Attachment],
) -> Result<lettre::Message, Failure> {
    let from: Mailbox = from.parse().map_err(|e| {
        Failure::permanent(format!(
            "{ALERT_EMAIL_FROM} `{from}` is not an address: {e}"
        ))
    })?;
    let subject = msg.subject.as_deref().unwrap_or(DEFAULT_SUBJECT);
    let subject = match msg.severity {
        Some(s) => format!("[{}] {subject}", s.as_str().to_uppercase()),
        None => subject.to_string(),
    };
    let mut builder = lettre::Message::builder().from(from).subject(subject);
    // A sender that may repeat a message (the monitor's outbox after a crash) gives it a
    // stable key: the same Message-ID each time lets receivers drop the repeat.
    if let Some(key) = msg
        .data
        .as_ref()
        .and_then(|d| d.get(IDEMPOTENCY_KEY))
        .and_then(serde_json::Value::as_str)
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        builder = builder.message_id(Some(format!("<{key}@pi-mcp>")));
    }
    for addr in to {
        let mailbox: Mailbox = addr.parse().map_err(|e| {
            Failure::permanent(format!(
                "{ALERT_EMAIL_TO} holds `{addr}`, which is not an address: {e}"
            ))
        })?;
        builder = builder.to(mailbox);
    }
    let text = SinglePart::plain(msg.text.clone());
    let built = if attachments.is_empty() {
        builder.singlepart(text)
    } else {
        let mut parts = MultiPart::mixed().singlepart(text);
        for a in attachments {
            let mime = ContentType::parse(a.mime)
                .map_err(|e| Failure::permanent(format!("bad MIME type {}: {e}", a.mime)))?;
            parts =
                parts.singlepart(MimeAttachment::new(a.name.clone()).body(a.bytes.clone(), mime));
        }
        builder.multipart(parts)
    };
    built.map_err(|e| Failure::permanent(format!("cannot build the email: {e}")))
}

/// Sends `email` through `server`.
pub async fn deliver(server: &SmtpServer, email: lettre::Message) -> Result<String, Failure> {
    let transport = server.transport()?;
    match transport.send(email).await {
        Ok(response) => Ok(format!("SMTP {}", response.code())),
        Err(e) => Err(classify(server, &e)),
    }
}

fn classify(server: &SmtpServer, e: &lettre::transport::smtp::Error) -> Failure {
    let text = crate::redact::text(&e.to_string());
    if e.is_tls() {
        return Failure::permanent(format!(
            "TLS with {} failed: {text} (a local relay without TLS needs ?tls=none in {SMTP_URL})",
            server.shown()
        ));
    }
    if e.is_permanent() || e.is_client() {
        return Failure::permanent(format!("{} refused the email: {text}", server.shown()));
    }
    Failure::transient(format!("{}: {text}", server.shown()))
}

/// Decodes `%XX` escapes in URL user info.
fn decode_user_info(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_choose_tls_and_defaults() {
        let s = SmtpServer::parse("smtp://user:p%40ss@mail.example.com:587").unwrap();
        assert_eq!((s.security, s.port), (Security::StartTls, 587));
        assert_eq!(s.credentials, Some(("user".into(), "p@ss".into())));
        assert_eq!(s.shown(), "smtp://mail.example.com:587 (STARTTLS)");
        assert!(!format!("{s:?}").contains("p@ss"));
        let s = SmtpServer::parse("smtps://u:p@mail.example.com").unwrap();
        assert_eq!((s.security, s.port), (Security::Implicit, 465));
        let s = SmtpServer::parse("smtp://127.0.0.1:1025?tls=none").unwrap();
        assert_eq!((s.security, s.port), (Security::None, 1025));
        let e = SmtpServer::parse("smtp://u:p@mail.example.com?tls=none").unwrap_err();
        assert!(e.contains("clear text"), "{e}");
        assert!(SmtpServer::parse("smtp://u:p@localhost:25?tls=none").is_ok());
        let e = SmtpServer::parse("http://mail.example.com").unwrap_err();
        assert!(e.starts_with("SMTP_URL") && e.contains("smtp://"), "{e}");
        assert!(
            SmtpServer::parse("smtp://h?tls=maybe")
                .unwrap_err()
                .contains("tls=none")
        );
    }

    #[test]
    fn emails_carry_severity_subject_and_typed_attachments() {
        let msg = Message {
            subject: Some("Disk full".into()),
            severity: Some(crate::severity::Severity::Critical),
            ..Message::new(super::super::Channel::Email, "body text")
        };
        let att = Attachment {
            name: "r.md".into(),
            mime: "text/markdown",
            bytes: b"# Report".to_vec(),
        };
        let email = build("pi@example.com", &["ops@example.com".into()], &msg, &[att]).unwrap();
        let raw = String::from_utf8_lossy(&email.formatted()).into_owned();
        assert!(raw.contains("Subject: [CRITICAL] Disk full"), "{raw}");
        assert!(
            raw.contains("text/markdown") && raw.contains("filename=\"r.md\""),
            "{raw}"
        );
        let e = build("not an address", &[], &msg, &[]).unwrap_err();
        assert!(e.message.starts_with(ALERT_EMAIL_FROM), "{}", e.message);
    }
}
