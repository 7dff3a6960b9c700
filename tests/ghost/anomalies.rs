//! Planted anomalies found with the right severity after a few steady runs of history: a
//! row-count drop (critical), a null spike (critical), a new category (warning); and the report
//! files: Markdown links resolve, PNG charts decode at the documented size.

use crate::{TestDb, assert_report_consistent, findings, ghost, pg_db, sqlite_db, support};

/// Steady runs before the anomalies are planted.
const SEED_RUNS: i64 = 3;

fn day_sql(day: i64, pg: bool) -> String {
    let ts = if pg {
        format!("TIMESTAMP '2026-01-01' + INTERVAL '{day} days'")
    } else {
        format!("datetime('2026-01-01', '+{day} days')")
    };
    // 100 events a day, kinds a/b/c, a payload on every row; 200 visits a day.
    let mut sql = String::new();
    for i in 0..100 {
        let id = day * 100 + i;
        sql.push_str(&format!(
            "INSERT INTO events (id, kind, payload, amount, created_at) VALUES ({id}, '{}', 'p{id}', {}, {ts});\n",
            ["a", "b", "c"][(i % 3) as usize],
            i % 10
        ));
    }
    for i in 0..200 {
        sql.push_str(&format!(
            "INSERT INTO visits (id, page) VALUES ({}, 'page{}');\n",
            day * 200 + i,
            i % 40
        ));
    }
    sql
}

async fn check(db: TestDb, url: String, ws: &support::Workspace) {
    db.exec(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT,
                              amount INTEGER, created_at TIMESTAMP NOT NULL);
         CREATE TABLE visits (id INTEGER PRIMARY KEY, page TEXT NOT NULL);",
    )
    .await;
    for day in 0..SEED_RUNS {
        db.exec(&day_sql(day, db.is_pg())).await;
        let run = ghost(ws.path(), &url, &[]);
        let serious: Vec<_> = findings(&run)
            .into_iter()
            .filter(|f| f.3 != "info")
            .collect();
        assert!(serious.is_empty(), "steady day {day} found {serious:?}");
    }
    db.exec(&day_sql(SEED_RUNS, db.is_pg())).await;
    db.exec(
        "UPDATE events SET payload = NULL WHERE id % 2 = 0;
         UPDATE events SET kind = 'zzz' WHERE id % 10 = 0;
         DELETE FROM visits WHERE id % 4 <> 0;",
    )
    .await;
    let run = ghost(ws.path(), &url, &[]);
    let found = findings(&run);
    let (events, visits) = (db.table("events"), db.table("visits"));
    let expect = |kind: &str, table: &str, column: Option<&str>, severity: &str| {
        assert!(
            found.iter().any(|f| f.0 == kind
                && f.1 == table
                && f.2.as_deref() == column
                && f.3 == severity),
            "expected {severity} {kind} on {table}.{column:?}; found {found:#?}"
        );
    };
    expect("row_count", &visits, None, "critical");
    expect("null_spike", &events, Some("payload"), "critical");
    expect("new_values", &events, Some("kind"), "warning");
    let new_values = run["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "new_values")
        .unwrap();
    assert!(new_values["message"].as_str().unwrap().contains("`zzz`"));
    // No false alarm on the steady column of the same table.
    assert!(
        !found.iter().any(|f| f.2.as_deref() == Some("amount")),
        "{found:?}"
    );

    let charts = assert_report_consistent(&run);
    let names: Vec<String> = charts
        .iter()
        .map(|c| c.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // `<kind>-<readable names>-<hash of the exact names>.png`
    let stem = |t: &str| t.replace('.', "_");
    for expected in [
        format!("rows-{}-", stem(&visits)),
        format!("nulls-{}-", stem(&events)),
        format!("values-{}-kind-", stem(&events)),
    ] {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with(&expected) && n.ends_with(".png")),
            "{expected}… not in {names:?}"
        );
    }
    let report = std::fs::read_to_string(run["report_path"].as_str().unwrap()).unwrap();
    let (summary, changes, critical, warning) = (
        report.find("## Summary").unwrap(),
        report.find("## Schema changes").unwrap(),
        report.find("### Critical").unwrap(),
        report.find("### Warning").unwrap(),
    );
    assert!(
        summary < changes && changes < critical && critical < warning,
        "{report}"
    );
}

#[tokio::test]
async fn sqlite_planted_anomalies_found_with_severity() {
    let ws = support::Workspace::new();
    let (db, url) = sqlite_db(ws.path(), "shop").await;
    check(db, url, &ws).await;
}

