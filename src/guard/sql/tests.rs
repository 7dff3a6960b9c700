//! The SQL judge against reads it must let through and writes and side effects it must refuse,
//! on both dialects.

use super::*;

fn rule_of(sql: &str, dialect: SqlDialect, allow_writes: bool) -> (Decision, String) {
    let j = judge_sql(sql, dialect, allow_writes);
    let rule = j
        .verdict
        .reasons
        .first()
        .map(|r| r.rule.clone())
        .unwrap_or_default();
    (j.verdict.decision, rule)
}

/// Every statement is denied by the expected rule; lists all that are not.
fn assert_refused(cases: &[(&str, &str)], dialect: SqlDialect) {
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(sql, want)| {
            let (decision, rule) = rule_of(sql, dialect, false);
            (decision != Decision::Deny || rule != *want)
                .then(|| format!("{sql}: {decision} by {rule}, want deny by {want}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

const PG_READS: &[&str] = &[
    "SELECT 1",
    "select id, name from users where id = 3 order by name limit 10",
    "WITH t AS (SELECT id FROM users) SELECT count(*) FROM t",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
    "SELECT a.id FROM a JOIN b ON a.id = b.a_id WHERE b.x IN (SELECT x FROM c)",
    "EXPLAIN SELECT * FROM users",
    "EXPLAIN ANALYZE SELECT * FROM users",
    "SHOW statement_timeout",
    "SHOW ALL",
    "SELECT now(), current_date, lower(name), coalesce(x, 0)::numeric(10,2) FROM t",
    "SELECT pg_sleep(1)",
    "SELECT 'delete from t; drop table u' AS harmless_text",
    "SELECT \"update\" FROM t",
    "SELECT replace(name, 'a', 'b') FROM t",
    "SELECT * FROM t1 UNION SELECT * FROM t2",
    "VALUES (1, 2)",
    "SELECT $$DELETE FROM t$$",
    "SELECT E'\\'; DELETE FROM users; --'",
    "SELECT row_number() OVER (PARTITION BY a ORDER BY b) FROM t",
    "SELECT proname FROM pg_proc WHERE proname = 'nextval'",
    "SELECT * FROM logs WHERE msg LIKE '%pg_terminate_backend%'",
    "SELECT 'it''s fine' AS text",
];

const PG_REFUSED: &[(&str, &str)] = &[
    ("DELETE FROM users", rules::READ_ONLY),
    ("UPDATE users SET name = 'x'", rules::READ_ONLY),
    ("INSERT INTO users VALUES (1)", rules::READ_ONLY),
    ("DROP TABLE users", rules::READ_ONLY),
    ("TRUNCATE users", rules::READ_ONLY),
    ("CREATE TABLE x (a int)", rules::READ_ONLY),
    ("ALTER TABLE users ADD COLUMN z int", rules::READ_ONLY),
    (
        "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d",
        rules::MODIFYING_CTE,
    ),
    ("SELECT * INTO copy_of_users FROM users", rules::SELECT_INTO),
    ("SELECT * FROM users FOR UPDATE", rules::ROW_LOCK),
    ("SELECT * FROM users FOR SHARE", rules::ROW_LOCK),
    ("SELECT 1; DELETE FROM users", rules::SINGLE),
    ("SELECT 1; SELECT 2", rules::SINGLE),
    ("SELECT pg_terminate_backend(123)", rules::FUNCTION),
    ("SELECT pg_catalog.pg_cancel_backend(1)", rules::FUNCTION),
    ("SELECT \"pg_terminate_backend\"(1)", rules::FUNCTION),
    ("SELECT PG_RELOAD_CONF()", rules::FUNCTION),
    ("SELECT lo_import('/etc/passwd')", rules::FUNCTION),
    ("SELECT lo_unlink(1)", rules::FUNCTION),
    ("SELECT pg_advisory_lock(1)", rules::FUNCTION),
    ("SELECT pg_try_advisory_xact_lock(1)", rules::FUNCTION),
    ("SELECT nextval('s')", rules::FUNCTION),
    ("SELECT setval('s', 1)", rules::FUNCTION),
    (
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        rules::FUNCTION,
    ),
    ("SELECT pg_notify('c', 'x')", rules::FUNCTION),
    (
        "SELECT * FROM dblink('host=x', 'DELETE FROM t') AS t(a int)",
        rules::FUNCTION,
    ),
    ("SELECT pg_read_file('/etc/passwd')", rules::FUNCTION),
    ("SELECT * FROM pg_ls_dir('.')", rules::FUNCTION),
    (
        "SELECT query_to_xml('DELETE FROM users', true, true, '')",
        rules::FUNCTION,
    ),
    ("SELECT txid_current()", rules::FUNCTION),
    (
        "SELECT * FROM ts_stat('SELECT to_tsvector(pg_terminate_backend(123)::text)')",
        rules::FUNCTION,
    ),
    (
        "SELECT pg_catalog.ts_rewrite('a'::tsquery, 'SELECT t, s FROM aliases')",
        rules::FUNCTION,
    ),
    (
        "SELECT table_to_xml('users', true, true, '')",
        rules::FUNCTION,
    ),
    (
        "SELECT schema_to_xml('public', true, true, '')",
        rules::FUNCTION,
    ),
    (
        "SELECT cursor_to_xml('c', 1, true, true, '')",
        rules::FUNCTION,
    ),
    ("SELECT pg_read_binary_file('/etc/passwd')", rules::FUNCTION),
    ("SELECT * FROM pg_stat_file('/etc/passwd')", rules::FUNCTION),
    (
        "SELECT * FROM pg_logical_slot_get_changes('s', NULL, NULL)",
        rules::FUNCTION,
    ),
    (
        "SELECT * FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL)",
        rules::FUNCTION,
    ),
    (
        "SELECT pg_replication_slot_advance('s', '0/0')",
        rules::FUNCTION,
    ),
    (
        "SELECT pg_create_logical_replication_slot('s', 'test_decoding')",
        rules::FUNCTION,
    ),
    ("SELECT pg_log_standby_snapshot()", rules::FUNCTION),
    ("SELECT brin_summarize_new_values('i')", rules::FUNCTION),
    ("SELECT brin_summarize_range('i', 0)", rules::FUNCTION),
    ("SELECT brin_desummarize_range('i', 0)", rules::FUNCTION),
    ("SELECT gin_clean_pending_list('i')", rules::FUNCTION),
    ("SELECT pg_switch_wal()", rules::FUNCTION),
    ("SELECT pg_create_restore_point('x')", rules::FUNCTION),
    ("SELECT pg_promote()", rules::FUNCTION),
    ("SELECT pg_rotate_logfile()", rules::FUNCTION),
    (
        "SELECT pg_stat_reset_single_table_counters(1)",
        rules::FUNCTION,
    ),
    (
        "SELECT length('SELECT pg_terminate_backend(pg_backend_pid())')",
        rules::CALL_IN_TEXT,
    ),
    (
        "SELECT * FROM some_ext.run_sql($q$SELECT \"pg_cancel_backend\" /* x */ (1)$q$)",
        rules::CALL_IN_TEXT,
    ),
    (
        "SELECT some_ext.run_sql('SELECT run_sql(''SELECT nextval(s)'')')",
        rules::CALL_IN_TEXT,
    ),
    (
        "SELECT some_ext.run_sql(E'SELECT pg\\x5fterminate_backend(1)')",
        rules::CALL_IN_TEXT,
    ),
    (
        "SELECT some_ext.run_sql(U&'SELECT pg\\005Fterminate_backend(1)')",
        rules::CALL_IN_TEXT,
    ),
    (
        "SELECT some_ext.run_sql('SELECT ''unterminated, pg_reload_conf')",
        rules::CALL_IN_TEXT,
    ),
    (
        "SELECT x FROM (SELECT pg_terminate_backend(pid) AS x FROM pg_stat_activity) s",
        rules::FUNCTION,
    ),
    ("COPY users TO PROGRAM 'rm -rf /'", rules::UTILITY),
    ("COPY users TO '/tmp/x'", rules::UTILITY),
    ("ALTER SYSTEM SET work_mem = '1GB'", rules::PARSE),
    ("VACUUM users", rules::UTILITY),
    ("CALL do_things()", rules::UTILITY),
    ("DO $$BEGIN DELETE FROM users; END$$", rules::PARSE),
    ("NOTIFY chan", rules::UTILITY),
    ("LISTEN chan", rules::UTILITY),
    ("SET statement_timeout = 0", rules::UTILITY),
    ("SET TRANSACTION READ WRITE", rules::UTILITY),
    ("BEGIN", rules::UTILITY),
    ("COMMIT", rules::UTILITY),
    ("GRANT ALL ON users TO public", rules::UTILITY),
    ("LOCK TABLE users", rules::UTILITY),
    ("EXPLAIN ANALYZE DELETE FROM users", rules::READ_ONLY),
    ("SELEC 1", rules::PARSE),
    ("", rules::SINGLE),
    ("SELECT '\\'; DELETE FROM users; --'", rules::SINGLE),
];

#[test]
fn postgres_reads_pass() {
    for sql in PG_READS {
        let j = judge_sql(sql, SqlDialect::Postgres, false);
        assert_eq!(
            j.verdict.decision,
            Decision::Allow,
            "{sql}: {}",
            j.verdict.summary()
        );
        assert!(!j.writes, "{sql}");
    }
}

#[test]
fn postgres_writes_and_side_effects_are_refused_with_their_rule() {
    assert_refused(PG_REFUSED, SqlDialect::Postgres);
}

const SQLITE_READS: &[&str] = &[
    "SELECT * FROM users",
    "SELECT count(*) FROM pragma_table_info('users')",
    "PRAGMA table_info('users')",
    "PRAGMA user_version",
    "PRAGMA integrity_check",
    "PRAGMA table_info(orders)",
    "PRAGMA main.table_xinfo(orders)",
    "PRAGMA index_list(orders)",
    "PRAGMA index_info(orders_by_day)",
    "PRAGMA index_xinfo(\"orders_by_day\")",
    "PRAGMA foreign_key_list(orders)",
    "PRAGMA table_list",
    "PRAGMA database_list",
    "PRAGMA collation_list",
    "PRAGMA function_list",
    "PRAGMA pragma_list",
    "PRAGMA compile_options",
    "EXPLAIN QUERY PLAN SELECT * FROM users",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c LIMIT 5",
];

const SQLITE_REFUSED: &[(&str, &str)] = &[
    ("DELETE FROM users", rules::READ_ONLY),
    ("REPLACE INTO users VALUES (1)", rules::READ_ONLY),
    ("INSERT OR REPLACE INTO users VALUES (1)", rules::READ_ONLY),
    ("ATTACH DATABASE '/tmp/x.db' AS x", rules::UTILITY),
    ("DETACH DATABASE x", rules::PARSE),
    ("VACUUM INTO '/tmp/copy.db'", rules::PARSE),
    ("VACUUM", rules::UTILITY),
    ("PRAGMA query_only = 0", rules::PRAGMA),
    ("PRAGMA query_only(0)", rules::PRAGMA),
    ("PRAGMA journal_mode = DELETE", rules::PRAGMA),
    ("PRAGMA journal_mode(WAL)", rules::PRAGMA),
    ("PRAGMA wal_checkpoint(TRUNCATE)", rules::PRAGMA),
    ("PRAGMA optimize", rules::PRAGMA),
    (
        "PRAGMA table_info(orders); DELETE FROM orders",
        rules::PRAGMA,
    ),
    ("PRAGMA table_info(orders) /* x */", rules::PRAGMA),
    ("PRAGMA writable_schema = 1", rules::PRAGMA),
    ("SELECT load_extension('/tmp/evil.so')", rules::FUNCTION),
    ("SELECT writefile('/tmp/x', 'y')", rules::FUNCTION),
    ("SELECT readfile('/etc/passwd')", rules::FUNCTION),
    ("CREATE TEMP TABLE t (a)", rules::READ_ONLY),
    ("SELECT 1; DROP TABLE users", rules::SINGLE),
];

#[test]
fn sqlite_reads_pass_and_writes_are_refused() {
    for sql in SQLITE_READS {
        let j = judge_sql(sql, SqlDialect::Sqlite, false);
        assert_eq!(
            j.verdict.decision,
            Decision::Allow,
            "{sql}: {}",
            j.verdict.summary()
        );
    }
    assert_refused(SQLITE_REFUSED, SqlDialect::Sqlite);
}

#[test]
fn writable_databases_accept_single_writes_but_never_utilities_or_side_effects() {
    for sql in [
        "DELETE FROM users WHERE id = 1",
        "INSERT INTO users VALUES (1)",
        "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d",
        "CREATE TABLE x (a int)",
    ] {
        let j = judge_sql(sql, SqlDialect::Postgres, true);
        assert_eq!(
            j.verdict.decision,
            Decision::Allow,
            "{sql}: {}",
            j.verdict.summary()
        );
        assert!(j.writes, "{sql}");
    }
    for sql in [
        "ALTER SYSTEM SET work_mem = '1GB'",
        "COPY users TO PROGRAM 'id'",
        "SELECT pg_terminate_backend(1)",
        "DELETE FROM a; DELETE FROM b",
    ] {
        let (decision, _) = rule_of(sql, SqlDialect::Postgres, true);
        assert_eq!(decision, Decision::Deny, "{sql}");
    }
}

#[test]
fn called_names_are_reported_for_the_volatility_check() {
    let j = judge_sql(
        "SELECT public.audit_me(id), lower(x) FROM t",
        SqlDialect::Postgres,
        false,
    );
    assert!(j.called.contains(&"audit_me".to_string()), "{:?}", j.called);
    assert!(j.called.contains(&"lower".to_string()));
}

#[test]
fn names_called_inside_text_go_to_the_volatility_check_too() {
    let j = judge_sql(
        "SELECT * FROM some_ext.run_sql('SELECT audit_me()')",
        SqlDialect::Postgres,
        false,
    );
    assert_eq!(
        j.verdict.decision,
        Decision::Allow,
        "{}",
        j.verdict.summary()
    );
    assert!(j.called.contains(&"audit_me".to_string()), "{:?}", j.called);
    assert!(j.called.contains(&"run_sql".to_string()), "{:?}", j.called);
}

#[test]
fn the_size_limit_is_enforced_before_parsing() {
    let big = format!("SELECT '{}'", "x".repeat(MAX_QUERY_BYTES));
    assert_eq!(rule_of(&big, SqlDialect::Postgres, false).1, rules::SIZE);
    let fits = format!("SELECT '{}'", "x".repeat(MAX_QUERY_BYTES - 20));
    assert_eq!(
        rule_of(&fits, SqlDialect::Postgres, false).0,
        Decision::Allow
    );
}

#[test]
fn deep_nesting_is_refused_quickly() {
    let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    let started = std::time::Instant::now();
    assert_eq!(rule_of(&deep, SqlDialect::Postgres, false).1, rules::PARSE);
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    let nested_ok = format!("SELECT {}1{}", "(".repeat(10), ")".repeat(10));
    assert_eq!(
        rule_of(&nested_ok, SqlDialect::Postgres, false).0,
        Decision::Allow
    );
}

#[test]
fn parse_errors_tell_the_model_what_to_fix() {
    let j = judge_sql("SELEC 1", SqlDialect::Postgres, false);
    let msg = &j.verdict.reasons[0].message;
    assert!(
        msg.contains("could not be parsed as PostgreSQL SQL"),
        "{msg}"
    );
}

#[test]
fn the_policy_section_is_validated() {
    let mut p = SqlPolicy::default();
    assert!(p.validate("p.json").is_ok());
    p.databases.insert(
        "both".into(),
        SqlDatabase {
            url_env: Some("X".into()),
            url: Some("sqlite://x".into()),
            allow_writes: false,
        },
    );
    let msg = p.validate("p.json").unwrap_err().to_string();
    assert!(
        msg.contains("sql.databases.both") && msg.contains("exactly one"),
        "{msg}"
    );
    let p = SqlPolicy {
        default_max_rows: 5000,
        ..SqlPolicy::default()
    };
    assert!(
        p.validate("p.json")
            .unwrap_err()
            .to_string()
            .contains("default_max_rows")
    );
}
