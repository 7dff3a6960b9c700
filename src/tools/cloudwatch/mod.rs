//! The `cloudwatch` tool and the CloudWatch client the monitor shares: metrics (list, batched
//! GetMetricData, GetMetricStatistics, alarms) and CloudWatch Logs (filter, count), with
//! credentials, region and endpoints from the standard AWS chain, throttling retried with
//! backoff, and a counter of every API request made.

pub mod error;
pub mod health;
pub mod logs;
pub mod metrics;
pub mod render;
pub mod time;
pub mod tool;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use backon::{ExponentialBuilder, Retryable as _};

pub use error::CloudWatchError;
pub use logs::LogEvent;
pub use metrics::{Alarm, MetricId, MetricQuery, MetricSeries, StatisticsPoint};
pub use time::parse_time;
pub use tool::{CloudWatchOutput, CloudWatchParams, CloudWatchResult, run};

/// How long connecting to an endpoint may take before it counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one request (one attempt) may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts per request when AWS throttles or fails on its side (the first one included).
pub const MAX_ATTEMPTS: usize = 4;
/// First pause before a retry; it doubles each time, with jitter.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_millis(250);
/// Longest pause between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// A CloudWatch + CloudWatch Logs client. Cloning is cheap and shares the connection pools
/// and the request counter.
#[derive(Debug, Clone)]
pub struct CloudWatch {
    metrics: aws_sdk_cloudwatch::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    calls: Arc<CallCounter>,
    retry: RetryPolicy,
}

/// How throttled (or AWS-side failed) requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first one included (1: no retry).
    pub attempts: usize,
    /// Pause before the first retry; it doubles each time, with jitter.
    pub first_delay: Duration,
    /// Longest pause.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: MAX_ATTEMPTS,
            first_delay: FIRST_RETRY_DELAY,
            max_delay: MAX_RETRY_DELAY,
        }
    }
}

/// Requests made, in total and per API operation.
#[derive(Debug, Default)]
struct CallCounter {
    total: AtomicU64,
    by_operation: Mutex<BTreeMap<&'static str, u64>>,
}

impl CallCounter {
    fn count(&self, operation: &'static str) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut map) = self.by_operation.lock() {
            *map.entry(operation).or_default() += 1;
        }
    }
}

static SHARED: tokio::sync::OnceCell<CloudWatch> = tokio::sync::OnceCell::const_new();

impl CloudWatch {
    /// A client from the standard AWS chain: credentials (environment, profile, SSO, web
    /// identity, container and instance roles), region, and endpoint overrides
    /// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_CLOUDWATCH`, `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`).
    /// The SDK's own retries are off: throttling is retried here, so every attempt is counted.
    pub async fn from_env() -> Result<CloudWatch, CloudWatchError> {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            )
            .load()
            .await;
        CloudWatch::from_sdk_config(&config)
    }

    /// A client from an already loaded AWS configuration (which must name a region).
    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Result<CloudWatch, CloudWatchError> {
        if config.region().is_none() {
            return Err(CloudWatchError::NoRegion);
        }
        Ok(CloudWatch {
            metrics: aws_sdk_cloudwatch::Client::new(config),
            logs: aws_sdk_cloudwatchlogs::Client::new(config),
            calls: Arc::new(CallCounter::default()),
            retry: RetryPolicy::default(),
        })
    }

    /// The same client retrying as `retry` says (the daemon may prefer fewer, shorter pauses).
    pub fn with_retry(mut self, retry: RetryPolicy) -> CloudWatch {
        self.retry = retry;
        self
    }

    /// The process-wide client, created on first use from the environment ([`Self::from_env`]).
    /// A failure is not remembered: the next call tries again.
    pub async fn shared() -> Result<CloudWatch, CloudWatchError> {
        SHARED.get_or_try_init(CloudWatch::from_env).await.cloned()
    }

    /// Number of AWS API requests this client (and its clones) made, retries included.
    pub fn api_calls(&self) -> u64 {
        self.calls.total.load(Ordering::Relaxed)
    }

    /// Requests made per API operation (`GetMetricData`, `FilterLogEvents`, ...).
    pub fn api_calls_by_operation(&self) -> BTreeMap<&'static str, u64> {
        self.calls
            .by_operation
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// Sends one request (built afresh by `attempt` each time), counting it, and retries it
    /// with exponential backoff and jitter while AWS throttles or fails on its side.
    async fn send<T, F, Fut>(
        &self,
        operation: &'static str,
        mut attempt: F,
    ) -> Result<T, CloudWatchError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CloudWatchError>>,
    {
        let counted = || {
            self.calls.count(operation);
            attempt()
        };
        let attempts = self.retry.attempts.max(1);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.first_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(attempts - 1)
            .with_jitter();
        // Boxed: the SDK's futures are deep, and callers nest this in their own async code.
        let retried = counted
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(CloudWatchError::is_retryable)
            .notify(|e, pause| tracing::warn!("{operation}: {e}; retrying in {pause:?}"));
        Box::pin(retried).await.map_err(|e| match e {
            CloudWatchError::Throttled {
                operation, detail, ..
            } => CloudWatchError::Throttled {
                operation,
                attempts,
                detail,
            },
            other => other,
        })
    }
}

