//! Pending approvals: a command the guard rated `ask` that no one could approve on the spot
//! waits here until a human approves or denies it (`pi-mcp approvals`), or it expires. An
//! approved command is used exactly once, and only for the exact text and directory approved.
//! Every step of an approval's life is written to the audit log under its id ([`audit_step`]).

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Store, StoreError};

/// One approval request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Approval {
    pub id: String,
    pub tool: String,
    pub command: String,
    pub cwd: String,
    pub risk: i64,
    pub reasons: serde_json::Value,
    /// `pending`, `approved`, `denied`, `used` or `expired`.
    pub status: String,
    pub created_at: String,
    pub expires_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub note: Option<String>,
    pub used_at: Option<String>,
    /// Who asked, as a reader can name it (see migration 0009); `None` for older rows.
    pub requested_by: Option<String>,
}

/// Why a decision could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no approval `{0}`; `pi-mcp approvals list` shows them")]
    NotFound(String),
    #[error("approval `{0}` is {1}, not pending")]
    NotPending(String, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Times are stored in one fixed UTC format so that text comparison orders them.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Now, in the stored format.
pub(super) fn now() -> String {
    timestamp(chrono::Utc::now())
}

/// A fresh approval id (12 hex digits).
pub fn new_id() -> String {
    let mut bytes = [0u8; 6];
    if getrandom::fill(&mut bytes).is_err() {
        let n = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64
            ^ u64::from(std::process::id());
        bytes.copy_from_slice(&n.to_le_bytes()[..6]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const COLUMNS: &str = "id, tool, command, cwd, risk, reasons, status, created_at, expires_at, decided_at, decided_by, note, used_at, requested_by";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Approval, sqlx::Error> {
    let reasons: String = r.try_get("reasons")?;
    let mut a = Approval {
        id: r.try_get("id")?,
        tool: r.try_get("tool")?,
        command: r.try_get("command")?,
        cwd: r.try_get("cwd")?,
        risk: r.try_get("risk")?,
        reasons: serde_json::from_str(&reasons).unwrap_or(serde_json::Value::String(reasons)),
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        decided_at: r.try_get("decided_at")?,
        decided_by: r.try_get("decided_by")?,
        note: r.try_get("note")?,
        used_at: r.try_get("used_at")?,
        requested_by: r.try_get("requested_by")?,
    };
    if matches!(a.status.as_str(), "pending" | "approved") && a.expires_at <= now() {
        a.status = "expired".into();
    }
    Ok(a)
}

/// What a new approval asks for, and who asks.
#[derive(Debug, Clone, Copy)]
pub struct NewApproval<'a> {
    pub requested_by: &'a str,
    pub tool: &'a str,
    pub command: &'a str,
    pub cwd: &'a str,
    pub risk: i64,
    pub reasons: &'a serde_json::Value,
}

/// Records a new pending approval that expires after `ttl`.
pub async fn create(
    store: &Store,
    new: NewApproval<'_>,
    ttl: std::time::Duration,
) -> Result<Approval, StoreError> {
    let NewApproval {
        requested_by,
        tool,
        command,
        cwd,
        risk,
        reasons,
    } = new;
    let created = chrono::Utc::now();
    let expires = created + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
    let id = new_id();
    sqlx::query(
        "INSERT INTO approvals (id, tool, command, cwd, risk, reasons, status, created_at, expires_at, requested_by) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9)",
    )
    .bind(id.clone())
    .bind(tool.to_string())
    .bind(command.to_string())
    .bind(cwd.to_string())
    .bind(risk)
    .bind(reasons.to_string())
    .bind(timestamp(created))
    .bind(timestamp(expires))
    .bind(requested_by.to_string())
    .execute(store.pool())
    .await?;
    get(store, &id)
        .await?
        .ok_or_else(|| StoreError::Query(sqlx::Error::RowNotFound))
}

/// Adds `who` to the callers approval `id` names (a second caller asking for the same command
/// shares the pending approval, and whoever's call runs it, the record names them all).
pub async fn add_requester(store: &Store, a: &Approval, who: &str) -> Result<(), StoreError> {
    let named = a.requested_by.as_deref().unwrap_or("");
    if named.split("; also ").any(|n| n == who) {
        return Ok(());
    }
    let all: String = match named {
        "" => who.to_string(),
        _ => format!("{named}; also {who}"),
    };
    sqlx::query("UPDATE approvals SET requested_by = $1 WHERE id = $2")
        .bind(all.chars().take(1000).collect::<String>())
        .bind(a.id.clone())
        .execute(store.pool())
        .await?;
    Ok(())
}

pub async fn get(store: &Store, id: &str) -> Result<Option<Approval>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approvals WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(|r| from_row(&r)).transpose()?)
}

/// The newest `limit` approvals, newest first.
pub async fn list(store: &Store, limit: i64) -> Result<Vec<Approval>, StoreError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approvals ORDER BY created_at DESC LIMIT $1"
    )))
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Approves or denies a pending, unexpired approval.
pub async fn decide(
    store: &Store,
    id: &str,
    approve: bool,
    by: &str,
    note: Option<&str>,
) -> Result<Approval, DecideError> {
    let at = now();
    let done = sqlx::query(
        "UPDATE approvals SET status = $1, decided_at = $2, decided_by = $3, note = $4 \
         WHERE id = $5 AND status = 'pending' AND expires_at > $6",
    )
    .bind(if approve { "approved" } else { "denied" })
    .bind(at.clone())
    .bind(by.to_string())
    .bind(note.map(str::to_string))
    .bind(id.to_string())
    .bind(at)
    .execute(store.pool())
    .await
    .map_err(StoreError::from)?;
    let current = get(store, id)
        .await?
        .ok_or_else(|| DecideError::NotFound(id.to_string()))?;
    if done.rows_affected() == 0 {
        return Err(DecideError::NotPending(id.to_string(), current.status));
    }
    Ok(current)
}

