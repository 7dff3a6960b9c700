//! Where a chart's ticks go and what they say. Time axes pick a round step for the span the
//! points cover and a label format for that step (`HH:MM:SS` for runs seconds apart, `HH:MM`
//! under a day, `Nov 25 18:00` over a few days, `Nov 25` for weeks, `Jan 2026` for years), so
//! no two ticks read the same; the axis caption carries what the labels leave out (the date,
//! the year). Value axes get round steps (1, 2, 2.5, 5 × 10ⁿ).

use chrono::{DateTime, Datelike, Duration, NaiveDate, SubsecRound, TimeZone, Timelike, Utc};

/// A time axis narrower than this is widened around its middle (one run, or runs moments apart).
pub const MIN_TIME_SPAN_SECS: i64 = 10;
/// Room left on each side of the points, as a fraction of their span.
const PAD_FRACTION: f64 = 0.04;
/// Candidate steps below a month, in seconds.
const STEPS: &[i64] = &[
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200,
    86_400, 172_800, 604_800, 1_209_600,
];
/// Candidate steps of a month or more, in months.
const MONTH_STEPS: &[u32] = &[1, 2, 3, 6, 12, 24, 60, 120];
const DAY: i64 = 86_400;
/// Month ticks generated before a step is judged too small.
const MAX_MONTH_TICKS: usize = 1_000;

/// How the tick labels of a time axis read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeStyle {
    /// `14:05:30`: ticks seconds apart.
    Seconds,
    /// `14:05`: ticks minutes or hours apart, within a day.
    Minutes,
    /// `Nov 25 18:00`: ticks hours apart over a few days.
    DayTime,
    /// `Nov 25`: ticks days apart.
    Date,
    /// `Jan 2026`: ticks months apart.
    Month,
}

impl TimeStyle {
    fn pattern(self) -> &'static str {
        match self {
            TimeStyle::Seconds => "%H:%M:%S",
            TimeStyle::Minutes => "%H:%M",
            TimeStyle::DayTime => "%b %d %H:%M",
            TimeStyle::Date => "%b %d",
            TimeStyle::Month => "%b %Y",
        }
    }
}

/// A time axis: its range (the points' span, padded), its ticks and how they are labelled.
#[derive(Debug, Clone)]
pub struct TimeAxis {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub ticks: Vec<DateTime<Utc>>,
    pub style: TimeStyle,
}

impl TimeAxis {
    /// Seconds from the axis start: the x coordinate a chart draws `t` at.
    pub fn x(&self, t: DateTime<Utc>) -> f64 {
        (t - self.start).num_milliseconds() as f64 / 1000.0
    }

    /// The tick nearest to `x` (plotters hands the formatter coordinates, not ticks).
    pub fn tick_at(&self, x: f64) -> Option<DateTime<Utc>> {
        self.ticks
            .iter()
            .copied()
            .min_by(|a, b| (self.x(*a) - x).abs().total_cmp(&(self.x(*b) - x).abs()))
    }

    /// Width of the axis in seconds.
    pub fn width(&self) -> f64 {
        self.x(self.end)
    }

    /// The label of a tick. On an `HH:MM` axis that crosses midnight, the tick at midnight
    /// names the new day instead.
    pub fn label(&self, t: DateTime<Utc>) -> String {
        if self.style == TimeStyle::Minutes
            && self.start.date_naive() != self.end.date_naive()
            && t.num_seconds_from_midnight() == 0
        {
            return t.format(TimeStyle::Date.pattern()).to_string();
        }
        t.format(self.style.pattern()).to_string()
    }

    /// The axis caption: the time zone and what the labels leave out (the day, the year).
    pub fn caption(&self) -> String {
        let (a, b) = (self.start.date_naive(), self.end.date_naive());
        let range = |pattern: &str| {
            let (a, b) = (a.format(pattern).to_string(), b.format(pattern).to_string());
            if a == b { a } else { format!("{a} – {b}") }
        };
        match self.style {
            TimeStyle::Seconds | TimeStyle::Minutes => format!("time (UTC), {}", range("%Y-%m-%d")),
            TimeStyle::DayTime | TimeStyle::Date => format!("time (UTC), {}", range("%Y")),
            TimeStyle::Month => "time (UTC)".to_string(),
        }
    }
}

