//! The `cloudwatch` MCP tool: its parameters (one `action` per API), the guard's judgement
//! of what a call reaches, and the call itself, returning compact text plus structured JSON.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::metrics::AlarmState;
use super::{CloudWatch, MetricQuery, parse_time, render};
use crate::guard::cloudwatch::CloudWatchTarget;
use crate::guard::{Decision, Guard, Verdict};
use crate::tools::{ToolContext, ToolError};

/// Log events returned when a call gives no `limit`.
pub const DEFAULT_LOG_EVENTS: usize = 100;
/// Seconds per datapoint when a query gives no `period`.
pub const DEFAULT_PERIOD: i32 = 300;

fn default_start() -> String {
    "-1h".into()
}
fn default_end() -> String {
    "now".into()
}
fn default_stat() -> String {
    "Average".into()
}
fn default_period() -> i32 {
    DEFAULT_PERIOD
}
fn default_statistics() -> Vec<String> {
    vec![default_stat()]
}

/// Parameters of `cloudwatch`: pick an `action`; the other fields depend on it.
/// Times (`start`, `end`) are ISO-8601 (`2024-05-01T12:00:00Z`) or relative to now
/// (`now`, `-30m`, `-2h`, `-1d`); the default window is the last hour.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
#[schemars(extend("type" = "object"))]
pub enum CloudWatchParams {
    /// List the metrics that exist (use it to find exact names and dimensions).
    ListMetrics {
        /// Only this namespace, e.g. `AWS/EC2` or `MyApp`.
        #[serde(default)]
        namespace: Option<String>,
        /// Only this metric name, e.g. `CPUUtilization`.
        #[serde(default)]
        metric_name: Option<String>,
        /// Only metrics with these dimensions (`{"InstanceId": "i-123"}`; an empty value
        /// matches any value of that dimension).
        #[serde(default)]
        dimensions: BTreeMap<String, String>,
    },
    /// Fetch datapoints of one or more metrics at once (one API request per 500 queries).
    GetMetricData {
        /// The metrics to fetch, each with one statistic.
        queries: Vec<QueryParams>,
        /// Window start (default `-1h`).
        #[serde(default = "default_start")]
        start: String,
        /// Window end (default `now`).
        #[serde(default = "default_end")]
        end: String,
    },
    /// Several statistics of one metric per period (GetMetricStatistics).
    GetMetricStatistics {
        /// Namespace, e.g. `AWS/EC2`.
        namespace: String,
        /// Metric name, e.g. `CPUUtilization`.
        metric_name: String,
        /// Dimensions the metric must have exactly (`{"InstanceId": "i-123"}`).
        #[serde(default)]
        dimensions: BTreeMap<String, String>,
        /// `Average`, `Maximum`, `Minimum`, `Sum`, `SampleCount` or percentiles like `p99`
        /// (default `["Average"]`).
        #[serde(default = "default_statistics")]
        statistics: Vec<String>,
        /// Seconds per datapoint: 60, 300, 3600, ... (1, 5, 10, 30 for high resolution;
        /// default 300).
        #[serde(default = "default_period")]
        period: i32,
        /// Window start (default `-1h`).
        #[serde(default = "default_start")]
        start: String,
        /// Window end (default `now`).
        #[serde(default = "default_end")]
        end: String,
    },
    /// Search a CloudWatch Logs log group (FilterLogEvents), oldest first.
    FilterLogEvents {
        /// Log group name, e.g. `/aws/lambda/my-function`.
        log_group: String,
        /// CloudWatch Logs filter pattern: terms that must all appear (`ERROR timeout`),
        /// a quoted phrase (`"connection refused"`), or a JSON pattern. Omit for all events.
        #[serde(default)]
        pattern: Option<String>,
        /// Window start (default `-1h`).
        #[serde(default = "default_start")]
        start: String,
        /// Window end (default `now`).
        #[serde(default = "default_end")]
        end: String,
        /// Most events to return (default 100; the policy caps it, 1000 by default).
        #[serde(default)]
        limit: Option<usize>,
    },
    /// List CloudWatch alarms and their states.
    DescribeAlarms {
        /// Only alarms in this state.
        #[serde(default)]
        state: Option<AlarmState>,
    },
}