/// The newest pending, unexpired approval for exactly this command in this directory, if any:
/// asking again for the same thing waits on that request instead of queueing a second one.
pub async fn find_pending(
    store: &Store,
    tool: &str,
    command: &str,
    cwd: &str,
) -> Result<Option<Approval>, StoreError> {
    newest_with_status(store, "pending", tool, command, cwd).await
}

/// The newest approved, unused, unexpired approval for exactly this command in this
/// directory, without using it up (the call that runs the command does).
pub async fn find_approved(
    store: &Store,
    tool: &str,
    command: &str,
    cwd: &str,
) -> Result<Option<Approval>, StoreError> {
    newest_with_status(store, "approved", tool, command, cwd).await
}

/// The newest unexpired approval in `status` for exactly this command in this directory.
async fn newest_with_status(
    store: &Store,
    status: &str,
    tool: &str,
    command: &str,
    cwd: &str,
) -> Result<Option<Approval>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approvals WHERE tool = $1 AND command = $2 AND cwd = $3 \
         AND status = $4 AND expires_at > $5 ORDER BY created_at DESC LIMIT 1"
    )))
    .bind(tool.to_string())
    .bind(command.to_string())
    .bind(cwd.to_string())
    .bind(status.to_string())
    .bind(now())
    .fetch_optional(store.pool())
    .await?;
    Ok(row.map(|r| from_row(&r)).transpose()?)
}

/// Who an approval's refusal is recorded as when the policy in force denies its command.
pub const POLICY: &str = "policy";

/// Marks a pending or approved (not yet used) approval `denied` by the policy in force, with
/// `note` saying why: its command will not run, and the queue says so as the audit log does.
pub async fn refuse(store: &Store, id: &str, note: &str) -> Result<Approval, DecideError> {
    let at = now();
    let done = sqlx::query(
        "UPDATE approvals SET status = 'denied', decided_at = $1, decided_by = $2, note = $3 \
         WHERE id = $4 AND status IN ('pending', 'approved') AND expires_at > $5",
    )
    .bind(at.clone())
    .bind(POLICY.to_string())
    .bind(note.to_string())
    .bind(id.to_string())
    .bind(at)
    .execute(store.pool())
    .await
    .map_err(StoreError::from)?;
    let current = get(store, id)
        .await?
        .ok_or_else(|| DecideError::NotFound(id.to_string()))?;
    if done.rows_affected() == 0 {
        return Err(DecideError::NotPending(id.to_string(), current.status));
    }
    Ok(current)
}

