//! The `cloudwatch` MCP tool: its parameters (one `action` per API), the guard's judgement
//! of what a call reaches, and the call itself, returning compact text plus structured JSON.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::logs::LogEvent;
use super::metrics::{Alarm, AlarmState, MetricId, MetricSeries, StatisticsPoint};
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

/// Which CloudWatch API a `cloudwatch` call uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// List the metrics that exist (find exact names and dimensions). Uses `namespace?`,
    /// `metric_name?`, `dimensions?`.
    ListMetrics,
    /// Datapoints of one or more metrics at once. Uses `queries`, `start`, `end`.
    GetMetricData,
    /// Several statistics of one metric per period. Uses `namespace`, `metric_name`,
    /// `dimensions?`, `statistics?`, `period?`, `start`, `end`.
    GetMetricStatistics,
    /// Search a log group. Uses `log_group`, `pattern?`, `start`, `end`, `limit?`.
    FilterLogEvents,
    /// Alarms and their states. Uses `state?`.
    DescribeAlarms,
}

impl Action {
    /// The action as the model writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ListMetrics => "list_metrics",
            Action::GetMetricData => "get_metric_data",
            Action::GetMetricStatistics => "get_metric_statistics",
            Action::FilterLogEvents => "filter_log_events",
            Action::DescribeAlarms => "describe_alarms",
        }
    }
}

/// Parameters of `cloudwatch`: an `action` and the fields it uses (see each action).
/// Times (`start`, `end`) are ISO-8601 (`2024-05-01T12:00:00Z`) or relative to now
/// (`now`, `-30m`, `-2h`, `-1d`); the default window is the last hour.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchParams {
    /// `list_metrics`, `get_metric_data`, `get_metric_statistics`, `filter_log_events` or
    /// `describe_alarms`.
    pub action: Action,
    /// Metric namespace, e.g. `AWS/EC2` or `MyApp` (list_metrics: optional filter;
    /// get_metric_statistics: required).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Metric name, e.g. `CPUUtilization` (list_metrics: optional filter;
    /// get_metric_statistics: required).
    #[serde(default)]
    pub metric_name: Option<String>,
    /// Dimensions, e.g. `{"InstanceId": "i-123"}` (list_metrics: an empty value matches any
    /// value; get_metric_statistics: the metric must have exactly these).
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// get_metric_data: the metrics to fetch, each with one statistic (500 per request).
    #[serde(default)]
    pub queries: Vec<QueryParams>,
    /// get_metric_statistics: `Average`, `Maximum`, `Minimum`, `Sum`, `SampleCount` or
    /// percentiles like `p99` (default `["Average"]`).
    #[serde(default)]
    pub statistics: Option<Vec<String>>,
    /// get_metric_statistics: seconds per datapoint, 60, 300, 3600, ... (1, 5, 10, 30 for
    /// high resolution; default 300).
    #[serde(default)]
    pub period: Option<i32>,
    /// filter_log_events: log group name, e.g. `/aws/lambda/my-function`.
    #[serde(default)]
    pub log_group: Option<String>,
    /// filter_log_events: CloudWatch Logs filter pattern: terms that must all appear
    /// (`ERROR timeout`), a quoted phrase (`"connection refused"`), or a JSON pattern.
    /// Omit for all events.
    #[serde(default)]
    pub pattern: Option<String>,
    /// filter_log_events: most events to return (default 100; the policy caps it, 1000 by
    /// default).
    #[serde(default)]
    pub limit: Option<usize>,
    /// describe_alarms: only alarms in this state.
    #[serde(default)]
    pub state: Option<AlarmState>,
    /// Window start (default `-1h`).
    #[serde(default = "default_start")]
    pub start: String,
    /// Window end (default `now`).
    #[serde(default = "default_end")]
    pub end: String,
}

/// A `cloudwatch` call with what its action needs, checked.
#[derive(Debug, Clone)]
pub enum CloudWatchRequest {
    ListMetrics {
        namespace: Option<String>,
        metric_name: Option<String>,
        dimensions: BTreeMap<String, String>,
    },
    GetMetricData {
        queries: Vec<QueryParams>,
        start: String,
        end: String,
    },
    GetMetricStatistics {
        namespace: String,
        metric_name: String,
        dimensions: BTreeMap<String, String>,
        statistics: Vec<String>,
        period: i32,
        start: String,
        end: String,
    },
    FilterLogEvents {
        log_group: String,
        pattern: Option<String>,
        start: String,
        end: String,
        limit: Option<usize>,
    },
    DescribeAlarms {
        state: Option<AlarmState>,
    },
}

fn required(value: Option<String>, field: &str, action: &str) -> Result<String, ToolError> {
    value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
        ToolError::new(format!(
            "`{field}` is required for action {action} (use list_metrics to find names)"
        ))
    })
}

