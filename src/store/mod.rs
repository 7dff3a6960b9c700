//! The state store: a SQLite file under the workspace (`.pi-mcp/state.db`) by default, or
//! PostgreSQL when the state URL is `postgres://`, with migrations per backend. It holds the
//! audit log now; alert state, schema snapshots and approvals join it later.

pub mod approvals;
pub mod audit;

use std::path::Path;
use std::str::FromStr;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AnyPool, ConnectOptions};

pub use audit::{AuditEntry, AuditLog};

/// How long opening the store may take before it is reported as unreachable.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Which database the store lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An open, migrated state store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url_shown: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("state store {url}: migration failed: {source}")]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("state store: {0}")]
    Query(#[from] sqlx::Error),
    #[error("state store URL `{0}` is not supported; use sqlite://PATH or postgres://...")]
    Scheme(String),
    #[error("state store: cannot create {0}: {1}")]
    Dir(String, std::io::Error),
}

impl Store {
    /// Opens `url` (or `<workspace>/.pi-mcp/state.db` when `None`) and applies migrations.
    pub async fn open(url: Option<&str>, workspace: &Path) -> Result<Store, StoreError> {
        install_default_drivers();
        let (url, backend) = match url {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                (u.to_string(), Backend::Postgres)
            }
            Some(u) if u.starts_with("sqlite:") => (u.to_string(), Backend::Sqlite),
            Some(u) => return Err(StoreError::Scheme(crate::redact::text(u))),
            None => {
                let dir = workspace.join(".pi-mcp");
                std::fs::create_dir_all(&dir)
                    .map_err(|e| StoreError::Dir(dir.display().to_string(), e))?;
                (
                    format!("sqlite://{}", dir.join("state.db").display()),
                    Backend::Sqlite,
                )
            }
        };
        let url_shown = crate::redact::text(&url);
        let connect_err = |source| StoreError::Connect {
            url: url_shown.clone(),
            source,
        };
        let connect_url = match backend {
            Backend::Sqlite => SqliteConnectOptions::from_str(&url)
                .map_err(connect_err)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(std::time::Duration::from_secs(10))
                // The store holds small rows; a 512 KiB page cache per connection is plenty.
                .pragma("cache_size", "-512")
                .to_url_lossy()
                .to_string(),
            Backend::Postgres => url.clone(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 2 } else { 8 })
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect(&connect_url)
            .await
            .map_err(connect_err)?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("src/store/migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("src/store/migrations/postgres"),
        };
        migrator
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: url_shown.clone(),
                source,
            })?;
        Ok(Store {
            pool,
            backend,
            url_shown,
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL with any password removed, for messages.
    pub fn url(&self) -> &str {
        &self.url_shown
    }
}
