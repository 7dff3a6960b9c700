//! Retries for deliveries: transient failures (connection errors, timeouts, HTTP 408/429/5xx,
//! SMTP 4xx) are tried again with exponential backoff and jitter (backon), a 429's
//! `Retry-After` (seconds or an HTTP date) is honoured up to [`MAX_RETRY_AFTER`]; permanent
//! failures end the delivery at once.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Attempts per delivery (the first try included).
pub const MAX_ATTEMPTS: usize = 4;
/// Delay before the first retry; it doubles per retry (plus jitter).
pub const BASE_DELAY: Duration = Duration::from_millis(500);
/// Longest delay between two attempts chosen by the backoff.
pub const MAX_DELAY: Duration = Duration::from_secs(8);
/// Longest `Retry-After` a delivery waits for; a longer one ends the delivery as transient
/// (the monitor's outbox tries again on a later heartbeat).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Environment variable that overrides [`BASE_DELAY`] in milliseconds (tests shorten it).
pub const BASE_DELAY_ENV: &str = "PI_MCP_NOTIFY_RETRY_BASE_MS";

/// How often and how patiently a delivery is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: usize,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: MAX_ATTEMPTS,
            base: BASE_DELAY,
            cap: MAX_DELAY,
        }
    }
}

impl RetryPolicy {
    /// The defaults, with the base delay from [`BASE_DELAY_ENV`] when it holds a number.
    pub fn from_env() -> Self {
        let base = std::env::var(BASE_DELAY_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_millis);
        RetryPolicy::default().with_base(base)
    }

    fn with_base(mut self, base: Option<Duration>) -> Self {
        if let Some(b) = base {
            self.base = b;
            self.cap = self.cap.max(b);
        }
        self
    }

    /// The same patience with a single attempt.
    pub fn once(self) -> Self {
        RetryPolicy {
            attempts: 1,
            ..self
        }
    }
}

/// Why one attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    /// Worth trying again later.
    pub transient: bool,
    /// The receiver's `Retry-After`, when it gave one.
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn permanent(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            transient: false,
            retry_after: None,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            transient: true,
            retry_after: None,
        }
    }
}

/// Runs `attempt` until it succeeds, fails permanently or the attempts are used up; returns
/// the value or the last failure, each with the number of attempts made.
pub async fn run<T, F, Fut>(
    policy: RetryPolicy,
    what: &str,
    mut attempt: F,
) -> Result<(T, u32), (Failure, u32)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut backoff = ExponentialBuilder::default()
        .with_min_delay(policy.base)
        .with_max_delay(policy.cap)
        .with_factor(2.0)
        .with_max_times(policy.attempts.saturating_sub(1))
        .with_jitter()
        .build();
    let mut made = 0u32;
    loop {
        made += 1;
        let failure = match attempt().await {
            Ok(v) => return Ok((v, made)),
            Err(f) if !f.transient => return Err((f, made)),
            Err(f) => f,
        };
        let Some(backoff_delay) = backoff.next() else {
            return Err((failure, made));
        };
        let delay = match failure.retry_after {
            Some(asked) if asked > MAX_RETRY_AFTER => {
                let message = format!(
                    "{} (the receiver asked to wait {} s before retrying, longer than the {} s a delivery waits)",
                    failure.message,
                    asked.as_secs(),
                    MAX_RETRY_AFTER.as_secs()
                );
                return Err((Failure { message, ..failure }, made));
            }
            Some(asked) => asked,
            None => backoff_delay,
        };
        tracing::warn!(
            "{what}: attempt {made} failed ({}); retrying in {} ms",
            failure.message,
            delay.as_millis()
        );
        tokio::time::sleep(delay).await;
    }
}

/// The delay a `Retry-After` header asks for: whole seconds or an HTTP date (past dates: 0).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> RetryPolicy {
        RetryPolicy::default().with_base(Some(Duration::from_millis(1)))
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        let date = "Wed, 21 Oct 2015 07:28:30 GMT";
        assert_eq!(parse_retry_after(date, now), Some(Duration::from_secs(30)));
        let past = "Wed, 21 Oct 2015 07:00:00 GMT";
        assert_eq!(parse_retry_after(past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn env_base_raises_the_cap_when_needed() {
        let p = RetryPolicy::default().with_base(Some(Duration::from_secs(20)));
        assert_eq!(
            (p.base, p.cap),
            (Duration::from_secs(20), Duration::from_secs(20))
        );
        assert_eq!(RetryPolicy::default().once().attempts, 1);
    }

    #[tokio::test]
    async fn transient_failures_use_every_attempt_and_permanent_ones_stop() {
        let tries = AtomicU32::new(0);
        let r: Result<((), u32), _> = run(fast(), "t", || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(Failure::transient("503"))
        })
        .await;
        assert_eq!(r.unwrap_err().1, MAX_ATTEMPTS as u32);
        let r: Result<((), u32), _> =
            run(fast(), "t", || async { Err(Failure::permanent("400")) }).await;
        assert_eq!(r.unwrap_err().1, 1);
        let tries = AtomicU32::new(0);
        let r = run(fast(), "t", || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(Failure::transient("500")),
                _ => Ok("ok"),
            }
        })
        .await;
        assert_eq!(r.unwrap(), ("ok", 3));
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_cap_ends_the_delivery() {
        let r: Result<((), u32), _> = run(fast(), "t", || async {
            Err(Failure {
                retry_after: Some(MAX_RETRY_AFTER + Duration::from_secs(1)),
                ..Failure::transient("429")
            })
        })
        .await;
        let (f, made) = r.unwrap_err();
        assert!(f.transient && made == 1, "{f:?}");
        assert!(f.message.contains("asked to wait 31 s"), "{}", f.message);
    }
}
