//! Compact text of `cloudwatch` results for the model: one line per metric, alarm or log
//! event, a summary per series (count, last, min, max, mean) and its points, a hint when
//! nothing came back, and the whole capped at the shared output limit.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};

use super::LogEvent;
use super::metrics::{Alarm, MetricId, MetricQuery, MetricSeries, StatisticsPoint};
use crate::tools::output::MAX_BYTES;

/// Points of one series listed in the text (all of them are in the structured result).
pub const MAX_POINTS_SHOWN: usize = 30;
/// Characters of one log message shown in the text.
pub const MAX_MESSAGE_CHARS: usize = 500;

const NO_DATA_HINT: &str = "no datapoints in the window: the metric may not exist with exactly \
these dimensions, or had no data then. Check names and dimensions with action list_metrics, or \
widen start.";

fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A number without noise: integers as integers, others with up to 4 decimals.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn dims(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(" {{{}}}", inner.join(", "))
}

/// Cuts `text` at [`MAX_BYTES`] on a line boundary, saying so.
fn capped(mut text: String) -> String {
    if text.len() <= MAX_BYTES {
        return text;
    }
    let mut cut = MAX_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let cut = text[..cut].rfind('\n').map_or(cut, |i| i + 1);
    text.truncate(cut);
    text.push_str("[output cut at 50 KiB; the structured result has everything]\n");
    text
}

pub fn metrics(metrics: &[MetricId], more: bool) -> String {
    if metrics.is_empty() {
        return "No metrics match. Try without metric_name or dimensions, or another namespace \
                (AWS namespaces look like AWS/EC2)."
            .to_string();
    }
    let mut out = format!(
        "{} metrics{}:\n",
        metrics.len(),
        if more {
            " (more exist; narrow the filter)"
        } else {
            ""
        }
    );
    for m in metrics {
        let pairs: Vec<(String, String)> = m.dimensions.clone().into_iter().collect();
        let _ = writeln!(out, "{} {}{}", m.namespace, m.metric_name, dims(&pairs));
    }
    capped(out)
}

pub fn series(
    queries: &[MetricQuery],
    series: &[MetricSeries],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> String {
    let mut out = format!("{} .. {}\n", ts(&start), ts(&end));
    for (q, s) in queries.iter().zip(series) {
        let _ = write!(
            out,
            "{}: {} {} {} period {}s{}: ",
            s.id,
            q.namespace,
            q.metric_name,
            q.stat,
            q.period,
            dims(&q.dimensions)
        );
        if s.values.is_empty() {
            let _ = writeln!(out, "{NO_DATA_HINT}");
            continue;
        }
        let min = s.values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = s.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mean = s.values.iter().sum::<f64>() / s.values.len() as f64;
        let last = s.values.len() - 1;
        let _ = writeln!(
            out,
            "{} points, last {} at {}, min {}, max {}, mean {}{}",
            s.values.len(),
            number(s.values[last]),
            ts(&s.timestamps[last]),
            number(min),
            number(max),
            number(mean),
            if s.status == "Complete" {
                String::new()
            } else {
                format!(" (status {})", s.status)
            }
        );
        let skip = s.values.len().saturating_sub(MAX_POINTS_SHOWN);
        let shown: Vec<String> = s
            .timestamps
            .iter()
            .zip(&s.values)
            .skip(skip)
            .map(|(t, v)| format!("{} {}", t.format("%H:%M:%S"), number(*v)))
            .collect();
        let earlier = if skip > 0 {
            format!("({skip} earlier) ")
        } else {
            String::new()
        };
        let _ = writeln!(out, "  {earlier}{}", shown.join(" | "));
    }
    capped(out)
}

pub fn statistics(
    query: &MetricQuery,
    statistics: &[String],
    points: &[StatisticsPoint],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> String {
    let mut out = format!(
        "{} {}{} period {}s, {} .. {}\n",
        query.namespace,
        query.metric_name,
        dims(&query.dimensions),
        query.period,
        ts(&start),
        ts(&end)
    );
    if points.is_empty() {
        out.push_str(NO_DATA_HINT);
        out.push('\n');
        return out;
    }
    let _ = writeln!(out, "timestamp {}", statistics.join(" "));
    for p in points {
        let values: Vec<String> = statistics
            .iter()
            .map(|s| p.values.get(s).map_or("-".to_string(), |v| number(*v)))
            .collect();
        let unit = p
            .unit
            .as_deref()
            .filter(|u| *u != "None")
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        let _ = writeln!(out, "{} {}{unit}", ts(&p.timestamp), values.join(" "));
    }
    capped(out)
}

pub fn log_events(
    log_group: &str,
    pattern: Option<&str>,
    events: &[LogEvent],
    limit: usize,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> String {
    let filter = pattern
        .map(|p| format!(" matching `{p}`"))
        .unwrap_or_default();
    let mut out = format!(
        "{} events in {log_group}{filter}, {} .. {}{}\n",
        events.len(),
        ts(&start),
        ts(&end),
        if events.len() >= limit {
            format!(" (limit {limit} reached; narrow the window or pattern for more)")
        } else {
            String::new()
        }
    );
    for e in events {
        let mut message: String = e
            .message
            .trim_end()
            .chars()
            .take(MAX_MESSAGE_CHARS)
            .collect();
        if message.len() < e.message.trim_end().len() {
            message.push_str("...");
        }
        let _ = writeln!(out, "{} [{}] {}", ts(&e.timestamp), e.log_stream, message);
    }
    capped(out)
}

pub fn alarms(alarms: &[Alarm], more: bool) -> String {
    if alarms.is_empty() {
        return "No alarms.".to_string();
    }
    let mut out = format!(
        "{} alarms{}:\n",
        alarms.len(),
        if more { " (more exist)" } else { "" }
    );
    for a in alarms {
        let metric = match (&a.namespace, &a.metric_name) {
            (Some(n), Some(m)) => format!(" {n} {m}"),
            _ => String::new(),
        };
        let condition = a
            .condition
            .as_deref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {}{metric}{condition}: {}",
            a.state, a.name, a.reason
        );
    }
    capped(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_compact() {
        assert_eq!(number(3.0), "3");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(1.0 / 3.0), "0.3333");
        assert_eq!(number(-0.25), "-0.25");
    }

    #[test]
    fn long_text_is_cut_at_the_shared_limit_on_a_line() {
        let text: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        let cut = capped(text);
        assert!(cut.len() <= MAX_BYTES + 100);
        assert!(cut.ends_with("has everything]\n"));
        let before_note =
            cut.trim_end_matches("[output cut at 50 KiB; the structured result has everything]\n");
        assert!(before_note.ends_with('\n'));
    }
}
