//! The `sql` tool: one statement against `DATABASE_URL` or a database named in the policy,
//! judged by [`crate::guard::sql`] first and run on a read-only connection second (unless the
//! policy allows writes there). PostgreSQL user functions the statement calls are looked up and
//! refused when volatile. Returns rows as a text table and as structured JSON.
//! Also the entry points other modules reuse: [`resolve_database`], [`open_read_only`] and
//! [`query_scalar`].

mod connect;
mod exec;
pub mod health;
mod pg_lex;
mod pg_text;
pub mod pools;
mod sqlite_reads;
mod stop;
pub mod table;
pub mod values;

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use connect::{CONNECT_TIMEOUT, ReadOnlyDb, open_read_only, set_sqlite_deadline};
pub use exec::Rows;

use super::{ToolContext, ToolError};
use crate::guard::sql::{SqlDialect, judge_sql_memo, rules};
use crate::guard::{Decision, Guard, Verdict};

/// The environment variable that names the default database.
pub const DATABASE_URL_ENV: &str = "DATABASE_URL";

/// The name the default database goes by.
pub const DEFAULT_DATABASE: &str = "default";
/// Most bytes of rows the structured result carries (the text table has its own cap): huge
/// cells cannot make a multi-gigabyte MCP message.
pub const MAX_STRUCTURED_BYTES: usize = 1024 * 1024;

/// Parameters of `sql`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlParams {
    /// Exactly one SQL statement in the database's dialect (PostgreSQL or SQLite): SELECT,
    /// WITH … SELECT, EXPLAIN, SHOW or a read-only PRAGMA. Writes are refused unless the policy
    /// marks the database writable.
    pub query: String,
    /// A database named in the policy's `sql.databases`; default: the server's DATABASE_URL.
    #[serde(default)]
    pub database: Option<String>,
    /// Most rows to return (default 200; capped by the policy, 1000 unless changed).
    #[serde(default)]
    pub max_rows: Option<usize>,
    /// Statement timeout in seconds (default and cap: the policy's `timeout_secs`, 30 unless changed).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// Where a database name leads.
#[derive(Clone)]
pub struct DatabaseTarget {
    pub name: String,
    /// The connection URL (may hold a password: show it only through `redact`).
    pub url: String,
    pub dialect: SqlDialect,
    pub allow_writes: bool,
}

impl std::fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseTarget")
            .field("name", &self.name)
            .field("url", &crate::redact::text(&self.url))
            .field("dialect", &self.dialect)
            .field("allow_writes", &self.allow_writes)
            .finish()
    }
}

/// Finds database `name` (default: `default`, i.e. `DATABASE_URL` unless the policy names a
/// `default`). Errors list the configured names or say which variable to set.
pub fn resolve_database(guard: &Guard, name: Option<&str>) -> Result<DatabaseTarget, ToolError> {
    let policy = &guard.file().sql;
    let name = name.unwrap_or(DEFAULT_DATABASE);
    let env = |var: &str, why: String| -> Result<String, ToolError> {
        std::env::var(var)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| ToolError::new(why))
    };
    let (url, allow_writes) = if let Some(db) = policy.databases.get(name) {
        let url = match (&db.url, &db.url_env) {
            (Some(u), _) => u.clone(),
            (None, Some(var)) => env(
                var,
                format!(
                    "database `{name}` takes its URL from ${var}, which is not set in the server's \
                     environment: set {var} (sqlite://PATH or postgres://USER:PASSWORD@HOST/DB) \
                     and restart pi-mcp"
                ),
            )?,
            (None, None) => {
                return Err(ToolError::new(format!(
                    "database `{name}` has neither url nor url_env in the policy ({})",
                    guard.source()
                )));
            }
        };
        (url, db.allow_writes)
    } else if name == DEFAULT_DATABASE {
        let url = env(
            DATABASE_URL_ENV,
            format!(
                "no default database: set {DATABASE_URL_ENV} in the server's environment \
                 (sqlite://PATH or postgres://USER:PASSWORD@HOST/DB), or name a database from the \
                 policy's sql.databases{}",
                names_hint(guard)
            ),
        )?;
        (url, false)
    } else {
        return Err(ToolError::new(format!(
            "unknown database `{name}`; configured databases: {}",
            configured_names(guard).join(", ")
        )));
    };
    let dialect = SqlDialect::from_url(&url).ok_or_else(|| {
        ToolError::new(format!(
            "database `{name}` has an unsupported URL `{}`; use sqlite://PATH or postgres://…",
            crate::redact::text(&url)
        ))
    })?;
    Ok(DatabaseTarget {
        name: name.to_string(),
        url,
        dialect,
        allow_writes,
    })
}

