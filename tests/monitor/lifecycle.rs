//! The alert lifecycle on local sources (log files, SQLite, PostgreSQL) with notices to an
//! axum webhook receiver and the real aiosmtpd: pending, firing, resolved, cooldown, outbox,
//! 429 handling, validation, MCP resources.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use super::support::{
    self, HookReceiver, Workspace, audit_entries, cli, cli_ok, loopback_notify_policy,
};
use super::{alive_rule, as_refs, env_for, kinds, monitor_json, report_of, state_of, write_rules};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_firing_resolved_once_each_with_dry_run_changing_nothing() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    let env = env_for(&loopback_notify_policy(&ws), &hook.url("/hook"));
    ws.write("app.log", "starting\n");
    write_rules(
        &ws,
        &[alive_rule(
            json!({"datapoints_to_alarm": 2, "evaluation_periods": 2}),
        )],
    );
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(state_of(&v, "app-alive"), "pending");
    // A dry run shows what the next heartbeat would do, and does none of it.
    let table = cli_ok(
        ws.path(),
        &["monitor", "--rules", "alerts.json", "--dry-run"],
        &as_refs(&env),
    );
    assert!(table.contains("WOULD NOTIFY"), "{table}");
    assert!(table.contains("firing -> webhook"), "{table}");
    assert!(hook.bodies().is_empty());
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(state_of(&v, "app-alive"), "firing", "{v}");
    assert_eq!(v["delivery"]["delivered"], 1, "{v}");
    // Still firing on the next two heartbeats: no second notice.
    for _ in 0..2 {
        let v = monitor_json(&ws, &env, &[]);
        assert_eq!(state_of(&v, "app-alive"), "firing");
    }
    ws.write("app.log", "starting\nalive\n");
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(state_of(&v, "app-alive"), "ok");
    assert_eq!(kinds(&hook), ["firing", "resolved"]);
    let first = &hook.bodies()[0];
    assert_eq!(first["rule_id"], "app-alive");
    assert_eq!(first["subject"], "[FIRING] App heartbeat lines");
    assert!(first["text"].as_str().unwrap().contains("runbooks.example"));
    // Every evaluation and delivery is audited (the dry run leaves no trace).
    let audit = audit_entries(ws.path(), &[]);
    let evals = audit
        .iter()
        .filter(|e| e["tool"] == "monitor.evaluate")
        .count();
    let sent = audit
        .iter()
        .filter(|e| e["tool"] == "monitor.notify")
        .count();
    assert_eq!((evals, sent), (5, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooldown_and_resolution_survive_daemon_restarts() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    let env = env_for(&loopback_notify_policy(&ws), &hook.url("/hook"));
    ws.write("app.log", "nothing yet\n");
    write_rules(&ws, &[alive_rule(json!({}))]);
    // Three separate daemon processes, one heartbeat each: one notice.
    for _ in 0..3 {
        cli_ok(
            ws.path(),
            &["heartbeat", "--once", "--rules", "alerts.json"],
            &as_refs(&env),
        );
    }
    assert_eq!(kinds(&hook), ["firing"]);
    ws.write("app.log", "nothing yet\nalive\n");
    let out = cli(
        ws.path(),
        &["heartbeat", "--once", "--rules", "alerts.json"],
        &as_refs(&env),
    );
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(log.matches("heartbeat: 1 rules").count(), 1, "{log}");
    assert_eq!(kinds(&hook), ["firing", "resolved"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_delivers_in_order_exactly_once_after_the_receiver_recovers() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    let env = env_for(&loopback_notify_policy(&ws), &hook.url("/hook"));
    ws.write("app.log", "quiet\n");
    write_rules(&ws, &[alive_rule(json!({"cooldown_minutes": 0}))]);
    hook.fail_with(500);
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(state_of(&v, "app-alive"), "firing");
    assert_eq!(v["delivery"]["deferred"], 1, "{v}");
    let tries = hook.bodies().len();
    assert!(tries > 1, "notify retried the 500s ({tries} tries)");
    // The alert resolves while the receiver is still down: both notices wait, in order.
    ws.write("app.log", "quiet\nalive\n");
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(state_of(&v, "app-alive"), "ok");
    assert_eq!(v["delivery"]["deferred"], 2, "{v}");
    hook.recover();
    let before = hook.bodies().len();
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(v["delivery"]["delivered"], 2, "{v}");
    let delivered: Vec<String> = kinds(&hook)[before..].to_vec();
    assert_eq!(delivered, ["firing", "resolved"]);
    // Nothing is sent twice.
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(v["delivery"]["delivered"], 0);
    assert_eq!(hook.bodies().len(), before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_retry_after_is_honoured_within_the_heartbeat() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    let env = env_for(&loopback_notify_policy(&ws), &hook.url("/hook"));
    ws.write("app.log", "quiet\n");
    write_rules(&ws, &[alive_rule(json!({}))]);
    hook.script(&[(429, Some("1"))]);
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(v["delivery"]["delivered"], 1, "{v}");
    let t = hook.times();
    assert_eq!(t.len(), 2);
    assert!(
        t[1] - t[0] >= Duration::from_millis(900),
        "{:?}",
        t[1] - t[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_data_and_bad_rules_do_not_stop_the_others() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    let env = env_for(&loopback_notify_policy(&ws), &hook.url("/hook"));
    ws.write("logs/a.log", "ERROR one\nERROR two\n");
    let errors = json!({
        "id": "errors", "type": "log_keyword",
        "params": {"path": "logs/*.log", "pattern": "^ERROR\\b"},
        "condition": {"operator": "gte", "threshold": 2}, "channels": ["webhook"]
    });
    let missing = json!({
        "id": "missing", "type": "log_keyword",
        "params": {"path": "nowhere/*.log", "keyword": "x"},
        "condition": {"operator": "gt", "threshold": 0}, "channels": ["webhook"]
    });
    let bad = json!({
        "id": "bad", "type": "log_keyword",
        "params": {"path": "x.log", "pattern": "("},
        "condition": {"operator": "gt", "threshold": 0}
    });
    write_rules(&ws, &[errors, missing, bad]);
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(state_of(&v, "errors"), "firing");
    assert_eq!(state_of(&v, "missing"), "no_data");
    assert_eq!(v["rules"].as_array().unwrap().len(), 2);
    assert_eq!(v["problems"][0]["rule"], "bad");
    assert_eq!(v["problems"][0]["field"], "params.pattern");
    assert_eq!(kinds(&hook), ["firing"]);
}

#[test]
fn validate_and_schema() {
    let ws = Workspace::new();
    ws.write(
        "alerts.json",
        "{\"rules\": [\n  {\"id\": \"cpu\", \"type\": \"metric\",\n   \"params\": {\"namespace\": \"AWS/EC2\", \"metric_name\": \"CPUUtilization\", \"period\": 45},\n   \"condition\": {\"operator\": \"gt\", \"threshold\": 80}}\n]}",
    );
    let out = cli(
        ws.path(),
        &["monitor", "validate", "--rules", "alerts.json"],
        &[],
    );
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let file = ws.path().join("alerts.json").display().to_string();
    let line3 = ws.read("alerts.json").lines().nth(2).unwrap().to_string();
    let column = line3.find("\"period\"").unwrap() + 1;
    assert!(
        text.contains(&format!(
            "{file}:3:{column}: rule `cpu`: field `params.period`"
        )),
        "{text}"
    );
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/alerts.example.json");
    let out = cli_ok(
        ws.path(),
        &["monitor", "validate", "--rules", example.to_str().unwrap()],
        &[],
    );
    assert!(out.contains("0 with problems"), "{out}");
    let schema: Value =
        serde_json::from_str(&cli_ok(ws.path(), &["monitor", "schema"], &[])).unwrap();
    assert!(schema["$defs"]["RuleSpec"]["allOf"].is_array());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_notice_arrives_on_the_smtp_sink() {
    let (Some(addr), Some(maildir)) = (
        support::require_service("PI_MCP_TEST_SMTP_ADDR"),
        support::require_service("PI_MCP_TEST_SMTP_MAILDIR"),
    ) else {
        return;
    };
    let ws = Workspace::new();
    let mut env = env_for(&loopback_notify_policy(&ws), "");
    let marker = format!("mail-{}", std::process::id());
    env.push(("SMTP_URL".into(), format!("smtp://{addr}?tls=none")));
    env.push(("ALERT_EMAIL_FROM".into(), "pi-mcp@example.test".into()));
    env.push(("ALERT_EMAIL_TO".into(), "oncall@example.test".into()));
    ws.write("app.log", "quiet\n");
    write_rules(
        &ws,
        &[alive_rule(json!({"channels": ["email"], "name": marker}))],
    );
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(v["delivery"]["delivered"], 1, "{v}");
    let dir = PathBuf::from(maildir).join("new");
    let found = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .find(|m| m.contains(&marker));
    let mail = found.expect("the alert email is in the maildir");
    assert!(
        mail.contains(&format!("Subject: [WARNING] [FIRING] {marker}")),
        "{mail}"
    );
    assert!(mail.contains("app-alive"), "{mail}");
    // The notice's idempotency key is the Message-ID, so a resend after a crash is recognisable.
    let id_line = mail
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
        .unwrap_or_default();
    assert!(
        id_line.ends_with("@pi-mcp>") && id_line.len() > 40,
        "{mail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_and_states_are_mcp_resources_and_feed_the_sre_prompt() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    let env = env_for(&loopback_notify_policy(&ws), &hook.url("/hook"));
    ws.write("app.log", "quiet\n");
    ws.write(
        "configs/alerts.json",
        json!({"rules": [alive_rule(json!({}))]}).to_string(),
    );
    // `env` sets PI_MCP_ALERTS to "": an empty setting is no setting, so the default
    // configs/alerts.json applies (clap used to refuse it as a missing value).
    let env_default = env.clone();
    let out = cli_ok(ws.path(), &["monitor"], &as_refs(&env_default));
    assert!(out.contains("app-alive") && out.contains("firing"), "{out}");
    let client = support::spawn_stdio_env(ws.path(), &as_refs(&env_default))
        .await
        .unwrap();
    let resources = client.list_all_resources().await.unwrap();
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert!(uris.contains(&"pi-mcp://alerts"), "{uris:?}");
    assert!(uris.contains(&"pi-mcp://alerts/app-alive"), "{uris:?}");
    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "pi-mcp://alerts/app-alive",
        ))
        .await
        .unwrap();
    let text = serde_json::to_string(&read).unwrap();
    assert!(text.contains("\\\"state\\\": \\\"firing\\\""), "{text}");
    let missing = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "pi-mcp://alerts/nope",
        ))
        .await;
    assert!(missing.is_err());
    let mut params = rmcp::model::GetPromptRequestParams::new("sre");
    let mut args = serde_json::Map::new();
    args.insert("rule".into(), "app-alive".into());
    params.arguments = Some(args);
    let got = client.get_prompt(params).await.unwrap();
    let text = serde_json::to_string(&got.messages).unwrap();
    assert!(text.contains("Incident: alert rule `app-alive`"), "{text}");
    assert!(text.contains("Current state: firing"), "{text}");
    assert!(text.contains("Recent values"), "{text}");
    assert!(text.contains("runbooks.example"), "{text}");
    client.cancel().await.unwrap();
}

fn orders_rule() -> Value {
    json!({
        "id": "orders-stuck", "type": "db_query",
        "params": {"query": "SELECT count(*) FROM orders WHERE status = 'pending'"},
        "condition": {"operator": "gt", "threshold": 2}, "channels": ["webhook"]
    })
}

/// An `orders` table with three pending orders.
async fn three_pending_orders(pool: &sqlx::AnyPool) {
    sqlx::query("CREATE TABLE orders (id INTEGER, status TEXT)")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO orders VALUES (1, 'pending'), (2, 'pending'), (3, 'pending')")
        .execute(pool)
        .await
        .unwrap();
}

/// A new SQLite database in `dir`: a pool that may write, and the plain URL rules read.
async fn sqlite_shop(dir: &std::path::Path) -> (sqlx::AnyPool, String) {
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}/shop.db?mode=rwc", dir.display());
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    (pool, format!("sqlite://{}/shop.db", dir.display()))
}

/// Fires and resolves a db_query rule against `url`, whose `orders` table `exec` can change.
async fn db_rule_fires_and_resolves(url: &str, pool: sqlx::AnyPool) {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    let mut env = env_for(&loopback_notify_policy(&ws), &hook.url("/hook"));
    env.push(("DATABASE_URL".into(), url.into()));
    write_rules(&ws, &[orders_rule()]);
    three_pending_orders(&pool).await;
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(state_of(&v, "orders-stuck"), "firing", "{v}");
    assert_eq!(v["rules"][0]["value"], 3.0);
    sqlx::query("UPDATE orders SET status = 'done'")
        .execute(&pool)
        .await
        .unwrap();
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(state_of(&v, "orders-stuck"), "ok", "{v}");
    assert_eq!(kinds(&hook), ["firing", "resolved"]);
    // `monitor chart` draws the two values against the threshold, under reports/alerts/.
    let out = cli_ok(
        ws.path(),
        &["monitor", "chart", "orders-stuck", "--rules", "alerts.json"],
        &[],
    );
    let png = PathBuf::from(out.trim());
    assert_eq!(png, ws.path().join("reports/alerts/orders-stuck.png"));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let info = decoder.read_info().expect("a PNG").info().clone();
    assert_eq!(
        (info.width, info.height),
        (pi_mcp::chart::CHART_WIDTH, pi_mcp::chart::CHART_HEIGHT)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_query_rules_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, url) = sqlite_shop(dir.path()).await;
    db_rule_fires_and_resolves(&url, pool).await;
}

/// A warning and a critical rule on one query share one statement run per heartbeat and both
/// get its value; a refused statement shared by two rules is refused for both (the guard
/// judges every statement a heartbeat runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_on_the_same_query_share_one_run_and_one_judgement() {
    let dir = tempfile::tempdir().unwrap();
    let (pool, url) = sqlite_shop(dir.path()).await;
    three_pending_orders(&pool).await;
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    let mut env = env_for(&loopback_notify_policy(&ws), &hook.url("/hook"));
    env.push(("DATABASE_URL".into(), url));
    let pending = "SELECT count(*) FROM orders WHERE status = 'pending'";
    let rule = |id: &str, query: &str, threshold: f64| {
        json!({
            "id": id, "type": "db_query", "params": {"query": query},
            "condition": {"operator": "gt", "threshold": threshold}, "channels": ["webhook"]
        })
    };
    write_rules(
        &ws,
        &[
            rule("orders-warning", pending, 2.0),
            rule("orders-critical", pending, 5.0),
            rule("orders-all", "SELECT count(*) FROM orders", 100.0),
            rule("purge-a", "DELETE FROM orders", 0.0),
            rule("purge-b", "DELETE FROM orders", 0.0),
        ],
    );
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(v["db_statements"], 3, "three distinct statements: {v}");
    for (id, state, value) in [
        ("orders-warning", "firing", 3.0),
        ("orders-critical", "ok", 3.0),
        ("orders-all", "ok", 3.0),
    ] {
        let r = report_of(&v, id);
        assert_eq!(r["state"], state, "{id}: {r}");
        assert_eq!(r["value"], value, "{id}: {r}");
    }
    for id in ["purge-a", "purge-b"] {
        let r = report_of(&v, id);
        assert_eq!(r["state"], "error", "{id}: {r}");
        let problem = r["problem"].as_str().unwrap_or_default();
        assert!(problem.contains("refused"), "{id}: {problem}");
    }
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 3, "the refused DELETE never ran");
    // Each rule still has its own evaluation in the audit log.
    let evaluated = audit_entries(ws.path(), &as_refs(&env))
        .iter()
        .filter(|e| e["tool"] == "monitor.evaluate")
        .count();
    assert_eq!(evaluated, 5);
    assert_eq!(kinds(&hook), ["firing"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_query_rules_on_postgres_and_a_database_down_is_an_error_state() {
    let Some(base) = support::require_service("PI_MCP_TEST_PG_URL") else {
        return;
    };
    let url = super::fresh_pg_database(&base, "monitor").await;
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    db_rule_fires_and_resolves(&url, pool).await;

    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    let mut env = env_for(&loopback_notify_policy(&ws), &hook.url("/hook"));
    env.push((
        "DATABASE_URL".into(),
        "postgres://postgres@127.0.0.1:1/none".into(),
    ));
    write_rules(&ws, &[orders_rule()]);
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(state_of(&v, "orders-stuck"), "error", "{v}");
    assert!(v["rules"][0]["problem"].as_str().is_some());
    assert!(hook.bodies().is_empty());
}
