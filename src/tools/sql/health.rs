//! The databases' own health check for `pi-mcp doctor`: `DATABASE_URL` and each database named
//! in the policy's `sql` section is resolved as the `sql` tool resolves it, opened as the tool
//! opens it, and asked whether the session really is read-only. URLs are shown without their
//! passwords.

use std::collections::HashMap;
use std::time::Duration;

use super::connect::{ReadOnlyDb, open};
use super::{DATABASE_URL_ENV, DEFAULT_DATABASE, resolve_database};
use crate::guard::Guard;
use crate::health::Check;

/// Statement timeout of the health queries.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One check per database. `used` maps a database name (`default` for `DATABASE_URL`) to the
/// alert rules that query it: an unconfigured database a rule needs fails.
pub async fn health(guard: &Guard, used: &HashMap<String, Vec<String>>) -> Vec<Check> {
    let mut names: Vec<String> = guard.file().sql.databases.keys().cloned().collect();
    let default_set = std::env::var(DATABASE_URL_ENV).is_ok_and(|v| !v.trim().is_empty());
    if !names.iter().any(|n| n == DEFAULT_DATABASE) {
        names.insert(0, DEFAULT_DATABASE.to_string());
    }
    // A rule may name a database the policy does not have: it fails below, naming the rule.
    let mut unknown: Vec<&String> = used.keys().filter(|n| !names.contains(n)).collect();
    unknown.sort();
    names.extend(unknown.into_iter().cloned());
    let mut out = Vec::new();
    for name in names {
        let rules = used.get(&name).map(Vec::as_slice).unwrap_or_default();
        let label = if name == DEFAULT_DATABASE && !guard.file().sql.databases.contains_key(&name) {
            format!("database {DATABASE_URL_ENV}")
        } else {
            format!("database {name}")
        };
        if name == DEFAULT_DATABASE
            && !default_set
            && !guard.file().sql.databases.contains_key(&name)
        {
            out.push(if rules.is_empty() {
                Check::ok(
                    label,
                    format!("not set (the sql tool needs {DATABASE_URL_ENV} or a named database)"),
                )
            } else {
                Check::fail(
                    label,
                    format!("not set, needed by {}", crate::health::rules_list(rules)),
                    format!(
                        "set {DATABASE_URL_ENV} (sqlite://PATH or postgres://USER:PASSWORD@HOST/DB)"
                    ),
                )
            });
            continue;
        }
        out.push(database(guard, &name, label, rules).await);
    }
    out
}

async fn database(guard: &Guard, name: &str, label: String, rules: &[String]) -> Check {
    let users = if rules.is_empty() {
        String::new()
    } else {
        format!(" (used by {})", crate::health::rules_list(rules))
    };
    let target = match resolve_database(guard, Some(name)) {
        Ok(t) => t,
        Err(e) => {
            let fix = if guard.file().sql.databases.contains_key(name) || name == DEFAULT_DATABASE {
                "set the variable or URL the message names".to_string()
            } else {
                format!(
                    "add `{name}` to the policy's sql.databases (with url or url_env), or correct \
                     params.database in those rules"
                )
            };
            return Check::fail(label, format!("{}{users}", e.message), fix);
        }
    };
    let shown = crate::redact::text(&target.url);
    let db = match open(&target.url, PROBE_TIMEOUT, target.allow_writes).await {
        Ok(db) => db,
        Err(e) => {
            return Check::fail(
                label,
                format!("{}{users}", e.message),
                "start the database, or correct its URL (host, port, user, password, path)",
            );
        }
    };
    let read_only = session_read_only(&db).await;
    db.close().await;
    match (read_only, target.allow_writes) {
        (Ok(true), _) => Check::ok(
            label,
            format!("{shown} reachable, session read-only{users}"),
        ),
        (Ok(false), true) => Check::warn(
            label,
            format!("{shown} reachable and writable: the policy allows writes here{users}"),
            format!("remove allow_writes from sql.databases.{name} unless the agent must write"),
        ),
        (Ok(false), false) => Check::fail(
            label,
            format!("{shown} reachable, but the session is NOT read-only{users}"),
            "report this: the sql tool opens sessions read-only",
        ),
        (Err(e), _) => Check::fail(
            label,
            format!("{shown} reachable, but a read-only probe failed: {e}{users}"),
            "check the user's rights on the database",
        ),
    }
}

/// Whether the session refuses writes: PostgreSQL's `transaction_read_only`, SQLite's
/// `query_only`.
async fn session_read_only(db: &ReadOnlyDb) -> Result<bool, sqlx::Error> {
    match db {
        ReadOnlyDb::Postgres(pool) => {
            let v: String = sqlx::query_scalar("SHOW transaction_read_only")
                .fetch_one(pool)
                .await?;
            Ok(v == "on")
        }
        ReadOnlyDb::Sqlite(pool) => {
            let v: i64 = sqlx::query_scalar("PRAGMA query_only")
                .fetch_one(pool)
                .await?;
            Ok(v == 1)
        }
    }
}
