//! What profiling costs and what it estimates, measured in the database: the full scans of a
//! 12-column table read from PostgreSQL's own counters (`pg_stat_all_tables`), a never-analysed
//! large table that is still sampled, distinct counts estimated from the sample, and SQLite
//! value counts on columns named like the query's own aliases.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{TestDb, ghost, pg_db, sqlite_db, support};

/// A 12-column table of `rows` rows: numbers, times, low- and high-cardinality text. Autovacuum
/// is off, so the table stays never analysed (`reltuples = -1`) and nothing else scans it.
fn twelve_columns(rows: i64) -> String {
    format!(
        "CREATE TABLE wide (id int8, a int, b text, c float8, d timestamptz, e text, f int,
             g int, h text, i numeric, j date, k boolean) WITH (autovacuum_enabled = false);
         INSERT INTO wide SELECT g, g % 7, 'v' || (g % 5), g / 3.0,
             TIMESTAMPTZ '2026-01-01' + g * INTERVAL '1 second', md5(g::text), g % 1000,
             NULL, CASE WHEN g % 2 = 0 THEN 'even' END, g % 13, DATE '2026-01-01' + (g % 30),
             g % 3 = 0
           FROM generate_series(1, {rows}) g;"
    )
}

/// Sequential plus index scans of `table` so far, as PostgreSQL counts them. Counters reach
/// the statistics system when a backend commits (at most once a second) or exits, so this
/// polls until the count has moved by `at_least`, then waits for stragglers.
async fn scans_after(db: &TestDb, table: &str, before: i64, at_least: i64) -> i64 {
    let TestDb::Pg(pool) = db else {
        panic!("PostgreSQL only")
    };
    let read = || async {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("SELECT pg_stat_clear_snapshot()")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query_scalar::<_, i64>(
            "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_all_tables
             WHERE relname = $1",
        )
        .bind(table)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while read().await - before < at_least && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    read().await
}

fn profile<'a>(run: &'a Value, table: &str) -> &'a Value {
    run["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["table"] == table)
        .unwrap_or_else(|| panic!("no profile of {table}: {run:#}"))
}

fn column<'a>(profile: &'a Value, name: &str) -> &'a Value {
    profile["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

/// "At most 2 full scans per table, whatever the column count", read from PostgreSQL's scan
/// counters around real runs, unsampled and sampled; the profile's own `full_scans` agrees.
#[tokio::test]
async fn postgres_full_scans_are_measured_in_the_database() {
    let Some((db, url)) = pg_db("scans").await else {
        return;
    };
    let ws = support::Workspace::new();
    db.exec(&twelve_columns(150_000)).await;
    // A parallel scan is one pass over the table, but `seq_scan` counts every participant
    // (leader and workers) as a scan: without workers the counter counts passes.
    db.exec("ALTER DATABASE ghost_scans SET max_parallel_workers_per_gather = 0")
        .await;
    for (mode, threshold) in [("unsampled", "1000000000"), ("sampled", "50000")] {
        let before = scans_after(&db, "wide", 0, 0).await;
        let run = ghost(ws.path(), &url, &["--sample-above-rows", threshold]);
        let p = profile(&run, "public.wide");
        assert_eq!(p["sample_percent"].is_null(), mode == "unsampled", "{p:#}");
        let reported = p["full_scans"].as_i64().unwrap();
        let measured = scans_after(&db, "wide", before, reported).await - before;
        eprintln!("{mode}: {measured} full scan(s) measured, {reported} reported");
        assert!(
            measured <= 2,
            "{mode}: {measured} full scans of a 12-column table"
        );
        assert_eq!(
            measured, reported,
            "{mode}: the profile reports what it cost"
        );
    }
}

/// A large table loaded and never analysed (`reltuples = -1`) is sampled all the same: its
/// size comes from the planner's estimate over its pages. Distinct counts of a sampled table
/// are estimates, marked as such in the JSON and the report; small tables keep exact counts.
#[tokio::test]
async fn postgres_never_analysed_large_tables_are_sampled_with_approximate_distinct_counts() {
    let Some((db, url)) = pg_db("unanalysed").await else {
        return;
    };
    let ws = support::Workspace::new();
    db.exec(&twelve_columns(300_000)).await;
    db.exec("CREATE TABLE small (id int, tag text); INSERT INTO small VALUES (1, 'a'), (2, 'b');")
        .await;
    let TestDb::Pg(pool) = &db else {
        unreachable!()
    };
    let reltuples: f32 =
        sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = 'wide'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(reltuples, -1.0, "the table was never analysed");

    let run = ghost(ws.path(), &url, &["--sample-above-rows", "50000"]);
    let wide = profile(&run, "public.wide");
    let pct = wide["sample_percent"]
        .as_f64()
        .unwrap_or_else(|| panic!("the never-analysed table is sampled: {wide:#}"));
    assert!(
        pct < 100.0,
        "{pct}% of an estimated {} rows",
        wide["row_estimate"]
    );
    let estimate = wide["row_estimate"].as_f64().unwrap();
    assert!(
        (150_000.0..600_000.0).contains(&estimate),
        "the planner's estimate is near 300,000: {estimate}"
    );
    assert_eq!(wide["row_count"], 300_000, "the row count stays exact");
    let id = column(wide, "id");
    assert_eq!(id["distinct_approximate"], true);
    let ids = id["distinct"].as_f64().unwrap();
    assert!(
        (ids - 300_000.0).abs() / 300_000.0 < 0.2,
        "a unique column is estimated near its row count: {ids}"
    );
    let b = column(wide, "b");
    assert_eq!(b["distinct"], 5, "few categories, all seen in the sample");
    assert_eq!(b["values"].as_array().map(Vec::len), Some(5));
    let small = profile(&run, "public.small");
    assert!(small["sample_percent"].is_null());
    assert_eq!(column(small, "tag")["distinct"], 2);
    assert_eq!(column(small, "tag")["distinct_approximate"], false);
    let report = std::fs::read_to_string(run["report_path"].as_str().unwrap()).unwrap();
    assert!(
        report.contains("distinct counts are estimated from the sample"),
        "{report}"
    );
}

/// SQLite value counts name their own columns `k` and `v`: a table with real columns of those
/// names (and `n`, `t`, `q`) still gets the right counts.
#[tokio::test]
async fn sqlite_value_counts_are_right_for_columns_named_like_the_aliases() {
    let ws = support::Workspace::new();
    let (db, url) = sqlite_db(ws.path(), "aliases").await;
    db.exec(
        "CREATE TABLE t (k TEXT, v TEXT, n INTEGER, q TEXT);
         INSERT INTO t VALUES ('a', 'x', 1, 'p'), ('a', 'x', 2, 'p'), ('b', 'y', 3, 'p'),
                              ('c', NULL, 4, 'p'), ('a', 'y', 5, NULL);",
    )
    .await;
    let run = ghost(ws.path(), &url, &[]);
    let t = profile(&run, "t");
    let counts = |name: &str| -> Vec<(String, i64)> {
        column(t, name)["values"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has value counts: {t:#}"))
            .iter()
            .map(|v| {
                (
                    v["value"].as_str().unwrap().to_string(),
                    v["count"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let pairs = |v: &[(&str, i64)]| -> Vec<(String, i64)> {
        v.iter().map(|(s, n)| (s.to_string(), *n)).collect()
    };
    assert_eq!(counts("k"), pairs(&[("a", 3), ("b", 1), ("c", 1)]));
    assert_eq!(counts("v"), pairs(&[("x", 2), ("y", 2)]));
    assert_eq!(counts("q"), pairs(&[("p", 4)]));
}
