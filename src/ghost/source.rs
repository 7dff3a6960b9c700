//! The database the Data Ghost watches, opened read-only through `tools::sql` (PostgreSQL with
//! `default_transaction_read_only=on` and a `statement_timeout`, SQLite opened read-only with
//! `query_only`), so ghost owns no second copy of connection code. Also: the database's name
//! for report paths.

use std::time::Duration;

pub use crate::tools::sql::ReadOnlyDb as Source;

/// Why the watched database could not be opened (worded by `tools::sql`: what to fix).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Opens `url` read-only; every statement is cut off after `timeout`.
pub async fn open(url: &str, timeout: Duration) -> Result<Source, SourceError> {
    crate::tools::sql::open_read_only(url, timeout)
        .await
        .map_err(|e| SourceError(e.message))
}

/// `postgresql` or `sqlite`, for messages and the report.
pub fn backend_name(source: &Source) -> &'static str {
    match source {
        Source::Postgres(_) => "postgresql",
        Source::Sqlite(_) => "sqlite",
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
