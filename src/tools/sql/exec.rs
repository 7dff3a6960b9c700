//! Running one judged statement: PostgreSQL inside `BEGIN READ ONLY` over the extended protocol
//! (which itself refuses a second statement), SQLite under an interrupt deadline; rows stream
//! and stop at `max_rows`. Database errors are worded for the model: a write is "read-only", a
//! cancelled statement is a timeout.

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgStatement;
use sqlx::{AssertSqlSafe, Column, Executor, Postgres, Row, SqlSafeStr, Statement, TypeInfo};

use super::connect::{ReadOnlyDb, set_sqlite_stops};
use super::pg_text::{self, Render};
use super::stop::CancelOnDrop;
use super::values;
use crate::tools::ToolError;
use futures_util::TryStreamExt;

/// Time past the statement timeout after which the tool stops waiting for the database.
pub const CLIENT_GRACE: Duration = Duration::from_secs(2);

/// Rows and their shape.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    pub columns: Vec<String>,
    pub types: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// More rows existed than `max_rows`.
    pub truncated: bool,
    /// For a write on a writable database: the rows it changed.
    pub rows_affected: Option<u64>,
}

/// Runs `sql` (already judged) with the limits; `write` runs it as a committed write.
pub async fn run(
    db: &ReadOnlyDb,
    sql: &str,
    max_rows: usize,
    timeout: Duration,
    write: bool,
) -> Result<Rows, ToolError> {
    let work = async {
        match db {
            ReadOnlyDb::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                let pid = begin(&mut conn, write).await?;
                // Dropped with this future (a cancelled task), the guard cancels the statement.
                let cancel = CancelOnDrop::new((*pool.connect_options()).clone(), pid);
                let result = postgres(&mut conn, sql, max_rows, write).await;
                cancel.disarm();
                // A connection left mid-result or mid-transaction is not reused.
                if !reusable(&result, write) {
                    conn.detach();
                }
                result
            }
            ReadOnlyDb::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                // Dropped with this future (a cancelled task), the guard stops the statement.
                let stop = set_sqlite_stops(&mut conn, Instant::now() + timeout)
                    .await
                    .map_err(|e| sqlx::Error::Protocol(e.message))?;
                let result = sqlite(&mut conn, sql, max_rows, write).await;
                stop.disarm();
                if !reusable(&result, write) {
                    conn.detach();
                }
                result
            }
        }
    };
    match tokio::time::timeout(timeout + CLIENT_GRACE, work).await {
        Ok(result) => result.map_err(|e| query_error(&e, timeout)),
        Err(_) => Err(timeout_error(timeout)),
    }
}

/// Whether a connection may go back to its pool after `result`: only after a read that ran to
/// its end (its transaction rolled back, no result left unread) and succeeded; writes and
/// failures (maybe mid-transaction) close it.
fn reusable(result: &Result<Rows, sqlx::Error>, write: bool) -> bool {
    matches!(result, Ok(rows) if !write && !rows.truncated)
}

/// Opens the statement's transaction (read-only unless `write`) and returns the backend's pid
/// (for a cancel), in one round trip.
async fn begin(conn: &mut PoolConnection<Postgres>, write: bool) -> Result<i32, sqlx::Error> {
    let begin = if write {
        "BEGIN; SELECT pg_backend_pid()"
    } else {
        "BEGIN READ ONLY; SELECT pg_backend_pid()"
    };
    sqlx::raw_sql(begin)
        .fetch_one(&mut **conn)
        .await?
        .try_get(0)
}

