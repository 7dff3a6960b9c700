//! `sql` calls as tasks: a statement timeout above the policy's `task_after_secs` makes the call
//! a task whose rows come inlined in `tasks/get`; cancelling a PostgreSQL task cancels its
//! query on the server (`pg_cancel_backend`), well before its statement timeout.

use std::time::Duration;

use rmcp::model::CancelTaskParams;
use serde_json::json;
use sqlx::{Connection, PgConnection};

use super::support::{self, Workspace, require_service};
use super::{PATIENCE, params, poll_until, serve, start, task_steps, terminal};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sql_call_above_the_threshold_is_a_task_with_its_rows_inlined() {
    let ws = Workspace::new();
    let url = format!("sqlite://{}?mode=rwc", ws.path().join("t.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1), (2), (3);")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let policy = json!({
        "task_after_secs": 5,
        "sql": { "timeout_secs": 60, "databases": { "t": { "url": url } } }
    });
    let client = serve(&ws, policy).await;
    let query = "SELECT sum(n) AS total FROM t";
    // At or under the threshold: inline, as ever.
    let quick = client
        .call_tool_once(params(
            "sql",
            json!({ "database": "t", "query": query, "timeout_secs": 5 }),
        ))
        .await
        .unwrap();
    assert!(
        matches!(quick, rmcp::model::CallToolResponse::Complete(_)),
        "{quick:?}"
    );
    let created = start(
        &client,
        params("sql", json!({ "database": "t", "query": query })),
    )
    .await;
    let id = created.task.task_id;
    let done = poll_until(&client, &id, terminal).await;
    assert_eq!(done["status"], "completed", "{done}");
    let rows = &done["result"]["structuredContent"];
    support::schema::assert_matches_output_schema("sql", rows);
    assert_eq!(rows["rows"][0][0], 6, "{done}");
    client.cancel().await.unwrap();
    let steps = task_steps(ws.path(), &id, 2).await;
    assert!(
        steps[0]["outcome"]
            .as_str()
            .unwrap()
            .contains("statement timeout (60 s)"),
        "{steps:?}"
    );
}

/// Active backends (other than the asking one) running a statement that contains `marker`.
async fn running(admin: &mut PgConnection, marker: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%' || $1 || '%'",
    )
    .bind(marker)
    .fetch_one(admin)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_postgres_task_cancels_its_query_on_the_server() {
    let Some(base) = require_service("PI_MCP_TEST_PG_URL") else {
        return;
    };
    let ws = Workspace::new();
    let policy = json!({ "sql": { "timeout_secs": 600, "databases": { "pg": { "url": base } } } });
    let client = serve(&ws, policy).await;
    let marker = format!("tasks_cancel_{}", std::process::id());
    let query = format!("SELECT pg_sleep(590) AS {marker}");
    let created = start(
        &client,
        params(
            "sql",
            json!({ "database": "pg", "query": query, "timeout_secs": 600 }),
        ),
    )
    .await;
    let id = created.task.task_id;
    let mut admin = PgConnection::connect(&base).await.unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while running(&mut admin, &marker).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the query never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .cancel_task(CancelTaskParams::new(id.clone()))
        .await
        .expect("tasks/cancel");
    let done = poll_until(&client, &id, terminal).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    // Its statement timeout is 600 s; the server stops the query long before that.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while running(&mut admin, &marker).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cancelled task's query still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.cancel().await.unwrap();
}
