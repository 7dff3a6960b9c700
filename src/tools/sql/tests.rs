//! `query_scalar` and `resolve_database`, the entry points the monitor and the Data Ghost call,
//! against a SQLite file named in the policy.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Executor;

use super::*;
use crate::guard::{PolicyFile, Workspace};

async fn context(dir: &std::path::Path) -> ToolContext {
    let file = dir.join("m.db");
    let url = format!("sqlite://{}", file.display());
    let setup = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
        .unwrap_or_else(|e| panic!("{e}"))
        .create_if_missing(true);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect_with(setup)
        .await
        .unwrap();
    pool.execute("CREATE TABLE t (a INTEGER, s TEXT); INSERT INTO t VALUES (2, 'x'), (4, NULL)")
        .await
        .unwrap();
    pool.close().await;
    let policy = serde_json::json!({ "sql": { "databases": { "metrics": { "url": url } } } });
    let file = PolicyFile::parse(&policy.to_string(), "test").unwrap();
    let guard = Guard::new(file, "test").unwrap();
    let ws = Workspace::new(&[dir.to_path_buf()]).unwrap();
    ToolContext::new(ws, Arc::new(guard))
}

#[tokio::test]
async fn query_scalar_returns_the_first_cell_as_a_number() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path()).await;
    let t = Duration::from_secs(5);
    let db = Some("metrics");
    assert_eq!(
        query_scalar(&ctx, db, "SELECT avg(a) FROM t", t)
            .await
            .unwrap(),
        Some(3.0)
    );
    assert_eq!(
        query_scalar(&ctx, db, "SELECT count(*) FROM t WHERE a > 9", t)
            .await
            .unwrap(),
        Some(0.0)
    );
    assert_eq!(
        query_scalar(&ctx, db, "SELECT a FROM t WHERE a > 9", t)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        query_scalar(&ctx, db, "SELECT max(s) IS NULL FROM t WHERE a = 4", t)
            .await
            .unwrap(),
        Some(1.0)
    );
    let err = query_scalar(&ctx, db, "SELECT s FROM t WHERE a = 2", t)
        .await
        .unwrap_err();
    assert!(err.message.contains("not a number"), "{}", err.message);
    let err = query_scalar(&ctx, db, "DELETE FROM t", t)
        .await
        .unwrap_err();
    assert_eq!(err.verdict.map(|v| v.decision), Some(Decision::Deny));
    assert_eq!(
        query_scalar(&ctx, db, "SELECT count(*) FROM t", t)
            .await
            .unwrap(),
        Some(2.0)
    );
}

#[tokio::test]
async fn resolve_database_names_the_configured_databases() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path()).await;
    let target = resolve_database(&ctx.guard, Some("metrics")).unwrap();
    assert_eq!(target.dialect, SqlDialect::Sqlite);
    assert!(!target.allow_writes);
    let err = resolve_database(&ctx.guard, Some("other")).unwrap_err();
    assert!(err.message.contains("metrics"), "{}", err.message);
}

#[test]
fn structured_rows_stay_within_their_byte_budget() {
    let rows: Vec<Vec<serde_json::Value>> = (0..10)
        .map(|i| vec![serde_json::json!("x".repeat(100)), serde_json::json!(i)])
        .collect();
    let (kept, cut) = super::rows_within(&rows, 350);
    assert_eq!((kept.len(), cut), (3, true));
    let (kept, cut) = super::rows_within(&rows, usize::MAX);
    assert_eq!((kept.len(), cut), (10, false));
}
