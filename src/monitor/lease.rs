//! A lease in the state store around each evaluation and outbox pass, so that two evaluators
//! on one store (a `pi-mcp monitor` beside the daemon, two daemons on a shared PostgreSQL
//! store) never make the same transition twice. The holder renews it while it works; one that
//! dies frees it when it expires. While a deliverer holds the lease, any outbox row still
//! `sending` was left by an earlier holder that died mid-send, so it can be resent at once,
//! before the later rows of its queue.

use std::time::Duration;

use chrono::Utc;
use sqlx::Row;

use crate::store::approvals::timestamp;
use crate::store::{Store, StoreError};

/// The lease of the monitor's evaluation and outbox pass.
pub const MONITOR_LEASE: &str = "monitor";
/// How long a lease lasts without renewal: a holder that dies frees it this long after its
/// last renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// How often a holder renews its lease (well inside [`LEASE_TTL`]).
pub const LEASE_RENEW_EVERY: Duration = Duration::from_secs(10);
/// How long an evaluator waits for a lease another one holds before it skips its beat.
pub const LEASE_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);

/// Another evaluator holds the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    pub holder: String,
    pub expires_at: String,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another evaluator ({}) holds the monitor lease on this state store until {} \
             (renewed while it works); skipped so no transition is made twice",
            self.holder, self.expires_at
        )
    }
}

/// A held lease; renewed in the background until [`Lease::release`] (or drop, which stops
/// renewing and lets it expire).
pub struct Lease {
    store: Store,
    name: String,
    holder: String,
    renewer: tokio::task::JoinHandle<()>,
}

/// Who holds leases from this process: `host:pid:random`, distinct per process.
pub fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    let tag: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{host}:{}:{tag}", std::process::id())
}

/// Takes `name` for `holder` if it is free, expired or already theirs.
async fn try_take(store: &Store, name: &str, holder: &str) -> Result<bool, StoreError> {
    let now = Utc::now();
    let until = timestamp(now + LEASE_TTL);
    let taken = sqlx::query(
        "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE leases.expires_at < $4 OR leases.holder = $5",
    )
    .bind(name.to_string())
    .bind(holder.to_string())
    .bind(until)
    .bind(timestamp(now))
    .bind(holder.to_string())
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(taken > 0)
}

async fn current(store: &Store, name: &str) -> Result<Option<Busy>, StoreError> {
    let row = sqlx::query("SELECT holder, expires_at FROM leases WHERE name = $1")
        .bind(name.to_string())
        .fetch_optional(store.pool())
        .await?;
    Ok(match row {
        Some(r) => Some(Busy {
            holder: r.try_get("holder")?,
            expires_at: r.try_get("expires_at")?,
        }),
        None => None,
    })
}

impl Lease {
    /// Takes `name` for `holder`, waiting up to `wait` while another holder has it.
    pub async fn acquire(
        store: &Store,
        name: &str,
        holder: &str,
        wait: Duration,
    ) -> Result<Result<Lease, Busy>, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if try_take(store, name, holder).await? {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                // Freed between the attempt and this read: one more try next time.
                let busy = current(store, name).await?.unwrap_or(Busy {
                    holder: "unknown".into(),
                    expires_at: "-".into(),
                });
                return Ok(Err(busy));
            }
            tokio::time::sleep(POLL).await;
        }
        let renewer = {
            let (store, name, holder) = (store.clone(), name.to_string(), holder.to_string());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(LEASE_RENEW_EVERY).await;
                    match try_take(&store, &name, &holder).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::error!(
                                "lease `{name}` was taken over by another evaluator (this one \
                                 stalled longer than {LEASE_TTL:?}); its sends may repeat, \
                                 marked possible_duplicate"
                            );
                            return;
                        }
                        Err(e) => tracing::warn!("lease `{name}`: renewal failed: {e}"),
                    }
                }
            })
        };
        Ok(Ok(Lease {
            store: store.clone(),
            name: name.to_string(),
            holder: holder.to_string(),
            renewer,
        }))
    }

    /// Gives the lease up so the next evaluator need not wait for it to expire.
    pub async fn release(self) {
        self.renewer.abort();
        let freed = sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(self.name.clone())
            .bind(self.holder.clone())
            .execute(self.store.pool())
            .await;
        if let Err(e) = freed {
            tracing::warn!(
                "lease `{}`: release failed ({e}); it expires in {LEASE_TTL:?}",
                self.name
            );
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}
