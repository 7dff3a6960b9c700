//! The state store: a SQLite file in the state directory (outside the workspace, see
//! [`location`]) by default, or PostgreSQL when the state URL is `postgres://`, with migrations
//! per backend. It holds the audit log, approvals, alert state and schema snapshots.

pub mod approvals;
pub mod audit;
pub mod health;
pub mod journal;
pub mod location;
pub mod placeholders;
pub mod sessions;
mod sqlite_writer;

use std::path::Path;
use std::str::FromStr;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::sqlite::SqliteConnectOptions;
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
    url_shown: ShownUrl,
    /// Where this store's audit journal files live (see [`journal`]).
    journal_dir: std::sync::Arc<std::path::PathBuf>,
    /// The file of a SQLite store (not of an in-memory one).
    sqlite_file: Option<std::sync::Arc<std::path::PathBuf>>,
}

/// The store's URL for messages, redacted when first shown: redacting runs every secret
/// pattern, whose compilation was a visible part of start-up (issue 14), for a URL that is
/// shown only in errors.
#[derive(Clone)]
struct ShownUrl(std::sync::Arc<(String, std::sync::OnceLock<String>)>);

impl ShownUrl {
    fn new(url: &str) -> ShownUrl {
        ShownUrl(std::sync::Arc::new((
            url.to_string(),
            std::sync::OnceLock::new(),
        )))
    }

    fn get(&self) -> &str {
        self.0.1.get_or_init(|| crate::redact::text(&self.0.0))
    }
}

impl std::fmt::Debug for ShownUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.get())
    }
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

/// Each SQLite store connection's settings: wait up to 10 s for another writer; the
/// write-ahead log (readers never wait for a writer; a commit is a sequential append, synced
/// at checkpoints: `synchronous=NORMAL`, which survives a crash of the process, not a power
/// cut); a 512 KiB page cache (the store holds small rows).
const SQLITE_SETTINGS: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA cache_size = -512;";

/// How often opening a SQLite store tries its migrations (another process may be applying them).
const MIGRATE_ATTEMPTS: u32 = 3;

impl Store {
    /// Opens `url` (or `<state_dir>/state.db` when `None`, creating the directory private to
    /// this user) and applies migrations.
    pub async fn open(url: Option<&str>, state_dir: &Path) -> Result<Store, StoreError> {
        install_default_drivers();
        let (url, backend) = match url {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                (u.to_string(), Backend::Postgres)
            }
            Some(u) if u.starts_with("sqlite:") => (u.to_string(), Backend::Sqlite),
            Some(u) => return Err(StoreError::Scheme(crate::redact::text(u))),
            None => {
                create_private_dir(state_dir)
                    .map_err(|e| StoreError::Dir(state_dir.display().to_string(), e))?;
                (
                    format!("sqlite://{}", state_dir.join(location::STATE_DB).display()),
                    Backend::Sqlite,
                )
            }
        };
        let url_shown = ShownUrl::new(&url);
        let connect_err = |source| StoreError::Connect {
            url: url_shown.get().to_string(),
            source,
        };
        let sqlite_file = location::sqlite_file(&url).map(std::sync::Arc::new);
        let connect_url = match backend {
            Backend::Sqlite => SqliteConnectOptions::from_str(&url)
                .map_err(connect_err)?
                .create_if_missing(true)
                .to_url_lossy()
                .to_string(),
            Backend::Postgres => url.clone(),
        };
        let mut pool_options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 2 } else { 8 })
            .acquire_timeout(CONNECT_TIMEOUT);
        if backend == Backend::Sqlite {
            // The Any driver connects by URL, and a SQLite URL carries only the file and its
            // mode (`to_url_lossy` drops the journal mode, synchronous, busy timeout and
            // pragmas): the store's settings are applied to each connection here.
            pool_options = pool_options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql(SQLITE_SETTINGS).execute(conn).await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options
            .connect(&connect_url)
            .await
            .map_err(connect_err)?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("src/store/migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("src/store/migrations/postgres"),
        };
        // PostgreSQL migrations hold an advisory lock; SQLite has none, so two processes opening
        // a new store at once can race (the loser's insert into _sqlx_migrations fails). Each
        // migration is its own transaction, so trying again sees the winner's work.
        let mut attempt = 1;
        loop {
            match migrator.run(&pool).await {
                Ok(()) => break,
                Err(e) if backend == Backend::Sqlite && attempt < MIGRATE_ATTEMPTS => {
                    tracing::debug!(
                        "state store {}: migration attempt {attempt} failed ({e}); trying again",
                        url_shown.get()
                    );
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(source) => {
                    return Err(StoreError::Migrate {
                        url: url_shown.get().to_string(),
                        source,
                    });
                }
            }
        }
        let store = Store {
            pool,
            backend,
            url_shown,
            journal_dir: std::sync::Arc::new(journal::dir_for(state_dir, &url)),
            sqlite_file,
        };
        // Audit entries a process answered for but had not committed when it stopped.
        journal::replay(&store, &store.journal_dir).await;
        Ok(store)
    }

    /// The file of a SQLite store (None: PostgreSQL, or SQLite in memory).
    pub fn sqlite_file(&self) -> Option<&Path> {
        self.sqlite_file.as_deref().map(|p| p.as_path())
    }

    /// The directory of this store's audit journal.
    pub fn journal_dir(&self) -> &Path {
        &self.journal_dir
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL with any password removed, for messages.
    pub fn url(&self) -> &str {
        self.url_shown.get()
    }
}

/// Creates `dir` (and its parents) readable by this user only, when it does not exist yet.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}