impl CloudWatchParams {
    /// The request the action describes, or which field is missing.
    pub fn into_request(self) -> Result<CloudWatchRequest, ToolError> {
        let p = self;
        Ok(match p.action {
            Action::ListMetrics => CloudWatchRequest::ListMetrics {
                namespace: p.namespace,
                metric_name: p.metric_name,
                dimensions: p.dimensions,
            },
            Action::GetMetricData => {
                if p.queries.is_empty() {
                    return Err(ToolError::new(
                        "`queries` is required for action get_metric_data: give at least one \
                         {namespace, metric_name, stat, period}",
                    ));
                }
                CloudWatchRequest::GetMetricData {
                    queries: p.queries,
                    start: p.start,
                    end: p.end,
                }
            }
            Action::GetMetricStatistics => CloudWatchRequest::GetMetricStatistics {
                namespace: required(p.namespace, "namespace", "get_metric_statistics")?,
                metric_name: required(p.metric_name, "metric_name", "get_metric_statistics")?,
                dimensions: p.dimensions,
                statistics: p.statistics.unwrap_or_else(default_statistics),
                period: p.period.unwrap_or(DEFAULT_PERIOD),
                start: p.start,
                end: p.end,
            },
            Action::FilterLogEvents => CloudWatchRequest::FilterLogEvents {
                log_group: p
                    .log_group
                    .filter(|g| !g.trim().is_empty())
                    .ok_or_else(|| {
                        ToolError::new("`log_group` is required for action filter_log_events")
                    })?,
                pattern: p.pattern,
                start: p.start,
                end: p.end,
                limit: p.limit,
            },
            Action::DescribeAlarms => CloudWatchRequest::DescribeAlarms { state: p.state },
        })
    }
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

/// A finished call: text for the model and the same result as structured JSON.
#[derive(Debug, Clone)]
pub struct CloudWatchOutput {
    pub text: String,
    pub structured: CloudWatchResult,
}

/// The structured result of a call, one shape per action (`action` names it). The tool's
/// `outputSchema` is generated from this type, so the two cannot drift apart.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CloudWatchResult {
    ListMetrics {
        metrics: Vec<MetricId>,
        /// More metrics exist than were listed.
        truncated: bool,
    },
    GetMetricData {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        queries: Vec<MetricQuery>,
        series: Vec<MetricSeries>,
    },
    GetMetricStatistics {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        namespace: String,
        metric_name: String,
        dimensions: BTreeMap<String, String>,
        /// Seconds per datapoint.
        period: i32,
        datapoints: Vec<StatisticsPoint>,
    },
    FilterLogEvents {
        log_group: String,
        pattern: Option<String>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        events: Vec<LogEvent>,
        /// As many events as the limit: more may match.
        limit_reached: bool,
    },
    DescribeAlarms {
        alarms: Vec<Alarm>,
        /// More alarms exist than were listed.
        truncated: bool,
    },
}

impl CloudWatchRequest {
    /// The action's name as the model wrote it.
    pub fn action(&self) -> &'static str {
        match self {
            CloudWatchRequest::ListMetrics { .. } => "list_metrics",
            CloudWatchRequest::GetMetricData { .. } => "get_metric_data",
            CloudWatchRequest::GetMetricStatistics { .. } => "get_metric_statistics",
            CloudWatchRequest::FilterLogEvents { .. } => "filter_log_events",
            CloudWatchRequest::DescribeAlarms { .. } => "describe_alarms",
        }
    }
}

/// The guard's verdict on a call: every namespace or log group it reaches, and its size.
pub fn judge(guard: &Guard, params: &CloudWatchRequest) -> Verdict {
    let action = params.action();
    match params {
        CloudWatchRequest::ListMetrics { namespace, .. } => match namespace {
            Some(n) => guard.judge_cloudwatch(action, CloudWatchTarget::Namespace(n)),
            None => guard.judge_cloudwatch(action, CloudWatchTarget::Account),
        },
        CloudWatchRequest::GetMetricData { queries, .. } => queries.iter().fold(
            guard.judge_cloudwatch_size(action, queries.len(), 0),
            |v, q| {
                v.merge(guard.judge_cloudwatch(action, CloudWatchTarget::Namespace(&q.namespace)))
            },
        ),
        CloudWatchRequest::GetMetricStatistics { namespace, .. } => {
            guard.judge_cloudwatch(action, CloudWatchTarget::Namespace(namespace))
        }
        CloudWatchRequest::FilterLogEvents {
            log_group, limit, ..
        } => guard
            .judge_cloudwatch_size(action, 0, limit.unwrap_or(DEFAULT_LOG_EVENTS))
            .merge(guard.judge_cloudwatch(action, CloudWatchTarget::LogGroup(log_group))),
        CloudWatchRequest::DescribeAlarms { .. } => {
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
    let params = params.into_request()?;
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
    params: CloudWatchRequest,
) -> Result<CloudWatchOutput, ToolError> {
    let failed = |e: super::CloudWatchError| ToolError::new(e.to_string());
    match params {
        CloudWatchRequest::ListMetrics {
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
                structured: CloudWatchResult::ListMetrics {
                    metrics,
                    truncated: more,
                },
            })
        }
        CloudWatchRequest::GetMetricData {
            queries,
            start,
            end,
        } => {
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
                structured: CloudWatchResult::GetMetricData {
                    start: s,
                    end: e,
                    queries,
                    series,
                },
            })
        }
        CloudWatchRequest::GetMetricStatistics {
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
                structured: CloudWatchResult::GetMetricStatistics {
                    start: s,
                    end: e,
                    namespace: query.namespace,
                    metric_name: query.metric_name,
                    dimensions,
                    period,
                    datapoints: points,
                },
            })
        }
        CloudWatchRequest::FilterLogEvents {
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
                structured: CloudWatchResult::FilterLogEvents {
                    limit_reached: events.len() >= limit,
                    log_group,
                    pattern,
                    start: s,
                    end: e,
                    events,
                },
            })
        }
        CloudWatchRequest::DescribeAlarms { state } => {
            let (mut alarms, more) = cw.describe_alarms(state).await.map_err(failed)?;
            alarms.retain(|a| match &a.namespace {
                Some(n) => guard.cloudwatch_namespace_allowed(n),
                None => guard.cloudwatch_namespace_allowed("*"),
            });
            Ok(CloudWatchOutput {
                text: render::alarms(&alarms, more),
                structured: CloudWatchResult::DescribeAlarms {
                    alarms,
                    truncated: more,
                },
            })
        }
    }
}