#[tokio::test]
async fn postgres_planted_anomalies_found_with_severity() {
    let Some((db, url)) = pg_db("anomalies").await else {
        return;
    };
    let ws = support::Workspace::new();
    check(db, url, &ws).await;
}

/// Above the sampling threshold PostgreSQL tables are profiled on TABLESAMPLE, the report says
/// so, the row count stays exact, and a table costs at most 2 full scans.
#[tokio::test]
async fn postgres_large_tables_are_sampled_and_the_report_says_so() {
    let Some((db, url)) = pg_db("sampled").await else {
        return;
    };
    let ws = support::Workspace::new();
    db.exec(
        "CREATE TABLE big (id int, a int, b text, c float8, d timestamptz, e text, f int, g int);
         INSERT INTO big SELECT g, g % 7, 'v' || (g % 5), g / 3.0, now(), md5(g::text), g % 100, NULL
           FROM generate_series(1, 200000) g;
         CREATE TABLE small (id int);
         INSERT INTO small SELECT generate_series(1, 10);
         ANALYZE;",
    )
    .await;
    let run = ghost(ws.path(), &url, &["--sample-above-rows", "50000"]);
    let profiles = run["profiles"].as_array().unwrap();
    let big = profiles
        .iter()
        .find(|p| p["table"] == "public.big")
        .unwrap();
    let small = profiles
        .iter()
        .find(|p| p["table"] == "public.small")
        .unwrap();
    let pct = big["sample_percent"].as_f64().expect("big is sampled");
    let estimate = big["row_estimate"].as_f64().unwrap();
    let aimed = 100.0 * pi_mcp::ghost::profile::SAMPLE_TARGET_ROWS / estimate;
    assert!(
        (pct - aimed).abs() < 1e-6,
        "{pct} aims at SAMPLE_TARGET_ROWS ({aimed})"
    );
    assert_eq!(big["row_count"], 200000, "the row count stays exact");
    assert_eq!(
        big["full_scans"], 1,
        "one full scan (the count) when sampled"
    );
    assert!(small["sample_percent"].is_null());
    assert!(small["full_scans"].as_u64().unwrap() <= 2);
    let report = std::fs::read_to_string(run["report_path"].as_str().unwrap()).unwrap();
    assert!(report.contains("TABLESAMPLE SYSTEM"), "{report}");
    // Unsampled, the 8-column table still costs at most 2 full scans.
    let run = ghost(ws.path(), &url, &["--sample-above-rows", "100000000"]);
    let big = &run["profiles"].as_array().unwrap()[0];
    assert!(big["sample_percent"].is_null());
    assert!(big["full_scans"].as_u64().unwrap() <= 2);
    // Value counts only for low-cardinality columns (TOP_VALUES_MAX_DISTINCT).
    let column = |name: &str| {
        big["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(column("b")["values"].as_array().unwrap().len(), 5);
    assert!(
        column("a")["values"].is_null(),
        "numbers are judged by range, not values"
    );
    assert!(
        column("e")["values"].is_null(),
        "200000 distinct > TOP_VALUES_MAX_DISTINCT"
    );
    assert_eq!(column("g")["null_rate"], 1.0);
}

/// Value counts: text-like columns with at most TOP_VALUES_MAX_DISTINCT values get them, with
/// each value cut to VALUE_MAX_CHARS.
#[tokio::test]
async fn value_counts_respect_their_limits() {
    use pi_mcp::ghost::profile::{TOP_VALUES_MAX_DISTINCT, VALUE_MAX_CHARS};
    let ws = support::Workspace::new();
    let (db, url) = sqlite_db(ws.path(), "limits").await;
    db.exec("CREATE TABLE t (at_limit TEXT, over_limit TEXT, long TEXT);")
        .await;
    let long = "x".repeat(VALUE_MAX_CHARS + 50);
    let mut sql = String::new();
    for i in 0..=TOP_VALUES_MAX_DISTINCT {
        sql.push_str(&format!(
            "INSERT INTO t VALUES ('v{}', 'w{i}', '{long}');\n",
            i % TOP_VALUES_MAX_DISTINCT
        ));
    }
    db.exec(&sql).await;
    let run = ghost(ws.path(), &url, &[]);
    let column = |name: &str| {
        run["profiles"][0]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        column("at_limit")["values"].as_array().unwrap().len() as i64,
        TOP_VALUES_MAX_DISTINCT
    );
    assert!(column("over_limit")["values"].is_null());
    let kept = column("long")["values"][0]["value"]
        .as_str()
        .unwrap()
        .chars()
        .count();
    assert_eq!(kept, VALUE_MAX_CHARS);
}