/// One metric query of `get_metric_data`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryParams {
    /// Your name for this query, shown with its result (default `q1`, `q2`, ...).
    #[serde(default)]
    pub id: Option<String>,
    /// Namespace, e.g. `AWS/EC2`.
    pub namespace: String,
    /// Metric name, e.g. `CPUUtilization`.
    pub metric_name: String,
    /// Dimensions the metric must have exactly (`{"InstanceId": "i-123"}`).
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// `Average` (default), `Maximum`, `Minimum`, `Sum`, `SampleCount`, or `p99` etc.
    #[serde(default = "default_stat")]
    pub stat: String,
    /// Seconds per datapoint (default 300).
    #[serde(default = "default_period")]
    pub period: i32,
}

/// A finished call: text for the model and the same result as JSON.
#[derive(Debug, Clone)]
pub struct CloudWatchOutput {
    pub text: String,
    pub structured: serde_json::Value,
}

impl CloudWatchParams {
    /// The action's name as the model wrote it.
    pub fn action(&self) -> &'static str {
        match self {
            CloudWatchParams::ListMetrics { .. } => "list_metrics",
            CloudWatchParams::GetMetricData { .. } => "get_metric_data",
            CloudWatchParams::GetMetricStatistics { .. } => "get_metric_statistics",
            CloudWatchParams::FilterLogEvents { .. } => "filter_log_events",
            CloudWatchParams::DescribeAlarms { .. } => "describe_alarms",
        }
    }
}

/// The guard's verdict on a call: every namespace or log group it reaches, and its size.
pub fn judge(guard: &Guard, params: &CloudWatchParams) -> Verdict {
    let action = params.action();
    match params {
        CloudWatchParams::ListMetrics { namespace, .. } => match namespace {
            Some(n) => guard.judge_cloudwatch(action, CloudWatchTarget::Namespace(n)),
            None => guard.judge_cloudwatch(action, CloudWatchTarget::Account),
        },
        CloudWatchParams::GetMetricData { queries, .. } => queries.iter().fold(
            guard.judge_cloudwatch_size(action, queries.len(), 0),
            |v, q| {
                v.merge(guard.judge_cloudwatch(action, CloudWatchTarget::Namespace(&q.namespace)))
            },
        ),
        CloudWatchParams::GetMetricStatistics { namespace, .. } => {
            guard.judge_cloudwatch(action, CloudWatchTarget::Namespace(namespace))
        }
        CloudWatchParams::FilterLogEvents {
            log_group, limit, ..
        } => guard
            .judge_cloudwatch_size(action, 0, limit.unwrap_or(DEFAULT_LOG_EVENTS))
            .merge(guard.judge_cloudwatch(action, CloudWatchTarget::LogGroup(log_group))),
        CloudWatchParams::DescribeAlarms { .. } => {
            guard.judge_cloudwatch(action, CloudWatchTarget::Account)
        }
    }
}

fn window(start: &str, end: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), ToolError> {
    let now = Utc::now();
    let s = parse_time(start, now).map_err(|e| ToolError::new(format!("start: {e}")))?;
    let e = parse_time(end, now).map_err(|e| ToolError::new(format!("end: {e}")))?;
    if s >= e {
        return Err(ToolError::new(format!(
            "start ({s}) must be before end ({e}); e.g. start \"-2h\", end \"now\""
        )));
    }
    Ok((s, e))
}

