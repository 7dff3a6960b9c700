//! Silences: a human mutes a rule for a while or until it resolves, with a comment. A muted
//! rule keeps being evaluated (its state, value and chart stay true) but its notices are not
//! queued; the silence shows wherever the rule's state does (the evaluation report behind
//! `monitor --json`, the `pi-mcp://alerts` resources, `/metrics`, the console). Kept in the
//! state store, so every replica and every face sees the same silences.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::Row;

use crate::store::approvals::{new_id, timestamp};
use crate::store::{Store, StoreError};

/// Longest silence accepted by duration (a longer mute is a disabled rule; say so in the file).
pub const MAX_SILENCE: Duration = Duration::days(30);
/// Longest comment kept.
pub const MAX_COMMENT_CHARS: usize = 500;

/// One silence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Silence {
    pub id: String,
    pub rule_id: String,
    pub comment: String,
    pub created_at: String,
    pub created_by: String,
    /// When it ends by itself; `None`: when the rule resolves.
    pub ends_at: Option<String>,
    /// When it ended early (lifted, or the rule resolved).
    pub ended_at: Option<String>,
    pub ended_by: Option<String>,
}

impl Silence {
    /// In force at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none() && self.ends_at.as_ref().is_none_or(|e| *e > timestamp(now))
    }

    /// "until 2026-01-01T00:00:00.000Z" or "until it resolves".
    pub fn until(&self) -> String {
        match &self.ends_at {
            Some(t) => format!("until {t}"),
            None => "until it resolves".into(),
        }
    }
}

/// How long a new silence lasts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Length {
    For(Duration),
    UntilResolved,
}

/// Why a silence could not be set or lifted.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error("a silence needs a comment saying why")]
    NoComment,
    #[error("a silence lasts between one minute and {} days", MAX_SILENCE.num_days())]
    BadLength,
    #[error("no silence `{0}` in force")]
    NotActive(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

const COLUMNS: &str = "id, rule_id, comment, created_at, created_by, ends_at, ended_at, ended_by";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Silence, sqlx::Error> {
    Ok(Silence {
        id: r.try_get("id")?,
        rule_id: r.try_get("rule_id")?,
        comment: r.try_get("comment")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        ends_at: r.try_get("ends_at")?,
        ended_at: r.try_get("ended_at")?,
        ended_by: r.try_get("ended_by")?,
    })
}

/// Mutes `rule_id` from now, by `who`, for `length`, with `comment`.
pub async fn create(
    store: &Store,
    rule_id: &str,
    length: Length,
    comment: &str,
    who: &str,
) -> Result<Silence, SilenceError> {
    let comment: String = comment.trim().chars().take(MAX_COMMENT_CHARS).collect();
    if comment.is_empty() {
        return Err(SilenceError::NoComment);
    }
    let now = Utc::now();
    let ends_at = match length {
        Length::For(d) if d < Duration::minutes(1) || d > MAX_SILENCE => {
            return Err(SilenceError::BadLength);
        }
        Length::For(d) => Some(timestamp(now + d)),
        Length::UntilResolved => None,
    };
    let s = Silence {
        id: new_id(),
        rule_id: rule_id.to_string(),
        comment,
        created_at: timestamp(now),
        created_by: who.to_string(),
        ends_at,
        ended_at: None,
        ended_by: None,
    };
    sqlx::query(
        "INSERT INTO monitor_silences (id, rule_id, comment, created_at, created_by, ends_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(s.id.clone())
    .bind(s.rule_id.clone())
    .bind(s.comment.clone())
    .bind(s.created_at.clone())
    .bind(s.created_by.clone())
    .bind(s.ends_at.clone())
    .execute(store.pool())
    .await
    .map_err(StoreError::from)?;
    Ok(s)
}

/// Lifts silence `id` now (by `who`); returns it.
pub async fn lift(store: &Store, id: &str, who: &str) -> Result<Silence, SilenceError> {
    let now = timestamp(Utc::now());
    let done = sqlx::query(
        "UPDATE monitor_silences SET ended_at = $1, ended_by = $2 \
         WHERE id = $3 AND ended_at IS NULL AND (ends_at IS NULL OR ends_at > $1)",
    )
    .bind(now)
    .bind(who.to_string())
    .bind(id.to_string())
    .execute(store.pool())
    .await
    .map_err(StoreError::from)?;
    if done.rows_affected() == 0 {
        return Err(SilenceError::NotActive(id.to_string()));
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM monitor_silences WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_one(store.pool())
    .await
    .map_err(StoreError::from)?;
    Ok(from_row(&row).map_err(StoreError::from)?)
}

/// The silences in force at `now`, by rule (the one ending last when a rule has several).
pub async fn active(
    store: &Store,
    now: DateTime<Utc>,
) -> Result<HashMap<String, Silence>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM monitor_silences WHERE ended_at IS NULL \
         AND (ends_at IS NULL OR ends_at > $1) ORDER BY created_at"
    )))
    .bind(timestamp(now))
    .fetch_all(store.pool())
    .await?;
    let mut out: HashMap<String, Silence> = HashMap::new();
    for r in &rows {
        let s = from_row(r)?;
        let keep = match out.get(&s.rule_id) {
            // "Until it resolves" (no end) outlasts any fixed end.
            Some(old) => match (&old.ends_at, &s.ends_at) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(a), Some(b)) => b > a,
            },
            None => true,
        };
        if keep {
            out.insert(s.rule_id.clone(), s);
        }
    }
    Ok(out)
}

