//! `db_query` and CloudWatch-Logs `log_keyword` rules: one call each to their source, turned
//! into an [`Outcome`]. A log rule's `keyword` is a CloudWatch filter phrase, its `pattern` a
//! regex applied to each event here (the same regex syntax as for local files). `db_query`
//! rules that run the same statement (same database, query text and timeout, as a warning and
//! a critical rule on one query do) share one run per heartbeat ([`group_queries`]).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Sources;
use crate::monitor::rules::{DbQueryParams, LogKeywordParams};
use crate::monitor::transition::Outcome;

/// One statement a heartbeat runs, and the rules (by index) that take its value.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedQuery {
    pub params: DbQueryParams,
    pub rules: Vec<usize>,
}

/// `rules` grouped by the statement they run, in order of first appearance: rules whose
/// database, query text and timeout are all equal become one [`SharedQuery`]. The text is
/// compared as written (no normalisation), so two rules share a run only when the guard would
/// judge the very same statement for both.
pub fn group_queries<'a>(
    rules: impl IntoIterator<Item = (usize, &'a DbQueryParams)>,
) -> Vec<SharedQuery> {
    let mut groups: Vec<SharedQuery> = Vec::new();
    let mut seen: HashMap<&'a DbQueryParams, usize> = HashMap::new();
    for (i, p) in rules {
        match seen.get(p) {
            Some(&g) => groups[g].rules.push(i),
            None => {
                seen.insert(p, groups.len());
                groups.push(SharedQuery {
                    params: p.clone(),
                    rules: vec![i],
                });
            }
        }
    }
    groups
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn q(database: Option<&str>, query: &str, timeout_secs: u64) -> DbQueryParams {
        DbQueryParams {
            database: database.map(str::to_string),
            query: query.into(),
            timeout_secs,
        }
    }

    #[test]
    fn only_identical_statements_share_a_run() {
        let rules = [
            q(None, "SELECT 1", 10),
            q(None, "SELECT 2", 10),
            q(None, "SELECT 1", 10),
            // Another database, another timeout, other spelling: each its own run.
            q(Some("shop"), "SELECT 1", 10),
            q(None, "SELECT 1", 5),
            q(None, "select 1", 10),
        ];
        let groups = group_queries(rules.iter().enumerate());
        let shape: Vec<(&str, Vec<usize>)> = groups
            .iter()
            .map(|g| (g.params.query.as_str(), g.rules.clone()))
            .collect();
        assert_eq!(
            shape,
            [
                ("SELECT 1", vec![0, 2]),
                ("SELECT 2", vec![1]),
                ("SELECT 1", vec![3]),
                ("SELECT 1", vec![4]),
                ("select 1", vec![5]),
            ]
        );
    }
}
