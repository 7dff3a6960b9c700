//! Web console sessions in the state store (migration 0010), so that a restart does not sign
//! everyone out and every replica sharing a PostgreSQL store knows every session. A row is
//! keyed by the SHA-256 of the cookie's session id: reading the store does not yield a cookie
//! that signs in. Each session is bound to the access token it was opened under (`token`;
//! `None` without one): after the token changes or is first set, older sessions are not
//! found, so rotating a leaked token locks its holder out at once. Expired rows are removed
//! when a session opens; at most `max` live at once, the ones closest to expiry going first.

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::approvals::{now, timestamp};
use super::{Store, StoreError};

/// A live session as stored (the id itself is not stored).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSession {
    pub csrf: String,
    pub remote: String,
    /// The one-time message for the session's next page.
    pub flash: Option<String>,
}

/// The key a session id is stored under.
fn key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// What binds session `id` to `token`: learning it from the store reveals neither.
fn token_check(id: &str, token: Option<&str>) -> String {
    let mut h = Sha256::new();
    h.update(b"pi-mcp console session\0");
    h.update(id.as_bytes());
    h.update(b"\0");
    h.update(token.unwrap_or("").as_bytes());
    hex::encode(h.finalize())
}

/// Records a new session `id` for `ttl`, after dropping expired ones and, beyond `max`, the
/// ones closest to expiry.
pub async fn open(
    store: &Store,
    id: &str,
    token: Option<&str>,
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
        "INSERT INTO console_sessions (id_hash, token_check, csrf, remote, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(key(id))
    .bind(token_check(id, token))
    .bind(csrf.to_string())
    .bind(remote.to_string())
    .bind(timestamp(created))
    .bind(timestamp(expires))
    .execute(store.pool())
    .await?;
    Ok(())
}

/// The live session `id` opened under `token`, its flash message taken (cleared for the next
/// page).
pub async fn take(
    store: &Store,
    id: &str,
    token: Option<&str>,
) -> Result<Option<StoredSession>, StoreError> {
    let row = sqlx::query(
        "SELECT csrf, remote, flash FROM console_sessions \
         WHERE id_hash = $1 AND token_check = $2 AND expires_at > $3",
    )
    .bind(key(id))
    .bind(token_check(id, token))
    .bind(now())
    .fetch_optional(store.pool())
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let session = StoredSession {
        csrf: row.try_get("csrf")?,
        remote: row.try_get("remote")?,
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

    const T: Option<&str> = Some("the-token");

    #[tokio::test]
    async fn sessions_are_kept_by_hash_expire_and_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(None, dir.path()).await.unwrap();
        open(
            &store,
            "a",
            T,
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
        let s = take(&store, "a", T).await.unwrap().unwrap();
        assert_eq!(
            (s.csrf.as_str(), s.flash.as_deref()),
            ("csrf-a", Some("done"))
        );
        assert_eq!(take(&store, "a", T).await.unwrap().unwrap().flash, None);
        // Another token (rotated), or none: the session is not found.
        assert_eq!(take(&store, "a", Some("rotated")).await.unwrap(), None);
        assert_eq!(take(&store, "a", None).await.unwrap(), None);
        // Expired: gone.
        open(&store, "old", T, "c", "r", Duration::ZERO, 2)
            .await
            .unwrap();
        assert_eq!(take(&store, "old", T).await.unwrap(), None);
        // Beyond the cap, the session closest to expiry goes first.
        open(&store, "b", T, "c", "r", Duration::from_secs(120), 2)
            .await
            .unwrap();
        open(&store, "c", T, "c", "r", Duration::from_secs(180), 2)
            .await
            .unwrap();
        assert_eq!(take(&store, "a", T).await.unwrap(), None);
        assert!(take(&store, "b", T).await.unwrap().is_some());
        close(&store, "b").await.unwrap();
        assert_eq!(take(&store, "b", T).await.unwrap(), None);
        assert!(take(&store, "c", T).await.unwrap().is_some());
    }
}
