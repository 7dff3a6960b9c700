//! The `sql` tool's reads of a read-only SQLite file: two threads per database file, each with
//! its own read-only, query-only connection through rusqlite, taking statements from one queue.
//! A statement is prepared once (kept in the connection's cache), stepped, and each cell read in
//! place into the tool's JSON value: one hand-off to the thread and one back per call.
//!
//! Why not sqlx here (the store, writes, PostgreSQL and the Data Ghost keep using it): its
//! SQLite rows cross a channel from the connection's thread with every cell copied
//! (`sqlite3_value_dup`, a malloc under SQLite's mutex each), and a call took five hand-offs
//! (acquire, set the deadline, the rows in batches, clear the deadline). Measured in issue 14,
//! the copies and hand-offs were half the CPU of a 100-row read. rusqlite links the same
//! SQLite library as sqlx (`libsqlite3-sys` 0.37), so nothing is built twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::connect::SQLITE_PROGRESS_STEPS;
use super::exec::{CLIENT_GRACE, Rows, database_error, timeout_error};
use super::pools::MAX_CACHED_POOLS;
use super::stop::StopOnDrop;
use super::values;
use crate::tools::ToolError;

/// Threads (and connections) per database file: a long query does not hold up the next.
const READERS_PER_FILE: usize = 2;
/// Statements each connection keeps prepared.
const STATEMENT_CACHE: usize = 64;
/// How long a reader waits on a file locked by a writer before reporting it busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One statement to run.
struct Job {
    sql: String,
    max_rows: usize,
    deadline: Instant,
    stopped: Box<dyn Fn() -> bool + Send>,
    reply: oneshot::Sender<Result<Rows, rusqlite::Error>>,
}

/// The queue of one database file's reader threads.
#[derive(Clone)]
struct Readers {
    jobs: flume::Sender<Job>,
}

static READERS: Mutex<Option<HashMap<PathBuf, (Readers, Instant)>>> = Mutex::new(None);

/// The files behind the SQLite URLs seen so far (reading a URL's options took a fortieth of a
/// small query's time on the runtime thread; issue 14).
static FILES: Mutex<Option<HashMap<String, Option<Arc<Path>>>>> = Mutex::new(None);

/// The file a `sqlite:` URL names, made absolute; `None` where
/// [`crate::store::location::sqlite_file`] says so. Remembered per URL, for as many URLs as
/// reader threads are kept.
pub fn file_of(url: &str) -> Option<Arc<Path>> {
    let mut files = FILES.lock().unwrap_or_else(|p| p.into_inner());
    let files = files.get_or_insert_with(HashMap::new);
    if let Some(file) = files.get(url) {
        return file.clone();
    }
    let file: Option<Arc<Path>> = crate::store::location::sqlite_file(url).map(Arc::from);
    if files.len() >= MAX_CACHED_POOLS {
        files.clear();
    }
    files.insert(url.to_string(), file.clone());
    file
}

/// Runs `sql` (already judged read-only) on `file` (named by `url`) with the tool's limits.
pub async fn read(
    file: &Path,
    url: &str,
    sql: &str,
    max_rows: usize,
    timeout: Duration,
) -> Result<Rows, ToolError> {
    let readers = readers_for(file, url)?;
    let (stop, stopped) = StopOnDrop::new();
    let (reply, answer) = oneshot::channel();
    let job = Job {
        sql: sql.to_string(),
        max_rows,
        deadline: Instant::now() + timeout,
        stopped: Box::new(stopped),
        reply,
    };
    if readers.jobs.send(job).is_err() {
        forget(file);
        return Err(ToolError::new(
            "the SQLite reader stopped unexpectedly; try the query again",
        ));
    }
    // Dropped here (a cancelled call, a timeout), the guard stops the statement.
    let result = tokio::time::timeout(timeout + CLIENT_GRACE, answer).await;
    match result {
        Ok(Ok(rows)) => {
            stop.disarm();
            rows.map_err(|e| query_error(&e, timeout))
        }
        Ok(Err(_)) => Err(ToolError::new(
            "the SQLite reader stopped unexpectedly; try the query again",
        )),
        Err(_) => Err(timeout_error(timeout)),
    }
}

