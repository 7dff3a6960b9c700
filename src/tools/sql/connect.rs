//! Connections the `sql` tool (and the Data Ghost) query through: the second, database-side
//! layer of the read-only guarantee. PostgreSQL sessions start with
//! `default_transaction_read_only=on` and a `statement_timeout`; SQLite files are opened
//! read-only with `PRAGMA query_only=1`, and each query gets an interrupt deadline. Connection
//! failures are worded so the user knows what to fix.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection};

use super::stop::StopOnDrop;
use crate::guard::sql::SqlDialect;
use crate::tools::ToolError;

/// How long reaching a database may take before it is reported as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite virtual-machine steps between two checks of a query's deadline.
pub const SQLITE_PROGRESS_STEPS: i32 = 10_000;

/// Rows a SQLite connection's thread may read ahead of the tool (sqlx's default is 50: a
/// 100-row answer then stalled the reading thread and woke it again, twice per query).
pub const SQLITE_ROW_BUFFER: usize = 256;

/// sqlx reports a statement slower than this with its whole text; the Data Ghost's profiling
/// queries on a large table are slow by nature, so that report is a debug line, not a warning
/// (the tool and the ghost report their own timings).
pub const SLOW_STATEMENT: Duration = Duration::from_secs(1);

/// Connections per pool (the tool uses one; the Data Ghost may run a few queries at once).
pub const POOL_CONNECTIONS: u32 = 2;

