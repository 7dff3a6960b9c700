//! The notification outbox. A transition's notices are written to the store in the same
//! transaction as the rule's new state, one row per channel, and delivered from there: a
//! delivery that fails on every retry stays queued for a later heartbeat, rows of one rule and
//! channel go out in order (a later one waits behind a failing earlier one), and a delivered
//! row is never sent again, so each transition is announced once.
//!
//! Only the holder of the monitor lease ([`super::lease`]) delivers. Exactly once has one
//! window left: a crash after a receiver accepted a notice and before its row was marked
//! delivered. A row is claimed (`sending`, committed) before its send, so such a row is
//! recognisable afterwards: the next lease holder finds it still `sending` (nobody else can be
//! sending it) and sends it again before the later rows of its queue, marked
//! `possible_duplicate` and with the notice's unchanged `idempotency_key` (webhook JSON field,
//! email Message-ID), which lets a receiver drop the repeat. Slack has no such key.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::rules::{Channel, Rule};
use super::sources::BoxFuture;
use super::state::RuleState;
use super::transition::NoticeKind;
use crate::severity::Severity;
use crate::store::{AuditLog, Store, StoreError};

/// `last_error` of a row that was being sent when its process died.
const INTERRUPTED: &str = "interrupted mid-send; resent as a possible duplicate";

/// How many (rule, channel) queues deliver at the same time.
pub const DELIVERY_CONCURRENCY: usize = 8;

/// What is said about one transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub rule_id: String,
    pub rule_name: String,
    pub kind: NoticeKind,
    pub severity: Severity,
    pub state: String,
    pub value: Option<f64>,
    pub condition: String,
    pub threshold: f64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub runbook: Option<String>,
    /// RFC 3339 time of the transition.
    pub at: String,
    pub subject: String,
    pub text: String,
    /// The same for every delivery of this notice (retries, a resend after a crash), so
    /// receivers can drop a repeat: in the webhook JSON, and the email's Message-ID.
    #[serde(default)]
    pub idempotency_key: String,
    /// This delivery may repeat one that was cut off by a crash after the send began.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub possible_duplicate: bool,
}

/// A stable key for one transition of one rule: 32 hex digits of SHA-256(rule, kind, time).
pub fn idempotency_key(rule_id: &str, kind: NoticeKind, at: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{rule_id}\0{}\0{at}", kind.as_str()));
    hex::encode(&digest[..16])
}

impl Notice {
    /// The notice for `rule` entering `state` with `kind`.
    pub fn new(rule: &Rule, kind: NoticeKind, state: &RuleState) -> Notice {
        let at = state.last_evaluated.unwrap_or_else(Utc::now);
        let value = state
            .value
            .map_or_else(|| "no value".to_string(), |v| format!("{v}"));
        let tag = match kind {
            NoticeKind::Firing => "FIRING",
            NoticeKind::Repeat => "STILL FIRING",
            NoticeKind::Resolved => "RESOLVED",
        };
        let subject = format!("[{tag}] {}", rule.display_name());
        let mut text = format!(
            "{subject}\nrule: {} ({})\ncondition: {}\nvalue: {value}\nstate: {} since {}\nseverity: {}",
            rule.id(),
            rule.spec.kind.as_str(),
            rule.condition_text(),
            state.state.as_str(),
            crate::store::approvals::timestamp(state.since),
            rule.spec.severity,
        );
        if let Some(p) = &state.problem {
            text.push_str(&format!("\nlast error: {p}"));
        }
        if let Some(r) = &rule.spec.runbook {
            text.push_str(&format!("\nrunbook: {r}"));
        }
        for (k, v) in &rule.spec.labels {
            text.push_str(&format!("\n{k}: {v}"));
        }
        Notice {
            rule_id: rule.id().to_string(),
            rule_name: rule.display_name().to_string(),
            kind,
            severity: rule.spec.severity,
            state: state.state.as_str().to_string(),
            value: state.value,
            condition: rule.condition_text(),
            threshold: rule.spec.condition.threshold,
            labels: rule.spec.labels.clone(),
            runbook: rule.spec.runbook.clone(),
            idempotency_key: idempotency_key(
                rule.id(),
                kind,
                &crate::store::approvals::timestamp(at),
            ),
            possible_duplicate: false,
            at: crate::store::approvals::timestamp(at),
            subject,
            text,
        }
    }
}

/// Why a delivery failed after the channel's own retries.
#[derive(Debug, Clone)]
pub struct SendError {
    pub message: String,
    /// Worth trying again later (connection error, 429, 5xx); otherwise permanent (4xx,
    /// refused by policy, channel not configured).
    pub transient: bool,
}

