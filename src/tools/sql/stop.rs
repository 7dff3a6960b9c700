//! Stopping a statement whose caller went away. When the future running a `sql` call is
//! dropped (its MCP task was cancelled, its client disconnected), the statement must not run on
//! in the database: SQLite's worker thread is interrupted at its next progress check, and a
//! PostgreSQL backend gets `pg_cancel_backend` over a connection of its own. Each guard is
//! disarmed once its statement finished, so a completed call cancels nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

use super::connect::CONNECT_TIMEOUT;

/// Raises a flag a SQLite progress handler reads when dropped while armed.
#[must_use = "the statement stops as soon as this is dropped"]
pub struct StopOnDrop {
    flag: Arc<AtomicBool>,
    armed: bool,
}

impl StopOnDrop {
    /// The guard, and the check a progress handler calls (true: stop the statement).
    pub fn new() -> (StopOnDrop, impl Fn() -> bool + Send + 'static) {
        let flag = Arc::new(AtomicBool::new(false));
        let seen = flag.clone();
        (StopOnDrop { flag, armed: true }, move || {
            seen.load(Ordering::Relaxed)
        })
    }

    /// The statement finished: dropping this no longer stops anything.
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.flag.store(true, Ordering::Relaxed);
        }
    }
}

/// Cancels PostgreSQL backend `pid`'s running statement when dropped while armed.
#[must_use = "the statement is cancelled as soon as this is dropped"]
pub struct CancelOnDrop {
    options: Option<PgConnectOptions>,
    pid: i32,
}

impl CancelOnDrop {
    /// A guard for backend `pid`, reached with `options` (the pool's).
    pub fn new(options: PgConnectOptions, pid: i32) -> CancelOnDrop {
        CancelOnDrop {
            options: Some(options),
            pid,
        }
    }

    /// The statement finished: dropping this no longer cancels anything.
    pub fn disarm(mut self) {
        self.options = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let (Some(options), Ok(runtime)) =
            (self.options.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let pid = self.pid;
        runtime.spawn(async move {
            let cancel = async {
                let mut conn =
                    PgConnection::connect_with(&options.disable_statement_logging()).await?;
                let cancelled: bool = sqlx::query_scalar("SELECT pg_cancel_backend($1)")
                    .bind(pid)
                    .fetch_one(&mut conn)
                    .await?;
                let _ = conn.close().await;
                Ok::<bool, sqlx::Error>(cancelled)
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, cancel).await {
                Ok(Ok(true)) => tracing::info!(
                    "sql: cancelled backend {pid}'s statement (its caller went away)"
                ),
                Ok(Ok(false)) => tracing::debug!("sql: backend {pid} had nothing to cancel"),
                Ok(Err(e)) => {
                    tracing::warn!("sql: could not cancel backend {pid}'s statement: {e}")
                }
                Err(_) => tracing::warn!(
                    "sql: could not cancel backend {pid}'s statement: no connection in time"
                ),
            }
        });
    }
}
