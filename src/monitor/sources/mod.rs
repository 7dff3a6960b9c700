//! Where rule values come from. The monitor talks to three narrow traits (a metric source, a
//! CloudWatch Logs counter, a scalar SQL query) implemented over `tools::cloudwatch` and
//! `tools::sql`, plus local log files read incrementally ([`logfile`]), so the engine is
//! independent of how each source is reached.

pub mod db;
pub mod logfile;
pub mod metric;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A boxed, sendable future (the traits are used as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The cloudwatch tool's query and series types.
pub use crate::tools::cloudwatch::{MetricQuery, MetricSeries};

/// CloudWatch metrics (GetMetricData).
pub trait MetricSource: Send + Sync {
    /// Fetches all `queries` for `[start, end)`; the caller keeps each call within
    /// [`metric::MAX_QUERIES_PER_CALL`].
    fn get_metric_data<'a>(
        &'a self,
        queries: &'a [MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Vec<MetricSeries>, String>>;

    /// Whether rules may read `namespace` (the policy's allow-list); `Err` says why not.
    fn permits(&self, _namespace: &str) -> Result<(), String> {
        Ok(())
    }
}

/// CloudWatch Logs: how many events match in a window.
pub trait LogGroupSource: Send + Sync {
    /// Events that pass the CloudWatch filter pattern `filter` (all when empty) and, when
    /// given, the regex `matching` (applied to each message client-side).
    fn count_log_events<'a>(
        &'a self,
        log_group: &'a str,
        filter: &'a str,
        matching: Option<&'a regex::Regex>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<u64, String>>;
}

/// A read-only SQL query returning one number (`None`: no rows or NULL).
pub trait DbSource: Send + Sync {
    fn query_scalar<'a>(
        &'a self,
        database: Option<&'a str>,
        query: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Option<f64>, String>>;
}

/// The sources available to an evaluation; a rule whose source is missing evaluates to an
/// error that says what to configure.
#[derive(Clone, Default)]
pub struct Sources {
    pub metrics: Option<Arc<dyn MetricSource>>,
    pub log_groups: Option<Arc<dyn LogGroupSource>>,
    pub db: Option<Arc<dyn DbSource>>,
}
