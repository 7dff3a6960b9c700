//! A small process-wide cache of read-only connection pools, keyed by database URL and
//! statement timeout, for callers that query the same databases over and over (the monitor's
//! `db_query` rules run every heartbeat, the `sql` tool answers a session's queries). Opening a connection per query cost more than the
//! queries; a cached pool hands back a connection that finished its last read cleanly.
//!
//! A database that cannot be opened is remembered for [`FAILURE_MEMORY`]: the rules on it fail
//! at once with the same error instead of each waiting for its own connection attempt, and
//! the next attempt comes after that pause (so a database that is down costs one connection
//! attempt per pause, and is picked up again soon after it is back).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::connect::{ReadOnlyDb, open_read_only};
use crate::tools::ToolError;

/// Most pools kept; beyond it the least recently used is dropped (its connections close when
/// its last user is done).
pub const MAX_CACHED_POOLS: usize = 16;
/// How long a failure to open a database is answered from memory before trying again.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(10);

type Key = (String, u128);

enum Slot {
    Ready(ReadOnlyDb),
    Failed(Instant, ToolError),
}

struct Entry {
    slot: Arc<tokio::sync::Mutex<Option<Slot>>>,
    used: Instant,
}

static POOLS: Mutex<Option<HashMap<Key, Entry>>> = Mutex::new(None);

/// The cached read-only pool for `url` with `timeout` as its statement timeout, opened on first
/// use. Do not close it: other callers share it.
pub async fn read_only(url: &str, timeout: Duration) -> Result<ReadOnlyDb, ToolError> {
    open_cached(url, timeout, true).await
}

/// [`read_only`] for a caller whose user is waiting and may have just fixed the cause (the
/// `sql` tool): a failure to open is not answered from memory, the next call tries again.
pub async fn read_only_retrying(url: &str, timeout: Duration) -> Result<ReadOnlyDb, ToolError> {
    open_cached(url, timeout, false).await
}

async fn open_cached(
    url: &str,
    timeout: Duration,
    remember_failure: bool,
) -> Result<ReadOnlyDb, ToolError> {
    let slot = slot_for((url.to_string(), timeout.as_millis()));
    let mut slot = slot.lock().await;
    match &*slot {
        Some(Slot::Ready(db)) => return Ok(db.clone()),
        Some(Slot::Failed(at, e)) if remember_failure && at.elapsed() < FAILURE_MEMORY => {
            return Err(e.clone());
        }
        _ => {}
    }
    match open_read_only(url, timeout).await {
        Ok(db) => {
            *slot = Some(Slot::Ready(db.clone()));
            Ok(db)
        }
        Err(e) => {
            *slot = Some(Slot::Failed(Instant::now(), e.clone()));
            Err(e)
        }
    }
}

/// The slot of `key`, created (and the least recently used one evicted) as needed.
fn slot_for(key: Key) -> Arc<tokio::sync::Mutex<Option<Slot>>> {
    let mut guard = POOLS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let pools = guard.get_or_insert_with(HashMap::new);
    if let Some(entry) = pools.get_mut(&key) {
        entry.used = Instant::now();
        return entry.slot.clone();
    }
    if pools.len() >= MAX_CACHED_POOLS
        && let Some(oldest) = pools
            .iter()
            .min_by_key(|(_, e)| e.used)
            .map(|(k, _)| k.clone())
    {
        pools.remove(&oldest);
    }
    let slot = Arc::new(tokio::sync::Mutex::new(None));
    pools.insert(
        key,
        Entry {
            slot: slot.clone(),
            used: Instant::now(),
        },
    );
    slot
}

/// How many pools are cached (for tests).
pub fn cached() -> usize {
    POOLS
        .lock()
        .map(|g| g.as_ref().map_or(0, HashMap::len))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pools_are_shared_bounded_and_failures_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/a.db?mode=rwc", dir.path().display());
        let setup = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE t (a INTEGER)")
            .execute(&setup)
            .await
            .unwrap();
        let plain = format!("sqlite://{}/a.db", dir.path().display());
        let t = Duration::from_secs(5);
        let (ReadOnlyDb::Sqlite(a), ReadOnlyDb::Sqlite(b)) = (
            read_only(&plain, t).await.unwrap(),
            read_only(&plain, t).await.unwrap(),
        ) else {
            panic!("not SQLite")
        };
        // The same pool (clones share their connections).
        sqlx::query("SELECT 1").execute(&a).await.unwrap();
        assert_eq!(a.size(), b.size());
        // A missing file fails, and is answered from memory the second time.
        let missing = format!("sqlite://{}/missing.db", dir.path().display());
        let e1 = read_only(&missing, t).await.unwrap_err();
        std::fs::copy(dir.path().join("a.db"), dir.path().join("missing.db")).unwrap();
        let e2 = read_only(&missing, t).await.unwrap_err();
        assert_eq!(e1.message, e2.message);
        // Never more than MAX_CACHED_POOLS entries.
        for i in 0..MAX_CACHED_POOLS + 3 {
            let _ = read_only(&plain, Duration::from_millis(1000 + i as u64)).await;
        }
        assert!(cached() <= MAX_CACHED_POOLS);
    }
}
