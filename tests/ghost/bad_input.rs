//! Bad input: an unreachable database, bad credentials, no database configured, a table dropped
//! mid-run, columns of unknown types. The run reports the problem in the report and on stderr,
//! finishes the other tables, and exits non-zero only when nothing could be profiled.

use std::time::Duration;

use crate::{findings, ghost, pg_db, sqlite_db, support};

/// Runs ghost expecting failure; returns stderr.
fn ghost_fails(ws: &std::path::Path, url: &str, env: &[(&str, &str)]) -> String {
    let out = support::cli(ws, &["ghost", "--database", url], env);
    assert!(!out.status.success(), "ghost on {url} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn latest_report(ws: &std::path::Path, database: &str) -> String {
    std::fs::read_to_string(ws.join("reports").join(database).join("latest.md"))
        .expect("a report is written even when the database cannot be reached")
}

#[test]
fn unreachable_database_fails_with_a_report() {
    let ws = support::Workspace::new();
    let stderr = ghost_fails(
        ws.path(),
        "postgres://ghost:secret@127.0.0.1:1/warehouse",
        &[("GHOST_STATEMENT_TIMEOUT_SECS", "5")],
    );
    assert!(stderr.contains("cannot reach the database"), "{stderr}");
    assert!(
        !stderr.contains("secret"),
        "the password is redacted: {stderr}"
    );
    let report = latest_report(ws.path(), "warehouse");
    assert!(
        report.contains("## Problems") && report.contains("cannot reach the database"),
        "{report}"
    );
    let stderr = ghost_fails(ws.path(), "sqlite:///nonexistent/dir/gone.db", &[]);
    assert!(stderr.contains("gone"), "{stderr}");
}

#[test]
fn missing_database_url_says_what_to_set() {
    let ws = support::Workspace::new();
    let out = support::cli(ws.path(), &["ghost"], &[("DATABASE_URL", "")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DATABASE_URL") && stderr.contains("--database"),
        "{stderr}"
    );
    let out = support::cli(ws.path(), &["ghost", "--database", "mysql://h/db"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported scheme"));
}

#[tokio::test]
async fn postgres_bad_credentials_fail_with_a_report() {
    let Some((_db, url)) = pg_db("creds").await else {
        return;
    };
    let ws = support::Workspace::new();
    let bad = url.replacen("://", "://no_such_role:wrong@", 1);
    let bad = match bad.split_once('@') {
        // The test URL may carry its own user: keep only ours.
        Some((creds, rest)) if rest.contains('@') => {
            format!("{creds}@{}", rest.split_once('@').unwrap().1)
        }
        _ => bad,
    };
    let stderr = ghost_fails(ws.path(), &bad, &[]);
    assert!(stderr.contains("no_such_role"), "{stderr}");
    assert!(latest_report(ws.path(), "ghost_creds").contains("## Problems"));
}

/// A table locked by another session, then dropped while ghost waits on it: ghost reports that
/// table, profiles the others and succeeds.
#[tokio::test]
async fn postgres_table_dropped_mid_run() {
    let Some((db, url)) = pg_db("midrun").await else {
        return;
    };
    let ws = support::Workspace::new();
    db.exec(
        "CREATE TABLE a_first (id int); INSERT INTO a_first VALUES (1);
         CREATE TABLE b_victim (id int); INSERT INTO b_victim VALUES (1);
         CREATE TABLE c_last (id int); INSERT INTO c_last VALUES (1), (2);",
    )
    .await;
    let crate::TestDb::Pg(pool) = &db else {
        unreachable!()
    };
    let mut locker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE b_victim IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *locker)
        .await
        .unwrap();
    let child = std::process::Command::new(support::bin())
        .args(["--workspace"])
        .arg(ws.path())
        .args(["ghost", "--json", "--database", &url])
        .env_remove("PI_MCP_STATE_URL")
        .envs(support::state_env(ws.path()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let ghost reach the locked table, then drop it under its feet.
    let waiting = async {
        loop {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%b_victim%'",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            if n > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("ghost waits on the locked table");
    sqlx::query("DROP TABLE b_victim")
        .execute(&mut *locker)
        .await
        .unwrap();
    locker.commit().await.unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "other tables were profiled: {stderr}");
    assert!(
        stderr.contains("b_victim"),
        "the problem is on stderr: {stderr}"
    );
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["tables_profiled"], 2);
    assert_eq!(run["tables_failed"], 1);
    assert!(
        findings(&run)
            .iter()
            .any(|f| f.0 == "profile_failed" && f.1 == "public.b_victim")
    );
    let report = std::fs::read_to_string(run["report_path"].as_str().unwrap()).unwrap();
    assert!(
        report.contains("## Problems") && report.contains("b_victim"),
        "{report}"
    );
    assert!(report.contains("`public.c_last` | 2 |"), "{report}");
}

#[tokio::test]
async fn unknown_column_types_are_profiled_as_text() {
    let ws = support::Workspace::new();
    let (db, url) = sqlite_db(ws.path(), "odd").await;
    db.exec(
        "CREATE TABLE shapes (id INTEGER, shape GEOMETRYBLOB, anything);
         INSERT INTO shapes VALUES (1, x'00ff', 'a'), (2, NULL, 3), (3, x'00ff', NULL);",
    )
    .await;
    let run = ghost(ws.path(), &url, &[]);
    let found = findings(&run);
    for col in ["shape", "anything"] {
        assert!(
            found
                .iter()
                .any(|f| f.0 == "unknown_type" && f.2.as_deref() == Some(col) && f.3 == "info"),
            "{found:?}"
        );
    }
    let shape = &run["profiles"][0]["columns"][1];
    assert_eq!(shape["nulls"], 1);
    assert_eq!(shape["distinct"], 1);

    let Some((db, url)) = pg_db("oddtypes").await else {
        return;
    };
    db.exec(
        "CREATE TYPE mood AS ENUM ('happy', 'sad');
         CREATE TABLE things (id int, m mood, p point, j jsonb, r int4range);
         INSERT INTO things VALUES (1, 'happy', point(1,2), '{\"a\":1}', '[1,5)'),
                                   (2, 'sad', NULL, '[1]', NULL);",
    )
    .await;
    let run = ghost(ws.path(), &url, &[]);
    let found = findings(&run);
    for col in ["m", "p", "j", "r"] {
        assert!(
            found
                .iter()
                .any(|f| f.0 == "unknown_type" && f.2.as_deref() == Some(col)),
            "{found:?}"
        );
    }
    let m = &run["profiles"][0]["columns"][1];
    assert_eq!(m["values"].as_array().unwrap().len(), 2, "{m}");
}

/// GHOST_STATEMENT_TIMEOUT_SECS cuts off a statement that waits too long (here on a lock): the
/// table is reported, the others are profiled, the run succeeds.
#[tokio::test]
async fn postgres_statement_timeout_reports_the_table_and_goes_on() {
    let Some((db, url)) = pg_db("timeout").await else {
        return;
    };
    let ws = support::Workspace::new();
    db.exec(
        "CREATE TABLE held (id int); INSERT INTO held VALUES (1);
         CREATE TABLE free (id int); INSERT INTO free VALUES (1);",
    )
    .await;
    let crate::TestDb::Pg(pool) = &db else {
        unreachable!()
    };
    let mut locker = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *locker)
        .await
        .unwrap();
    let url2 = url.clone();
    let path = ws.path().to_path_buf();
    let started = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        support::cli(
            &path,
            &["ghost", "--json", "--database", &url2],
            &[("GHOST_STATEMENT_TIMEOUT_SECS", "1")],
        )
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    locker.rollback().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["tables_profiled"], 1);
    let failed = run["errors"].as_array().unwrap();
    assert!(
        failed.iter().any(|e| {
            let e = e.as_str().unwrap();
            e.contains("public.held") && e.contains("timeout")
        }),
        "{failed:?}"
    );
}

/// On SQLite the statement timeout is an interrupt: a table too slow to profile in time is
/// reported, the others are profiled.
#[tokio::test]
async fn sqlite_statement_timeout_interrupts_a_slow_table() {
    let ws = support::Workspace::new();
    let (db, url) = sqlite_db(ws.path(), "slow").await;
    db.exec(
        "CREATE TABLE big (a INTEGER, b TEXT, c TEXT);
         WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 2000000)
         INSERT INTO big SELECT x, hex(randomblob(16)), hex(randomblob(16)) FROM n;
         CREATE TABLE small (a INTEGER); INSERT INTO small VALUES (1);",
    )
    .await;
    let out = support::cli(
        ws.path(),
        &["ghost", "--json", "--database", &url],
        &[("GHOST_STATEMENT_TIMEOUT_SECS", "1")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["tables_profiled"], 1, "{}", run["errors"]);
    let errors = run["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| {
            let e = e.as_str().unwrap();
            e.contains("`big`") && e.contains("statement timeout")
        }),
        "{errors:?}"
    );
}