fn configured_names(guard: &Guard) -> Vec<String> {
    let mut names: Vec<String> = guard.file().sql.databases.keys().cloned().collect();
    if !guard.file().sql.databases.contains_key(DEFAULT_DATABASE)
        && std::env::var_os(DATABASE_URL_ENV).is_some()
    {
        names.insert(0, format!("{DEFAULT_DATABASE} ({DATABASE_URL_ENV})"));
    }
    if names.is_empty() {
        names.push(format!("none (set {DATABASE_URL_ENV})"));
    }
    names
}

fn names_hint(guard: &Guard) -> String {
    let names: Vec<&String> = guard.file().sql.databases.keys().collect();
    if names.is_empty() {
        String::new()
    } else {
        let list: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        format!(" ({})", list.join(", "))
    }
}

/// The structured result of a call; the tool's `outputSchema` is generated from this type.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SqlResult {
    /// The database name the call used (`default` for DATABASE_URL).
    pub database: String,
    pub columns: Vec<String>,
    /// Each column's type as the database names it.
    pub column_types: Vec<String>,
    /// One array per row, one JSON value per column.
    pub rows: Vec<Vec<Value>>,
    pub row_count: usize,
    /// More rows exist than were returned (max_rows, or the byte budget).
    pub truncated: bool,
    /// Why rows were left out, when the byte budget cut them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated_reason: Option<String>,
    pub elapsed_ms: u64,
    /// For a write on a writable database: the rows it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_affected: Option<u64>,
}

impl SqlResult {
    /// The result as JSON, its rows moved in rather than serialised into a copy.
    pub fn into_value(mut self) -> Result<Value, serde_json::Error> {
        let rows = std::mem::take(&mut self.rows);
        let mut v = serde_json::to_value(&self)?;
        if let Value::Object(m) = &mut v {
            m.insert(
                "rows".into(),
                Value::Array(rows.into_iter().map(Value::Array).collect()),
            );
        }
        Ok(v)
    }
}

/// What a successful call returns.
#[derive(Debug, Clone)]
pub struct SqlOutput {
    pub database: String,
    pub rows: Rows,
    pub elapsed_ms: u64,
    /// The row limit applied, and whether the call's `max_rows` was lowered to the policy's cap.
    pub max_rows: usize,
    pub capped: bool,
    pub verdict: Verdict,
}

impl SqlOutput {
    /// The structured result: `{columns, column_types, rows, row_count, truncated, elapsed_ms, …}`.
    /// Takes the rows over rather than copying them (call [`SqlOutput::text`] first).
    pub fn into_structured(self) -> SqlResult {
        let (kept, cut) = {
            let (rows, cut) = rows_within(&self.rows.rows, MAX_STRUCTURED_BYTES);
            (rows.len(), cut)
        };
        let mut rows = self.rows.rows;
        rows.truncate(kept);
        SqlResult {
            database: self.database,
            columns: self.rows.columns,
            column_types: self.rows.types,
            row_count: rows.len(),
            rows,
            truncated: self.rows.truncated || cut,
            truncated_reason: cut
                .then(|| format!("rows beyond {MAX_STRUCTURED_BYTES} bytes were left out")),
            elapsed_ms: self.elapsed_ms,
            rows_affected: self.rows.rows_affected,
        }
    }

