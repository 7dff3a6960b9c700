//! Evaluates every `metric` rule of a heartbeat together: all of them share GetMetricData
//! calls of up to [`MAX_QUERIES_PER_CALL`] queries each (each query with its rule's period),
//! over the widest window any rule asks for, so N rules cost ceil(N/500) calls whatever their
//! windows; each rule's datapoints are then cut to its own window and reduced to its
//! condition field.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::{MetricQuery, MetricSeries, MetricSource};
use crate::monitor::rules::{Field, Params, Rule};
use crate::monitor::transition::Outcome;

/// GetMetricData's limit on queries per call.
pub const MAX_QUERIES_PER_CALL: usize = 500;

/// The CloudWatch statistic a field is computed from.
pub fn stat_for(field: Field) -> &'static str {
    match field {
        Field::Min => "Minimum",
        Field::Max => "Maximum",
        Field::Sum => "Sum",
        Field::Count => "SampleCount",
        Field::Avg | Field::Last | Field::Value => "Average",
    }
}

/// Reduces a series to the field's value (`None`: no datapoints).
pub fn reduce(field: Field, series: &MetricSeries) -> Option<f64> {
    let values = &series.values;
    if values.is_empty() {
        return None;
    }
    Some(match field {
        Field::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        Field::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Field::Sum | Field::Count => values.iter().sum(),
        Field::Avg | Field::Value => values.iter().sum::<f64>() / values.len() as f64,
        Field::Last => {
            let newest = series
                .timestamps
                .iter()
                .enumerate()
                .max_by_key(|(_, t)| **t)
                .map_or(0, |(i, _)| i);
            values.get(newest).copied().unwrap_or(values[0])
        }
    })
}

/// The datapoints of `series` at or after `since` (a rule's own window of a wider fetch).
pub fn within(series: &MetricSeries, since: DateTime<Utc>) -> MetricSeries {
    let (timestamps, values) = series
        .timestamps
        .iter()
        .zip(&series.values)
        .filter(|(t, _)| **t >= since)
        .map(|(t, v)| (*t, *v))
        .unzip();
    MetricSeries {
        id: series.id.clone(),
        timestamps,
        values,
        status: series.status.clone(),
    }
}

/// Evaluates `rules` (indices into the caller's list, all `metric` rules) at `now`.
/// Returns one outcome per given index, and how many GetMetricData calls were made.
pub async fn evaluate(
    source: &dyn MetricSource,
    rules: &[(usize, &Rule)],
    now: DateTime<Utc>,
) -> (Vec<(usize, Outcome)>, usize) {
    let mut batch: Vec<(usize, &Rule, DateTime<Utc>, MetricQuery)> = Vec::new();
    let mut refused = Vec::new();
    for (i, rule) in rules {
        let Params::Metric(p) = &rule.params else {
            continue;
        };
        if let Err(why) = source.permits(&p.namespace) {
            refused.push((*i, Outcome::Error(why)));
            continue;
        }
        let query = MetricQuery {
            id: format!("q{i}"),
            namespace: p.namespace.clone(),
            metric_name: p.metric_name.clone(),
            dimensions: p.all_dimensions(),
            stat: stat_for(rule.field).to_string(),
            period: i32::try_from(p.period).unwrap_or(i32::MAX),
        };
        let since = now - Duration::minutes(i64::from(p.window_minutes));
        batch.push((*i, rule, since, query));
    }
    let Some(start) = batch.iter().map(|(_, _, since, _)| *since).min() else {
        return (refused, 0);
    };
    let mut out = refused;
    let mut calls = 0;
    for chunk in batch.chunks(MAX_QUERIES_PER_CALL) {
        let queries: Vec<MetricQuery> = chunk.iter().map(|(.., q)| q.clone()).collect();
        calls += 1;
        match source.get_metric_data(&queries, start, now).await {
            Ok(series) => {
                let by_id: BTreeMap<&str, &MetricSeries> =
                    series.iter().map(|s| (s.id.as_str(), s)).collect();
                for (i, rule, since, q) in chunk {
                    let value = by_id
                        .get(q.id.as_str())
                        .and_then(|s| reduce(rule.field, &within(s, *since)));
                    out.push((*i, value.map_or(Outcome::NoData, Outcome::Value)));
                }
            }
            Err(e) => {
                for (i, ..) in chunk {
                    out.push((*i, Outcome::Error(format!("CloudWatch: {e}"))));
                }
            }
        }
    }
    (out, calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[f64]) -> MetricSeries {
        let t0 = Utc::now();
        MetricSeries {
            id: "q".into(),
            timestamps: (0..values.len())
                .map(|i| t0 - Duration::minutes(i as i64))
                .collect(),
            values: values.to_vec(),
            status: "Complete".into(),
        }
    }

    #[test]
    fn fields_reduce_datapoints() {
        // CloudWatch returns the newest datapoint first.
        let s = series(&[4.0, 1.0, 7.0]);
        assert_eq!(reduce(Field::Avg, &s), Some(4.0));
        assert_eq!(reduce(Field::Min, &s), Some(1.0));
        assert_eq!(reduce(Field::Max, &s), Some(7.0));
        assert_eq!(reduce(Field::Sum, &s), Some(12.0));
        assert_eq!(reduce(Field::Last, &s), Some(4.0));
        assert_eq!(reduce(Field::Avg, &series(&[])), None);
        assert_eq!(stat_for(Field::Count), "SampleCount");
    }

    #[test]
    fn a_wider_fetch_is_cut_to_the_rule_window() {
        let s = series(&[4.0, 1.0, 7.0]);
        let cut = within(&s, s.timestamps[1]);
        assert_eq!(cut.values, [4.0, 1.0]);
        assert_eq!(reduce(Field::Max, &cut), Some(4.0));
    }
}
