//! The audit log: every tool call with its time, tool, redacted arguments, decision, reasons,
//! duration and outcome. Writes go through a background writer that batches them into
//! transactions, so auditing never slows a call; `flush` waits until all are stored.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError};
use crate::redact::Redactor;

/// One audited call.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    #[serde(default)]
    pub id: i64,
    /// RFC 3339 UTC time the call started.
    pub ts: String,
    pub tool: String,
    /// Arguments with secrets redacted.
    pub arguments: serde_json::Value,
    pub decision: String,
    pub risk: i64,
    pub reasons: serde_json::Value,
    pub duration_ms: i64,
    /// `ok`, `error: ...`, `denied`, `exit N`, `timeout`.
    pub outcome: String,
    /// Who called: the MCP client's name, or `cli`.
    pub client: String,
    /// How many secrets were masked in the result before the caller saw it.
    #[serde(default)]
    pub redactions: i64,
}

/// Most entries written in one transaction.
const BATCH: usize = 256;
/// How long the writer waits for more entries before committing, so that a burst of calls
/// costs one transaction instead of one each; never while someone waits for a commit.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);

enum Msg {
    Entry(Box<AuditEntry>),
    Flush(oneshot::Sender<()>),
}

/// A handle to the audit writer.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: mpsc::UnboundedSender<Msg>,
    store: Store,
    /// Masks the secret values pi-mcp knows in every entry, whoever writes it.
    redactor: Option<Arc<Redactor>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("audit message")
    }
}

impl AuditLog {
    /// Starts the background writer for `store`.
    pub fn start(store: Store) -> AuditLog {
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        let writer_store = store.clone();
        tokio::spawn(async move {
            let mut batch: Vec<AuditEntry> = Vec::new();
            let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
            // A full batch left entries queued: the burst is already here, so the next batch
            // is written without waiting (10,000 entries used to wait 40 times).
            let mut backlog = false;
            while let Some(first) = rx.recv().await {
                // Group commit: take what is queued; linger for more only while nobody waits
                // for this commit (a flush ends the wait: a tool call's answer waits on one).
                let linger = (matches!(first, Msg::Entry(_)) && !backlog)
                    .then(|| tokio::time::Instant::now() + LINGER);
                let mut next = Some(first);
                while let Some(msg) = next.take() {
                    match msg {
                        Msg::Entry(e) => batch.push(*e),
                        Msg::Flush(w) => waiters.push(w),
                    }
                    if batch.len() >= BATCH {
                        break;
                    }
                    next = match (rx.try_recv(), linger) {
                        (Ok(m), _) => Some(m),
                        (Err(_), Some(until)) if waiters.is_empty() => {
                            tokio::time::timeout_at(until, rx.recv())
                                .await
                                .ok()
                                .flatten()
                        }
                        (Err(_), _) => None,
                    };
                }
                backlog = batch.len() >= BATCH && !rx.is_empty();
                if !batch.is_empty() {
                    let n = batch.len();
                    if let Err(e) = insert_batch(&writer_store, batch.drain(..)).await {
                        tracing::error!("audit log: could not store {n} entries: {e}");
                    }
                }
                for w in waiters.drain(..) {
                    let _ = w.send(());
                }
            }
        });
        AuditLog {
            tx,
            store,
            redactor: None,
        }
    }

    /// Masks `redactor`'s known secret values in the arguments, reasons and outcome of every
    /// entry recorded from now on (tool calls, approvals, monitor actions alike), so the audit
    /// log never holds a value the model was not shown.
    pub fn with_redactor(mut self, redactor: Arc<Redactor>) -> AuditLog {
        self.redactor = Some(redactor);
        self
    }

    /// Queues an entry; it is stored within milliseconds.
    pub fn record(&self, mut entry: AuditEntry) {
        if let Some(r) = &self.redactor {
            r.known_json(&mut entry.arguments);
            r.known_json(&mut entry.reasons);
            entry.outcome = r.known_text(&entry.outcome);
        }
        if self.tx.send(Msg::Entry(Box::new(entry))).is_err() {
            tracing::error!("audit log writer has stopped; an entry was not stored");
        }
    }

