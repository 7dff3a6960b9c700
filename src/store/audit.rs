//! The audit log: every tool call with its time, tool, redacted arguments, decision, reasons,
//! duration and outcome. Writes go through a background writer that batches them into
//! transactions, so auditing never slows a call; each entry is in the [`journal`](super::journal)
//! before the call answers, so a crash loses none; `flush` waits until all are stored.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use super::journal::{AuditRow, Journal};
use super::sqlite_writer::SqliteAuditWriter;
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
pub(super) const BATCH: usize = 256;
/// How long the writer waits for more entries before committing, so that a burst of calls
/// costs one transaction instead of one each; never while someone waits for a commit.
const LINGER: std::time::Duration = std::time::Duration::from_millis(5);

enum Msg {
    /// A row, with its journal sequence number when it was journaled.
    Entry(Box<AuditRow>, Option<u64>),
    Flush(oneshot::Sender<()>),
}

/// A handle to the audit writer.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: mpsc::UnboundedSender<Msg>,
    store: Store,
    journal: Arc<Journaling>,
    /// Masks the secret values pi-mcp knows in every entry, whoever writes it.
    redactor: Option<Arc<Redactor>>,
}

/// The journal, opened on the first entry (a command that records nothing creates no file).
#[derive(Debug)]
struct Journaling {
    dir: std::path::PathBuf,
    journal: OnceLock<Option<Journal>>,
}

impl Journaling {
    fn get(&self) -> Option<&Journal> {
        self.journal
            .get_or_init(|| {
                let dir = &self.dir;
                Journal::open(dir)
                    .map_err(|e| {
                        tracing::error!(
                            "audit journal in {}: {e}; answers wait for their audit commit",
                            dir.display()
                        )
                    })
                    .ok()
            })
            .as_ref()
    }

    /// The journal, if it was opened (without opening it).
    fn opened(&self) -> Option<&Journal> {
        self.journal.get().and_then(Option::as_ref)
    }
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("audit message")
    }
}

impl AuditLog {
    /// Starts the background writer for `store`, journaling in the store's journal directory.
    pub fn start(store: Store) -> AuditLog {
        let (tx, rx) = mpsc::unbounded_channel::<Msg>();
        let journal = Arc::new(Journaling {
            dir: store.journal_dir().to_path_buf(),
            journal: OnceLock::new(),
        });
        tokio::spawn(write_batches(store.clone(), rx, journal.clone()));
        AuditLog {
            tx,
            store,
            journal,
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

    /// Records an entry: appended to the journal at once (it survives a crash from here on),
    /// committed to the store within milliseconds.
    pub fn record(&self, entry: AuditEntry) {
        // Staged, then written at once: dropping the handle writes every staged line.
        drop(self.stage(entry));
    }

    /// Records an entry as [`record`](Self::record) does, except that its journal line is
    /// written with those of the calls answered together: the caller awaits
    /// [`Staged::journaled`] before it answers (dropped without that, the line is written
    /// then). For the per-call path, where a burst of calls then costs one `write`.
    pub fn stage(&self, entry: AuditEntry) -> Staged<'_> {
        let row = self.row(entry);
        let seq = match self.journal.get() {
            Some(j) => j.stage(row, |row, seq| self.send(row, seq)),
            None => {
                self.send(row, None);
                None
            }
        };
        Staged { log: self, seq }
    }

    /// `entry` masked and serialised for the store.
    fn row(&self, mut entry: AuditEntry) -> AuditRow {
        if let Some(r) = &self.redactor {
            r.known_json(&mut entry.arguments);
            r.known_json(&mut entry.reasons);
            entry.outcome = r.known_text(&entry.outcome);
        }
        AuditRow {
            ts: entry.ts,
            tool: entry.tool,
            arguments: entry.arguments.to_string(),
            decision: entry.decision,
            risk: entry.risk,
            reasons: entry.reasons.to_string(),
            duration_ms: entry.duration_ms,
            outcome: entry.outcome,
            client: entry.client,
            redactions: entry.redactions,
            key: None,
        }
    }

    fn send(&self, row: AuditRow, seq: Option<u64>) {
        if self.tx.send(Msg::Entry(Box::new(row), seq)).is_err() {
            tracing::error!("audit log writer has stopped; an entry was not stored");
        }
    }

    /// Writes the staged journal lines (everyone's) and hands their rows to the writer.
    fn write_staged(&self) {
        if let Some(j) = self.journal.opened() {
            j.write_staged(|row, seq| self.send(row, seq));
        }
    }

    /// Whether an entry survives a crash once [`record`](Self::record) returns (it is in the
    /// journal). False without a journal (it could not be created or written): then only
    /// [`flush`](Self::flush) makes entries safe.
    pub fn crash_safe(&self) -> bool {
        self.journal.get().is_some_and(Journal::working)
    }

    /// Waits until every queued entry is stored (committed, with whatever else is queued: one
    /// transaction for everyone waiting).
    pub async fn flush(&self) {
        self.write_staged();
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

/// An entry [`AuditLog::stage`]d: its journal line is written by [`journaled`](Self::journaled)
/// or, at the latest, when this is dropped (a call cancelled while it waits).
#[must_use = "the entry is crash-safe only once `journaled` has returned"]
pub struct Staged<'a> {
    log: &'a AuditLog,
    /// Its journal number; `None` when it is not journaled (it is queued already).
    seq: Option<u64>,
}

impl Staged<'_> {
    /// Returns once the entry's journal line is written. The calls whose answers are ready
    /// with this one stage theirs first (one yield to the runtime), and the first of them to
    /// come back writes them all in one `write`.
    pub async fn journaled(mut self) {
        let Some(seq) = self.seq else { return };
        let written = |log: &AuditLog| log.journal.opened().is_none_or(|j| j.is_written(seq));
        if !written(self.log) {
            tokio::task::yield_now().await;
            if !written(self.log) {
                self.log.write_staged();
            }
        }
        self.seq = None;
    }
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if self.seq.is_some() {
            self.log.write_staged();
        }
    }
}

