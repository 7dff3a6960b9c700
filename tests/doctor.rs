//! `pi-mcp doctor` through the built binary: a healthy setup exits 0 with `ok` lines for what
//! is configured (and a real test notice with `--send-test`), and each broken piece (an
//! unreachable database, a bad SMTP URL, a missing rules file, a channel that answers 500 to the
//! test notice) gives its `fail` line with the fix below it and exit code 1, never showing a
//! password.

mod support;

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};
use support::{HookReceiver, Workspace};

/// Variables of the developer's shell that would change what doctor sees.
const OUTER: &[&str] = &[
    "PI_MCP_STATE_URL",
    "PI_MCP_POLICY",
    "PI_MCP_PROMPTS",
    "PI_MCP_REPORTS",
    "PI_MCP_OSV_DB",
    "PI_MCP_ALERTS",
    "DATABASE_URL",
    "SLACK_WEBHOOK_URL",
    "SMTP_URL",
    "ALERT_EMAIL_FROM",
    "ALERT_EMAIL_TO",
    "ALERT_WEBHOOK_URL",
    "ALERT_WEBHOOK_SECRET",
    "ALERT_WEBHOOK_HEADERS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
];

/// Runs `pi-mcp --workspace <ws> doctor <args>` with only `env` configured (AWS looks at no
/// profile files and no instance metadata), off the async runtime.
async fn doctor(ws: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(support::bin());
    for var in OUTER {
        cmd.env_remove(var);
    }
    cmd.arg("--workspace")
        .arg(ws)
        .arg("doctor")
        .args(args)
        .current_dir(ws)
        .envs(support::state_env(ws))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", ws.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", ws.join("no-aws-credentials"))
        .env("PI_MCP_NOTIFY_RETRY_BASE_MS", "10");
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::spawn_blocking(move || cmd.output().expect("run pi-mcp doctor"))
        .await
        .expect("doctor finished")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The report line of check `name` (`"  fail  database DATABASE_URL  ..."`), and the line after.