    /// The text table with a footer for the model.
    pub fn text(&self) -> String {
        let mut footer = match self.rows.rows_affected {
            Some(n) => format!("{n} rows affected in {} ms", self.elapsed_ms),
            None => format!("{} rows in {} ms", self.rows.rows.len(), self.elapsed_ms),
        };
        if self.rows.truncated {
            footer.push_str(&format!(
                "; truncated at max_rows={} (more rows exist: add WHERE/LIMIT or aggregate)",
                self.max_rows
            ));
        }
        if self.capped {
            footer.push_str(&format!(
                "; max_rows lowered to the policy's cap {}",
                self.max_rows
            ));
        }
        table::render(&self.rows.columns, &self.rows.rows, &footer)
    }
}

/// Runs one `sql` call: resolve, judge, connect, check user functions, execute.
pub async fn run(ctx: &ToolContext, p: SqlParams) -> Result<SqlOutput, ToolError> {
    let policy = &ctx.guard.file().sql;
    let target = resolve_database(&ctx.guard, p.database.as_deref())?;
    let asked = p.max_rows.unwrap_or(policy.default_max_rows);
    if asked == 0 {
        return Err(ToolError::new("max_rows must be at least 1"));
    }
    let max_rows = asked.min(policy.max_rows);
    let timeout = match p.timeout_secs {
        Some(0) => return Err(ToolError::new("timeout_secs must be at least 1")),
        Some(t) => t.min(policy.timeout_secs),
        None => policy.timeout_secs,
    };
    let timeout = Duration::from_secs(timeout);
    let judgement = judge(&target, &p.query)?;
    // A read-only SQLite file is read by its own reader threads, connections kept open
    // (opening one cost more than a small query; SQLite re-prepares a cached statement when
    // the schema changes). PostgreSQL (whose cached statements fail after a schema change) and
    // writable databases get connections of their own for the call.
    let cached = !target.allow_writes && target.dialect == SqlDialect::Sqlite;
    if let Some(file) = cached.then(|| sqlite_reads::file_of(&target.url)).flatten() {
        let started = Instant::now();
        let rows = sqlite_reads::read(&file, &target.url, &p.query, max_rows, timeout).await?;
        return Ok(output(
            target,
            rows,
            started.elapsed(),
            max_rows,
            asked,
            judgement,
        ));
    }
    let db = if cached {
        pools::read_only_retrying(&target.url, timeout).await?
    } else {
        connect::open(&target.url, timeout, target.allow_writes).await?
    };
    let result = async {
        refuse_volatile_functions(&db, &judgement.called, &judgement.verdict).await?;
        let started = Instant::now();
        let rows = exec::run(&db, &p.query, max_rows, timeout, judgement.writes).await?;
        Ok::<_, ToolError>((rows, started.elapsed()))
    }
    .await;
    if !cached {
        db.close().await;
    }
    let (rows, elapsed) = result?;
    Ok(output(target, rows, elapsed, max_rows, asked, judgement))
}

fn output(
    target: DatabaseTarget,
    rows: exec::Rows,
    elapsed: Duration,
    max_rows: usize,
    asked: usize,
    judgement: crate::guard::sql::SqlJudgement,
) -> SqlOutput {
    SqlOutput {
        database: target.name,
        rows,
        elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        max_rows,
        capped: asked > max_rows,
        verdict: judgement.verdict,
    }
}

/// The judge's answer, or the refusal as a tool error carrying the verdict.
fn judge(
    target: &DatabaseTarget,
    query: &str,
) -> Result<crate::guard::sql::SqlJudgement, ToolError> {
    let judgement = judge_sql_memo(query, target.dialect, target.allow_writes);
    if judgement.verdict.decision == Decision::Allow {
        return Ok(judgement);
    }
    let reasons: Vec<String> = judgement
        .verdict
        .deciding_reasons()
        .map(|r| r.to_string())
        .collect();
    let access = if target.allow_writes {
        "accepts one statement at a time"
    } else {
        "is read-only"
    };
    Err(ToolError::denied(
        format!(
            "refused: database `{}` {access}. {}",
            target.name,
            reasons.join("; ")
        ),
        judgement.verdict,
    ))
}

