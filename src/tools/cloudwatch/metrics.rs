//! CloudWatch metrics: listing metrics, GetMetricData batched ([`MAX_QUERIES_PER_CALL`]
//! queries per request, pages followed), GetMetricStatistics for one metric, and alarms.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{
    Dimension, DimensionFilter, Metric, MetricDataQuery, MetricStat, ScanBy, StateValue, Statistic,
};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CloudWatch, CloudWatchError, sdk, to_chrono, to_smithy};

/// Most queries one GetMetricData request may carry (the AWS limit).
pub const MAX_QUERIES_PER_CALL: usize = 500;
/// Most metrics `list_metrics` returns (pages are followed up to this many).
pub const MAX_LISTED_METRICS: usize = 1000;
/// Most alarms `describe_alarms` returns.
pub const MAX_ALARMS: usize = 500;
/// Most pages followed for one GetMetricData batch (a guard against a server that never
/// stops handing out NextTokens).
pub const MAX_PAGES: usize = 100;

/// One metric to fetch with one statistic over `period` seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MetricQuery {
    /// The caller's name for this query; it comes back on the series.
    pub id: String,
    pub namespace: String,
    pub metric_name: String,
    /// Dimension name/value pairs, all of which the metric must have.
    pub dimensions: Vec<(String, String)>,
    /// `Average`, `Maximum`, `Minimum`, `Sum`, `SampleCount`, or a percentile such as `p99`.
    pub stat: String,
    /// Seconds per datapoint: 1, 5, 10, 30 or a multiple of 60.
    pub period: i32,
}

/// The datapoints of one query, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct MetricSeries {
    pub id: String,
    pub timestamps: Vec<DateTime<Utc>>,
    pub values: Vec<f64>,
    /// `Complete`, `PartialData`, `InternalError` or `Forbidden` as CloudWatch reports it.
    pub status: String,
}

/// A metric that exists (from ListMetrics).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct MetricId {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: BTreeMap<String, String>,
}

/// One GetMetricStatistics datapoint: each requested statistic's value.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct StatisticsPoint {
    pub timestamp: DateTime<Utc>,
    pub values: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// An alarm and its state (from DescribeAlarms).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Alarm {
    pub name: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<DateTime<Utc>>,
}

/// An alarm state to filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    fn to_sdk(self) -> StateValue {
        match self {
            AlarmState::Ok => StateValue::Ok,
            AlarmState::Alarm => StateValue::Alarm,
            AlarmState::InsufficientData => StateValue::InsufficientData,
        }
    }
}

/// Statistics GetMetricStatistics takes by name (others, like `p99`, are extended ones).
const BASIC_STATISTICS: &[&str] = &["Average", "Maximum", "Minimum", "Sum", "SampleCount"];

fn dimensions_of(pairs: &[(String, String)]) -> Vec<Dimension> {
    pairs
        .iter()
        .map(|(name, value)| Dimension::builder().name(name).value(value).build())
        .collect()
}

/// Checks what CloudWatch would reject, before any request is made.
pub fn validate_period(operation: &'static str, period: i32) -> Result<(), CloudWatchError> {
    if matches!(period, 1 | 5 | 10 | 30) || (period >= 60 && period % 60 == 0) {
        Ok(())
    } else {
        Err(CloudWatchError::Invalid {
            operation,
            detail: format!(
                "period {period} is not valid: use 1, 5, 10, 30 or a multiple of 60 seconds (e.g. 60, 300)"
            ),
        })
    }
}

fn validate_range(
    operation: &'static str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(), CloudWatchError> {
    if start < end {
        Ok(())
    } else {
        Err(CloudWatchError::Invalid {
            operation,
            detail: format!("start ({start}) must be before end ({end})"),
        })
    }
}