fn line<'a>(report: &'a str, status: &str, name: &str) -> (&'a str, &'a str) {
    let lines: Vec<&str> = report.lines().collect();
    let prefix = format!("  {status:<5} {name} ");
    let at = lines
        .iter()
        .position(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{status} {name}` line in:\n{report}"));
    (lines[at], lines.get(at + 1).copied().unwrap_or(""))
}

/// A workspace with a rules file that uses the webhook and the default database, and that
/// database (SQLite).
fn healthy_workspace() -> (Workspace, String) {
    let ws = Workspace::new();
    let rules = json!({"rules": [
        {"id": "app-alive", "type": "log_keyword",
         "params": {"path": "app.log", "keyword": "alive", "window_minutes": 60},
         "condition": {"operator": "lt", "threshold": 1}, "channels": ["webhook"]},
        {"id": "orders", "type": "db_query", "params": {"query": "SELECT count(*) FROM orders"},
         "condition": {"operator": "gt", "threshold": 100}, "channels": ["webhook"]}
    ]});
    ws.write("configs/alerts.json", rules.to_string());
    let db = ws.path().join("app.db");
    let conn = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
                      c.execute('create table orders(id integer)'); c.commit()",
        ])
        .arg(&db)
        .status()
        .expect("python3 creates the SQLite file");
    assert!(conn.success());
    let url = format!("sqlite://{}", db.display());
    (ws, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_setup_is_all_ok_and_a_test_notice_arrives() {
    let (ws, db_url) = healthy_workspace();
    let hook = HookReceiver::start().await;
    let hook_url = hook.url("/alerts");
    let env = [
        ("DATABASE_URL", db_url.as_str()),
        // http:// and a loopback host: the operator's own, trusted without a policy file.
        ("ALERT_WEBHOOK_URL", hook_url.as_str()),
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIATESTKEY0000WXYZ"),
        ("AWS_SECRET_ACCESS_KEY", "test-secret-never-shown"),
    ];
    let out = doctor(ws.path(), &["--send-test", "webhook"], &env).await;
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    for (status, name) in [
        ("ok", "policy"),
        ("ok", "landlock"),
        ("ok", "bash child"),
        ("ok", "state store"),
        ("ok", "store location"),
        ("ok", "channel webhook"),
        ("ok", "send-test webhook"),
        ("ok", "aws region"),
        ("ok", "aws credentials"),
        ("ok", "database DATABASE_URL"),
        ("ok", "rules file"),
        ("ok", "prompts"),
    ] {
        line(&report, status, name);
    }
    let (rules, _) = line(&report, "ok", "rules file");
    assert!(
        rules.contains("0 metric, 1 log_keyword, 1 db_query"),
        "{rules}"
    );
    let (db, _) = line(&report, "ok", "database DATABASE_URL");
    assert!(db.contains("read-only") && db.contains("orders"), "{db}");
    let (creds, _) = line(&report, "ok", "aws credentials");
    assert!(creds.contains("…WXYZ"), "{creds}");
    assert!(!report.contains("test-secret-never-shown"), "{report}");
    assert!(!report.lines().any(|l| l.starts_with("  fail")), "{report}");
    // The test notice went to the operator's http:// receiver.
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(
        bodies[0]["text"].as_str().unwrap_or("").contains("doctor"),
        "{bodies:?}"
    );
    // The client snippets name this binary and the workspace by absolute path.
    let exe = std::fs::canonicalize(support::bin()).expect("binary path");
    let line_cc = format!(
        "claude mcp add pi-mcp -e RUST_LOG=pi_mcp=info -- {} --workspace {} --state-dir {} \
         serve --stdio",
        exe.display(),
        ws.path().display(),
        support::state_dir(ws.path()).display()
    );
    assert!(report.contains(&line_cc), "{report}");

    // The same as JSON: every check with its status, the snippets, the exit code.
    let out = doctor(ws.path(), &["--json"], &env).await;
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).expect("doctor --json prints JSON");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["summary"]["fail"], 0);
    assert_eq!(
        v["clients"]["claude_desktop"]["mcpServers"]["pi-mcp"]["command"],
        exe.display().to_string()
    );
    let statuses: Vec<&str> = v["sections"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["checks"].as_array().into_iter().flatten())
        .filter_map(|c| c["status"].as_str())
        .collect();
    assert!(statuses.len() > 15 && !statuses.contains(&"fail"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_without_showing_its_password() {
    let (ws, _) = healthy_workspace();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let url = format!("postgres://ops:hunter2-db-password@127.0.0.1:{port}/app");
    let out = doctor(ws.path(), &[], &[("DATABASE_URL", &url)]).await;
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let (fail, fix) = line(&report, "fail", "database DATABASE_URL");
    assert!(
        fail.contains("orders"),
        "names the rule that needs it: {fail}"
    );
    assert!(
        fix.trim_start().starts_with("fix: start the database"),
        "{fix}"
    );
    assert!(!report.contains("hunter2-db-password"), "{report}");
    assert!(
        report.contains("(exit 1: fix the `fail` lines first)"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_smtp_url_fails_on_the_email_channel() {
    let ws = Workspace::new();
    let env = [
        // A password over a connection without TLS to another host: refused.
        (
            "SMTP_URL",
            "smtp://alerts:mail-password-xyz@mail.example.com:25?tls=none",
        ),
        ("ALERT_EMAIL_FROM", "pi@example.com"),
        ("ALERT_EMAIL_TO", "oncall@example.com"),
    ];
    let out = doctor(ws.path(), &[], &env).await;
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let (fail, fix) = line(&report, "fail", "channel email");
    assert!(
        fail.contains("SMTP_URL is not usable") && fail.contains("clear text"),
        "{fail}"
    );
    assert!(fix.contains("fix: correct SMTP_URL"), "{fix}");
    assert!(!report.contains("mail-password-xyz"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_rules_file_fails_when_named_and_warns_by_default() {
    let ws = Workspace::new();
    let out = doctor(ws.path(), &["--rules", "configs/missing.json"], &[]).await;
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let (fail, fix) = line(&report, "fail", "rules file");
    assert!(
        fail.contains("configs/missing.json") && fail.contains("does not exist"),
        "{fail}"
    );
    assert!(fix.contains("PI_MCP_ALERTS"), "{fix}");

    // The default file is optional: a warning that says how to start, exit 0.
    let out = doctor(ws.path(), &[], &[]).await;
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    let (_, fix) = line(&report, "warn", "rules file");
    assert!(
        fix.contains("cp configs/alerts.example.json configs/alerts.json"),
        "{fix}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_answers_500_to_the_test_notice_fails() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    hook.fail_with(500);
    let url = hook.url("/alerts");
    let out = doctor(
        ws.path(),
        &["--send-test", "webhook"],
        &[("ALERT_WEBHOOK_URL", &url)],
    )
    .await;
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    line(&report, "ok", "channel webhook");
    let (fail, fix) = line(&report, "fail", "send-test webhook");
    assert!(
        fail.contains("HTTP 500") && fail.contains("1 attempt"),
        "{fail}"
    );
    assert!(fix.contains("fix:"), "{fix}");
    assert_eq!(hook.bodies().len(), 1, "one attempt, no retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_store_bash_could_write_is_reported_with_its_fix() {
    let ws = Workspace::new();
    let inside = ws.path().join(".state");
    let out = doctor(
        ws.path(),
        &[],
        &[("PI_MCP_STATE_DIR", inside.to_str().expect("UTF-8"))],
    )
    .await;
    let report = stdout(&out);
    // A warning under the default best_effort sandbox, as at start.
    assert_eq!(out.status.code(), Some(0), "{report}");
    let (warn, fix) = line(&report, "warn", "store location");
    assert!(warn.contains("forge approvals"), "{warn}");
    assert!(fix.contains("outside the workspace"), "{fix}");
    assert!(!inside.join("state.db").exists(), "doctor creates no store");
}
