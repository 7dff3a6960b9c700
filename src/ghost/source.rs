//! The database the Data Ghost watches, opened read-only. This is the one place ghost touches a
//! connection: PostgreSQL with `default_transaction_read_only=on` and a `statement_timeout`,
//! SQLite opened read-only with `query_only`. (When `tools::sql` lands, this module becomes a thin
//! adapter over its read-only connections.)

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};

/// Connections the profiler keeps open (tables are profiled one after another).
pub const MAX_CONNECTIONS: u32 = 2;

/// A read-only connection pool to the watched database.
#[derive(Debug, Clone)]
pub enum Source {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Why the watched database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "database URL `{0}` is not supported: use postgres://USER:PASS@HOST/DB or sqlite://PATH"
    )]
    Scheme(String),
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
}

impl Source {
    /// Opens `url` read-only; every statement is cut off after `timeout`.
    pub async fn open(url: &str, timeout: Duration) -> Result<Source, SourceError> {
        let shown = crate::redact::text(url);
        let connect = |source| SourceError::Connect {
            url: shown.clone(),
            source,
        };
        if is_postgres(url) {
            let options = PgConnectOptions::from_str(url)
                .map_err(connect)?
                .options([
                    ("default_transaction_read_only", "on".to_string()),
                    ("statement_timeout", timeout.as_millis().to_string()),
                ])
                .application_name("pi-mcp-ghost");
            let pool = PgPoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .acquire_timeout(timeout.min(crate::store::CONNECT_TIMEOUT * 2))
                .connect_with(options)
                .await
                .map_err(connect)?;
            Ok(Source::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(connect)?
                .read_only(true)
                .create_if_missing(false)
                .pragma("query_only", "ON")
                .busy_timeout(timeout);
            let pool = SqlitePoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .acquire_timeout(timeout)
                .connect_with(options)
                .await
                .map_err(connect)?;
            Ok(Source::Sqlite(pool))
        } else {
            Err(SourceError::Scheme(shown))
        }
    }

    /// `postgresql` or `sqlite`, for messages and the report.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Source::Postgres(_) => "postgresql",
            Source::Sqlite(_) => "sqlite",
        }
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        match self {
            Source::Postgres(p) => p.close().await,
            Source::Sqlite(p) => p.close().await,
        }
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Longest database name used in report paths.
pub const MAX_NAME_CHARS: usize = 64;

/// The database's name for report paths: the PostgreSQL database name or the SQLite file stem,
/// reduced to `[A-Za-z0-9_.-]` (anything else becomes `_`).
pub fn database_name(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    let raw = if is_postgres(url) {
        let after_scheme = without_query.split_once("://").map_or("", |(_, r)| r);
        match after_scheme.split_once('/') {
            Some((_, db)) if !db.is_empty() => db.to_string(),
            _ => "postgres".to_string(),
        }
    } else {
        let path = without_query
            .trim_start_matches("sqlite:")
            .trim_start_matches("//");
        std::path::Path::new(path)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME_CHARS)
        .collect();
    let clean = clean.trim_start_matches('.').to_string();
    if clean.is_empty() {
        "database".to_string()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_urls_are_sanitised() {
        assert_eq!(
            database_name("postgres://u:p@h:5432/shop?sslmode=disable"),
            "shop"
        );
        assert_eq!(database_name("postgresql://h"), "postgres");
        assert_eq!(database_name("sqlite:///tmp/x/demo.db"), "demo");
        assert_eq!(
            database_name("sqlite://rel/my shop.sqlite?mode=ro"),
            "my_shop"
        );
        assert_eq!(database_name("sqlite://../..db"), "database");
        assert_eq!(database_name("postgres://h/a%2F..%2Fb"), "a_2F.._2Fb");
        let long = format!("postgres://h/{}", "x".repeat(200));
        assert_eq!(database_name(&long).len(), MAX_NAME_CHARS);
    }
}
