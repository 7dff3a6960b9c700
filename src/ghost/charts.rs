//! The report's PNG charts, drawn with [`crate::chart`]: the row-count history of a table, the
//! null-rate history of columns whose null rate moved, and the value distribution of a column
//! with new values. The point a finding is about is ringed and named in the legend.

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::chart::{self, Bar, BarChart, Series, TimeChart, ValueKind};
pub use crate::chart::{CHART_HEIGHT, CHART_WIDTH, ChartError};

/// Bars drawn in one distribution chart (the rest are left out).
pub const MAX_BARS: usize = 20;
/// Columns drawn in one null-rate chart (those with findings first).
pub const MAX_NULL_SERIES: usize = 6;

/// The null rates (0..=1) of one column over runs, oldest first.
#[derive(Debug, Clone)]
pub struct NullHistory {
    pub column: String,
    pub points: Vec<(DateTime<Utc>, f64)>,
    /// This run's rate is a finding: its point is ringed.
    pub anomalous: bool,
}

/// Row count of `table` over runs, `points` oldest first, the last one this run's. With
/// `anomaly` (the legend entry, e.g. `critical: row count change`), this run's point is ringed.
pub fn row_count_history(
    path: &Path,
    table: &str,
    points: &[(DateTime<Utc>, i64)],
    anomaly: Option<&str>,
) -> Result<(), ChartError> {
    let series = [Series {
        name: "rows".into(),
        points: points.iter().map(|(t, n)| (*t, *n as f64)).collect(),
    }];
    let marked: Vec<(DateTime<Utc>, f64)> = anomaly
        .and(points.last())
        .map(|(t, n)| (*t, *n as f64))
        .into_iter()
        .collect();
    chart::time_chart(
        path,
        &TimeChart {
            title: &format!("Row count: {table}"),
            kind: ValueKind::Count,
            series: &series,
            marked: &marked,
            marked_label: anomaly.unwrap_or_default(),
            threshold: None,
        },
    )
}

/// Null rates of `table`'s columns over runs; the last point of each anomalous column ringed.
pub fn null_rate_history(
    path: &Path,
    table: &str,
    columns: &[NullHistory],
) -> Result<(), ChartError> {
    let mut columns: Vec<&NullHistory> = columns.iter().collect();
    columns.sort_by_key(|c| !c.anomalous);
    columns.truncate(MAX_NULL_SERIES);
    let series: Vec<Series> = columns
        .iter()
        .map(|c| Series {
            name: c.column.clone(),
            points: c.points.clone(),
        })
        .collect();
    let marked: Vec<(DateTime<Utc>, f64)> = columns
        .iter()
        .filter(|c| c.anomalous)
        .filter_map(|c| c.points.last().copied())
        .collect();
    chart::time_chart(
        path,
        &TimeChart {
            title: &format!("Null rate: {table}"),
            kind: ValueKind::Ratio,
            series: &series,
            marked: &marked,
            marked_label: "null-rate spike (this run)",
            threshold: None,
        },
    )
}

/// Value counts of `column`: `(value, rows, is_new)`; new values in vermillion.
pub fn value_distribution(
    path: &Path,
    table: &str,
    column: &str,
    values: &[(String, i64, bool)],
) -> Result<(), ChartError> {
    let bars: Vec<Bar> = values
        .iter()
        .take(MAX_BARS)
        .map(|(label, n, new)| Bar {
            label: label.clone(),
            value: *n as f64,
            highlight: *new,
        })
        .collect();
    chart::bar_chart(
        path,
        &BarChart {
            title: &format!("Values of {table}.{column}"),
            kind: ValueKind::Count,
            bars: &bars,
            label: "rows per value",
            highlight_label: "new value (never seen before)",
        },
    )
}