/// The writer: commits queued rows in batches (group commit) and tells the journal what is
/// committed.
async fn write_batches(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    journal: Arc<Journaling>,
) {
    let mut batch: Vec<AuditRow> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    // A full batch left entries queued: the burst is already here, so the next batch is
    // written without waiting (10,000 entries used to wait 40 times).
    let mut backlog = false;
    // A SQLite store's rows go through a connection of the writer's own, opened on the first
    // batch (None: not opened yet; Some(None): not SQLite, or it could not be opened).
    let mut sqlite: Option<Option<SqliteAuditWriter>> = None;
    while let Some(first) = rx.recv().await {
        // Group commit: take what is queued; linger for more only while nobody waits for this
        // commit (a flush ends the wait: a tool call's answer may wait on one).
        let linger = (matches!(first, Msg::Entry(..)) && !backlog)
            .then(|| tokio::time::Instant::now() + LINGER);
        if linger.is_some() {
            // The tasks woken with this one go first: the call's answer is usually among
            // them, and arming the linger timer wakes the runtime's driver (a system call that
            // came before the answer's write; issue 14).
            tokio::task::yield_now().await;
        }
        // The journal numbers of the batch's first and last journaled rows.
        let mut seqs: Option<(u64, u64)> = None;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Entry(row, seq) => {
                    batch.push(*row);
                    if let Some(s) = seq {
                        seqs = Some(seqs.map_or((s, s), |(first, _)| (first, s)));
                    }
                }
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
            let writer = sqlite.get_or_insert_with(|| {
                let file = store.sqlite_file()?;
                SqliteAuditWriter::open(file)
                    .map_err(|e| {
                        tracing::warn!(
                            "audit log: no connection of its own to {} ({e}); writing through \
                             the store's pool",
                            file.display()
                        )
                    })
                    .ok()
            });
            let stored = match writer {
                Some(w) => w.insert(std::mem::take(&mut batch)).await,
                None => insert_rows(&store, batch.drain(..))
                    .await
                    .map_err(|e| e.to_string()),
            };
            let ok = match stored {
                Ok(_) => true,
                Err(e) => {
                    let kept = if seqs.is_some() {
                        "; they stay in the audit journal, and the next start stores them"
                    } else {
                        ""
                    };
                    tracing::error!("audit log: could not store {n} entries: {e}{kept}");
                    false
                }
            };
            if let (Some((first, last)), Some(j)) = (seqs, journal.opened()) {
                j.committed(first, last, ok);
            }
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
}

/// Columns written per row.
const COLUMNS: usize = 11;

/// Writes rows with one multi-row INSERT (one round trip to the database), moving them into
/// the query. A row whose journal key is already stored (a replay of what was committed) is
/// skipped. Returns how many were inserted.
pub(super) async fn insert_rows(
    store: &Store,
    rows: impl IntoIterator<Item = AuditRow, IntoIter: ExactSizeIterator>,
) -> Result<u64, sqlx::Error> {
    let rows = rows.into_iter();
    let sql = format!(
        "INSERT INTO audit_log (ts, tool, arguments, decision, risk, reasons, duration_ms, outcome, client, redactions, journal_key) VALUES {} ON CONFLICT DO NOTHING",
        super::placeholders::rows(store.backend(), rows.len(), COLUMNS)
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in rows {
        q = q
            .bind(r.ts)
            .bind(r.tool)
            .bind(r.arguments)
            .bind(r.decision)
            .bind(r.risk)
            .bind(r.reasons)
            .bind(r.duration_ms)
            .bind(r.outcome)
            .bind(r.client)
            .bind(r.redactions)
            .bind(r.key);
    }
    q.execute(store.pool()).await.map(|r| r.rows_affected())
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