/// Runs `sql` in the transaction [`begin`] opened.
async fn postgres(
    conn: &mut PoolConnection<Postgres>,
    sql: &str,
    max_rows: usize,
    write: bool,
) -> Result<Rows, sqlx::Error> {
    if write {
        let done = sqlx::query(AssertSqlSafe(sql.to_owned()))
            .execute(&mut **conn)
            .await?;
        conn.execute("COMMIT").await?;
        return Ok(affected(done.rows_affected()));
    }
    let statement = match (&mut **conn)
        .prepare(AssertSqlSafe(sql.to_owned()).into_sql_str())
        .await
    {
        Ok(statement) => statement,
        // The server parsed and described the statement (so it is one statement), but sqlx
        // could not resolve a column type (a multirange, say): read it as text instead.
        Err(e) if !matches!(e, sqlx::Error::Database(_) | sqlx::Error::Io(_)) => {
            tracing::debug!("cannot describe the statement ({e}); reading it as text");
            return pg_text::all_text(conn, sql, max_rows, Rows::default()).await;
        }
        Err(e) => return Err(e),
    };
    let mut rows = Rows {
        columns: statement
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect(),
        types: statement
            .columns()
            .iter()
            .map(|c| pg_text::type_name(c.type_info()))
            .collect(),
        ..Rows::default()
    };
    let plan: Vec<Render> = statement
        .columns()
        .iter()
        .map(|c| pg_text::render_of(c.type_info()))
        .collect();
    let (statement, plan) = match pg_text::wrapper(sql, &plan) {
        Some(wrapped) => match text_statement(conn, wrapped).await? {
            Some(text) => (text, plan),
            None => return pg_text::all_text(conn, sql, max_rows, rows).await,
        },
        None => (statement, Vec::new()),
    };
    {
        let mut stream = statement.query().fetch(&mut **conn);
        while let Some(row) = stream.try_next().await? {
            if rows.rows.len() == max_rows {
                rows.truncated = true;
                break;
            }
            let values = (0..row.len())
                .map(|i| {
                    let value = values::pg_value(row.try_get_raw(i)?);
                    Ok(match (plan.get(i), value) {
                        (Some(Render::TextArray { delimiter }), Value::String(text)) => {
                            pg_text::array_json(&text, *delimiter).unwrap_or(Value::String(text))
                        }
                        (_, value) => value,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            rows.rows.push(values);
        }
    }
    if !rows.truncated {
        conn.execute("ROLLBACK").await?;
    }
    Ok(rows)
}

/// Prepares the wrapper that has PostgreSQL print the columns the tool does not decode, inside
/// a savepoint so a refusal does not abort the read-only transaction; `None` when the server
/// refuses it (a statement that cannot be a subquery).
async fn text_statement(
    conn: &mut PoolConnection<Postgres>,
    wrapped: String,
) -> Result<Option<PgStatement>, sqlx::Error> {
    conn.execute("SAVEPOINT pimcp_text").await?;
    match (&mut **conn)
        .prepare(AssertSqlSafe(wrapped).into_sql_str())
        .await
    {
        Ok(statement) => Ok(Some(statement)),
        Err(sqlx::Error::Database(e)) => {
            tracing::debug!("the text wrapper was refused ({e}); reading the statement as text");
            conn.execute("ROLLBACK TO SAVEPOINT pimcp_text").await?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

async fn sqlite(
    conn: &mut PoolConnection<sqlx::Sqlite>,
    sql: &str,
    max_rows: usize,
    write: bool,
) -> Result<Rows, sqlx::Error> {
    if write {
        let done = sqlx::query(AssertSqlSafe(sql.to_owned()))
            .execute(&mut **conn)
            .await?;
        return Ok(affected(done.rows_affected()));
    }
    // One request to the connection's worker thread: the statement is prepared (and kept in
    // the connection's statement cache) and stepped there; the columns come with the rows.
    let mut rows = Rows::default();
    let mut declared: Vec<String> = Vec::new();
    {
        let mut stream = sqlx::query(AssertSqlSafe(sql.to_owned())).fetch(&mut **conn);
        while let Some(row) = stream.try_next().await? {
            if rows.rows.is_empty() {
                (rows.columns, declared) = shape(row.columns());
            }
            if rows.rows.len() == max_rows {
                rows.truncated = true;
                break;
            }
            let mut values = Vec::with_capacity(row.len());
            for (i, declared) in declared.iter().enumerate() {
                values.push(values::sqlite_value(row.try_get_raw(i)?, declared));
            }
            rows.rows.push(values);
        }
    }
    if rows.rows.is_empty() {
        // No row to read the columns from: ask the statement (from the same cache).
        let statement = (&mut **conn)
            .prepare(AssertSqlSafe(sql.to_owned()).into_sql_str())
            .await?;
        (rows.columns, declared) = shape(statement.columns());
    }
    rows.types = declared.iter().map(|t| t.to_ascii_lowercase()).collect();
    Ok(rows)
}

/// Column names and declared types.
fn shape(columns: &[sqlx::sqlite::SqliteColumn]) -> (Vec<String>, Vec<String>) {
    columns
        .iter()
        .map(|c| (c.name().to_string(), c.type_info().name().to_string()))
        .unzip()
}

fn affected(n: u64) -> Rows {
    Rows {
        columns: vec!["rows_affected".into()],
        types: vec!["int8".into()],
        rows: vec![vec![Value::from(n)]],
        truncated: false,
        rows_affected: Some(n),
    }
}

pub(super) fn timeout_error(timeout: Duration) -> ToolError {
    ToolError::new(format!(
        "the query timed out after {} s and was stopped; narrow it (WHERE, LIMIT, fewer joins) \
         or pass a larger timeout_secs (capped by the policy)",
        timeout.as_secs()
    ))
}

/// A database error in the model's terms.
fn query_error(e: &sqlx::Error, timeout: Duration) -> ToolError {
    let sqlx::Error::Database(db) = e else {
        return ToolError::new(format!("the query failed: {e}"));
    };
    database_error(&db.code().unwrap_or_default(), db.message(), timeout)
}

/// An error the database reported (its SQLSTATE or SQLite code, its message) in the model's
/// terms: a stopped statement is a timeout, a write is "read-only".
pub(super) fn database_error(code: &str, message: &str, timeout: Duration) -> ToolError {
    let lower = message.to_ascii_lowercase();
    if code == "57014" || code == "9" || lower.contains("interrupted") {
        return timeout_error(timeout);
    }
    if code == "25006" || code == "8" || lower.contains("read-only") || lower.contains("readonly") {
        return ToolError::new(format!(
            "the database is read-only: the statement tried to write ({message}); only reads are \
             allowed here"
        ));
    }
    ToolError::new(format!(
        "the database refused the query: {message}{}; fix the statement and try again",
        if code.is_empty() {
            String::new()
        } else {
            format!(" (SQLSTATE/code {code})")
        }
    ))
}
