//! The state store on a real PostgreSQL (started by scripts/test): the server migrates it and
//! writes the audit log there, and `pi-mcp audit` reads it back.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Connection;
use support::{Workspace, bin, call, require_service};

async fn fresh_database(base: &str) -> String {
    let name = format!(
        "pimcp_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let mut admin = sqlx::PgConnection::connect(base)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').expect("URL with a database name");
    format!("{prefix}/{name}")
}

#[tokio::test]
async fn audit_log_lives_in_postgres_when_configured() {
    let Some(base) = require_service("PI_MCP_TEST_PG_URL") else {
        return;
    };
    let url = fresh_database(&base).await;
    let ws = Workspace::new();
    ws.write("a.txt", "a\n");
    let mut cmd = tokio::process::Command::new(bin());
    cmd.args([
        "--workspace",
        ws.path().to_str().unwrap(),
        "serve",
        "--stdio",
    ])
    .env("PI_MCP_STATE_URL", &url)
    .kill_on_drop(true);
    let client = rmcp::ServiceExt::serve((), rmcp::transport::TokioChildProcess::new(cmd).unwrap())
        .await
        .unwrap();
    call(&client, "read", json!({"path": "a.txt"})).await;
    call(&client, "bash", json!({"command": "shred a.txt"})).await;
    client.cancel().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let out = std::process::Command::new(bin())
        .args([
            "--workspace",
            ws.path().to_str().unwrap(),
            "audit",
            "--json",
        ])
        .env("PI_MCP_STATE_URL", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["tool"], "read");
    assert_eq!(entries[1]["decision"], "deny");
    assert!(
        !ws.path().join(".pi-mcp/state.db").exists(),
        "no SQLite file when PostgreSQL is configured"
    );
}

#[tokio::test]
async fn an_unreachable_state_store_is_a_clear_error() {
    let ws = Workspace::new();
    let out = std::process::Command::new(bin())
        .args(["--workspace", ws.path().to_str().unwrap(), "audit"])
        .env(
            "PI_MCP_STATE_URL",
            "postgres://nobody:secretpw@127.0.0.1:1/none",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("state store") && !err.contains("secretpw"),
        "{err}"
    );
}
