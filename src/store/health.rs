//! The state store's own health check for `pi-mcp doctor`: the store is reachable and its
//! migrations are all applied, found without changing anything (no file created, no migration
//! run), so that asking is harmless on a production host.

use std::path::Path;

use sqlx::any::{AnyPoolOptions, install_default_drivers};

use super::{CONNECT_TIMEOUT, location};
use crate::health::Check;

/// Where the store is: `url` (`--state-url`) or `<state_dir>/state.db`.
pub async fn health(url: Option<&str>, state_dir: &Path) -> Vec<Check> {
    install_default_drivers();
    let (url, postgres, file) = match url {
        Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
            (u.to_string(), true, None)
        }
        Some(u) if u.starts_with("sqlite:") => (u.to_string(), false, location::sqlite_file(u)),
        Some(u) => {
            return vec![Check::fail(
                "state store",
                format!("`{}` is not a supported URL", crate::redact::text(u)),
                "use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB for --state-url / \
                 PI_MCP_STATE_URL",
            )];
        }
        None => {
            let db = state_dir.join(location::STATE_DB);
            (format!("sqlite://{}", db.display()), false, Some(db))
        }
    };
    let shown = crate::redact::text(&url);
    if let Some(file) = &file
        && !file.exists()
    {
        return vec![Check::ok(
            "state store",
            format!(
                "{} does not exist yet; the first `pi-mcp serve` (or any command that records) \
                 creates it",
                file.display()
            ),
        )];
    }
    let connect_url = match &file {
        // Read-only: asking must not create or change the file.
        Some(f) => format!("sqlite://{}?mode=ro", f.display()),
        None => url.clone(),
    };
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect(&connect_url);
    let pool = match tokio::time::timeout(CONNECT_TIMEOUT, pool).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return vec![unreachable(&shown, &e.to_string(), postgres)],
        Err(_) => return vec![unreachable(&shown, "no answer within 5 s", postgres)],
    };
    let known = known_migrations(postgres);
    let applied: Result<i64, sqlx::Error> =
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&pool)
            .await;
    pool.close().await;
    let mut out = vec![Check::ok("state store", format!("{shown} reachable"))];
    out.push(match applied {
        Ok(n) if n == known => Check::ok("migrations", format!("all {known} applied")),
        Ok(n) if n < known => Check::warn(
            "migrations",
            format!("{n} of {known} applied"),
            "the next pi-mcp start applies the rest (stop older pi-mcp versions sharing the store \
             first)",
        ),
        Ok(n) => Check::warn(
            "migrations",
            format!("{n} applied, this pi-mcp knows {known}: a newer pi-mcp wrote this store"),
            "upgrade this pi-mcp to the version the other replicas run",
        ),
        Err(e) => Check::warn(
            "migrations",
            format!("none recorded ({e})"),
            "the next pi-mcp start creates the tables",
        ),
    });
    out
}

fn unreachable(shown: &str, why: &str, postgres: bool) -> Check {
    let fix = if postgres {
        "start the database or correct PI_MCP_STATE_URL (host, port, user, password); pi-mcp \
         cannot record approvals or the audit log without it"
    } else {
        "check the file's permissions, or point PI_MCP_STATE_DIR / --state-url elsewhere"
    };
    Check::fail("state store", format!("{shown}: {why}"), fix)
}

fn known_migrations(postgres: bool) -> i64 {
    let migrator = if postgres {
        sqlx::migrate!("src/store/migrations/postgres")
    } else {
        sqlx::migrate!("src/store/migrations/sqlite")
    };
    i64::try_from(migrator.iter().count()).unwrap_or(i64::MAX)
}
