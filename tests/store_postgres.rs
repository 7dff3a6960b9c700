//! The state store on a real PostgreSQL (started by scripts/test): the server migrates it and
//! writes the audit log there, and `pi-mcp audit` reads it back.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{
    Workspace, audit_entries, call, cli, fresh_pg_database as fresh_database, require_service,
    spawn_stdio_env,
};

#[tokio::test]
async fn audit_log_lives_in_postgres_when_configured() {
    let Some(base) = require_service("PI_MCP_TEST_PG_URL") else {
        return;
    };
    let url = fresh_database(&base).await;
    let ws = Workspace::new();
    ws.write("a.txt", "a\n");
    let client = spawn_stdio_env(ws.path(), &[("PI_MCP_STATE_URL", &url)])
        .await
        .unwrap();
    call(&client, "read", json!({"path": "a.txt"})).await;
    call(&client, "bash", json!({"command": "shred a.txt"})).await;
    client.cancel().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let entries = audit_entries(ws.path(), &[("PI_MCP_STATE_URL", &url)]);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["tool"], "read");
    assert_eq!(entries[1]["decision"], "deny");
    assert!(
        !support::state_db(ws.path()).exists() && !ws.path().join(".pi-mcp/state.db").exists(),
        "no SQLite file when PostgreSQL is configured"
    );
}

#[tokio::test]
async fn an_unreachable_state_store_is_a_clear_error() {
    let ws = Workspace::new();
    let out = cli(
        ws.path(),
        &["audit"],
        &[(
            "PI_MCP_STATE_URL",
            "postgres://nobody:secretpw@127.0.0.1:1/none",
        )],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("state store") && !err.contains("secretpw"),
        "{err}"
    );
}
