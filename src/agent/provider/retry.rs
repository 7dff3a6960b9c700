//! Sending a model request with retries: 429 (rate limited), 529 (overloaded), other 5xx and
//! connection failures are retried with exponential backoff and jitter, waiting the longer of
//! the backoff and the server's `retry-after` (capped); anything else fails at once.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use super::{Headers, ProviderError};

/// How many times a transient failure is retried before the run gives up.
pub const MAX_RETRIES: usize = 4;
/// The first backoff delay.
pub const MIN_DELAY: Duration = Duration::from_millis(500);
/// The longest backoff delay.
pub const MAX_DELAY: Duration = Duration::from_secs(30);
/// The longest `retry-after` honoured; a server asking for more gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How much of an error body is kept for the message.
const ERROR_BODY_CHARS: usize = 500;

/// POSTs `body` as JSON and returns the JSON reply.
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    headers: &Headers,
    body: &serde_json::Value,
    on_retry: &(dyn Fn(&ProviderError, Duration) + Sync),
) -> Result<serde_json::Value, ProviderError> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(MIN_DELAY)
        .with_max_delay(MAX_DELAY)
        .with_max_times(MAX_RETRIES)
        .with_jitter();
    (|| send_once(http, url, headers, body))
        .retry(backoff)
        .when(ProviderError::is_transient)
        .adjust(|e: &ProviderError, delay| next_delay(e.retry_after(), delay))
        .notify(|e, delay| on_retry(e, delay))
        .await
}

/// The wait before the next attempt: the backoff for this attempt, or longer when the server's
/// `retry-after` asks for more (capped at [`MAX_RETRY_AFTER`]); a `retry-after: 0` does not
/// make the retries immediate. `None` (the backoff is exhausted) stops even if the server
/// asked to wait.
fn next_delay(retry_after: Option<Duration>, backoff: Option<Duration>) -> Option<Duration> {
    let backoff = backoff?;
    Some(match retry_after {
        Some(after) => after.min(MAX_RETRY_AFTER).max(backoff),
        None => backoff,
    })
}

async fn send_once(
    http: &reqwest::Client,
    url: &str,
    headers: &Headers,
    body: &serde_json::Value,
) -> Result<serde_json::Value, ProviderError> {
    let mut request = http.post(url).json(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|source| ProviderError::Transport {
            url: url.to_string(),
            source,
        })?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let text = response
        .text()
        .await
        .map_err(|source| ProviderError::Transport {
            url: url.to_string(),
            source,
        })?;
    if !status.is_success() {
        return Err(ProviderError::Http {
            url: url.to_string(),
            status: status.as_u16(),
            body: text.chars().take(ERROR_BODY_CHARS).collect(),
            retry_after,
        });
    }
    serde_json::from_str(&text).map_err(|e| ProviderError::Malformed {
        url: url.to_string(),
        what: "JSON",
        detail: format!("{e}; body starts with {:?}", prefix(&text)),
    })
}

/// `retry-after` in seconds (fractions allowed); the HTTP-date form is not used by model APIs.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e6)))
}

fn prefix(text: &str) -> String {
    text.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn retry_after_lengthens_the_backoff_but_never_shortens_it() {
        let s = Duration::from_secs;
        assert_eq!(next_delay(Some(s(0)), Some(MIN_DELAY)), Some(MIN_DELAY));
        assert_eq!(next_delay(Some(s(0)), Some(s(8))), Some(s(8)));
        assert_eq!(next_delay(Some(s(20)), Some(s(1))), Some(s(20)));
        assert_eq!(
            next_delay(Some(s(3600)), Some(s(1))),
            Some(MAX_RETRY_AFTER),
            "capped"
        );
        assert_eq!(next_delay(None, Some(s(2))), Some(s(2)));
        assert_eq!(next_delay(Some(s(5)), None), None, "backoff exhausted");
    }

    #[test]
    fn transient_errors_are_rate_limits_overload_and_server_errors() {
        let http = |status| ProviderError::Http {
            url: "u".into(),
            status,
            body: String::new(),
            retry_after: None,
        };
        assert!(http(429).is_transient());
        assert!(http(529).is_transient());
        assert!(http(503).is_transient());
        assert!(!http(400).is_transient());
        assert!(!http(401).is_transient());
    }
}