/// A database opened for the tool: read-only unless the policy allows writes.
#[derive(Debug, Clone)]
pub enum ReadOnlyDb {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl ReadOnlyDb {
    pub fn dialect(&self) -> SqlDialect {
        match self {
            ReadOnlyDb::Postgres(_) => SqlDialect::Postgres,
            ReadOnlyDb::Sqlite(_) => SqlDialect::Sqlite,
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            ReadOnlyDb::Postgres(p) => p.close().await,
            ReadOnlyDb::Sqlite(p) => p.close().await,
        }
    }
}

/// Opens `url` read-only with `timeout` as the statement timeout.
pub async fn open_read_only(url: &str, timeout: Duration) -> Result<ReadOnlyDb, ToolError> {
    open(url, timeout, false).await
}

/// Opens `url`; `writable` drops the read-only session settings (the policy allowed writes).
pub(super) async fn open(
    url: &str,
    timeout: Duration,
    writable: bool,
) -> Result<ReadOnlyDb, ToolError> {
    let shown = crate::redact::text(url);
    match SqlDialect::from_url(url) {
        Some(SqlDialect::Postgres) => {
            let mut options = PgConnectOptions::from_str(url)
                .map_err(|e| {
                    ToolError::new(format!("the database URL `{shown}` is not valid: {e}"))
                })?
                .application_name("pi-mcp sql")
                .log_slow_statements(log::LevelFilter::Debug, SLOW_STATEMENT);
            let millis = timeout.as_millis().to_string();
            let mut settings = vec![
                ("statement_timeout", millis.clone()),
                ("lock_timeout", millis),
                ("standard_conforming_strings", "on".to_string()),
            ];
            if !writable {
                settings.push(("default_transaction_read_only", "on".to_string()));
            }
            options = options.options(settings);
            // One direct connection first: the pool retries a refused connection until its
            // acquire timeout, while a direct attempt says at once why it failed.
            let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
                .await
                .map_err(|_| unreachable_error(&shown, "no answer"))?
                .map_err(|e| connect_error(&shown, &e))?;
            let _ = probe.close().await;
            let pool = PgPoolOptions::new()
                .max_connections(POOL_CONNECTIONS)
                .acquire_timeout(CONNECT_TIMEOUT)
                .connect_with(options);
            let pool = tokio::time::timeout(CONNECT_TIMEOUT, pool)
                .await
                .map_err(|_| unreachable_error(&shown, "no answer"))?
                .map_err(|e| connect_error(&shown, &e))?;
            Ok(ReadOnlyDb::Postgres(pool))
        }
        Some(SqlDialect::Sqlite) => {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| {
                    ToolError::new(format!("the database URL `{shown}` is not valid: {e}"))
                })?
                .create_if_missing(false)
                .read_only(!writable)
                .pragma("query_only", if writable { "0" } else { "1" })
                .log_slow_statements(log::LevelFilter::Debug, SLOW_STATEMENT)
                .row_buffer_size(SQLITE_ROW_BUFFER);
            // A connection to a local file does not drop like a network one: no ping (a round
            // trip to the connection's thread) before each use.
            let pool = SqlitePoolOptions::new()
                .max_connections(POOL_CONNECTIONS)
                .test_before_acquire(false)
                .acquire_timeout(CONNECT_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(|e| connect_error(&shown, &e))?;
            Ok(ReadOnlyDb::Sqlite(pool))
        }
        None => Err(ToolError::new(format!(
            "the database URL `{shown}` has an unsupported scheme; use sqlite://PATH or postgres://USER@HOST/DB"
        ))),
    }
}

/// Makes SQLite interrupt the connection's running statement once `deadline` has passed.
pub async fn set_sqlite_deadline(
    conn: &mut SqliteConnection,
    deadline: Instant,
) -> Result<(), ToolError> {
    set_sqlite_stops(conn, deadline)
        .await
        .map(StopOnDrop::disarm)
}

/// [`set_sqlite_deadline`], and the statement also stops once the returned guard is dropped
/// while armed: when the caller's future is dropped (a cancelled MCP task), the statement
/// does not run on in SQLite's worker thread. Disarm it once the statement is done.
pub async fn set_sqlite_stops(
    conn: &mut SqliteConnection,
    deadline: Instant,
) -> Result<StopOnDrop, ToolError> {
    let mut handle = conn
        .lock_handle()
        .await
        .map_err(|e| ToolError::new(format!("SQLite connection failed: {e}")))?;
    let (stop, stopped) = StopOnDrop::new();
    handle.set_progress_handler(SQLITE_PROGRESS_STEPS, move || {
        Instant::now() < deadline && !stopped()
    });
    Ok(stop)
}

fn unreachable_error(shown: &str, why: &str) -> ToolError {
    ToolError::new(format!(
        "cannot reach the database at `{shown}` within {}s ({why}); check that the server is \
         running and the host and port in the URL are right",
        CONNECT_TIMEOUT.as_secs()
    ))
}

/// A connection failure in the user's terms.
fn connect_error(shown: &str, e: &sqlx::Error) -> ToolError {
    if shown.starts_with("sqlite:") {
        return ToolError::new(format!(
            "cannot open the SQLite database `{shown}`: {e}; check that the file exists and is \
             readable (it is opened read-only and never created)"
        ));
    }
    if let sqlx::Error::Database(db) = e {
        let code = db.code().unwrap_or_default();
        return ToolError::new(match code.as_ref() {
            "28P01" | "28000" => format!(
                "authentication failed for `{shown}`: check the user name and password in the \
                 database URL ({})",
                db.message()
            ),
            "3D000" => format!(
                "the database in `{shown}` does not exist ({}); check the database name in the URL",
                db.message()
            ),
            _ => format!("cannot connect to `{shown}`: {}", db.message()),
        });
    }
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => {
            unreachable_error(shown, &e.to_string())
        }
        _ => ToolError::new(format!("cannot connect to `{shown}`: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Executor;

    /// The second layer alone: writes sent straight to a read-only pool (no judge) fail.
    #[tokio::test]
    async fn a_read_only_sqlite_pool_refuses_writes_the_judge_never_saw() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let url = format!("sqlite://{}", file.display());
        let setup = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new().connect_with(setup).await.unwrap();
        pool.execute("CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        pool.close().await;

        let ReadOnlyDb::Sqlite(ro) = open_read_only(&url, Duration::from_secs(5)).await.unwrap()
        else {
            panic!("not SQLite")
        };
        let copy = dir.path().join("copy.db");
        for write in [
            "DELETE FROM t".to_string(),
            "CREATE TABLE u (b)".to_string(),
            "PRAGMA user_version = 3".to_string(),
            format!("VACUUM INTO '{}'", copy.display()),
        ] {
            let r = ro.execute(sqlx::AssertSqlSafe(write.clone())).await;
            assert!(r.is_err(), "{write} succeeded on a read-only pool");
        }
        // SQLite still creates VACUUM INTO's target (empty) before refusing: the judge, which
        // refuses VACUUM outright, is what keeps even that from happening through the tool.
        let copied = std::fs::metadata(&copy).map(|m| m.len()).unwrap_or(0);
        assert_eq!(copied, 0, "VACUUM INTO wrote data");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&ro)
            .await
            .unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn unreachable_postgres_fails_within_the_connect_timeout() {
        let started = Instant::now();
        let err = open_read_only("postgres://u@127.0.0.1:1/x", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(err.message.contains("cannot reach"), "{}", err.message);
        assert!(started.elapsed() <= CONNECT_TIMEOUT + Duration::from_secs(1));
    }
}