/// The names the statement calls that are volatile functions outside the system schemas
/// (PostgreSQL only: such a function may write or have side effects the parser cannot see).
async fn refuse_volatile_functions(
    db: &ReadOnlyDb,
    called: &[String],
    allowed: &Verdict,
) -> Result<(), ToolError> {
    let ReadOnlyDb::Postgres(pool) = db else {
        return Ok(());
    };
    if called.is_empty() {
        return Ok(());
    }
    let mut names: Vec<String> = called.to_vec();
    names.extend(called.iter().map(|n| n.to_lowercase()));
    let found: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT n.nspname || '.' || p.proname FROM pg_catalog.pg_proc p \
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') \
         AND p.provolatile = 'v' AND p.proname::text = ANY($1) ORDER BY 1",
    )
    .bind(names)
    .fetch_all(pool)
    .await
    .map_err(|e| ToolError::new(format!("cannot check the functions the query calls: {e}")))?;
    if found.is_empty() {
        return Ok(());
    }
    let message = format!(
        "`{}` is a volatile user-defined function: it may write or have side effects, so the \
         read-only sql tool does not call it; query the tables directly",
        found.join("`, `")
    );
    let mut verdict = Verdict::single(Decision::Deny, rules::VOLATILE, message.clone());
    verdict.commands = allowed.commands.clone();
    Err(ToolError::denied(format!("refused: {message}"), verdict))
}

/// Runs a read `query` through the same judge and read-only connection and returns the first
/// column of the first row as a number (`None` for no row or NULL). For monitor rules.
pub async fn query_scalar(
    ctx: &ToolContext,
    database: Option<&str>,
    query: &str,
    timeout: Duration,
) -> Result<Option<f64>, ToolError> {
    let mut target = resolve_database(&ctx.guard, database)?;
    target.allow_writes = false;
    let judgement = judge(&target, query)?;
    // A cached pool: rules query the same databases every heartbeat.
    let db = pools::read_only(&target.url, timeout).await?;
    refuse_volatile_functions(&db, &judgement.called, &judgement.verdict).await?;
    let rows = exec::run(&db, query, 1, timeout, false).await?;
    let Some(first) = rows.rows.first().and_then(|r| r.first()) else {
        return Ok(None);
    };
    number(first).ok_or_else(|| {
        ToolError::new(format!(
            "the query's first column is {first}, not a number; select a numeric expression \
             (e.g. count(*), avg(x))"
        ))
    })
}

/// A JSON value as a number: numbers, numeric text, booleans (1/0); `Some(None)` for NULL.
fn number(v: &Value) -> Option<Option<f64>> {
    match v {
        Value::Null => Some(None),
        Value::Number(n) => n.as_f64().map(Some),
        Value::Bool(b) => Some(Some(if *b { 1.0 } else { 0.0 })),
        Value::String(s) => s.trim().parse::<f64>().ok().map(Some),
        _ => None,
    }
}

/// Counts the bytes written to it (a row's JSON length, without building the text).
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The leading rows whose JSON fits in `budget` bytes, and whether any were left out.
fn rows_within(rows: &[Vec<Value>], budget: usize) -> (&[Vec<Value>], bool) {
    let mut used = 0usize;
    for (i, row) in rows.iter().enumerate() {
        let mut n = ByteCount(0);
        used = used
            .saturating_add(serde_json::to_writer(&mut n, row).map_or(usize::MAX, |()| n.0 + 1));
        if used > budget {
            return (&rows[..i], true);
        }
    }
    (rows, false)
}

#[cfg(test)]
mod tests;
