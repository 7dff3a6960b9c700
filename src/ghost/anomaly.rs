//! Findings from a profile against its stored history, with robust thresholds: the median and
//! the median absolute deviation (MAD) of the past series, so one odd run does not move the
//! bar. Row-count changes, stalled growth and freshness, null-rate spikes, shifted numeric
//! means and values never seen before; each finding has a severity.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::history::PastProfile;
use super::markdown::inline;
use super::profile::TableProfile;
use crate::severity::Severity;

/// MAD to standard deviation for normal data.
const MAD_SCALE: f64 = 1.4826;
/// Robust z-score above which a row-count change is a warning.
pub const ROW_Z_WARNING: f64 = 3.5;
/// Robust z-score above which a row-count change is critical.
pub const ROW_Z_CRITICAL: f64 = 10.0;
/// Smallest spread assumed for row-count changes, as a fraction of the last count (a perfectly
/// steady table would otherwise flag a one-row change).
pub const ROW_MIN_SPREAD_FRACTION: f64 = 0.01;
/// Past changes needed before a row-count trend is judged.
pub const MIN_HISTORY_CHANGES: usize = 2;
/// A null-rate rise smaller than this is never a finding.
pub const NULL_RATE_MIN_RISE: f64 = 0.05;
/// A null-rate rise at least this large is critical.
pub const NULL_RATE_CRITICAL_RISE: f64 = 0.25;
/// A mean shift smaller than this fraction of the usual mean is never a finding.
pub const MEAN_MIN_SHIFT_FRACTION: f64 = 0.1;
/// Past means needed before a mean shift is judged.
pub const MIN_HISTORY_MEANS: usize = 3;
/// New values listed per finding.
const NEW_VALUES_SHOWN: usize = 5;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    RowCount,
    GrowthStalled,
    FreshnessStalled,
    NullSpike,
    MeanShift,
    NewValues,
    UnknownType,
    ProfileFailed,
}

/// One finding of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Finding {
    pub severity: Severity,
    pub kind: FindingKind,
    pub table: String,
    pub column: Option<String>,
    pub message: String,
}

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// `(median, MAD)` of a series.
pub fn median_mad(values: &[f64]) -> (f64, f64) {
    let m = median(values);
    let deviations: Vec<f64> = values.iter().map(|x| (x - m).abs()).collect();
    (m, median(&deviations))
}

/// All findings for one table's profile against its past profiles (oldest first).
pub fn judge_table(current: &TableProfile, past: &[PastProfile]) -> Vec<Finding> {
    let mut out = Vec::new();
    row_count(current, past, &mut out);
    freshness(current, past, &mut out);
    columns(current, past, &mut out);
    out
}

fn finding(
    severity: Severity,
    kind: FindingKind,
    p: &TableProfile,
    column: Option<&str>,
    message: String,
) -> Finding {
    Finding {
        severity,
        kind,
        table: p.table.clone(),
        column: column.map(str::to_string),
        message,
    }
}

fn row_count(current: &TableProfile, past: &[PastProfile], out: &mut Vec<Finding>) {
    let Some(last) = past.last() else { return };
    let last = last.profile.row_count;
    let now = current.row_count;
    let change = (now - last) as f64;
    if last > 0 && now == 0 {
        out.push(finding(
            Severity::Critical,
            FindingKind::RowCount,
            current,
            None,
            format!("table emptied: {last} rows at the last run, 0 now"),
        ));
        return;
    }
    let counts: Vec<f64> = past.iter().map(|p| p.profile.row_count as f64).collect();
    let changes: Vec<f64> = counts.windows(2).map(|w| w[1] - w[0]).collect();
    if changes.len() < MIN_HISTORY_CHANGES {
        if last > 0 && now * 2 <= last {
            out.push(finding(
                Severity::Warning,
                FindingKind::RowCount,
                current,
                None,
                format!("row count fell from {last} to {now} (little history to compare with)"),
            ));
        }
        return;
    }
    if change == 0.0 && changes.iter().all(|c| *c > 0.0) {
        out.push(finding(
            Severity::Warning,
            FindingKind::GrowthStalled,
            current,
            None,
            format!(
                "growth stalled at {now} rows; it grew at every one of the last {} runs",
                changes.len()
            ),
        ));
        return;
    }
    let (med, mad) = median_mad(&changes);
    let spread = (MAD_SCALE * mad)
        .max(ROW_MIN_SPREAD_FRACTION * last.max(1) as f64)
        .max(1.0);
    let z = (change - med) / spread;
    let severity = if z.abs() > ROW_Z_CRITICAL {
        Severity::Critical
    } else if z.abs() > ROW_Z_WARNING {
        Severity::Warning
    } else {
        return;
    };
    let pct = if last > 0 {
        format!(" ({:+.1}%)", 100.0 * change / last as f64)
    } else {
        String::new()
    };
    out.push(finding(
        severity,
        FindingKind::RowCount,
        current,
        None,
        format!(
            "row count {} from {last} to {now}{pct}; the usual change over {} runs is {med:+.0} \
             (robust z = {z:.1})",
            if change < 0.0 { "fell" } else { "rose" },
            changes.len()
        ),
    ));
}