/// The axis for points at `times` with at most `max_ticks` ticks (at least 2); `None` when
/// there are no times.
pub fn time_axis(times: &[DateTime<Utc>], max_ticks: usize) -> Option<TimeAxis> {
    let max_ticks = max_ticks.max(2);
    let first = *times.iter().min()?;
    let last = *times.iter().max()?;
    let (mut first, mut last) = (first, last);
    let span = (last - first).num_seconds();
    if span < MIN_TIME_SPAN_SECS {
        let widen = Duration::milliseconds(
            (MIN_TIME_SPAN_SECS * 1000 - (last - first).num_milliseconds()) / 2,
        );
        first -= widen;
        last += widen;
    }
    let pad =
        Duration::milliseconds(((last - first).num_milliseconds() as f64 * PAD_FRACTION) as i64);
    // Whole milliseconds, so that a tick's x coordinate maps back to the tick exactly.
    let (start, end) = (
        (first - pad).trunc_subsecs(3),
        (last + pad).trunc_subsecs(3),
    );
    let span = (end - start).num_seconds();
    for &step in STEPS {
        if let Some(ticks) = fixed_ticks(start, end, step, max_ticks) {
            let style = if step < 60 {
                TimeStyle::Seconds
            } else if step < DAY && span < DAY {
                TimeStyle::Minutes
            } else if step < DAY {
                TimeStyle::DayTime
            } else {
                TimeStyle::Date
            };
            return Some(TimeAxis {
                start,
                end,
                ticks,
                style,
            });
        }
    }
    for &months in MONTH_STEPS {
        let ticks = month_ticks(start, end, months);
        if ticks.len() <= max_ticks {
            return Some(TimeAxis {
                start,
                end,
                ticks,
                style: TimeStyle::Month,
            });
        }
    }
    let ticks = vec![start + (end - start) / 2];
    Some(TimeAxis {
        start,
        end,
        ticks,
        style: TimeStyle::Month,
    })
}

/// Multiples of `step` seconds since the epoch within `start..=end`, or `None` when there
/// would be more than `max_ticks`.
fn fixed_ticks(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: i64,
    max_ticks: usize,
) -> Option<Vec<DateTime<Utc>>> {
    let step_ms = step * 1000;
    let from = start.timestamp_millis().div_euclid(step_ms)
        + i64::from(start.timestamp_millis().rem_euclid(step_ms) != 0);
    let to = end.timestamp_millis().div_euclid(step_ms);
    let count = usize::try_from(to - from + 1).unwrap_or(0);
    if count > max_ticks {
        return None;
    }
    Some(
        (from..=to)
            .filter_map(|i| Utc.timestamp_millis_opt(i * step_ms).single())
            .collect(),
    )
}

/// Month starts within `start..=end` whose month number (counted from year 0) is a multiple
/// of `months`.
fn month_ticks(start: DateTime<Utc>, end: DateTime<Utc>, months: u32) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut index = i64::from(start.year()) * 12 + i64::from(start.month0());
    let last = i64::from(end.year()) * 12 + i64::from(end.month0());
    while index <= last && out.len() <= MAX_MONTH_TICKS {
        if index.rem_euclid(i64::from(months)) == 0 {
            let year = i32::try_from(index.div_euclid(12)).ok();
            let month = u32::try_from(index.rem_euclid(12) + 1).ok();
            if let Some(t) = year
                .zip(month)
                .and_then(|(y, m)| NaiveDate::from_ymd_opt(y, m, 1))
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| Utc.from_utc_datetime(&d))
                .filter(|t| *t >= start && *t <= end)
            {
                out.push(t);
            }
        }
        index += 1;
    }
    out
}

