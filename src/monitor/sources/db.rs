//! `db_query` and CloudWatch-Logs `log_keyword` rules: one call each to their source, turned
//! into an [`Outcome`].

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
    // A keyword is a quoted phrase in CloudWatch's filter syntax.
    let pattern = match (&p.keyword, &p.pattern) {
        (Some(k), _) => format!("\"{}\"", k.replace('"', "\\\"")),
        (None, Some(pat)) => pat.clone(),
        (None, None) => String::new(),
    };
    let start = now - chrono::Duration::minutes(i64::from(p.window_minutes));
    match logs.count_log_events(group, &pattern, start, now).await {
        Ok(n) => Outcome::Value(n as f64),
        Err(e) => Outcome::Error(format!("CloudWatch Logs: {e}")),
    }
}
