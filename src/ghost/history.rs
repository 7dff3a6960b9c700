//! The Data Ghost's history in the state store (migration 0003): each run's schema snapshot and
//! per-table profiles, read back as the previous snapshot to diff against and as the series the
//! anomaly thresholds are computed from.

use std::collections::BTreeMap;

use sqlx::Row;

use super::profile::TableProfile;
use super::schema::SchemaSnapshot;
use crate::store::{Store, StoreError};

/// Runs of history the anomaly thresholds look back over.
pub const HISTORY_RUNS: i64 = 30;

/// One past observation of a table.
#[derive(Debug, Clone)]
pub struct PastProfile {
    pub taken_at: String,
    pub profile: TableProfile,
}

/// Past profiles per table, oldest first.
pub type History = BTreeMap<String, Vec<PastProfile>>;

/// The schema snapshot of the latest run on `database`, if any.
pub async fn latest_snapshot(
    store: &Store,
    database: &str,
) -> Result<Option<SchemaSnapshot>, StoreError> {
    let row = sqlx::query(
        "SELECT snapshot FROM ghost_runs WHERE database_name = $1 ORDER BY taken_at DESC LIMIT 1",
    )
    .bind(database.to_string())
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let text: String = row.try_get("snapshot")?;
    // A snapshot written by an incompatible version is treated as absent, not as an error.
    Ok(serde_json::from_str(&text).ok())
}

/// The profiles of the last [`HISTORY_RUNS`] runs on `database`, per table, oldest first.
pub async fn load(store: &Store, database: &str) -> Result<History, StoreError> {
    let rows = sqlx::query(
        "SELECT p.table_name AS table_name, p.taken_at AS taken_at, p.profile AS profile
         FROM ghost_profiles p
         WHERE p.database_name = $1 AND p.run_id IN (
             SELECT id FROM ghost_runs WHERE database_name = $1 ORDER BY taken_at DESC LIMIT $2)
         ORDER BY p.taken_at",
    )
    .bind(database.to_string())
    .bind(HISTORY_RUNS)
    .fetch_all(store.pool())
    .await?;
    let mut out = History::new();
    for r in rows {
        let table: String = r.try_get("table_name")?;
        let text: String = r.try_get("profile")?;
        if let Ok(profile) = serde_json::from_str::<TableProfile>(&text) {
            out.entry(table).or_default().push(PastProfile {
                taken_at: r.try_get("taken_at")?,
                profile,
            });
        }
    }
    Ok(out)
}

/// Records a run: its snapshot, report path and the profiles it took.
pub async fn record(
    store: &Store,
    run_id: &str,
    database: &str,
    taken_at: &str,
    report_path: Option<&str>,
    snapshot: &SchemaSnapshot,
    profiles: &[TableProfile],
) -> Result<(), StoreError> {
    let snapshot = serde_json::to_string(snapshot)
        .map_err(|e| StoreError::Query(sqlx::Error::Encode(Box::new(e))))?;
    let mut tx = store.pool().begin().await?;
    sqlx::query(
        "INSERT INTO ghost_runs (id, database_name, taken_at, report_path, snapshot)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(run_id.to_string())
    .bind(database.to_string())
    .bind(taken_at.to_string())
    .bind(report_path.map(str::to_string))
    .bind(snapshot)
    .execute(&mut *tx)
    .await?;
    for p in profiles {
        let text = serde_json::to_string(p)
            .map_err(|e| StoreError::Query(sqlx::Error::Encode(Box::new(e))))?;
        sqlx::query(
            "INSERT INTO ghost_profiles (run_id, database_name, table_name, taken_at, profile)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(run_id.to_string())
        .bind(database.to_string())
        .bind(p.table.clone())
        .bind(taken_at.to_string())
        .bind(text)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