/// The readers of `file`, started on first use (opening the file now, so a missing or
/// unreadable file is reported at once and not remembered).
fn readers_for(file: &Path, url: &str) -> Result<Readers, ToolError> {
    let mut guard = READERS.lock().unwrap_or_else(|e| e.into_inner());
    let all = guard.get_or_insert_with(HashMap::new);
    if let Some((readers, used)) = all.get_mut(file) {
        *used = Instant::now();
        return Ok(readers.clone());
    }
    let (jobs, queue) = flume::unbounded::<Job>();
    for _ in 0..READERS_PER_FILE {
        let conn = open(file).map_err(|e| {
            ToolError::new(format!(
                "cannot open the SQLite database `{}`: {e}; check that the file exists and \
                 is readable (it is opened read-only and never created)",
                crate::redact::text(url)
            ))
        })?;
        let queue = queue.clone();
        std::thread::Builder::new()
            .name("pi-mcp-sqlite-read".into())
            .spawn(move || serve(&conn, &queue))
            .map_err(|e| ToolError::new(format!("cannot start a SQLite reader: {e}")))?;
    }
    if all.len() >= MAX_CACHED_POOLS
        && let Some(oldest) = all
            .iter()
            .min_by_key(|(_, (_, used))| *used)
            .map(|(k, _)| k.clone())
    {
        // Its threads end once the calls already queued are done.
        all.remove(&oldest);
    }
    let readers = Readers { jobs };
    all.insert(file.to_path_buf(), (readers.clone(), Instant::now()));
    Ok(readers)
}

fn forget(file: &Path) {
    if let Some(all) = READERS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        all.remove(file);
    }
}

/// A read-only, query-only connection to `file` (never created).
fn open(file: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "query_only", 1)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Opening is lazy in SQLite: read the schema now, so a file that is not a database fails here.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    Ok(conn)
}

/// A reader thread: runs jobs until the queue is dropped.
fn serve(conn: &Connection, queue: &flume::Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        if job.reply.is_closed() {
            continue; // its caller is gone
        }
        let deadline = job.deadline;
        let stopped = job.stopped;
        let _ = conn.progress_handler(
            SQLITE_PROGRESS_STEPS,
            Some(move || Instant::now() >= deadline || stopped()),
        );
        let result = run(conn, &job.sql, job.max_rows);
        let _ = conn.progress_handler(0, None::<fn() -> bool>);
        let _ = job.reply.send(result);
    }
}

/// Prepares (or takes from the cache) and steps `sql`, reading each cell in place.
fn run(conn: &Connection, sql: &str, max_rows: usize) -> rusqlite::Result<Rows> {
    let mut statement = conn.prepare_cached(sql)?;
    let columns: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    // The declared type, as sqlx names it (the tool's answer did not change with the driver);
    // an expression has none and is named after its first value's storage class.
    let mut declared: Vec<Option<&'static str>> = statement
        .columns()
        .iter()
        .map(|c| c.decl_type().and_then(declared_type))
        .collect();
    let mut out = Rows {
        columns,
        ..Rows::default()
    };
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next()? {
        if out.rows.len() == max_rows {
            out.truncated = true;
            break;
        }
        let mut values = Vec::with_capacity(declared.len());
        for (i, declared) in declared.iter_mut().enumerate() {
            let cell = row.get_ref(i)?;
            let declared = *declared.get_or_insert(storage_class(cell));
            values.push(value(cell, declared));
        }
        out.rows.push(values);
    }
    out.types = declared
        .iter()
        .map(|t| t.unwrap_or("NULL").to_ascii_lowercase())
        .collect();
    Ok(out)
}

/// sqlx's name for a declared column type (`VARCHAR(20)` is `TEXT`); `None` when it has none.
fn declared_type(decl: &str) -> Option<&'static str> {
    let d = decl.to_ascii_lowercase();
    Some(match d.as_str() {
        "int4" | "int8" => "INTEGER",
        "boolean" | "bool" => "BOOLEAN",
        "date" => "DATE",
        "time" => "TIME",
        "datetime" | "timestamp" => "DATETIME",
        _ if d.contains("int") => "INTEGER",
        _ if d.contains("char") || d.contains("clob") || d.contains("text") => "TEXT",
        _ if d.contains("blob") => "BLOB",
        _ if d.contains("real") || d.contains("floa") || d.contains("doub") => "REAL",
        _ => return None,
    })
}

