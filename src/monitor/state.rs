//! Each rule's alert state (`ok`, `pending`, `firing`, `no_data`, `error`) with its last value,
//! since when, the last notification and the cooldown end, kept in the state store so that a
//! restart neither forgets a cooldown nor re-fires a firing alert nor misses a resolution.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::store::{Store, StoreError, placeholders};

/// How many recent values a state keeps (for the `sre` prompt and resources).
pub const RECENT_VALUES: usize = 20;
/// Rows per multi-row upsert (12 parameters each, well under both backends' limits).
const UPSERT_BATCH: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    Ok,
    Pending,
    Firing,
    NoData,
    Error,
}

impl StateKind {
    pub const ALL: [StateKind; 5] = [
        StateKind::Ok,
        StateKind::Pending,
        StateKind::Firing,
        StateKind::NoData,
        StateKind::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Ok => "ok",
            StateKind::Pending => "pending",
            StateKind::Firing => "firing",
            StateKind::NoData => "no_data",
            StateKind::Error => "error",
        }
    }

    fn parse(s: &str) -> StateKind {
        StateKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .unwrap_or(StateKind::Ok)
    }
}

/// One rule's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    pub rule_id: String,
    pub state: StateKind,
    /// The last evaluated value (none on no data or error).
    pub value: Option<f64>,
    /// When the rule entered `state`.
    pub since: DateTime<Utc>,
    /// Start of the current uninterrupted breach (for `for_minutes`).
    pub breach_since: Option<DateTime<Utc>>,
    pub last_evaluated: Option<DateTime<Utc>>,
    /// When the last notification (firing, repeat or resolved) was queued.
    pub last_notified: Option<DateTime<Utc>>,
    /// Firing notices wait until then.
    pub cooldown_until: Option<DateTime<Utc>>,
    /// The current firing episode was announced (so its resolution is announced too).
    pub notified_firing: bool,
    /// Recent evaluations, oldest first: `1` breached, `0` did not.
    pub breaches: String,
    /// The last evaluation error, if the last evaluation failed.
    pub problem: Option<String>,
    /// Recent (time, value) pairs, oldest first.
    pub recent: Vec<(DateTime<Utc>, f64)>,
}

impl RuleState {
    /// The state of a rule never evaluated before.
    pub fn new(rule_id: &str, now: DateTime<Utc>) -> RuleState {
        RuleState {
            rule_id: rule_id.to_string(),
            state: StateKind::Ok,
            value: None,
            since: now,
            breach_since: None,
            last_evaluated: None,
            last_notified: None,
            cooldown_until: None,
            notified_firing: false,
            breaches: String::new(),
            problem: None,
            recent: Vec::new(),
        }
    }
}

fn ts(t: DateTime<Utc>) -> String {
    crate::store::approvals::timestamp(t)
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

const COLUMNS: &str = "rule_id, state, value, since, breach_since, last_evaluated, last_notified, \
     cooldown_until, notified_firing, breaches, problem, recent";
const NCOLS: usize = 12;

fn from_row(r: &sqlx::any::AnyRow) -> Result<RuleState, sqlx::Error> {
    let opt_ts = |name: &str| -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        Ok(r.try_get::<Option<String>, _>(name)?
            .as_deref()
            .and_then(parse_ts))
    };
    let recent: String = r.try_get("recent")?;
    let recent: Vec<(String, f64)> = serde_json::from_str(&recent).unwrap_or_default();
    let since: String = r.try_get("since")?;
    Ok(RuleState {
        rule_id: r.try_get("rule_id")?,
        state: StateKind::parse(&r.try_get::<String, _>("state")?),
        value: r.try_get("value")?,
        since: parse_ts(&since).unwrap_or_else(Utc::now),
        breach_since: opt_ts("breach_since")?,
        last_evaluated: opt_ts("last_evaluated")?,
        last_notified: opt_ts("last_notified")?,
        cooldown_until: opt_ts("cooldown_until")?,
        notified_firing: r.try_get::<i64, _>("notified_firing")? != 0,
        breaches: r.try_get("breaches")?,
        problem: r.try_get("problem")?,
        recent: recent
            .into_iter()
            .filter_map(|(t, v)| parse_ts(&t).map(|t| (t, v)))
            .collect(),
    })
}

/// Every stored state, by rule id.
pub async fn load_all(store: &Store) -> Result<HashMap<String, RuleState>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM monitor_rule_state");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(store.pool())
        .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in &rows {
        let s = from_row(r)?;
        out.insert(s.rule_id.clone(), s);
    }
    Ok(out)
}

/// One rule's stored state.
pub async fn load_one(store: &Store, rule_id: &str) -> Result<Option<RuleState>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM monitor_rule_state WHERE rule_id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(rule_id.to_string())
        .fetch_optional(store.pool())
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Writes `states` (insert or replace) on `conn`, in batches of multi-row upserts.
pub async fn save(conn: &mut sqlx::AnyConnection, states: &[RuleState]) -> Result<(), sqlx::Error> {
    let backend = placeholders::backend_of(conn);
    for chunk in states.chunks(UPSERT_BATCH) {
        let updates: Vec<String> = COLUMNS
            .split(", ")
            .skip(1)
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        let sql = format!(
            "INSERT INTO monitor_rule_state ({COLUMNS}) VALUES {} ON CONFLICT (rule_id) DO UPDATE SET {}",
            placeholders::rows(backend, chunk.len(), NCOLS),
            updates.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for s in chunk {
            let recent: Vec<(String, f64)> = s.recent.iter().map(|(t, v)| (ts(*t), *v)).collect();
            q = q
                .bind(s.rule_id.clone())
                .bind(s.state.as_str())
                .bind(s.value)
                .bind(ts(s.since))
                .bind(s.breach_since.map(ts))
                .bind(s.last_evaluated.map(ts))
                .bind(s.last_notified.map(ts))
                .bind(s.cooldown_until.map(ts))
                .bind(i64::from(s.notified_firing))
                .bind(s.breaches.clone())
                .bind(s.problem.clone())
                .bind(serde_json::to_string(&recent).unwrap_or_else(|_| "[]".into()));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}
