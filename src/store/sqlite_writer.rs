//! The audit writer's own connection to a SQLite store: a thread with one rusqlite connection
//! that commits each batch of audit rows in one transaction through a prepared insert, one
//! hand-off to the thread and one back per batch. Through sqlx's pooled `Any` connection a
//! batch took several hand-offs to sqlx's worker thread (acquire, prepare, bind, step, commit)
//! and a conversion of every value; measured in issue 14, that worker's context switches were
//! 15 % of the CPU of a 100-row `sql` call. PostgreSQL stores keep sqlx, and so does the
//! replay of a journal at start (rare). rusqlite links the same SQLite as sqlx.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::journal::AuditRow;

/// The same as the store's sqlx connections: a writer holding the lock is waited for.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const INSERT: &str = "INSERT INTO audit_log (ts, tool, arguments, decision, risk, reasons, \
     duration_ms, outcome, client, redactions, journal_key) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING";

type Job = (Vec<AuditRow>, oneshot::Sender<Result<u64, String>>);

/// The audit writer's SQLite connection (on a thread of its own).
#[derive(Debug)]
pub struct SqliteAuditWriter {
    jobs: flume::Sender<Job>,
}

impl SqliteAuditWriter {
    /// Opens the store's file (it exists: the store is open and migrated) with the store's
    /// settings, and starts the thread.
    pub fn open(file: &Path) -> Result<SqliteAuditWriter, String> {
        let mut conn = Connection::open_with_flags(
            file,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| e.to_string())?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
        // The store is in WAL mode (set by its own connections); this connection commits as
        // they do.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| e.to_string())?;
        conn.prepare_cached(INSERT).map_err(|e| e.to_string())?;
        let (jobs, queue) = flume::unbounded::<Job>();
        std::thread::Builder::new()
            .name("pi-mcp-audit".into())
            .spawn(move || {
                while let Ok((rows, reply)) = queue.recv() {
                    let _ = reply.send(insert(&mut conn, &rows).map_err(|e| e.to_string()));
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(SqliteAuditWriter { jobs })
    }

    /// Commits `rows` in one transaction; rows whose journal key is stored already are
    /// skipped. Returns how many were inserted.
    pub async fn insert(&self, rows: Vec<AuditRow>) -> Result<u64, String> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((rows, reply))
            .map_err(|_| "the audit writer's SQLite thread stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the audit writer's SQLite thread stopped".to_string())?
    }
}

fn insert(conn: &mut Connection, rows: &[AuditRow]) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut inserted = 0;
    {
        let mut statement = tx.prepare_cached(INSERT)?;
        for r in rows {
            inserted += statement.execute(params![
                r.ts,
                r.tool,
                r.arguments,
                r.decision,
                r.risk,
                r.reasons,
                r.duration_ms,
                r.outcome,
                r.client,
                r.redactions,
                r.key,
            ])? as u64;
        }
    }
    tx.commit()?;
    Ok(inserted)
}