/// Ends the "until it resolves" silences of `rule_ids` (rules that just resolved).
pub async fn end_resolved(
    conn: &mut sqlx::AnyConnection,
    rule_ids: &[&str],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for id in rule_ids {
        sqlx::query(
            "UPDATE monitor_silences SET ended_at = $1, ended_by = 'resolved' \
             WHERE rule_id = $2 AND ended_at IS NULL AND ends_at IS NULL",
        )
        .bind(timestamp(now))
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Parses a duration such as `30m`, `2h`, `1d` (minutes when there is no unit).
pub fn parse_length(s: &str) -> Result<Length, SilenceError> {
    let s = s.trim();
    if s == "resolved" {
        return Ok(Length::UntilResolved);
    }
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: i64 = num.trim().parse().map_err(|_| SilenceError::BadLength)?;
    let minutes = match unit {
        "" | "m" => Some(n),
        "h" => n.checked_mul(60),
        "d" => n.checked_mul(24 * 60),
        _ => None,
    }
    .ok_or(SilenceError::BadLength)?;
    Ok(Length::For(
        Duration::try_minutes(minutes).ok_or(SilenceError::BadLength)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_parse_and_silences_know_when_they_are_in_force() {
        assert_eq!(
            parse_length("90").unwrap(),
            Length::For(Duration::minutes(90))
        );
        assert_eq!(parse_length("2h").unwrap(), Length::For(Duration::hours(2)));
        assert_eq!(parse_length("1d").unwrap(), Length::For(Duration::days(1)));
        assert_eq!(parse_length("resolved").unwrap(), Length::UntilResolved);
        assert!(parse_length("soon").is_err() && parse_length("9999999999999d").is_err());
        let now = Utc::now();
        let mut s = Silence {
            id: "x".into(),
            rule_id: "r".into(),
            comment: "c".into(),
            created_at: timestamp(now),
            created_by: "me".into(),
            ends_at: Some(timestamp(now + Duration::hours(1))),
            ended_at: None,
            ended_by: None,
        };
        assert!(s.active(now) && !s.active(now + Duration::hours(2)));
        s.ends_at = None;
        assert!(s.active(now + Duration::days(400)));
        s.ended_at = Some(timestamp(now));
        assert!(!s.active(now));
    }
}