/// How patiently one delivery attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// A notice's first heartbeat: retry transient failures with backoff (the notify tool's).
    Retry,
    /// A notice that already failed a whole retry round: one attempt per heartbeat (the
    /// heartbeat is the retry loop), so a channel that stays down costs one try and no log
    /// line per heartbeat.
    Once,
}

/// Delivers one notice on one channel; the outbox keeps what still fails for a later
/// heartbeat.
pub trait NoticeSender: Send + Sync {
    fn send<'a>(
        &'a self,
        channel: Channel,
        notice: &'a Notice,
        patience: Patience,
    ) -> BoxFuture<'a, Result<(), SendError>>;
}

/// Queues `notices` (one row per rule channel) on `conn`, inside the evaluation's transaction.
pub async fn enqueue(
    conn: &mut sqlx::AnyConnection,
    rules: &HashMap<&str, &Rule>,
    notices: &[Notice],
) -> Result<(), sqlx::Error> {
    let now = crate::store::approvals::timestamp(Utc::now());
    for n in notices {
        let Some(rule) = rules.get(n.rule_id.as_str()) else {
            continue;
        };
        // A notice that cannot be serialised fails the transaction rather than queueing an
        // empty row that would stay pending forever.
        let payload = serde_json::to_string(n).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        for ch in &rule.spec.channels {
            sqlx::query(
                "INSERT INTO monitor_outbox (rule_id, channel, kind, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(n.rule_id.clone())
            .bind(ch.as_str())
            .bind(n.kind.as_str())
            .bind(payload.clone())
            .bind(now.clone())
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// What one delivery pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub delivered: usize,
    /// Failed on every retry this time; still queued.
    pub deferred: usize,
    /// Refused permanently (e.g. 4xx): taken out of the queue and logged.
    pub failed: usize,
    /// Sends that failed this pass (a row waiting behind a failing one is not a failed send).
    pub failed_attempts: usize,
}

struct Row_ {
    id: i64,
    channel: Channel,
    attempts: i64,
    notice: Notice,
}

/// An outbox row as the console shows it: queued, or failed at least once.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub rule_id: String,
    pub channel: String,
    pub kind: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
}

/// The newest `limit` rows still queued or that failed at least once, newest first.
pub async fn troubled(store: &Store, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, rule_id, channel, kind, status, attempts, last_error, created_at \
         FROM monitor_outbox WHERE status <> 'delivered' OR last_error IS NOT NULL \
         ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(OutboxRow {
            id: r.try_get("id")?,
            rule_id: r.try_get("rule_id")?,
            channel: r.try_get("channel")?,
            kind: r.try_get("kind")?,
            status: r.try_get("status")?,
            attempts: r.try_get("attempts")?,
            last_error: r.try_get("last_error")?,
            created_at: r.try_get("created_at")?,
        });
    }
    Ok(out)
}

/// Rows still queued (oldest first).
pub async fn pending_count(store: &Store) -> Result<i64, StoreError> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM monitor_outbox WHERE status = 'pending'")
        .fetch_one(store.pool())
        .await?;
    Ok(r.try_get("n")?)
}