/// Converts an SDK timestamp to chrono (None when out of chrono's range).
fn to_chrono(
    t: &aws_sdk_cloudwatch::primitives::DateTime,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let millis = t.to_millis().ok()?;
    chrono::DateTime::from_timestamp_millis(millis)
}

/// Converts a chrono instant to an SDK timestamp.
fn to_smithy(t: chrono::DateTime<chrono::Utc>) -> aws_sdk_cloudwatch::primitives::DateTime {
    aws_sdk_cloudwatch::primitives::DateTime::from_millis(t.timestamp_millis())
}

/// Awaits an SDK request and sorts its error ([`CloudWatchError::from_sdk`]).
async fn sdk<T, E>(
    operation: &'static str,
    log_group: Option<&str>,
    request: impl Future<
        Output = Result<
            T,
            aws_sdk_cloudwatch::error::SdkError<E, aws_sdk_cloudwatch::config::http::HttpResponse>,
        >,
    >,
) -> Result<T, CloudWatchError>
where
    E: aws_sdk_cloudwatch::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    request
        .await
        .map_err(|e| CloudWatchError::from_sdk(operation, e, log_group))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> CloudWatch {
        let config = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .build();
        CloudWatch::from_sdk_config(&config)
            .unwrap()
            .with_retry(RetryPolicy {
                attempts: 3,
                first_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
            })
    }

    fn throttled() -> CloudWatchError {
        CloudWatchError::Throttled {
            operation: "GetMetricData",
            attempts: 1,
            detail: "Rate exceeded".into(),
        }
    }

    #[tokio::test]
    async fn throttling_is_retried_and_every_attempt_counted() {
        let cw = client();
        let mut left = 2;
        let got = cw
            .send("GetMetricData", || {
                left -= 1;
                let result = if left >= 0 { Err(throttled()) } else { Ok(7) };
                async move { result }
            })
            .await;
        assert_eq!(got.unwrap(), 7);
        assert_eq!(cw.api_calls(), 3);
        assert_eq!(cw.api_calls_by_operation().get("GetMetricData"), Some(&3));
    }

    #[tokio::test]
    async fn throttling_gives_up_after_the_last_attempt_and_says_so() {
        let cw = client();
        let err = cw
            .send("GetMetricData", || async { Err::<(), _>(throttled()) })
            .await
            .unwrap_err();
        assert_eq!(cw.api_calls(), 3);
        assert!(err.to_string().contains("after 3 attempts"), "{err}");
    }

    #[tokio::test]
    async fn other_errors_are_not_retried() {
        let cw = client();
        let err = cw
            .send("ListMetrics", || async {
                Err::<(), _>(CloudWatchError::AccessDenied {
                    operation: "ListMetrics",
                    detail: "no".into(),
                })
            })
            .await
            .unwrap_err();
        assert_eq!(cw.api_calls(), 1);
        assert!(matches!(err, CloudWatchError::AccessDenied { .. }));
    }
}
