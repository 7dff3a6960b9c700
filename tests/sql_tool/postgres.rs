//! The `sql` tool on a real PostgreSQL (`PI_MCP_TEST_PG_URL`), one fresh database per test.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::{Connection, PgConnection};

use super::support::{Workspace, require_service, text_of};
use super::{ok, refused, sql, start, unique};

/// A fresh database with fixtures; dropped when the value is dropped.
pub struct PgDb {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDb {
    pub async fn create(base: &str) -> PgDb {
        let name = unique("pimcp_sql");
        let mut admin = PgConnection::connect(base)
            .await
            .expect("connect to PI_MCP_TEST_PG_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let url = with_database(base, &name);
        let mut conn = PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "CREATE TYPE mood AS ENUM ('sad', 'happy');
             CREATE TABLE users (id int PRIMARY KEY, name text NOT NULL, score numeric(10,2),
                 m mood, joined timestamptz);
             INSERT INTO users VALUES (1, 'ada', 9.50, 'happy', '2024-02-29 13:45:06+00'),
                 (2, 'bob', NULL, 'sad', NULL);
             CREATE TABLE audit_trail (at timestamptz DEFAULT now());
             CREATE SEQUENCE s;
             CREATE FUNCTION audit_me() RETURNS int LANGUAGE plpgsql VOLATILE AS
                 $$BEGIN INSERT INTO audit_trail DEFAULT VALUES; RETURN 1; END$$;
             CREATE VIEW sneaky AS SELECT audit_me() AS x;
             CREATE PROCEDURE do_things() LANGUAGE sql AS $$DELETE FROM users$$;",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        PgDb {
            admin_url: base.to_string(),
            name,
            url,
        }
    }