    /// Waits until every queued entry is stored (committed, with whatever else is queued: one
    /// transaction for everyone waiting).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The store the entries go to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The newest `n` entries, oldest first.
    pub async fn tail(&self, n: i64) -> Result<Vec<AuditEntry>, StoreError> {
        tail(&self.store, n).await
    }
}

/// Columns written per entry.
const COLUMNS: usize = 10;

/// Writes a batch with one multi-row INSERT (one round trip to the database). The entries are
/// moved into the query, not copied.
async fn insert_batch(
    store: &Store,
    batch: impl ExactSizeIterator<Item = AuditEntry>,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO audit_log (ts, tool, arguments, decision, risk, reasons, duration_ms, outcome, client, redactions) VALUES {}",
        super::placeholders::rows(store.backend(), batch.len(), COLUMNS)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for e in batch {
        q = q
            .bind(e.ts)
            .bind(e.tool)
            .bind(e.arguments.to_string())
            .bind(e.decision)
            .bind(e.risk)
            .bind(e.reasons.to_string())
            .bind(e.duration_ms)
            .bind(e.outcome)
            .bind(e.client)
            .bind(e.redactions);
    }
    q.execute(store.pool()).await.map(|_| ())
}

const SELECT: &str = "SELECT id, ts, tool, arguments, decision, risk, reasons, duration_ms, \
     outcome, client, redactions FROM audit_log";

fn from_row(r: &sqlx::any::AnyRow) -> Result<AuditEntry, sqlx::Error> {
    let json = |s: String| serde_json::from_str(&s).unwrap_or(serde_json::Value::String(s));
    Ok(AuditEntry {
        id: r.try_get("id")?,
        ts: r.try_get("ts")?,
        tool: r.try_get("tool")?,
        arguments: json(r.try_get("arguments")?),
        decision: r.try_get("decision")?,
        risk: r.try_get("risk")?,
        reasons: json(r.try_get("reasons")?),
        duration_ms: r.try_get("duration_ms")?,
        outcome: r.try_get("outcome")?,
        client: r.try_get("client")?,
        redactions: r.try_get("redactions")?,
    })
}

/// The newest `n` entries of the store's audit log, oldest first.
pub async fn tail(store: &Store, n: i64) -> Result<Vec<AuditEntry>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SELECT} ORDER BY id DESC LIMIT $1"
    )))
    .bind(n)
    .fetch_all(store.pool())
    .await?;
    let mut out = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    out.reverse();
    Ok(out)
}

/// Which entries [`search`] returns; every field narrows (`None`: any).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct AuditFilter {
    pub tool: Option<String>,
    pub decision: Option<String>,
    /// Entries at or after this time (a prefix of the stored UTC format is fine: `2026-01-02`).
    pub since: Option<String>,
    /// Entries before this time.
    pub until: Option<String>,
    /// Text the (redacted) arguments contain, e.g. an approval id.
    pub text: Option<String>,
    /// Entries older than this id (the next page).
    pub before: Option<i64>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Up to `limit` entries matching `filter`, newest first (page on with `before`: the last id).
pub async fn search(
    store: &Store,
    filter: &AuditFilter,
    limit: i64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut clauses = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    let mut add = |clause: &str, value: String| {
        binds.push(value);
        clauses.push(clause.replace('?', &format!("${}", binds.len())));
    };
    if let Some(v) = given(&filter.tool) {
        add("tool = ?", v.to_string());
    }
    if let Some(v) = given(&filter.decision) {
        add("decision = ?", v.to_string());
    }
    if let Some(v) = given(&filter.since) {
        add("ts >= ?", v.to_string());
    }
    if let Some(v) = given(&filter.until) {
        add("ts < ?", v.to_string());
    }
    if let Some(v) = given(&filter.text) {
        // LIKE's wildcards in the text are matched literally.
        let escaped = v
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        add("arguments LIKE ? ESCAPE '\\'", format!("%{escaped}%"));
    }
    let mut sql = SELECT.to_string();
    if let Some(before) = filter.before {
        clauses.push(format!("id < {before}"));
    }
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", limit.clamp(1, 1000)));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(store.pool()).await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}
