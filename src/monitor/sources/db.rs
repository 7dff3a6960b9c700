//! `db_query` and CloudWatch-Logs `log_keyword` rules: one call each to their source, turned
//! into an [`Outcome`]. A log rule's `keyword` is a CloudWatch filter phrase, its `pattern` a
//! regex applied to each event here (the same regex syntax as for local files).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Sources;
use crate::monitor::rules::{DbQueryParams, LogKeywordParams};
use crate::monitor::transition::Outcome;

/// Runs a `db_query` rule's query.
pub async fn evaluate_query(sources: &Sources, p: &DbQueryParams) -> Outcome {
    let Some(db) = &sources.db else {
        return Outcome::Error(
            "db_query rules need the sql tool's databases; none is configured".into(),
        );
    };
    match db
        .query_scalar(
            p.database.as_deref(),
            &p.query,
            Duration::from_secs(p.timeout_secs),
        )
        .await
    {
        Ok(Some(v)) if v.is_finite() => Outcome::Value(v),
        Ok(_) => Outcome::NoData,
        Err(e) => Outcome::Error(e),
    }
}

/// Counts a CloudWatch Logs group's matching events over the rule's window.
pub async fn evaluate_log_group(
    sources: &Sources,
    group: &str,
    p: &LogKeywordParams,
    now: DateTime<Utc>,
) -> Outcome {
    let Some(logs) = &sources.log_groups else {
        return Outcome::Error(
            "log_group rules need CloudWatch Logs access; it is not configured".into(),
        );
    };
    // A keyword is a quoted phrase in CloudWatch's filter syntax, matched there; a pattern
    // is a regex, as for local files, matched here on every event of the window.
    let filter = p
        .keyword
        .as_ref()
        .map(|k| format!("\"{}\"", k.replace('"', "\\\"")))
        .unwrap_or_default();
    let matching = match p.pattern.as_deref().map(regex::Regex::new) {
        Some(Ok(re)) => Some(re),
        Some(Err(e)) => return Outcome::Error(format!("pattern: {e}")),
        None => None,
    };
    let start = now - chrono::Duration::minutes(i64::from(p.window_minutes));
    match logs
        .count_log_events(group, &filter, matching.as_ref(), start, now)
        .await
    {
        Ok(n) => Outcome::Value(n as f64),
        Err(e) => Outcome::Error(format!("CloudWatch Logs: {e}")),
    }
}
