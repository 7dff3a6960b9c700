//! Posting a JSON body to a Slack or generic webhook and sorting the answer: connection
//! errors, timeouts, 408, 429 (with its `Retry-After`) and 5xx are transient, other non-2xx
//! answers are permanent and reported with the status and a snippet of the body. Redirects are
//! not followed, so a receiver cannot bounce a notification past the policy's allow-list.

use std::sync::OnceLock;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};

use super::retry::{Failure, parse_retry_after};

/// Time limit of one HTTP attempt.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time limit for connecting.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most of a receiver's answer that is read.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Characters of an error answer quoted in the message.
pub const BODY_SNIPPET_CHARS: usize = 200;

/// A receiver's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    retry_after: Option<Duration>,
}

/// One client for every delivery (connection pools and TLS roots are built once).
fn client() -> Result<&'static reqwest::Client, Failure> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .connect_timeout(CONNECT_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Failure::permanent(format!("cannot create the HTTP client: {e}")))
}

/// POSTs `body` as JSON with `headers`.
pub async fn post_json(url: &str, headers: HeaderMap, body: Vec<u8>) -> Result<Answer, Failure> {
    let sent = client()?
        .post(url)
        .headers(headers)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) if e.is_builder() => {
            return Err(Failure::permanent(format!("cannot send to this URL: {e}")));
        }
        Err(e) if e.is_timeout() => {
            return Err(Failure::transient(format!(
                "no answer within {} s",
                REQUEST_TIMEOUT.as_secs()
            )));
        }
        Err(e) => return Err(Failure::transient(format!("cannot connect: {}", chain(&e)))),
    };
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
    let mut bytes = Vec::new();
    while bytes.len() < MAX_ANSWER_BYTES {
        match resp.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) if status < 300 => {
                return Err(Failure::transient(format!(
                    "the answer broke off: {}",
                    chain(&e)
                )));
            }
            Err(_) => break,
        }
    }
    bytes.truncate(MAX_ANSWER_BYTES);
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        retry_after,
    })
}

impl Answer {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The failure this (unsuccessful) answer means, from `who` (e.g. "Slack").
    pub fn failure(&self, who: &str) -> Failure {
        let message = format!("{who} answered HTTP {}{}", self.status, snippet(&self.body));
        let transient = matches!(self.status, 408 | 429) || self.status >= 500;
        Failure {
            message,
            transient,
            retry_after: self.retry_after.filter(|_| transient),
        }
    }
}

/// `: <first characters of the body>` (redacted), or nothing for an empty body.
pub fn snippet(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return String::new();
    }
    format!(
        ": {}",
        crate::redact::text(&super::clip(body, BODY_SNIPPET_CHARS))
    )
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.into(),
            retry_after: Some(Duration::from_secs(1)),
        }
    }

    #[test]
    fn statuses_are_sorted_into_transient_and_permanent() {
        for s in [408, 429, 500, 503] {
            assert!(answer(s, "").failure("X").transient, "{s}");
        }
        for s in [400, 403, 404, 410, 302] {
            let f = answer(s, "no_service").failure("Slack");
            assert!(!f.transient && f.retry_after.is_none(), "{s}");
            assert_eq!(f.message, format!("Slack answered HTTP {s}: no_service"));
        }
        assert_eq!(
            answer(429, "").failure("X").retry_after,
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn snippets_are_clipped() {
        let long = "x".repeat(BODY_SNIPPET_CHARS + 50);
        let s = snippet(&long);
        assert_eq!(s.chars().count(), 2 + BODY_SNIPPET_CHARS, "{s}");
        assert_eq!(snippet("  "), "");
    }
}