impl CloudWatch {
    /// Fetches every query's datapoints in `[start, end)`: one GetMetricData request per
    /// [`MAX_QUERIES_PER_CALL`] queries (plus one per extra page), so 1,000 queries take 2
    /// requests. Series come back in the order of `queries`, each oldest first.
    pub async fn get_metric_data(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<MetricSeries>, CloudWatchError> {
        const OP: &str = "GetMetricData";
        validate_range(OP, start, end)?;
        for q in queries {
            validate_period(OP, q.period)?;
            if q.namespace.is_empty() || q.metric_name.is_empty() || q.stat.is_empty() {
                return Err(CloudWatchError::Invalid {
                    operation: OP,
                    detail: format!(
                        "query `{}` needs a namespace, a metric_name and a stat",
                        q.id
                    ),
                });
            }
        }
        let mut series = Vec::with_capacity(queries.len());
        for batch in queries.chunks(MAX_QUERIES_PER_CALL) {
            series.extend(self.metric_data_batch(batch, start, end).await?);
        }
        Ok(series)
    }

    /// One batch (at most [`MAX_QUERIES_PER_CALL`] queries), all pages. CloudWatch ids must
    /// look like `q12`, so the batch is sent with positional ids and mapped back.
    async fn metric_data_batch(
        &self,
        batch: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<MetricSeries>, CloudWatchError> {
        const OP: &str = "GetMetricData";
        let sdk_queries: Vec<MetricDataQuery> = batch
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let metric = Metric::builder()
                    .namespace(&q.namespace)
                    .metric_name(&q.metric_name)
                    .set_dimensions(Some(dimensions_of(&q.dimensions)))
                    .build();
                let stat = MetricStat::builder()
                    .metric(metric)
                    .period(q.period)
                    .stat(&q.stat)
                    .build();
                MetricDataQuery::builder()
                    .id(format!("q{i}"))
                    .metric_stat(stat)
                    .return_data(true)
                    .build()
            })
            .collect();
        let mut points: Vec<Vec<(DateTime<Utc>, f64)>> = vec![Vec::new(); batch.len()];
        let mut status: Vec<String> = vec!["Complete".to_string(); batch.len()];
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .send(OP, || {
                    sdk(
                        OP,
                        None,
                        self.metrics
                            .get_metric_data()
                            .set_metric_data_queries(Some(sdk_queries.clone()))
                            .start_time(to_smithy(start))
                            .end_time(to_smithy(end))
                            .scan_by(ScanBy::TimestampAscending)
                            .set_next_token(token.clone())
                            .send(),
                    )
                })
                .await?;
            for result in page.metric_data_results() {
                let Some(index) = result
                    .id()
                    .and_then(|id| id.strip_prefix('q'))
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|i| *i < batch.len())
                else {
                    continue;
                };
                let stamps = result.timestamps().iter().filter_map(to_chrono);
                points[index].extend(stamps.zip(result.values().iter().copied()));
                if let Some(code) = result.status_code() {
                    status[index] = code.as_str().to_string();
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(batch
            .iter()
            .zip(points)
            .zip(status)
            .map(|((q, mut pts), status)| {
                pts.sort_by_key(|(t, _)| *t);
                MetricSeries {
                    id: q.id.clone(),
                    timestamps: pts.iter().map(|(t, _)| *t).collect(),
                    values: pts.iter().map(|(_, v)| *v).collect(),
                    status,
                }
            })
            .collect())
    }

    /// The metrics that exist, optionally narrowed to a namespace, a name and dimensions
    /// (a dimension with an empty value matches any value). At most [`MAX_LISTED_METRICS`];
    /// the flag says whether more exist.
    pub async fn list_metrics(
        &self,
        namespace: Option<&str>,
        metric_name: Option<&str>,
        dimensions: &[(String, String)],
    ) -> Result<(Vec<MetricId>, bool), CloudWatchError> {
        let filters: Vec<DimensionFilter> = dimensions
            .iter()
            .map(|(name, value)| {
                let value = Some(value.clone()).filter(|v| !v.is_empty());
                DimensionFilter::builder()
                    .name(name)
                    .set_value(value)
                    .build()
            })
            .collect();
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .send("ListMetrics", || {
                    sdk(
                        "ListMetrics",
                        None,
                        self.metrics
                            .list_metrics()
                            .set_namespace(namespace.map(str::to_string))
                            .set_metric_name(metric_name.map(str::to_string))
                            .set_dimensions(Some(filters.clone()))
                            .set_next_token(token.clone())
                            .send(),
                    )
                })
                .await?;
            for m in page.metrics() {
                if found.len() == MAX_LISTED_METRICS {
                    return Ok((found, true));
                }
                found.push(MetricId {
                    namespace: m.namespace().unwrap_or_default().to_string(),
                    metric_name: m.metric_name().unwrap_or_default().to_string(),
                    dimensions: m
                        .dimensions()
                        .iter()
                        .map(|d| {
                            (
                                d.name().unwrap_or_default().to_string(),
                                d.value().unwrap_or_default().to_string(),
                            )
                        })
                        .collect(),
                });
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok((found, false));
            }
        }
    }

