//! Web console sessions in the state store (migration 0010), so that a restart does not sign
//! everyone out and every replica sharing a PostgreSQL store knows every session. A row is
//! keyed by the SHA-256 of the cookie's session id: reading the store does not yield a cookie
//! that signs in. Expired rows are removed when a session opens; at most `max` live at once,
//! the ones closest to expiry going first.

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::approvals::timestamp;
use super::{Store, StoreError};

/// A live session as stored (the id itself is not stored).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSession {
    pub csrf: String,
    pub remote: String,
    pub expires_at: String,
    /// The one-time message for the session's next page.
    pub flash: Option<String>,
}

/// The key a session id is stored under.
fn key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn now() -> String {
    timestamp(chrono::Utc::now())
}

/// Records a new session `id` for `ttl`, after dropping expired ones and, beyond `max`, the
/// ones closest to expiry.
pub async fn open(
    store: &Store,
    id: &str,
    csrf: &str,
    remote: &str,
    ttl: std::time::Duration,
    max: usize,
) -> Result<(), StoreError> {
    let created = chrono::Utc::now();
    let expires = created + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
    sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
        .bind(timestamp(created))
        .execute(store.pool())
        .await?;
    let live: i64 = sqlx::query("SELECT COUNT(*) AS n FROM console_sessions")
        .fetch_one(store.pool())
        .await?
        .try_get("n")?;
    let over = live + 1 - i64::try_from(max).unwrap_or(i64::MAX);
    if over > 0 {
        sqlx::query(
            "DELETE FROM console_sessions WHERE id_hash IN \
             (SELECT id_hash FROM console_sessions ORDER BY expires_at LIMIT $1)",
        )
        .bind(over)
        .execute(store.pool())
        .await?;
    }
    sqlx::query(
        "INSERT INTO console_sessions (id_hash, csrf, remote, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(key(id))
    .bind(csrf.to_string())
    .bind(remote.to_string())
    .bind(timestamp(created))
    .bind(timestamp(expires))
    .execute(store.pool())
    .await?;
    Ok(())
}

/// The live session `id`, its flash message taken (cleared for the next page).
pub async fn take(store: &Store, id: &str) -> Result<Option<StoredSession>, StoreError> {
    let row = sqlx::query(
        "SELECT csrf, remote, expires_at, flash FROM console_sessions \
         WHERE id_hash = $1 AND expires_at > $2",
    )
    .bind(key(id))
    .bind(now())
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let session = StoredSession {
        csrf: row.try_get("csrf")?,
        remote: row.try_get("remote")?,
        expires_at: row.try_get("expires_at")?,
        flash: row.try_get("flash")?,
    };
    if session.flash.is_some() {
        sqlx::query("UPDATE console_sessions SET flash = NULL WHERE id_hash = $1")
            .bind(key(id))
            .execute(store.pool())
            .await?;
    }
    Ok(Some(session))
}

/// Sets the message session `id`'s next page shows once.
pub async fn flash(store: &Store, id: &str, message: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE console_sessions SET flash = $1 WHERE id_hash = $2")
        .bind(message.to_string())
        .bind(key(id))
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Ends session `id`.
pub async fn close(store: &Store, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
        .bind(key(id))
        .execute(store.pool())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn sessions_are_kept_by_hash_expire_and_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(None, dir.path()).await.unwrap();
        open(
            &store,
            "a",
            "csrf-a",
            "127.0.0.1:1",
            Duration::from_secs(60),
            2,
        )
        .await
        .unwrap();
        let stored: String = sqlx::query("SELECT id_hash FROM console_sessions")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get("id_hash");
        assert_eq!(stored, key("a"), "only the hash of the id is stored");
        flash(&store, "a", "done").await.unwrap();
        let s = take(&store, "a").await.unwrap().unwrap();
        assert_eq!(
            (s.csrf.as_str(), s.flash.as_deref()),
            ("csrf-a", Some("done"))
        );
        assert_eq!(take(&store, "a").await.unwrap().unwrap().flash, None);
        // Expired: gone.
        open(&store, "old", "c", "r", Duration::ZERO, 2)
            .await
            .unwrap();
        assert_eq!(take(&store, "old").await.unwrap(), None);
        // Beyond the cap, the session closest to expiry goes first.
        open(&store, "b", "c", "r", Duration::from_secs(120), 2)
            .await
            .unwrap();
        open(&store, "c", "c", "r", Duration::from_secs(180), 2)
            .await
            .unwrap();
        assert_eq!(take(&store, "a").await.unwrap(), None);
        assert!(take(&store, "b").await.unwrap().is_some());
        close(&store, "b").await.unwrap();
        assert_eq!(take(&store, "b").await.unwrap(), None);
        assert!(take(&store, "c").await.unwrap().is_some());
    }
}
