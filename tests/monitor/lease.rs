//! Crashes and concurrent evaluators: a notice cut off mid-send by a crash is resent (marked
//! `possible_duplicate`, same idempotency key) before the later notices of its rule; the
//! monitor lease keeps a second evaluator on the same store (a `pi-mcp monitor` beside the
//! daemon, a second daemon on a shared PostgreSQL store) from making a transition twice; and a
//! dry run leaves the store exactly as it was.

use std::path::Path;

use serde_json::{Value, json};

use super::support::{self, HookReceiver, Workspace, loopback_notify_policy};
use super::{alive_rule, as_refs, env_for, kinds_for, monitor_json, write_rules};

/// `env` with the state store at `url` (so no test depends on the default location).
fn with_store(mut env: Vec<(String, String)>, url: &str) -> Vec<(String, String)> {
    env.push(("PI_MCP_STATE_URL".into(), url.into()));
    env
}

fn sqlite_store(ws: &Workspace) -> String {
    format!(
        "sqlite://{}",
        ws.path().join("state-under-test.db").display()
    )
}

async fn store_pool(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(url)
        .await
        .expect("open the state store")
}

async fn exec(db: &sqlx::AnyPool, sql: &'static str) {
    sqlx::query(sql).execute(db).await.expect(sql);
}