fn pairs(dimensions: &BTreeMap<String, String>) -> Vec<(String, String)> {
    dimensions
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Runs one `cloudwatch` call with the process-wide client.
pub async fn run(
    ctx: &ToolContext,
    params: CloudWatchParams,
) -> Result<CloudWatchOutput, ToolError> {
    let verdict = judge(&ctx.guard, &params);
    if verdict.decision != Decision::Allow {
        let reasons: Vec<String> = verdict.deciding_reasons().map(|r| r.to_string()).collect();
        return Err(ToolError::denied(
            format!(
                "The policy does not allow this cloudwatch call: {}. Ask only for namespaces and \
                 log groups the policy allows.",
                reasons.join("; ")
            ),
            verdict,
        ));
    }
    let cw = CloudWatch::shared()
        .await
        .map_err(|e| ToolError::new(e.to_string()))?;
    run_with(&cw, &ctx.guard, params).await
}

/// Runs one `cloudwatch` call (already judged) with `cw`.
pub async fn run_with(
    cw: &CloudWatch,
    guard: &Guard,
    params: CloudWatchParams,
) -> Result<CloudWatchOutput, ToolError> {
    let failed = |e: super::CloudWatchError| ToolError::new(e.to_string());
    match params {
        CloudWatchParams::ListMetrics {
            namespace,
            metric_name,
            dimensions,
        } => {
            let (mut metrics, more) = cw
                .list_metrics(
                    namespace.as_deref(),
                    metric_name.as_deref(),
                    &pairs(&dimensions),
                )
                .await
                .map_err(failed)?;
            metrics.retain(|m| guard.cloudwatch_namespace_allowed(&m.namespace));
            Ok(CloudWatchOutput {
                text: render::metrics(&metrics, more),
                structured: json!({"action": "list_metrics", "metrics": metrics, "truncated": more}),
            })
        }
        CloudWatchParams::GetMetricData {
            queries,
            start,
            end,
        } => {
            if queries.is_empty() {
                return Err(ToolError::new(
                    "queries is empty: give at least one {namespace, metric_name, stat, period}",
                ));
            }
            let (s, e) = window(&start, &end)?;
            let queries: Vec<MetricQuery> = queries
                .into_iter()
                .enumerate()
                .map(|(i, q)| MetricQuery {
                    id: q.id.unwrap_or_else(|| format!("q{}", i + 1)),
                    namespace: q.namespace,
                    metric_name: q.metric_name,
                    dimensions: pairs(&q.dimensions),
                    stat: q.stat,
                    period: q.period,
                })
                .collect();
            let series = cw.get_metric_data(&queries, s, e).await.map_err(failed)?;
            Ok(CloudWatchOutput {
                text: render::series(&queries, &series, s, e),
                structured: json!({
                    "action": "get_metric_data", "start": s, "end": e,
                    "queries": queries, "series": series,
                }),
            })
        }
        CloudWatchParams::GetMetricStatistics {
            namespace,
            metric_name,
            dimensions,
            statistics,
            period,
            start,
            end,
        } => {
            let (s, e) = window(&start, &end)?;
            if statistics.is_empty() {
                return Err(ToolError::new(
                    "statistics is empty: give e.g. [\"Average\", \"Maximum\"]",
                ));
            }
            let query = MetricQuery {
                id: metric_name.clone(),
                namespace,
                metric_name,
                dimensions: pairs(&dimensions),
                stat: statistics.join(","),
                period,
            };
            let points = cw
                .get_metric_statistics(&query, &statistics, s, e)
                .await
                .map_err(failed)?;
            Ok(CloudWatchOutput {
                text: render::statistics(&query, &statistics, &points, s, e),
                structured: json!({
                    "action": "get_metric_statistics", "start": s, "end": e,
                    "namespace": query.namespace, "metric_name": query.metric_name,
                    "dimensions": dimensions, "period": period, "datapoints": points,
                }),
            })
        }
        CloudWatchParams::FilterLogEvents {
            log_group,
            pattern,
            start,
            end,
            limit,
        } => {
            let (s, e) = window(&start, &end)?;
            let limit = limit.unwrap_or(DEFAULT_LOG_EVENTS);
            let events = cw
                .filter_log_events(&log_group, pattern.as_deref(), s, e, limit)
                .await
                .map_err(failed)?;
            Ok(CloudWatchOutput {
                text: render::log_events(&log_group, pattern.as_deref(), &events, limit, s, e),
                structured: json!({
                    "action": "filter_log_events", "log_group": log_group, "pattern": pattern,
                    "start": s, "end": e, "events": events, "limit_reached": events.len() >= limit,
                }),
            })
        }
        CloudWatchParams::DescribeAlarms { state } => {
            let (mut alarms, more) = cw.describe_alarms(state).await.map_err(failed)?;
            alarms.retain(|a| match &a.namespace {
                Some(n) => guard.cloudwatch_namespace_allowed(n),
                None => guard.cloudwatch_namespace_allowed("*"),
            });
            Ok(CloudWatchOutput {
                text: render::alarms(&alarms, more),
                structured: json!({"action": "describe_alarms", "alarms": alarms, "truncated": more}),
            })
        }
    }
}