/// Delivers every queued row, in order per (rule, channel); every attempt's result goes to
/// the audit log. `_held` is the monitor lease: only its holder delivers, so a row still
/// `sending` now was cut off by the death of an earlier holder.
pub async fn deliver(
    store: &Store,
    sender: Arc<dyn NoticeSender>,
    audit: &AuditLog,
    client: &str,
    _held: &super::lease::Lease,
) -> Result<DeliveryReport, StoreError> {
    let interrupted = sqlx::query(
        "UPDATE monitor_outbox SET status = 'pending', last_error = $1 WHERE status = 'sending'",
    )
    .bind(INTERRUPTED)
    .execute(store.pool())
    .await?
    .rows_affected();
    if interrupted > 0 {
        tracing::warn!(
            "{interrupted} notices were cut off mid-send (a crash or kill); resending them \
             marked possible_duplicate, with their idempotency keys unchanged"
        );
    }
    let rows = sqlx::query(
        "SELECT id, rule_id, channel, attempts, payload, last_error FROM monitor_outbox \
         WHERE status = 'pending' ORDER BY id",
    )
    .fetch_all(store.pool())
    .await?;
    let mut queues: BTreeMap<(String, String), Vec<Row_>> = BTreeMap::new();
    for r in &rows {
        let channel: String = r.try_get("channel")?;
        let payload: String = r.try_get("payload")?;
        let (Ok(ch), Ok(mut notice)) = (
            channel.parse::<Channel>(),
            serde_json::from_str::<Notice>(&payload),
        ) else {
            tracing::error!(
                "outbox row {} is unreadable; skipping it",
                r.try_get::<i64, _>("id")?
            );
            continue;
        };
        let last_error: Option<String> = r.try_get("last_error")?;
        notice.possible_duplicate = last_error.as_deref() == Some(INTERRUPTED);
        if notice.idempotency_key.is_empty() {
            notice.idempotency_key = idempotency_key(&notice.rule_id, notice.kind, &notice.at);
        }
        queues
            .entry((r.try_get("rule_id")?, channel))
            .or_default()
            .push(Row_ {
                id: r.try_get("id")?,
                channel: ch,
                attempts: r.try_get("attempts")?,
                notice,
            });
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(DELIVERY_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for (_, queue) in queues {
        let (store, sender, audit, limit) =
            (store.clone(), sender.clone(), audit.clone(), limit.clone());
        let client = client.to_string();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            deliver_queue(&store, sender.as_ref(), &audit, &client, queue).await
        });
    }
    let mut report = DeliveryReport::default();
    // Every queue finishes its send even when another fails on the store: dropping the set
    // would abort sends mid-flight and leave their rows to be resent as possible duplicates.
    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(r)) => {
                report.delivered += r.delivered;
                report.deferred += r.deferred;
                report.failed += r.failed;
                report.failed_attempts += r.failed_attempts;
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => tracing::error!("outbox delivery task failed: {e}"),
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

async fn deliver_queue(
    store: &Store,
    sender: &dyn NoticeSender,
    audit: &AuditLog,
    client: &str,
    queue: Vec<Row_>,
) -> Result<DeliveryReport, StoreError> {
    let mut report = DeliveryReport::default();
    let mut rows = queue.into_iter();
    for row in rows.by_ref() {
        // Claimed (and committed) before the send: a crash mid-send leaves it recognisable,
        // and a concurrent deliverer that claimed it first keeps it.
        let claimed = sqlx::query(
            "UPDATE monitor_outbox SET status = 'sending', attempts = attempts + 1, claimed_at = $2 \
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(row.id)
        .bind(crate::store::approvals::timestamp(Utc::now()))
        .execute(store.pool())
        .await?
        .rows_affected();
        if claimed == 0 {
            break;
        }
        let started = Instant::now();
        let patience = if row.attempts == 0 {
            Patience::Retry
        } else {
            Patience::Once
        };
        let result = sender.send(row.channel, &row.notice, patience).await;
        let now = crate::store::approvals::timestamp(Utc::now());
        let args = serde_json::json!({
            "rule": row.notice.rule_id, "channel": row.channel.as_str(),
            "kind": row.notice.kind.as_str(), "outbox_id": row.id, "attempts": row.attempts + 1,
        });
        let (status, outcome, error) = match &result {
            Ok(()) => ("delivered", "ok".to_string(), None),
            Err(e) if e.transient => (
                "pending",
                format!("error: {} (kept in the outbox)", e.message),
                Some(e.message.clone()),
            ),
            Err(e) => (
                "failed",
                format!("error: {} (permanent)", e.message),
                Some(e.message.clone()),
            ),
        };
        sqlx::query(
            "UPDATE monitor_outbox SET status = $1, last_error = $2, delivered_at = $3 WHERE id = $4",
        )
        .bind(status)
        .bind(error.clone())
        .bind((status == "delivered").then(|| now.clone()))
        .bind(row.id)
        .execute(store.pool())
        .await?;
        audit.record(super::audit_entry(
            "monitor.notify",
            args,
            &outcome,
            started,
            client,
        ));
        if status != "delivered" {
            report.failed_attempts += 1;
        }
        match (status, error) {
            ("delivered", _) => report.delivered += 1,
            ("pending", Some(e)) => {
                // Reported once: on the row's first failing heartbeat.
                if row.attempts == 0 {
                    tracing::warn!(
                        "rule `{}`: {} notice on {} failed, kept in the outbox: {e}",
                        row.notice.rule_id,
                        row.notice.kind.as_str(),
                        row.channel.as_str()
                    );
                }
                // Later rows of this rule and channel wait behind this one.
                report.deferred += 1 + rows.len();
                break;
            }
            (_, e) => {
                tracing::error!(
                    "rule `{}`: {} notice on {} refused: {}",
                    row.notice.rule_id,
                    row.notice.kind.as_str(),
                    row.channel.as_str(),
                    e.unwrap_or_default()
                );
                report.failed += 1;
            }
        }
    }
    Ok(report)
}