/// Round ticks covering `lo..=hi`, at most `max_ticks` of them (at least 2), and their step.
/// With `integer`, the step is at least 1 (no half rows).
pub fn value_ticks(lo: f64, hi: f64, max_ticks: usize, integer: bool) -> (Vec<f64>, f64) {
    let max_ticks = max_ticks.max(2);
    let (lo, hi) = match (lo.is_finite(), hi.is_finite()) {
        (true, true) if hi > lo => (lo, hi),
        (true, true) => (lo, lo + lo.abs().max(1.0)),
        _ => (0.0, 1.0),
    };
    let raw = (hi - lo) / (max_ticks - 1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let mut step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        // Ticks from floor(lo / s) to ceil(hi / s), both included.
        .find(|s| (((hi / s).ceil() - (lo / s).floor()) as usize) < max_ticks)
        .unwrap_or(magnitude * 10.0);
    if integer {
        step = step.max(1.0);
        if step.fract() != 0.0 {
            step = step.ceil();
        }
    }
    let first = (lo / step).floor() as i64;
    let last = (hi / step).ceil() as i64;
    let ticks = (first..=last).map(|i| i as f64 * step).collect();
    (ticks, step)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test time")
            .with_timezone(&Utc)
    }

    fn axis_of(times: &[&str]) -> (TimeAxis, Vec<String>) {
        let times: Vec<DateTime<Utc>> = times.iter().map(|t| at(t)).collect();
        let axis = time_axis(&times, 7).expect("an axis");
        let labels = axis.ticks.iter().map(|t| axis.label(*t)).collect();
        (axis, labels)
    }

    fn assert_distinct(labels: &[String]) {
        let mut seen = std::collections::BTreeSet::new();
        for l in labels {
            assert!(seen.insert(l), "{l} twice in {labels:?}");
        }
    }

    #[test]
    fn runs_seconds_apart_get_seconds() {
        let (axis, labels) = axis_of(&["2026-11-25T16:33:04.1Z", "2026-11-25T16:33:04.9Z"]);
        assert_eq!(axis.style, TimeStyle::Seconds);
        assert!(labels.len() >= 3, "{labels:?}");
        assert_distinct(&labels);
        assert_eq!(axis.caption(), "time (UTC), 2026-11-25");
    }

    #[test]
    fn runs_minutes_apart_get_distinct_hours_and_minutes() {
        let (axis, labels) = axis_of(&[
            "2026-11-25T16:30:00Z",
            "2026-11-25T16:35:00Z",
            "2026-11-25T16:40:00Z",
            "2026-11-25T16:45:00Z",
        ]);
        assert_eq!(axis.style, TimeStyle::Minutes);
        assert_eq!(labels, ["16:30", "16:35", "16:40", "16:45"]);
    }

    #[test]
    fn a_day_crossing_midnight_names_the_new_day() {
        let (axis, labels) = axis_of(&["2026-11-25T14:00:00Z", "2026-11-26T08:00:00Z"]);
        assert_eq!(axis.style, TimeStyle::Minutes);
        assert!(labels.contains(&"Nov 26".to_string()), "{labels:?}");
        assert!(labels.contains(&"18:00".to_string()), "{labels:?}");
        assert_distinct(&labels);
        assert_eq!(axis.caption(), "time (UTC), 2026-11-25 – 2026-11-26");
    }

    #[test]
    fn a_few_days_get_dates_with_times() {
        let (axis, labels) = axis_of(&["2026-11-25T00:00:00Z", "2026-11-27T12:00:00Z"]);
        assert_eq!(axis.style, TimeStyle::DayTime);
        assert!(labels.contains(&"Nov 26 00:00".to_string()), "{labels:?}");
        assert_distinct(&labels);
        assert_eq!(axis.caption(), "time (UTC), 2026");
    }

    #[test]
    fn weeks_get_dates_and_years_get_months() {
        let (axis, labels) = axis_of(&["2026-11-01T00:00:00Z", "2026-11-30T00:00:00Z"]);
        assert_eq!(axis.style, TimeStyle::Date);
        assert!(labels.iter().all(|l| l.starts_with("Nov ")), "{labels:?}");
        assert_distinct(&labels);
        let (axis, labels) = axis_of(&["2025-01-15T00:00:00Z", "2026-11-30T00:00:00Z"]);
        assert_eq!(axis.style, TimeStyle::Month);
        assert!(labels.contains(&"Jan 2026".to_string()), "{labels:?}");
        assert_distinct(&labels);
        assert_eq!(axis.caption(), "time (UTC)");
    }

    #[test]
    fn every_span_gets_a_few_distinct_ticks_inside_the_axis() {
        let base = at("2026-11-25T16:33:04.440Z");
        let mut span = 1i64;
        while span < 20 * 365 * DAY {
            let times = [
                base,
                base + Duration::seconds(span / 2),
                base + Duration::seconds(span),
            ];
            let axis = time_axis(&times, 7).expect("an axis");
            assert!(
                (2..=7).contains(&axis.ticks.len()),
                "span {span}s: {:?}",
                axis.ticks
            );
            assert!(
                axis.ticks
                    .iter()
                    .all(|t| *t >= axis.start && *t <= axis.end)
            );
            assert!(times.iter().all(|t| *t > axis.start && *t < axis.end));
            let labels: Vec<String> = axis.ticks.iter().map(|t| axis.label(*t)).collect();
            assert_distinct(&labels);
            span = span * 3 / 2 + 1;
        }
    }

    #[test]
    fn ticks_are_round_whatever_the_first_time() {
        let t = at("2026-12-07T03:48:14.123456789Z");
        let axis = time_axis(&[t, t + Duration::minutes(3)], 7).expect("an axis");
        for tick in &axis.ticks {
            assert_eq!(tick.timestamp_subsec_nanos(), 0);
            assert_eq!(axis.tick_at(axis.x(*tick)), Some(*tick));
        }
        assert_eq!(axis.label(axis.ticks[0]), "03:48:30");
    }

    #[test]
    fn one_point_gets_an_axis_around_it() {
        let t = at("2026-11-25T16:33:04Z");
        let axis = time_axis(&[t], 7).expect("an axis");
        assert!(axis.start < t && t < axis.end);
        assert!(axis.ticks.len() >= 2);
        assert!(time_axis(&[], 7).is_none());
    }

    #[test]
    fn value_ticks_are_round_and_cover_the_range() {
        assert_eq!(
            value_ticks(0.0, 1_320.0, 6, true),
            (vec![0.0, 500.0, 1_000.0, 1_500.0], 500.0)
        );
        let (ticks, step) = value_ticks(0.0, 0.62, 6, false);
        assert_eq!(step, 0.2);
        assert_eq!(ticks.len(), 5);
        assert!(ticks.last().is_some_and(|t| *t >= 0.62));
        // Counts never get half steps; a flat series still gets an axis.
        assert_eq!(value_ticks(0.0, 3.0, 7, true).1, 1.0);
        assert_eq!(value_ticks(5.0, 5.0, 6, true).0.first(), Some(&5.0));
        let (ticks, step) = value_ticks(f64::NAN, 1.0, 6, false);
        assert_eq!((ticks.len(), step), (6, 0.2));
    }
}