/// The audit entry of an approval the policy in force refused (`summary`: the verdict's
/// one-line summary): its command did not run and will not.
pub fn refusal_audit_entry(a: &Approval, summary: &str, client: &str) -> super::AuditEntry {
    let outcome = format!(
        "refused by the policy in force: {summary}; the command was NOT run and will not be"
    );
    audit_step(a.subject(), "deny", &outcome, client)
}

/// Uses an approved, unused, unexpired approval for exactly this command in this directory;
/// returns its id. Each approval is used at most once, even by racing calls.
pub async fn consume(
    store: &Store,
    tool: &str,
    command: &str,
    cwd: &str,
) -> Result<Option<String>, StoreError> {
    let at = now();
    let candidates = sqlx::query(
        "SELECT id FROM approvals WHERE tool = $1 AND command = $2 AND cwd = $3 AND status = 'approved' AND expires_at > $4",
    )
    .bind(tool.to_string())
    .bind(command.to_string())
    .bind(cwd.to_string())
    .bind(at.clone())
    .fetch_all(store.pool())
    .await?;
    for row in candidates {
        let id: String = row.try_get("id")?;
        let used = sqlx::query("UPDATE approvals SET status = 'used', used_at = $1 WHERE id = $2 AND status = 'approved'")
            .bind(at.clone())
            .bind(id.clone())
            .execute(store.pool())
            .await?;
        if used.rows_affected() == 1 {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// What the audit log says about an approval at each step.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub id: &'a str,
    pub command: &'a str,
    pub risk: i64,
    pub reasons: &'a serde_json::Value,
}

impl Approval {
    pub fn subject(&self) -> Subject<'_> {
        Subject {
            id: &self.id,
            command: &self.command,
            risk: self.risk,
            reasons: &self.reasons,
        }
    }
}

/// The audit entry of one step in an approval's life: tool `approval`, arguments `{id,
/// command}`, `decision` (`ask` while it waits, `allow` or `deny`), and what happened.
pub fn audit_step(
    s: Subject<'_>,
    decision: &str,
    outcome: &str,
    client: &str,
) -> super::AuditEntry {
    super::AuditEntry {
        id: 0,
        ts: now(),
        tool: "approval".into(),
        arguments: serde_json::json!({"id": s.id, "command": crate::redact::text(s.command)}),
        decision: decision.into(),
        risk: s.risk,
        reasons: s.reasons.clone(),
        duration_ms: 0,
        outcome: crate::redact::text(outcome),
        client: client.into(),
        redactions: 0,
    }
}

/// The audit entry of a human's decision (`who`: the deciding user, `client`: cli or slack).
pub fn decision_audit_entry(
    a: &Approval,
    approve: bool,
    who: &str,
    reason: Option<&str>,
    client: &str,
) -> super::AuditEntry {
    let outcome = format!(
        "{} by {who}{}",
        a.status,
        reason.map(|r| format!(": {r}")).unwrap_or_default()
    );
    audit_step(
        a.subject(),
        if approve { "allow" } else { "deny" },
        &outcome,
        client,
    )
}

/// Marks every pending or approved approval past its expiry as `expired` and returns the ones
/// this call marked (so each expiry is reported once, even with racing callers).
pub async fn expire_due(store: &Store) -> Result<Vec<Approval>, StoreError> {
    let at = now();
    let due = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approvals WHERE status IN ('pending', 'approved') AND expires_at <= $1"
    )))
    .bind(at.clone())
    .fetch_all(store.pool())
    .await?;
    let mut expired = Vec::new();
    for row in &due {
        let mut a = from_row(row)?;
        let marked = sqlx::query(
            "UPDATE approvals SET status = 'expired' WHERE id = $1 AND status IN ('pending', 'approved') AND expires_at <= $2",
        )
        .bind(a.id.clone())
        .bind(at.clone())
        .execute(store.pool())
        .await?;
        if marked.rows_affected() == 1 {
            a.status = "expired".into();
            expired.push(a);
        }
    }
    Ok(expired)
}

/// Records every approval that has expired since the last look, one audit entry each.
pub async fn audit_expired(store: &Store, audit: &super::AuditLog, client: &str) {
    match expire_due(store).await {
        Ok(expired) => {
            for a in &expired {
                let outcome = format!("expired at {} without being used", a.expires_at);
                audit.record(audit_step(a.subject(), "deny", &outcome, client));
            }
        }
        Err(e) => tracing::error!("approvals: could not expire old approvals: {e}"),
    }
}
