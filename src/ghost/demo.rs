//! `pi-mcp ghost demo`: builds a small example shop database (SQLite, in the workspace under
//! `.pi-mcp/ghost-demo.db`), runs the ghost on a few "days" of steady data to build history,
//! then plants patterns (schema changes, a row-count drop, a null spike, a new category, stalled
//! growth) and runs once more, so a new user sees a real report in one command. The baseline
//! runs are moved back a day each in the store, so the report's charts show days of history.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Executor, SqlitePool};

use super::{GhostError, GhostOptions, GhostRun, run_once};
use crate::app::App;

/// Steady runs before the patterns are planted.
pub const BASELINE_RUNS: usize = 4;
/// Orders added per baseline "day".
const ORDERS_PER_DAY: i64 = 120;
const STATUSES: &[&str] = &["paid", "shipped", "delivered", "cancelled"];
const COUNTRIES: &[&str] = &["DE", "FR", "NL", "US", "JP"];

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("example database {path}: {source}")]
    Database {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot prepare {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Ghost(#[from] GhostError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Builds the example database under `workspace`, runs the ghost over its "days" and returns
/// the final run (the one with the planted patterns).
pub async fn run(app: &App, workspace: &Path, opts: &GhostOptions) -> Result<GhostRun, DemoError> {
    let dir = workspace.join(".pi-mcp");
    std::fs::create_dir_all(&dir).map_err(|source| DemoError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let path = dir.join("ghost-demo.db");
    let shown = path.display().to_string();
    let db = |source| DemoError::Database {
        path: shown.clone(),
        source,
    };
    for suffix in ["", "-wal", "-shm"] {
        let p = dir.join(format!("ghost-demo.db{suffix}"));
        if p.exists() {
            std::fs::remove_file(&p).map_err(|source| DemoError::Io {
                path: p.display().to_string(),
                source,
            })?;
        }
    }
    let url = format!("sqlite://{}", path.display());
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::from_str(&url)
                .map_err(db)?
                .create_if_missing(true),
        )
        .await
        .map_err(db)?;
    let mut opts = opts.clone();
    opts.database_url = url;
    forget_history(app, &super::source::database_name(&opts.database_url)).await?;
    create(&pool).await.map_err(db)?;
    for day in 0..BASELINE_RUNS {
        add_day(&pool, day as i64).await.map_err(db)?;
        tracing::info!("ghost demo: baseline day {}/{BASELINE_RUNS}", day + 1);
        let baseline = run_once(app, &opts).await?;
        backdate(app, &baseline, BASELINE_RUNS - day).await?;
    }
    plant(&pool).await.map_err(db)?;
    pool.close().await;
    tracing::info!("ghost demo: patterns planted; the final run follows");
    Ok(run_once(app, &opts).await?)
}

/// Moves a baseline run `days` back in the store, so that the history it leaves spans the
/// "days" it stands for and the report's charts show a daily history, not runs a second apart.
async fn backdate(app: &App, run: &GhostRun, days: usize) -> Result<(), crate::store::StoreError> {
    let Some(at) = chrono::DateTime::parse_from_rfc3339(&run.taken_at).ok() else {
        return Ok(());
    };
    let days = i64::try_from(days).unwrap_or(0);
    let earlier = crate::store::approvals::timestamp(at.to_utc() - chrono::Duration::days(days));
    for table in ["ghost_runs", "ghost_profiles"] {
        let id = if table == "ghost_runs" {
            "id"
        } else {
            "run_id"
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET taken_at = $1 WHERE {id} = $2"
        )))
        .bind(earlier.clone())
        .bind(run.run_id.clone())
        .execute(app.store.pool())
        .await?;
    }
    Ok(())
}

async fn forget_history(app: &App, database: &str) -> Result<(), crate::store::StoreError> {
    for table in ["ghost_profiles", "ghost_runs"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE database_name = $1"
        )))
        .bind(database.to_string())
        .execute(app.store.pool())
        .await?;
    }
    Ok(())
}

async fn create(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    pool.execute(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT,
             country TEXT NOT NULL, created_at TIMESTAMP NOT NULL);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
             status TEXT NOT NULL, amount REAL NOT NULL, created_at TIMESTAMP NOT NULL);
         CREATE INDEX orders_by_customer ON orders (customer_id);
         CREATE TABLE page_views (id INTEGER PRIMARY KEY, path TEXT NOT NULL, viewed_at TIMESTAMP NOT NULL);
         CREATE TABLE coupons (code TEXT PRIMARY KEY, percent INTEGER NOT NULL);
         INSERT INTO coupons VALUES ('WELCOME', 10), ('SPRING', 15);",
    )
    .await?;
    Ok(())
}

/// One steady day: new customers, orders in the usual mix, page views.
async fn add_day(pool: &SqlitePool, day: i64) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for i in 0..40 {
        let id = day * 40 + i + 1;
        sqlx::query(
            "INSERT INTO customers (id, name, email, country, created_at)
             VALUES (?1, ?2, ?3, ?4, datetime('2026-01-01', ?5 || ' days', ?6 || ' minutes'))",
        )
        .bind(id)
        .bind(format!("Customer {id}"))
        .bind((id % 25 != 0).then(|| format!("c{id}@example.com")))
        .bind(COUNTRIES[(id as usize * 7) % COUNTRIES.len()])
        .bind(day)
        .bind(i * 30)
        .execute(&mut *tx)
        .await?;
    }
    let customers = (day + 1) * 40;
    for i in 0..ORDERS_PER_DAY {
        let n = day * ORDERS_PER_DAY + i;
        sqlx::query(
            "INSERT INTO orders (customer_id, status, amount, created_at)
             VALUES (?1, ?2, ?3, datetime('2026-01-01', ?4 || ' days', ?5 || ' minutes'))",
        )
        .bind(n * 13 % customers + 1)
        .bind(STATUSES[(n as usize * 11) % STATUSES.len()])
        .bind(20.0 + ((n * 37) % 200) as f64 / 2.0)
        .bind(day)
        .bind(i * 10)
        .execute(&mut *tx)
        .await?;
    }
    for i in 0..300 {
        sqlx::query(
            "INSERT INTO page_views (path, viewed_at)
             VALUES (?1, datetime('2026-01-01', ?2 || ' days', ?3 || ' seconds'))",
        )
        .bind(format!("/product/{}", (day * 300 + i) % 97))
        .bind(day)
        .bind(i * 60)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// The patterns the final run should find.
async fn plant(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    add_day(pool, BASELINE_RUNS as i64).await?;
    pool.execute(
        // Schema: a new column, a renamed column, an index dropped, a table added and one dropped.
        "ALTER TABLE customers ADD COLUMN loyalty_tier TEXT;
         ALTER TABLE orders RENAME COLUMN amount TO amount_eur;
         DROP INDEX orders_by_customer;
         CREATE TABLE refunds (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, reason TEXT);
         DROP TABLE coupons;
         -- A broken signup form: half of the emails missing.
         UPDATE customers SET email = NULL WHERE id % 2 = 0;
         -- A new order status nobody announced.
         UPDATE orders SET status = 'refunded_by_bot' WHERE id % 9 = 0;
         -- A cleanup job gone wrong: most page views deleted.
         DELETE FROM page_views WHERE id % 10 <> 0;",
    )
    .await?;
    Ok(())
}