fn freshness(current: &TableProfile, past: &[PastProfile], out: &mut Vec<Finding>) {
    let (Some(col), Some(now)) = (&current.freshness_column, &current.freshness) else {
        return;
    };
    let series: Vec<&str> = past
        .iter()
        .filter(|p| p.profile.freshness_column.as_ref() == Some(col))
        .filter_map(|p| p.profile.freshness.as_deref())
        .collect();
    if series.len() < MIN_HISTORY_CHANGES {
        return;
    }
    let advancing = series.windows(2).all(|w| w[1] > w[0]);
    if advancing && series.last() == Some(&now.as_str()) {
        out.push(finding(
            Severity::Warning,
            FindingKind::FreshnessStalled,
            current,
            Some(col),
            format!(
                "no new data: the latest `{}` is still {now}, though it advanced at each of the \
                 last {} runs",
                inline(col),
                series.len() - 1
            ),
        ));
    }
}

fn columns(current: &TableProfile, past: &[PastProfile], out: &mut Vec<Finding>) {
    for col in &current.columns {
        let earlier: Vec<_> = past
            .iter()
            .filter_map(|p| p.profile.column(&col.name))
            .collect();
        if col.kind == super::profile::ColumnKind::Other && earlier.is_empty() {
            out.push(finding(
                Severity::Info,
                FindingKind::UnknownType,
                current,
                Some(&col.name),
                format!(
                    "column `{}` has type `{}` that ghost does not know; it is profiled as \
                     text (nulls, distinct values) only",
                    inline(&col.name),
                    inline(&col.data_type)
                ),
            ));
        }
        if earlier.is_empty() {
            continue;
        }
        let rates: Vec<f64> = earlier.iter().map(|c| c.null_rate).collect();
        let (med, mad) = median_mad(&rates);
        let rise = col.null_rate - med;
        let bar = NULL_RATE_MIN_RISE.max(ROW_Z_WARNING * MAD_SCALE * mad);
        if rise > bar {
            let severity = if rise >= NULL_RATE_CRITICAL_RISE {
                Severity::Critical
            } else {
                Severity::Warning
            };
            out.push(finding(
                severity,
                FindingKind::NullSpike,
                current,
                Some(&col.name),
                format!(
                    "nulls in `{}` rose to {:.1}% (usually {:.1}%)",
                    inline(&col.name),
                    100.0 * col.null_rate,
                    100.0 * med
                ),
            ));
        }
        let means: Vec<f64> = earlier.iter().filter_map(|c| c.mean).collect();
        if let (Some(mean), true) = (col.mean, means.len() >= MIN_HISTORY_MEANS)
            && col.kind == super::profile::ColumnKind::Numeric
        {
            let (med, mad) = median_mad(&means);
            let shift = mean - med;
            let bar = (MEAN_MIN_SHIFT_FRACTION * med.abs()).max(ROW_Z_WARNING * MAD_SCALE * mad);
            if shift.abs() > bar && bar > 0.0 {
                out.push(finding(
                    Severity::Warning,
                    FindingKind::MeanShift,
                    current,
                    Some(&col.name),
                    format!(
                        "mean of `{}` moved to {mean:.4} (usually {med:.4})",
                        inline(&col.name)
                    ),
                ));
            }
        }
        let Some(values) = &col.values else { continue };
        let seen: BTreeSet<&str> = earlier
            .iter()
            .filter_map(|c| c.values.as_ref())
            .flatten()
            .map(|v| v.value.as_str())
            .collect();
        if !earlier.iter().any(|c| c.values.is_some()) {
            continue;
        }
        let new: Vec<_> = values
            .iter()
            .filter(|v| !seen.contains(v.value.as_str()))
            .collect();
        if !new.is_empty() {
            let shown: Vec<String> = new
                .iter()
                .take(NEW_VALUES_SHOWN)
                .map(|v| format!("`{}` ({} rows)", inline(&v.value), v.count))
                .collect();
            out.push(finding(
                Severity::Warning,
                FindingKind::NewValues,
                current,
                Some(&col.name),
                format!(
                    "{} new value{} in `{}`: {}",
                    new.len(),
                    if new.len() == 1 { "" } else { "s" },
                    inline(&col.name),
                    shown.join(", ")
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ghost::profile::{ColumnKind, ColumnProfile};

    fn profile(rows: i64, null_rate: f64) -> TableProfile {
        TableProfile {
            table: "t".into(),
            row_count: rows,
            rows_examined: rows,
            sample_percent: None,
            row_estimate: None,
            full_scans: 1,
            freshness_column: None,
            freshness: None,
            columns: vec![ColumnProfile {
                name: "c".into(),
                data_type: "text".into(),
                kind: ColumnKind::Text,
                nulls: (rows as f64 * null_rate) as i64,
                null_rate,
                distinct: 1,
                distinct_approximate: false,
                min: None,
                max: None,
                mean: None,
                values: None,
            }],
            kind: Default::default(),
            partitions: Vec::new(),
            elapsed_ms: 0,
        }
    }

    fn history(rows: &[i64]) -> Vec<PastProfile> {
        rows.iter()
            .map(|r| PastProfile {
                taken_at: String::new(),
                profile: profile(*r, 0.0),
            })
            .collect()
    }

    fn severity_of(
        kind: FindingKind,
        now: &TableProfile,
        past: &[PastProfile],
    ) -> Option<Severity> {
        judge_table(now, past)
            .into_iter()
            .find(|f| f.kind == kind)
            .map(|f| f.severity)
    }

    #[test]
    fn row_count_thresholds_scale_with_the_usual_change() {
        let steady = history(&[1000, 1100, 1200, 1300]);
        // The usual +100: nothing. +100 +/- 1% of the last count: still nothing.
        assert_eq!(
            severity_of(FindingKind::RowCount, &profile(1400, 0.0), &steady),
            None
        );
        assert_eq!(
            severity_of(FindingKind::RowCount, &profile(1420, 0.0), &steady),
            None
        );
        // Beyond ROW_Z_WARNING spreads (spread = 1% of 1300 = 13): warning; beyond
        // ROW_Z_CRITICAL: critical.
        assert_eq!(
            severity_of(FindingKind::RowCount, &profile(1460, 0.0), &steady),
            Some(Severity::Warning)
        );
        assert_eq!(
            severity_of(FindingKind::RowCount, &profile(900, 0.0), &steady),
            Some(Severity::Critical)
        );
        assert_eq!(
            severity_of(FindingKind::RowCount, &profile(0, 0.0), &steady),
            Some(Severity::Critical)
        );
        // Growth that stops is a stall, not a drop.
        assert_eq!(
            severity_of(FindingKind::GrowthStalled, &profile(1300, 0.0), &steady),
            Some(Severity::Warning)
        );
        // Too little history (MIN_HISTORY_CHANGES): only a halving is reported.
        let short = history(&[1000, 1100]);
        assert_eq!(
            severity_of(FindingKind::RowCount, &profile(1500, 0.0), &short),
            None
        );
        assert_eq!(
            severity_of(FindingKind::RowCount, &profile(500, 0.0), &short),
            Some(Severity::Warning)
        );
    }

    #[test]
    fn null_rate_rises_below_the_minimum_are_ignored() {
        let past = history(&[100, 100, 100]);
        let rise = |r: f64| severity_of(FindingKind::NullSpike, &profile(100, r), &past);
        assert_eq!(rise(NULL_RATE_MIN_RISE * 0.9), None);
        assert_eq!(rise(NULL_RATE_MIN_RISE * 1.5), Some(Severity::Warning));
        assert_eq!(rise(NULL_RATE_CRITICAL_RISE), Some(Severity::Critical));
    }

    #[test]
    fn median_and_mad_are_robust_to_one_outlier() {
        let (m, mad) = median_mad(&[10.0, 11.0, 9.0, 10.0, 1000.0]);
        assert_eq!(m, 10.0);
        assert_eq!(mad, 1.0);
    }
}