/// One `pi-mcp <args>` run; returns (success, stderr).
fn run(ws: &Workspace, env: &[(String, String)], args: &[&str]) -> (bool, String) {
    let out = support::cli(ws.path(), args, &as_refs(env));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A test workspace: its receiver and state store (for [`a_failed_firing_notice`]: a
/// dead-man's rule fired and its notice failed, kept in the outbox).
struct Failed {
    ws: Workspace,
    hook: HookReceiver,
    url: String,
    env: Vec<(String, String)>,
}

/// A workspace with a quiet `app.log`, a receiver, and the environment with the state store at
/// `url` (default: a SQLite file in the workspace).
async fn setup(url: Option<&str>) -> Failed {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    let url = url.map_or_else(|| sqlite_store(&ws), str::to_string);
    let env = with_store(
        env_for(&loopback_notify_policy(&ws), &hook.url("/hook")),
        &url,
    );
    ws.write("app.log", "quiet\n");
    Failed { ws, hook, url, env }
}

async fn a_failed_firing_notice() -> Failed {
    let Failed { ws, hook, url, env } = setup(None).await;
    write_rules(&ws, &[alive_rule(json!({}))]);
    hook.fail_with(500);
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(v["delivery"]["deferred"], 1, "{v}");
    Failed { ws, hook, url, env }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_send_is_resent_before_the_later_resolution() {
    let Failed { ws, hook, url, env } = a_failed_firing_notice().await;
    // The process then claimed the firing row and died mid-send (a kill -9 or a panic between
    // the send and its result): the row stays `sending`, freshly claimed.
    let db = store_pool(&url).await;
    exec(
        &db,
        "UPDATE monitor_outbox SET status = 'sending', claimed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    )
    .await;
    db.close().await;
    hook.recover();
    let before = hook.bodies().len();
    // systemd restarts it, and by then the rule has resolved.
    ws.write("app.log", "quiet\nalive\n");
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(v["delivery"]["delivered"], 2, "{v}");
    let sent = &hook.bodies()[before..];
    let kinds: Vec<&str> = sent.iter().filter_map(|b| b["kind"].as_str()).collect();
    assert_eq!(kinds, ["firing", "resolved"], "in order per rule: {sent:?}");
    assert_eq!(sent[0]["possible_duplicate"], true);
    assert!(sent[1].get("possible_duplicate").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lease_blocks_a_second_evaluator_and_a_crash_leftover_is_resent_once() {
    let Failed { ws, hook, url, env } = a_failed_firing_notice().await;
    let key = hook.bodies()[0]["idempotency_key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(key.len(), 32, "{:?}", hook.bodies()[0]);
    assert!(hook.bodies()[0].get("possible_duplicate").is_none());
    hook.recover();
    let before = hook.bodies().len();
    // Another evaluator is at work: it holds the lease and is sending the row right now.
    let db = store_pool(&url).await;
    exec(&db, "UPDATE monitor_outbox SET status = 'sending'").await;
    exec(
        &db,
        "INSERT INTO leases (name, holder, expires_at) VALUES ('monitor', 'other-host:42:beef', '2999-01-01T00:00:00.000Z')",
    )
    .await;
    let (ok, log) = run(&ws, &env, &["monitor", "--rules", "alerts.json"]);
    assert!(!ok, "a monitor run that cannot evaluate fails: {log}");
    assert!(
        log.contains("not evaluated") && log.contains("other-host:42:beef"),
        "{log}"
    );
    let (ok, log) = run(
        &ws,
        &env,
        &["heartbeat", "--once", "--rules", "alerts.json"],
    );
    assert!(ok, "a standby heartbeat is not a failure: {log}");
    assert!(
        log.contains("heartbeat: skipped") && log.contains("holds the monitor lease"),
        "{log}"
    );
    assert_eq!(
        hook.bodies().len(),
        before,
        "a send in flight is not taken over"
    );
    // The holder died: once its lease is gone, its half-sent row is resent, exactly once.
    exec(
        &db,
        "UPDATE leases SET expires_at = '2000-01-01T00:00:00.000Z'",
    )
    .await;
    db.close().await;
    let (ok, log) = run(&ws, &env, &["monitor", "--rules", "alerts.json"]);
    assert!(ok, "{log}");
    assert_eq!(log.matches("cut off mid-send").count(), 1, "{log}");
    let resent = &hook.bodies()[before..];
    assert_eq!(resent.len(), 1, "{resent:?}");
    assert_eq!(resent[0]["idempotency_key"], key.as_str());
    assert_eq!(resent[0]["possible_duplicate"], true);
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(v["delivery"]["delivered"], 0, "{v}");
    assert_eq!(hook.bodies().len(), before + 1);
}

/// Starts `n` `heartbeat --once` runs on one store at the same moment; all must succeed.
async fn concurrent_heartbeats(ws: &Workspace, env: &[(String, String)], n: usize) {
    let mut runs = Vec::new();
    for _ in 0..n {
        let (path, env) = (ws.path().to_path_buf(), env.to_vec());
        runs.push(tokio::task::spawn_blocking(move || {
            let out = support::cli(
                Path::new(&path),
                &["heartbeat", "--once", "--rules", "alerts.json"],
                &as_refs(&env),
            );
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }));
    }
    for r in runs {
        let (ok, log) = r.await.expect("join a heartbeat");
        assert!(ok, "{log}");
    }
}

/// Two `heartbeat --once` at a time on the store at `store_url` (default: SQLite in the
/// workspace), through a firing and a resolution.
async fn two_evaluators_notify_once(store_url: Option<&str>) {
    let Failed { ws, hook, env, .. } = setup(store_url).await;
    write_rules(&ws, &[alive_rule(json!({}))]);
    // The store exists first: two processes creating a SQLite store at the same moment race
    // on its migrations (the store's business, not the lease's).
    let (ok, log) = run(
        &ws,
        &env,
        &["monitor", "--rules", "alerts.json", "--dry-run"],
    );
    assert!(ok, "{log}");
    concurrent_heartbeats(&ws, &env, 2).await;
    assert_eq!(kinds_for(&hook, "app-alive"), ["firing"]);
    ws.write("app.log", "quiet\nalive\n");
    concurrent_heartbeats(&ws, &env, 2).await;
    assert_eq!(kinds_for(&hook, "app-alive"), ["firing", "resolved"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_heartbeats_on_one_sqlite_store_notify_once() {
    two_evaluators_notify_once(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_heartbeats_on_one_postgres_store_notify_once() {
    let Some(base) = support::require_service("PI_MCP_TEST_PG_URL") else {
        return;
    };
    two_evaluators_notify_once(Some(&super::fresh_pg_database(&base, "lease").await)).await;
}

/// Every row of the tables a monitor run may write, as text.
async fn snapshot(url: &str) -> Vec<String> {
    use sqlx::Row;
    let db = store_pool(url).await;
    let mut out = Vec::new();
    for (table, cols) in [
        (
            "monitor_rule_state",
            "rule_id, state, value, since, last_evaluated, recent",
        ),
        ("monitor_log_offsets", "rule_id, path, offset_bytes"),
        ("monitor_log_counts", "rule_id, recent"),
        ("monitor_outbox", "id, status, attempts, last_error"),
        ("audit_log", "id, tool, outcome"),
        ("leases", "name, holder"),
    ] {
        let sql = format!("SELECT {cols} FROM {table} ORDER BY 1");
        for row in sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&db)
            .await
            .expect(table)
        {
            let cells: Vec<String> = (0..row.len())
                .map(|i| {
                    row.try_get::<String, _>(i)
                        .or_else(|_| row.try_get::<i64, _>(i).map(|v| v.to_string()))
                        .or_else(|_| row.try_get::<f64, _>(i).map(|v| v.to_string()))
                        .unwrap_or_else(|_| "NULL".into())
                })
                .collect();
            out.push(format!("{table}: {}", cells.join(" | ")));
        }
    }
    db.close().await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing_in_the_store() {
    let Failed { ws, hook, url, env } = setup(None).await;
    let pending =
        alive_rule(json!({"id": "two-beats", "datapoints_to_alarm": 2, "evaluation_periods": 2}));
    write_rules(&ws, &[alive_rule(json!({})), pending]);
    hook.fail_with(500);
    // State, offsets, match counts, a queued notice and audit rows to keep.
    let v: Value = monitor_json(&ws, &env, &[]);
    assert_eq!(v["delivery"]["deferred"], 1, "{v}");
    let before = snapshot(&url).await;
    assert!(
        before.iter().any(|r| r.starts_with("monitor_log_offsets")),
        "{before:?}"
    );
    assert!(
        before.iter().any(|r| r.starts_with("audit_log")),
        "{before:?}"
    );
    // New lines, a recovered receiver: a real run would move offsets, go firing and deliver.
    ws.write("app.log", "quiet\nstill quiet\n");
    hook.recover();
    let sent = hook.bodies().len();
    let (ok, log) = run(
        &ws,
        &env,
        &["monitor", "--rules", "alerts.json", "--dry-run"],
    );
    assert!(ok, "{log}");
    assert_eq!(
        snapshot(&url).await,
        before,
        "the dry run wrote to the store"
    );
    assert_eq!(hook.bodies().len(), sent, "the dry run sent nothing");
}
