//! The `sql` tool through the built binary over stdio, on SQLite here and on a real PostgreSQL
//! in `sql_tool/postgres.rs`: write and side-effect attempts are refused and leave the data
//! unchanged, types map faithfully, rows stop at max_rows, slow queries time out, every call is
//! audited, and configuration mistakes get messages that say what to fix.

#[path = "sql_tool/pg_types.rs"]
mod pg_types;
#[path = "sql_tool/postgres.rs"]
mod postgres;
mod support;

use std::time::{Duration, Instant};

use rmcp::RoleClient;
use rmcp::model::CallToolResult;
use rmcp::service::RunningService;
use serde_json::{Value, json};
use support::shop::sqlite_script;
use support::{Workspace, audit_entries, call, spawn_stdio_env, text_of};

pub type Client = RunningService<RoleClient, ()>;

/// A name no other test (or run) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// Starts the server with `env` (plus an empty DATABASE_URL unless `env` sets one).
pub async fn start(ws: &Workspace, env: &[(&str, &str)]) -> Client {
    let mut all: Vec<(&str, &str)> = env.to_vec();
    if !env.iter().any(|(k, _)| *k == "DATABASE_URL") {
        all.push(("DATABASE_URL", ""));
    }
    spawn_stdio_env(ws.path(), &all)
        .await
        .expect("start pi-mcp")
}

pub async fn sql(client: &Client, args: Value) -> CallToolResult {
    call(client, "sql", args).await
}

/// Asserts the call succeeded and returns its structured result.
pub fn ok(r: &CallToolResult) -> Value {
    assert_ne!(r.is_error, Some(true), "sql failed: {}", text_of(r));
    let structured = r.structured_content.clone().expect("structured content");
    support::schema::assert_matches_output_schema("sql", &structured);
    structured
}

/// Asserts the call failed; returns its message.
pub fn refused(r: &CallToolResult, what: &str) -> String {
    assert_eq!(
        r.is_error,
        Some(true),
        "{what} was not refused: {}",
        text_of(r)
    );
    text_of(r)
}

async fn sqlite_fixture(ws: &Workspace) -> (std::path::PathBuf, String) {
    let path = ws.path().join("app.db");
    let url = format!("sqlite://{}", path.display());
    sqlite_script(
        &url,
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, \
           active BOOLEAN, avatar BLOB, joined TEXT);
         INSERT INTO users VALUES (1, 'ada', 9.5, 1, x'DEADBEEF', '2024-02-29T13:45:06Z'),
           (2, 'bob', NULL, 0, NULL, NULL), (3, 'cy', -1.25, 1, x'', '2023-01-01');
         CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT);
         WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1500)
           INSERT INTO events SELECT x, 'k' || (x % 3) FROM n;",
    )
    .await;
    (path, url)
}

/// Write and side-effect attempts on SQLite: each must be refused.
const SQLITE_ATTEMPTS: &[&str] = &[
    "DELETE FROM users",
    "UPDATE users SET name = 'x'",
    "INSERT INTO users (id, name) VALUES (9, 'mallory')",
    "INSERT OR REPLACE INTO users (id, name) VALUES (1, 'mallory')",
    "REPLACE INTO users (id, name) VALUES (1, 'mallory')",
    "INSERT INTO users (id, name) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = 'x'",
    "DROP TABLE users",
    "DROP TABLE IF EXISTS events",
    "CREATE TABLE evil (a)",
    "CREATE TEMP TABLE evil (a)",
    "CREATE INDEX evil_idx ON users (name)",
    "CREATE VIEW evil_view AS SELECT 1",
    "CREATE TRIGGER evil AFTER INSERT ON users BEGIN DELETE FROM users; END",
    "ALTER TABLE users ADD COLUMN evil INTEGER",
    "ALTER TABLE users RENAME TO people",
    "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d",
    "SELECT 1; DELETE FROM users",
    "SELECT * FROM users; UPDATE users SET name = 'x'",
    "ATTACH DATABASE '/tmp/pi-mcp-sql-attach.db' AS evil",
    "DETACH DATABASE main",
    "VACUUM",
    "VACUUM INTO '/tmp/pi-mcp-sql-vacuum.db'",
    "PRAGMA query_only = 0",
    "PRAGMA query_only(0)",
    "PRAGMA journal_mode = WAL",
    "PRAGMA user_version = 7",
    "PRAGMA writable_schema = 1",
    "PRAGMA journal_mode(WAL)",
    "PRAGMA wal_checkpoint(TRUNCATE)",
    "PRAGMA wal_checkpoint",
    "PRAGMA optimize",
    "PRAGMA table_info(users); DELETE FROM users",
    "SELECT load_extension('/tmp/evil.so')",
    "SELECT writefile('/tmp/pi-mcp-sql-writefile', 'x')",
    "SELECT readfile('/etc/passwd')",
    "BEGIN",
    "COMMIT",
    "SAVEPOINT s1",
    "REINDEX",
    "ANALYZE",
    "DELETE FROM users WHERE id IN (SELECT id FROM users)",
];