fn storage_class(cell: ValueRef<'_>) -> &'static str {
    match cell {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "INTEGER",
        ValueRef::Real(_) => "REAL",
        ValueRef::Text(_) => "TEXT",
        ValueRef::Blob(_) => "BLOB",
    }
}

/// A cell as the tool shows it (the same values as [`super::values::sqlite_value`]).
fn value(cell: ValueRef<'_>, declared: &str) -> Value {
    match cell {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => values::sqlite_integer(i, declared),
        ValueRef::Real(x) => values::float(x),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => Value::String(s.to_string()),
            Err(e) => json!(format!("<unreadable TEXT value: {e}>")),
        },
        ValueRef::Blob(b) => values::sqlite_blob(b),
    }
}

/// A SQLite error in the model's terms (the same wording as the other drivers').
fn query_error(e: &rusqlite::Error, timeout: Duration) -> ToolError {
    match e {
        rusqlite::Error::SqliteFailure(f, message) => {
            let text = message.clone().unwrap_or_else(|| f.to_string());
            database_error(&f.extended_code.to_string(), &text, timeout)
        }
        other => ToolError::new(format!("the query failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_are_named_as_sqlx_names_them() {
        for (decl, name) in [
            ("INTEGER", Some("INTEGER")),
            ("varchar(20)", Some("TEXT")),
            ("BOOLEAN", Some("BOOLEAN")),
            ("double precision", Some("REAL")),
            ("timestamp", Some("DATETIME")),
            ("DECIMAL(10,2)", None),
        ] {
            assert_eq!(declared_type(decl), name, "{decl}");
        }
    }

    #[tokio::test]
    async fn reads_stop_at_max_rows_time_out_and_refuse_writes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let setup = Connection::open(&file).unwrap();
        setup
            .execute_batch(
                "CREATE TABLE t (a INTEGER, b BOOLEAN, c BLOB);
                 INSERT INTO t VALUES (1, 1, x'00ff'), (2, 0, NULL), (3, 2, x'');",
            )
            .unwrap();
        let t = Duration::from_secs(5);
        let rows = read(&file, "f", "SELECT a, b, c, a * 1.5 FROM t", 2, t)
            .await
            .unwrap();
        assert_eq!(
            rows.rows,
            vec![
                vec![json!(1), json!(true), json!("\\x00ff"), json!(1.5)],
                vec![json!(2), json!(false), Value::Null, json!(3.0)],
            ]
        );
        assert!(rows.truncated);
        assert_eq!(rows.types, ["integer", "boolean", "blob", "real"]);
        let e = read(&file, "f", "DELETE FROM t", 10, t).await.unwrap_err();
        assert!(e.message.contains("read-only"), "{}", e.message);
        let slow = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                    SELECT count(*) FROM n";
        let e = read(&file, "f", slow, 10, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.message.contains("timed out"), "{}", e.message);
        // The next statement on the same readers is not affected.
        let rows = read(&file, "f", "SELECT count(*) FROM t", 10, t)
            .await
            .unwrap();
        assert_eq!(rows.rows, vec![vec![json!(3)]]);
        // A call given up (a cancelled task) stops its statement: with both readers' calls
        // given up, a third call is answered long before their 60 s deadline.
        let long = Duration::from_secs(60);
        for _ in 0..READERS_PER_FILE {
            let given_up =
                tokio::time::timeout(Duration::from_millis(100), read(&file, "f", slow, 1, long));
            assert!(given_up.await.is_err());
        }
        let next = tokio::time::timeout(t, read(&file, "f", "SELECT 1", 1, t)).await;
        assert!(
            next.is_ok_and(|r| r.is_ok()),
            "the given-up statements still run"
        );
        let e = read(&dir.path().join("missing.db"), "m", "SELECT 1", 1, t)
            .await
            .unwrap_err();
        assert!(e.message.contains("cannot open"), "{}", e.message);
    }
}