    /// Everything a write could change: rows, tables, the sequence, the audit trail.
    async fn snapshot(&self) -> String {
        let mut conn = PgConnection::connect(&self.url).await.unwrap();
        let (rows,): (String,) = sqlx::query_as(
            "SELECT coalesce((SELECT string_agg(u::text, '|' ORDER BY id) FROM users u), '') || ' / ' ||
                    (SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public') || ' / ' ||
                    (SELECT last_value::text || is_called::text FROM s) || ' / ' ||
                    (SELECT count(*)::text FROM audit_trail) || ' / ' ||
                    (SELECT count(*)::text FROM pg_largeobject_metadata)",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        rows
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // Best effort, on a separate thread with its own runtime (Drop cannot await).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut c) = PgConnection::connect(&admin).await {
                        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                            .execute(&mut c)
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

fn with_database(base: &str, name: &str) -> String {
    let (head, query) = base
        .split_once('?')
        .map_or((base, None), |(h, q)| (h, Some(q)));
    let root = head.rsplit_once('/').map_or(head, |(r, _)| r);
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// Write and side-effect attempts on PostgreSQL: each must be refused.
const PG_ATTEMPTS: &[&str] = &[
    "DELETE FROM users",
    "UPDATE users SET name = 'x'",
    "INSERT INTO users (id, name) VALUES (9, 'mallory')",
    "INSERT INTO users (id, name) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = 'x'",
    "DROP TABLE users",
    "TRUNCATE users",
    "CREATE TABLE evil (a int)",
    "ALTER TABLE users ADD COLUMN evil int",
    "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d",
    "WITH u AS (UPDATE users SET name = 'x' RETURNING id) SELECT count(*) FROM u",
    "SELECT * INTO evil FROM users",
    "SELECT * FROM users FOR UPDATE",
    "SELECT * FROM users FOR NO KEY UPDATE",
    "SELECT 1; DELETE FROM users",
    "SELECT pg_terminate_backend(pg_backend_pid())",
    "SELECT pg_cancel_backend(1)",
    "SELECT pg_reload_conf()",
    "COPY users TO PROGRAM 'touch /tmp/pi-mcp-sql-copy-program'",
    "COPY (SELECT 1) TO '/tmp/pi-mcp-sql-copy'",
    "ALTER SYSTEM SET work_mem = '1GB'",
    "VACUUM users",
    "CALL do_things()",
    "DO $$BEGIN DELETE FROM users; END$$",
    "NOTIFY chan",
    "LISTEN chan",
    "SELECT nextval('s')",
    "SELECT setval('s', 100)",
    "SELECT lo_import('/etc/hostname')",
    "SELECT lo_create(0)",
    "SELECT pg_advisory_lock(42)",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT pg_notify('chan', 'x')",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT * FROM pg_ls_dir('.')",
    "SELECT query_to_xml('DELETE FROM users', true, true, '')",
    // Functions that run SQL given as text, and the text itself (issue 4 audit).
    "SELECT * FROM ts_stat('SELECT to_tsvector(audit_me()::text)')",
    "SELECT * FROM ts_stat('SELECT to_tsvector(pg_terminate_backend(pg_backend_pid())::text)')",
    "SELECT * FROM pg_catalog.ts_stat('SELECT to_tsvector(nextval(''s'')::text)')",
    "SELECT ts_rewrite('a'::tsquery, 'SELECT nextval(''s'')::text::tsquery, ''b''::tsquery')",
    "SELECT table_to_xml('sneaky', true, true, '')",
    "SELECT cursor_to_xml('c', 1, true, true, '')",
    "SELECT length('SELECT setval(''s'', 100)')",
    "SELECT pg_create_logical_replication_slot('pimcp_slot', 'test_decoding')",
    "SELECT * FROM pg_logical_slot_get_changes('pimcp_slot', NULL, NULL)",
    "SELECT brin_summarize_new_values('users_pkey')",
    "SELECT gin_clean_pending_list('users_pkey')",
    "SELECT pg_switch_wal()",
    "SELECT pg_stat_reset()",
    "SELECT lo_unlink(1)",
    "SELECT audit_me()",
    "SELECT id FROM users WHERE audit_me() = 1",
    "SELECT * FROM sneaky",
    "SET default_transaction_read_only = off",
    "GRANT ALL ON users TO PUBLIC",
    "EXPLAIN ANALYZE DELETE FROM users",
    "SELECT '\\'; DELETE FROM users; --'",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "LOCK TABLE users",
    "PREPARE p AS DELETE FROM users",
    "BEGIN",
];

#[tokio::test]
async fn postgres_write_attempts_are_refused_and_change_nothing() {
    let Some(base) = require_service("PI_MCP_TEST_PG_URL") else {
        return;
    };
    let db = PgDb::create(&base).await;
    let before = db.snapshot().await;
    let ws = Workspace::new();
    let client = start(&ws, &[("DATABASE_URL", &db.url)]).await;
    assert!(PG_ATTEMPTS.len() >= 30);
    for attempt in PG_ATTEMPTS {
        let r = sql(&client, json!({ "query": attempt })).await;
        let msg = refused(&r, attempt);
        assert!(
            msg.contains("read-only") || msg.contains("one statement"),
            "{attempt}: {msg}"
        );
        assert_eq!(
            db.snapshot().await,
            before,
            "{attempt} changed the database"
        );
    }
    for leftover in ["/tmp/pi-mcp-sql-copy-program", "/tmp/pi-mcp-sql-copy"] {
        assert!(
            !std::path::Path::new(leftover).exists(),
            "{leftover} was created"
        );
    }
    // The view hides a volatile function from the parser: the read-only transaction stops it.
    let msg = refused(
        &sql(&client, json!({ "query": "SELECT * FROM sneaky" })).await,
        "view",
    );
    assert!(msg.contains("the database is read-only"), "{msg}");
    let msg = refused(
        &sql(&client, json!({ "query": "SELECT audit_me()" })).await,
        "udf",
    );
    assert!(
        msg.contains("volatile user-defined function") && msg.contains("audit_me"),
        "{msg}"
    );
    let v = ok(&sql(
        &client,
        json!({ "query": "SELECT count(*) AS n FROM users" }),
    )
    .await);
    assert_eq!(v["rows"], json!([[2]]));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn postgres_types_map_faithfully() {
    let Some(base) = require_service("PI_MCP_TEST_PG_URL") else {
        return;
    };
    let db = PgDb::create(&base).await;
    let ws = Workspace::new();
    let client = start(&ws, &[("DATABASE_URL", &db.url)]).await;
    let query = "SELECT NULL::int AS n, 42::int2 AS i2, 7::int4 AS i4, 9007199254740993::int8 AS i8, \
        1.5::float4 AS f4, 2.25::float8 AS f8, 12345678901234567890.123456789::numeric AS num, \
        'NaN'::numeric AS nan, -0.005::numeric(6,3) AS small, true AS b, 'héllo'::text AS t, \
        'ab'::varchar(5) AS vc, '2024-02-29 13:45:06.123456'::timestamp AS ts, \
        '2024-02-29 13:45:06+02'::timestamptz AS tstz, '2024-02-29'::date AS d, '13:45:06'::time AS tm, \
        '{\"a\": [1, 2, {\"b\": null}]}'::jsonb AS jb, '{\"x\": 1}'::json AS j, '\\xDEADBEEF'::bytea AS by, \
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, ARRAY[1, NULL, 3] AS arr, \
        ARRAY[['a', 'b'], ['c', 'd']] AS grid, '1 year 2 mons 3 days 04:05:06.5'::interval AS iv, \
        '192.168.0.1'::inet AS ip, '10.0.0.0/8'::cidr AS net, 'happy'::mood AS m, '(1,2)'::point AS pt";
    let v = ok(&sql(&client, json!({ "query": query })).await);
    let row = &v["rows"][0];
    let by_name = |name: &str| {
        let i = v["columns"]
            .as_array()
            .and_then(|c| c.iter().position(|x| x == name))
            .unwrap_or_else(|| panic!("no column {name}"));
        row[i].clone()
    };
    assert_eq!(by_name("n"), json!(null));
    assert_eq!(by_name("i2"), json!(42));
    assert_eq!(by_name("i4"), json!(7));
    assert_eq!(by_name("i8"), json!(9007199254740993_i64));
    assert_eq!(by_name("f4"), json!(1.5));
    assert_eq!(by_name("f8"), json!(2.25));
    assert_eq!(by_name("num"), json!("12345678901234567890.123456789"));
    assert_eq!(by_name("nan"), json!("NaN"));
    assert_eq!(by_name("small"), json!("-0.005"));
    assert_eq!(by_name("b"), json!(true));
    assert_eq!(by_name("t"), json!("héllo"));
    assert_eq!(by_name("vc"), json!("ab"));
    assert_eq!(by_name("ts"), json!("2024-02-29T13:45:06.123456"));
    assert_eq!(by_name("tstz"), json!("2024-02-29T11:45:06Z"));
    assert_eq!(by_name("d"), json!("2024-02-29"));
    assert_eq!(by_name("tm"), json!("13:45:06"));
    assert_eq!(by_name("jb"), json!({"a": [1, 2, {"b": null}]}));
    assert_eq!(by_name("j"), json!({"x": 1}));
    assert_eq!(by_name("by"), json!("\\xdeadbeef"));
    assert_eq!(by_name("u"), json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
    assert_eq!(by_name("arr"), json!([1, null, 3]));
    assert_eq!(by_name("grid"), json!([["a", "b"], ["c", "d"]]));
    assert_eq!(by_name("iv"), json!("1 year 2 mons 3 days 04:05:06.5"));
    assert_eq!(by_name("ip"), json!("192.168.0.1"));
    assert_eq!(by_name("net"), json!("10.0.0.0/8"));
    assert_eq!(by_name("m"), json!("happy"));
    assert_eq!(by_name("pt"), json!("(1,2)"));
    assert_eq!(v["column_types"][6], json!("numeric"));

    // Rows of a table, and an empty result still has its columns.
    let v = ok(&sql(
        &client,
        json!({ "query": "SELECT * FROM users ORDER BY id" }),
    )
    .await);
    assert_eq!(
        v["rows"],
        json!([
            [1, "ada", "9.50", "happy", "2024-02-29T13:45:06Z"],
            [2, "bob", null, "sad", null]
        ])
    );
    let v = ok(&sql(
        &client,
        json!({ "query": "SELECT id, name FROM users WHERE false" }),
    )
    .await);
    assert_eq!(v["columns"], json!(["id", "name"]));
    assert_eq!(v["rows"], json!([]));
    let v = ok(&sql(
        &client,
        json!({ "query": "SHOW default_transaction_read_only" }),
    )
    .await);
    assert_eq!(
        v["rows"],
        json!([["on"]]),
        "the session itself is read-only"
    );
    ok(&sql(&client, json!({ "query": "EXPLAIN SELECT * FROM users" })).await);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn postgres_truncation_and_timeout() {
    let Some(base) = require_service("PI_MCP_TEST_PG_URL") else {
        return;
    };
    let db = PgDb::create(&base).await;
    let ws = Workspace::new();
    let client = start(&ws, &[("DATABASE_URL", &db.url)]).await;
    let r = sql(
        &client,
        json!({ "query": "SELECT g FROM generate_series(1, 100000) g", "max_rows": 10 }),
    )
    .await;
    let v = ok(&r);
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(10));
    assert_eq!(v["rows"][9], json!([10]));
    assert_eq!(v["truncated"], json!(true));
    assert!(
        text_of(&r).contains("truncated at max_rows=10"),
        "{}",
        text_of(&r)
    );

    let started = Instant::now();
    let r = sql(
        &client,
        json!({ "query": "SELECT pg_sleep(5)", "timeout_secs": 1 }),
    )
    .await;
    let msg = refused(&r, "pg_sleep(5)");
    assert!(msg.contains("timed out after 1 s"), "{msg}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    ok(&sql(&client, json!({ "query": "SELECT 1" })).await);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn postgres_connection_problems_are_explained() {
    let Some(base) = require_service("PI_MCP_TEST_PG_URL") else {
        return;
    };
    let ws = Workspace::new();
    let client = start(
        &ws,
        &[("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing")],
    )
    .await;
    let started = Instant::now();
    let msg = refused(
        &sql(&client, json!({ "query": "SELECT 1" })).await,
        "unreachable",
    );
    assert!(msg.contains("cannot reach the database"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(10));
    client.cancel().await.unwrap();

    let bad_user = base.replacen("://", "://no_such_user_pimcp:wrong@", 1);
    let bad_user = match bad_user.split_once('@') {
        // Drop any user the base URL already had (user@host).
        Some((cred, rest)) if rest.contains('@') => {
            format!("{cred}@{}", rest.split_once('@').map_or(rest, |x| x.1))
        }
        _ => bad_user,
    };
    let client = start(&ws, &[("DATABASE_URL", &bad_user)]).await;
    let msg = refused(
        &sql(&client, json!({ "query": "SELECT 1" })).await,
        "bad credentials",
    );
    assert!(msg.contains("authentication failed"), "{msg}");
    assert!(!msg.contains("wrong"), "the password is not shown: {msg}");
    client.cancel().await.unwrap();
}