    /// GetMetricStatistics for one metric: each of `statistics` per `period` in
    /// `[start, end)`, oldest first. Percentiles (`p99`, `p50.5`) go as extended statistics.
    pub async fn get_metric_statistics(
        &self,
        query: &MetricQuery,
        statistics: &[String],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<StatisticsPoint>, CloudWatchError> {
        const OP: &str = "GetMetricStatistics";
        validate_range(OP, start, end)?;
        validate_period(OP, query.period)?;
        let (basic, extended): (Vec<&String>, Vec<&String>) = statistics
            .iter()
            .partition(|s| BASIC_STATISTICS.contains(&s.as_str()));
        if let Some(bad) = extended.iter().find(|s| !is_percentile(s)) {
            return Err(CloudWatchError::Invalid {
                operation: OP,
                detail: format!(
                    "unknown statistic `{bad}`: use {} or a percentile such as p99",
                    BASIC_STATISTICS.join(", ")
                ),
            });
        }
        let out = self
            .send(OP, || {
                sdk(
                    OP,
                    None,
                    self.metrics
                        .get_metric_statistics()
                        .namespace(&query.namespace)
                        .metric_name(&query.metric_name)
                        .set_dimensions(Some(dimensions_of(&query.dimensions)))
                        .start_time(to_smithy(start))
                        .end_time(to_smithy(end))
                        .period(query.period)
                        .set_statistics(Some(
                            basic.iter().map(|s| Statistic::from(s.as_str())).collect(),
                        ))
                        .set_extended_statistics(
                            Some(extended.iter().map(|s| s.to_string()).collect())
                                .filter(|v: &Vec<String>| !v.is_empty()),
                        )
                        .send(),
                )
            })
            .await?;
        let mut points: Vec<StatisticsPoint> = out
            .datapoints()
            .iter()
            .filter_map(|d| {
                let timestamp = d.timestamp().and_then(to_chrono)?;
                let mut values = BTreeMap::new();
                let basic_values = [
                    ("Average", d.average()),
                    ("Maximum", d.maximum()),
                    ("Minimum", d.minimum()),
                    ("Sum", d.sum()),
                    ("SampleCount", d.sample_count()),
                ];
                for (name, value) in basic_values {
                    if let Some(v) = value.filter(|_| basic.iter().any(|s| *s == name)) {
                        values.insert(name.to_string(), v);
                    }
                }
                for (name, v) in d.extended_statistics().into_iter().flatten() {
                    values.insert(name.clone(), *v);
                }
                let unit = d.unit().map(|u| u.as_str().to_string());
                Some(StatisticsPoint {
                    timestamp,
                    values,
                    unit,
                })
            })
            .collect();
        points.sort_by_key(|p| p.timestamp);
        Ok(points)
    }

    /// Alarms, optionally only those in `state`; at most [`MAX_ALARMS`] (the flag says
    /// whether more exist).
    pub async fn describe_alarms(
        &self,
        state: Option<AlarmState>,
    ) -> Result<(Vec<Alarm>, bool), CloudWatchError> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .send("DescribeAlarms", || {
                    sdk(
                        "DescribeAlarms",
                        None,
                        self.metrics
                            .describe_alarms()
                            .set_state_value(state.map(AlarmState::to_sdk))
                            .set_next_token(token.clone())
                            .send(),
                    )
                })
                .await?;
            let metric_alarms = page.metric_alarms().iter().map(|a| Alarm {
                name: a.alarm_name().unwrap_or_default().to_string(),
                state: a
                    .state_value()
                    .map(|s| s.as_str())
                    .unwrap_or("")
                    .to_string(),
                reason: a.state_reason().unwrap_or_default().to_string(),
                namespace: a.namespace().map(str::to_string),
                metric_name: a.metric_name().map(str::to_string),
                condition: a.comparison_operator().map(|op| match a.threshold() {
                    Some(t) => format!("{} {t}", op.as_str()),
                    None => op.as_str().to_string(),
                }),
                updated: a.state_updated_timestamp().and_then(to_chrono),
            });
            let composite = page.composite_alarms().iter().map(|a| Alarm {
                name: a.alarm_name().unwrap_or_default().to_string(),
                state: a
                    .state_value()
                    .map(|s| s.as_str())
                    .unwrap_or("")
                    .to_string(),
                reason: a.state_reason().unwrap_or_default().to_string(),
                namespace: None,
                metric_name: None,
                condition: a.alarm_rule().map(str::to_string),
                updated: a.state_updated_timestamp().and_then(to_chrono),
            });
            for alarm in metric_alarms.chain(composite) {
                if found.len() == MAX_ALARMS {
                    return Ok((found, true));
                }
                found.push(alarm);
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok((found, false));
            }
        }
    }
}

/// `p99`, `p99.9`, `p50`: a percentile statistic.
fn is_percentile(s: &str) -> bool {
    s.strip_prefix('p')
        .and_then(|n| n.parse::<f64>().ok())
        .is_some_and(|n| (0.0..=100.0).contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_cloudwatch_rules() {
        for ok in [1, 5, 10, 30, 60, 300, 3600, 86_400] {
            assert!(validate_period("X", ok).is_ok(), "{ok}");
        }
        for bad in [0, -60, 2, 45, 90, 61] {
            let err = validate_period("X", bad).unwrap_err().to_string();
            assert!(err.contains("multiple of 60"), "{bad}: {err}");
        }
    }

    #[test]
    fn percentiles_are_recognised() {
        assert!(is_percentile("p99") && is_percentile("p99.9") && is_percentile("p0"));
        assert!(!is_percentile("p101") && !is_percentile("avg") && !is_percentile("p"));
    }
}