fn file_bytes(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).expect("read database file")
}

#[tokio::test]
async fn sqlite_write_attempts_are_refused_and_change_nothing() {
    let ws = Workspace::new();
    let (path, url) = sqlite_fixture(&ws).await;
    let before = file_bytes(&path);
    let client = start(&ws, &[("DATABASE_URL", &url)]).await;
    assert!(SQLITE_ATTEMPTS.len() >= 30);
    for attempt in SQLITE_ATTEMPTS {
        let r = sql(&client, json!({ "query": attempt })).await;
        let msg = refused(&r, attempt);
        assert!(
            msg.contains("read-only") || msg.contains("one statement"),
            "{attempt}: {msg}"
        );
        assert!(
            file_bytes(&path) == before,
            "{attempt} changed the database file"
        );
    }
    for leftover in [
        "/tmp/pi-mcp-sql-attach.db",
        "/tmp/pi-mcp-sql-vacuum.db",
        "/tmp/pi-mcp-sql-writefile",
    ] {
        assert!(
            !std::path::Path::new(leftover).exists(),
            "{leftover} was created"
        );
    }
    // Re-read through the tool: the rows are all there.
    let v = ok(&sql(
        &client,
        json!({ "query": "SELECT count(*) AS n FROM users" }),
    )
    .await);
    assert_eq!(v["rows"], json!([[3]]));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn sqlite_types_truncation_and_reading_pragmas() {
    let ws = Workspace::new();
    let (_path, url) = sqlite_fixture(&ws).await;
    let client = start(&ws, &[("DATABASE_URL", &url)]).await;
    let r = sql(
        &client,
        json!({ "query": "SELECT id, name, score, active, avatar, joined FROM users ORDER BY id" }),
    )
    .await;
    let v = ok(&r);
    assert_eq!(
        v["columns"],
        json!(["id", "name", "score", "active", "avatar", "joined"])
    );
    assert_eq!(
        v["rows"],
        json!([
            [1, "ada", 9.5, true, "\\xdeadbeef", "2024-02-29T13:45:06Z"],
            [2, "bob", null, false, null, null],
            [3, "cy", -1.25, true, "\\x", "2023-01-01"]
        ])
    );
    assert_eq!(v["truncated"], json!(false));
    assert!(v["elapsed_ms"].is_u64());
    let text = text_of(&r);
    assert!(text.starts_with("id | name"), "{text}");
    assert!(
        text.contains("NULL") && text.contains("3 rows in"),
        "{text}"
    );

    let v = ok(&sql(
        &client,
        json!({ "query": "SELECT id FROM events ORDER BY id", "max_rows": 10 }),
    )
    .await);
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(10));
    assert_eq!(v["truncated"], json!(true));
    let v = ok(&sql(&client, json!({ "query": "SELECT id FROM events" })).await);
    assert_eq!(
        v["rows"].as_array().map(Vec::len),
        Some(200),
        "default max_rows"
    );
    let r = sql(
        &client,
        json!({ "query": "SELECT id FROM events", "max_rows": 5000 }),
    )
    .await;
    let v = ok(&r);
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(1000), "policy cap");
    assert!(text_of(&r).contains("lowered to the policy's cap 1000"));

    let v = ok(&sql(&client, json!({ "query": "PRAGMA table_info('users')" })).await);
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(6));
    let v = ok(&sql(&client, json!({ "query": "PRAGMA query_only" })).await);
    assert_eq!(
        v["rows"],
        json!([[1]]),
        "the connection itself is query-only"
    );
    client.cancel().await.unwrap();
}

