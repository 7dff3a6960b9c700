//! The Data Ghost on the PostgreSQL objects real schemas have: a domain column (`year` over
//! integer) profiled as its base type, an enum whose new label shows in the schema diff, a
//! partitioned table profiled as one table with rows and freshness per partition (a partition
//! added between runs is a schema change), and a materialized view profiled like a table.

use serde_json::{Value, json};

use crate::{ghost, pg_db, support};

const SETUP: &str = "
    CREATE DOMAIN year AS integer CHECK (VALUE BETWEEN 1900 AND 2100);
    CREATE DOMAIN short_year AS year;
    CREATE TYPE mood AS ENUM ('sad', 'happy');
    CREATE TABLE films (id int PRIMARY KEY, released year, remade short_year, feel mood);
    INSERT INTO films VALUES (1, 1999, 2010, 'sad'), (2, 2001, NULL, 'happy'),
        (3, 2003, 2020, 'happy');
    CREATE TABLE events (id int, at timestamptz NOT NULL, kind text) PARTITION BY RANGE (at);
    CREATE TABLE events_2025 PARTITION OF events
        FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    CREATE TABLE events_2026 PARTITION OF events
        FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
    INSERT INTO events VALUES (1, '2025-03-01', 'a'), (2, '2025-04-01', 'b'),
        (3, '2026-02-01 10:00+00', 'a');
    CREATE MATERIALIZED VIEW film_years AS
        SELECT released, count(*) AS n FROM films GROUP BY released;";

const CHANGES: &str = "
    ALTER TYPE mood ADD VALUE 'meh' BEFORE 'happy';
    CREATE TABLE events_2027 PARTITION OF events
        FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
    INSERT INTO events VALUES (4, '2027-05-01', 'c');";

fn profile<'a>(run: &'a Value, table: &str) -> &'a Value {
    run["profiles"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["table"] == table))
        .unwrap_or_else(|| panic!("no profile of {table} in {run:#}"))
}

fn column<'a>(profile: &'a Value, name: &str) -> &'a Value {
    profile["columns"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no column {name} in {profile:#}"))
}

#[tokio::test]
async fn postgres_domains_enums_partitions_and_materialized_views() {
    let Some((db, url)) = pg_db("objects").await else {
        return;
    };
    let ws = support::Workspace::new();
    db.exec(SETUP).await;
    let first = ghost(ws.path(), &url, &[]);
    assert_eq!(first["errors"], json!([]), "{first:#}");

    // Domains: profiled as integers, through a domain over a domain too.
    let films = profile(&first, "public.films");
    let released = column(films, "released");
    assert_eq!(released["data_type"], "year");
    assert_eq!(released["kind"], "numeric");
    assert_eq!(released["min"], "1999");
    assert_eq!(released["max"], "2003");
    assert_eq!(released["mean"], json!(2001.0));
    let remade = column(films, "remade");
    assert_eq!(remade["kind"], "numeric");
    assert_eq!(remade["max"], "2020");
    assert_eq!(column(films, "feel")["distinct"], json!(2));

    // The partitioned table: one profile over all partitions, with a breakdown.
    let names: Vec<&str> = first["profiles"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["table"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        !names.iter().any(|n| n.contains("events_20")),
        "partitions are not tables of their own: {names:?}"
    );
    let events = profile(&first, "public.events");
    assert_eq!(events["row_count"], json!(3));
    assert_eq!(events["kind"], "partitioned_table");
    assert_eq!(
        events["partitions"],
        json!([
            {"partition": "public.events_2025", "row_count": 2,
             "freshness": "2025-04-01 00:00:00+00"},
            {"partition": "public.events_2026", "row_count": 1,
             "freshness": "2026-02-01 10:00:00+00"}
        ])
    );

    // The materialized view is profiled like a table.
    let view = profile(&first, "public.film_years");
    assert_eq!(view["kind"], "materialized_view");
    assert_eq!(view["row_count"], json!(3));
    assert_eq!(column(view, "n")["kind"], "numeric");

    let report = std::fs::read_to_string(first["report_path"].as_str().unwrap_or_default())
        .unwrap_or_default();
    assert!(
        report.contains("### Partitions of `public.events`"),
        "{report}"
    );
    assert!(report.contains("| `public.events_2025` | 2 |"), "{report}");
    assert!(report.contains("(materialized view)"), "{report}");

    db.exec(CHANGES).await;
    let second = ghost(ws.path(), &url, &[]);
    let changes = second["schema_changes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        changes.contains(
            &json!({"kind": "enum_labels_added", "enum_type": "public.mood",
            "labels": ["meh"]})
        ),
        "{changes:#?}"
    );
    assert!(
        changes.contains(&json!({"kind": "partition_added", "table": "public.events",
            "partition": "public.events_2027"})),
        "{changes:#?}"
    );
    assert_eq!(changes.len(), 2, "{changes:#?}");
    let events = profile(&second, "public.events");
    assert_eq!(events["row_count"], json!(4));
    assert_eq!(events["partitions"][2]["row_count"], json!(1));
    let report = std::fs::read_to_string(second["report_path"].as_str().unwrap_or_default())
        .unwrap_or_default();
    assert!(report.contains("has new labels: meh"), "{report}");
    assert!(
        report.contains("partition `public.events_2027` added to `public.events`"),
        "{report}"
    );
    crate::assert_report_consistent(&second);
}