/// The schema pragmas an operator reaches for, in the forms the SQL parser cannot read (a bare
/// identifier argument, a schema prefix): each passes and reports.
const SQLITE_SCHEMA_PRAGMAS: &[(&str, usize)] = &[
    ("PRAGMA table_info(users)", 6),
    ("PRAGMA main.table_xinfo(users)", 6),
    ("PRAGMA index_list(events)", 1),
    ("PRAGMA index_info(events_kind)", 1),
    ("PRAGMA index_xinfo([events_kind])", 2),
    ("PRAGMA foreign_key_list(events)", 0),
    ("PRAGMA table_list(users)", 1),
    ("PRAGMA database_list", 1),
    ("pragma TABLE_INFO(\"users\");", 6),
];

#[tokio::test]
async fn sqlite_schema_pragmas_pass() {
    let ws = Workspace::new();
    let (path, url) = sqlite_fixture(&ws).await;
    sqlite_script(&url, "CREATE INDEX events_kind ON events (kind)").await;
    let before = file_bytes(&path);
    let client = start(&ws, &[("DATABASE_URL", &url)]).await;
    for (pragma, rows) in SQLITE_SCHEMA_PRAGMAS {
        let v = ok(&sql(&client, json!({ "query": pragma })).await);
        assert_eq!(
            v["rows"].as_array().map(Vec::len),
            Some(*rows),
            "{pragma}: {v}"
        );
    }
    let v = ok(&sql(&client, json!({ "query": "PRAGMA table_info(users)" })).await);
    assert_eq!(v["columns"][1], json!("name"));
    assert_eq!(v["rows"][1][1], json!("name"));
    // Lists that depend on the SQLite build: they pass and are not empty.
    for pragma in [
        "PRAGMA collation_list",
        "PRAGMA function_list",
        "PRAGMA pragma_list",
        "PRAGMA compile_options",
        "PRAGMA integrity_check",
    ] {
        let v = ok(&sql(&client, json!({ "query": pragma })).await);
        assert!(
            v["rows"].as_array().is_some_and(|r| !r.is_empty()),
            "{pragma}: {v}"
        );
    }
    assert!(file_bytes(&path) == before, "a pragma changed the file");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn sqlite_slow_recursive_query_times_out() {
    let ws = Workspace::new();
    let (_path, url) = sqlite_fixture(&ws).await;
    let client = start(&ws, &[("DATABASE_URL", &url)]).await;
    let started = Instant::now();
    let r = sql(
        &client,
        json!({
            "query": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
            "timeout_secs": 1
        }),
    )
    .await;
    let msg = refused(&r, "endless recursive CTE");
    assert!(msg.contains("timed out after 1 s"), "{msg}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // The server is still usable afterwards.
    ok(&sql(&client, json!({ "query": "SELECT 1" })).await);
    client.cancel().await.unwrap();
}

/// The same statement again and again (a cached connection and a remembered judgement):
/// the same rows every time, the columns of an empty answer, a write still refused after a
/// read of the same table, and a truncated read does not spoil the next one.
#[tokio::test]
async fn repeated_queries_answer_the_same_and_stay_judged() {
    let ws = Workspace::new();
    let (_path, url) = sqlite_fixture(&ws).await;
    let client = start(&ws, &[("DATABASE_URL", &url)]).await;
    let q = json!({ "query": "SELECT id, name FROM users WHERE id <= 2 ORDER BY id" });
    let first = ok(&sql(&client, q.clone()).await);
    for _ in 0..3 {
        assert_eq!(ok(&sql(&client, q.clone()).await)["rows"], first["rows"]);
    }
    assert_eq!(first["rows"], json!([[1, "ada"], [2, "bob"]]));
    let empty = ok(&sql(
        &client,
        json!({ "query": "SELECT id, name FROM users WHERE id < 0" }),
    )
    .await);
    assert_eq!(empty["columns"], json!(["id", "name"]));
    assert_eq!(empty["column_types"], json!(["integer", "text"]));
    assert_eq!(empty["rows"], json!([]));
    for _ in 0..2 {
        refused(
            &sql(&client, json!({ "query": "DELETE FROM users" })).await,
            "DELETE",
        );
    }
    let cut = ok(&sql(
        &client,
        json!({ "query": "SELECT id FROM events", "max_rows": 5 }),
    )
    .await);
    assert_eq!(cut["truncated"], json!(true));
    assert_eq!(ok(&sql(&client, q).await)["rows"], first["rows"]);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn sql_calls_are_audited_with_their_decision() {
    let ws = Workspace::new();
    let (_path, url) = sqlite_fixture(&ws).await;
    let client = start(&ws, &[("DATABASE_URL", &url)]).await;
    ok(&sql(&client, json!({ "query": "SELECT name FROM users" })).await);
    refused(
        &sql(&client, json!({ "query": "DROP TABLE users" })).await,
        "drop",
    );
    refused(
        &sql(&client, json!({ "query": "SELECT load_extension('x')" })).await,
        "ext",
    );
    client.cancel().await.unwrap();
    let entries = audit_entries(ws.path(), &[]);
    let sql_entries: Vec<&Value> = entries.iter().filter(|e| e["tool"] == "sql").collect();
    assert_eq!(sql_entries.len(), 3, "{entries:?}");
    let decisions: Vec<&str> = sql_entries
        .iter()
        .filter_map(|e| e["decision"].as_str())
        .collect();
    assert_eq!(decisions, ["allow", "deny", "deny"], "{sql_entries:?}");
    let rules: Vec<&str> = sql_entries
        .iter()
        .filter_map(|e| e["reasons"][0]["rule"].as_str())
        .collect();
    assert_eq!(rules, ["sql-read-only", "sql-read-only", "sql-function"]);
    assert_eq!(
        sql_entries[0]["arguments"]["query"],
        "SELECT name FROM users"
    );
}

#[tokio::test]
async fn configuration_mistakes_say_what_to_fix() {
    let ws = Workspace::new();
    let (_path, url) = sqlite_fixture(&ws).await;
    let policy = ws.write(
        "policy.json",
        json!({
            "sql": {
                "databases": {
                    "analytics": { "url_env": "ANALYTICS_URL" },
                    "local": { "url": url }
                },
                "max_rows": 50,
                "default_max_rows": 20,
                "timeout_secs": 5
            }
        })
        .to_string(),
    );
    let policy = policy.display().to_string();
    let client = start(&ws, &[("PI_MCP_POLICY", &policy)]).await;

    let msg = refused(
        &sql(&client, json!({ "query": "SELECT 1" })).await,
        "no DATABASE_URL",
    );
    assert!(msg.contains("set DATABASE_URL"), "{msg}");
    let msg = refused(
        &sql(&client, json!({ "query": "SELECT 1", "database": "nope" })).await,
        "unknown database",
    );
    assert!(
        msg.contains("unknown database `nope`") && msg.contains("analytics, local"),
        "{msg}"
    );
    let msg = refused(
        &sql(
            &client,
            json!({ "query": "SELECT 1", "database": "analytics" }),
        )
        .await,
        "unset url_env",
    );
    assert!(msg.contains("set ANALYTICS_URL"), "{msg}");
    let v = ok(&sql(
        &client,
        json!({ "query": "SELECT id FROM events", "database": "local", "max_rows": 500 }),
    )
    .await);
    assert_eq!(
        v["rows"].as_array().map(Vec::len),
        Some(50),
        "this policy's cap"
    );
    assert_eq!(v["database"], "local");
    let msg = refused(
        &sql(
            &client,
            json!({ "query": "SELECT 1", "max_rows": 0, "database": "local" }),
        )
        .await,
        "max_rows 0",
    );
    assert!(msg.contains("max_rows must be at least 1"), "{msg}");
    let msg = refused(
        &sql(&client, json!({ "quer": "SELECT 1" })).await,
        "misspelt argument",
    );
    assert!(msg.contains("quer"), "{msg}");
    client.cancel().await.unwrap();

    let missing = format!("sqlite://{}", ws.path().join("missing.db").display());
    let client = start(&ws, &[("DATABASE_URL", &missing)]).await;
    let msg = refused(
        &sql(&client, json!({ "query": "SELECT 1" })).await,
        "missing file",
    );
    assert!(msg.contains("check that the file exists"), "{msg}");
    assert!(
        !ws.path().join("missing.db").exists(),
        "the tool never creates a database"
    );
    // Once the file is there, the next call in the same session reaches it: a failure to open
    // is not remembered for the tool (its connections are cached, its failures are not).
    sqlite_script(
        &missing,
        "CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (7)",
    )
    .await;
    let r = ok(&sql(&client, json!({ "query": "SELECT a FROM t" })).await);
    assert_eq!(r["rows"], json!([[7]]));
    client.cancel().await.unwrap();

    let client = start(&ws, &[("DATABASE_URL", "mysql://localhost/x")]).await;
    let msg = refused(&sql(&client, json!({ "query": "SELECT 1" })).await, "mysql");
    assert!(msg.contains("unsupported URL"), "{msg}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_tool_is_listed_as_read_only_unless_a_database_allows_writes() {
    let ws = Workspace::new();
    let client = start(&ws, &[]).await;
    let tools = client.list_all_tools().await.unwrap();
    let tool = tools
        .iter()
        .find(|t| t.name == "sql")
        .expect("sql tool listed");
    let ann = tool.annotations.clone().expect("annotations");
    assert_eq!(ann.read_only_hint, Some(true));
    let schema = serde_json::to_value(&*tool.input_schema).unwrap();
    assert!(schema["properties"]["query"].is_object(), "{schema}");
    client.cancel().await.unwrap();

    let policy = ws.write(
        "policy.json",
        json!({"sql": {"databases": {"scratch": {"url": "sqlite://scratch.db", "allow_writes": true}}}})
            .to_string(),
    );
    let policy = policy.display().to_string();
    let client = start(&ws, &[("PI_MCP_POLICY", &policy)]).await;
    let tools = client.list_all_tools().await.unwrap();
    let tool = tools
        .iter()
        .find(|t| t.name == "sql")
        .expect("sql tool listed");
    assert_eq!(
        tool.annotations.clone().and_then(|a| a.read_only_hint),
        Some(false)
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_writable_database_takes_one_write_but_still_no_utilities() {
    let ws = Workspace::new();
    let (_path, url) = sqlite_fixture(&ws).await;
    let policy = ws.write(
        "policy.json",
        json!({"sql": {"databases": {"scratch": {"url": url, "allow_writes": true}}}}).to_string(),
    );
    let policy = policy.display().to_string();
    let client = start(&ws, &[("PI_MCP_POLICY", &policy)]).await;
    let write =
        json!({ "query": "UPDATE users SET name = 'ada2' WHERE id = 1", "database": "scratch" });
    let v = ok(&sql(&client, write).await);
    assert_eq!(v["rows_affected"], json!(1));
    for attempt in [
        "ATTACH DATABASE '/tmp/pi-mcp-sql-attach-w.db' AS x",
        "VACUUM",
        "SELECT load_extension('x')",
        "DELETE FROM users; DELETE FROM events",
    ] {
        refused(
            &sql(&client, json!({ "query": attempt, "database": "scratch" })).await,
            attempt,
        );
    }
    let v = ok(&sql(
        &client,
        json!({ "query": "SELECT name FROM users ORDER BY id", "database": "scratch" }),
    )
    .await);
    assert_eq!(v["rows"], json!([["ada2"], ["bob"], ["cy"]]));
    client.cancel().await.unwrap();
}
