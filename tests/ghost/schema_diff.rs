//! Schema diff across two runs after ALTER TABLEs: columns added, dropped, renamed, retyped and
//! made nullable; defaults, primary and foreign keys changed; indexes added, dropped and
//! redefined; tables added, dropped and renamed.

use serde_json::{Value, json};

use crate::{TestDb, ghost, pg_db, sqlite_db, support};

const SETUP: &str = "
    CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, age INTEGER);
    CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), note TEXT);
    CREATE INDEX orders_customer ON orders (customer_id);
    CREATE TABLE metrics (id INTEGER, val INTEGER, label TEXT NOT NULL);
    CREATE TABLE legacy (x INTEGER);
    CREATE INDEX orders_id_ix ON orders (id);
    CREATE TABLE sessions (id INTEGER PRIMARY KEY, token TEXT NOT NULL, seen INTEGER);
    CREATE INDEX sessions_token ON sessions (token);
    INSERT INTO customers VALUES (1, 'a', 'a@x', 30), (2, 'b', NULL, 40);
    INSERT INTO orders VALUES (1, 1, 'n'), (2, 2, NULL);
    INSERT INTO metrics VALUES (1, 5, 'l');";

/// Changes both backends make the same way.
const COMMON_CHANGES: &str = "
    ALTER TABLE customers ADD COLUMN phone TEXT;
    ALTER TABLE orders DROP COLUMN note;
    ALTER TABLE customers RENAME COLUMN email TO email_address;
    DROP INDEX orders_customer;
    CREATE INDEX customers_name ON customers (name);
    DROP TABLE legacy;
    CREATE TABLE audit_trail (id INTEGER);
    ALTER TABLE sessions RENAME TO user_sessions;
    DROP INDEX orders_id_ix;
    CREATE INDEX orders_id_ix ON orders (customer_id, id);";

/// Type, nullability, default, primary and foreign key: ALTER on PostgreSQL; SQLite has no
/// ALTER COLUMN, so the table is rebuilt.
const PG_RETYPE: &str = "
    ALTER TABLE metrics ALTER COLUMN val TYPE double precision;
    ALTER TABLE metrics ALTER COLUMN label DROP NOT NULL;
    ALTER TABLE metrics ALTER COLUMN id SET DEFAULT 7;
    ALTER TABLE metrics ADD PRIMARY KEY (id);
    ALTER TABLE metrics ADD COLUMN customer_id INTEGER REFERENCES customers(id);";
const SQLITE_RETYPE: &str = "
    CREATE TABLE metrics_new (id INTEGER PRIMARY KEY DEFAULT 7, val REAL, label TEXT,
        customer_id INTEGER REFERENCES customers(id));
    INSERT INTO metrics_new (id, val, label) SELECT id, val, label FROM metrics;
    DROP TABLE metrics;
    ALTER TABLE metrics_new RENAME TO metrics;";

async fn check(db: TestDb, url: String, ws: &support::Workspace) {
    db.exec(SETUP).await;
    let first = ghost(ws.path(), &url, &[]);
    assert_eq!(first["first_run"], true);
    assert_eq!(first["schema_changes"], json!([]));
    db.exec(COMMON_CHANGES).await;
    db.exec(if db.is_pg() { PG_RETYPE } else { SQLITE_RETYPE })
        .await;
    let second = ghost(ws.path(), &url, &[]);
    assert_eq!(second["first_run"], false);
    let changes = second["schema_changes"].as_array().unwrap();
    let has = |expected: Value| {
        assert!(
            changes.iter().any(|c| expected
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| &c[k] == v)),
            "missing {expected} in {changes:#?}"
        )
    };
    let (customers, orders, metrics) = (
        db.table("customers"),
        db.table("orders"),
        db.table("metrics"),
    );
    has(json!({"kind": "column_added", "table": customers, "column": "phone"}));
    has(json!({"kind": "column_dropped", "table": orders, "column": "note"}));
    has(
        json!({"kind": "column_renamed", "table": customers, "from": "email", "to": "email_address"}),
    );
    has(json!({"kind": "type_changed", "table": metrics, "column": "val"}));
    has(
        json!({"kind": "nullability_changed", "table": metrics, "column": "label", "nullable": true}),
    );
    has(json!({"kind": "index_dropped", "table": orders, "index": "orders_customer"}));
    has(json!({"kind": "index_added", "table": customers, "index": "customers_name"}));
    has(json!({"kind": "table_dropped", "table": db.table("legacy")}));
    has(json!({"kind": "table_added", "table": db.table("audit_trail")}));
    has(json!({"kind": "default_changed", "table": metrics, "column": "id", "from": null}));
    has(json!({"kind": "primary_key_changed", "table": metrics, "from": [], "to": ["id"]}));
    has(json!({"kind": "foreign_key_added", "table": metrics}));
    has(json!({"kind": "index_changed", "table": orders, "index": "orders_id_ix"}));
    // A renamed table is one change, not a drop plus an add, and its indexes did not change.
    let (sessions, user_sessions) = (db.table("sessions"), db.table("user_sessions"));
    has(json!({"kind": "table_renamed", "from": sessions, "to": user_sessions}));
    assert!(
        !changes.iter().any(|c| c["kind"] != "table_renamed"
            && (c["table"] == sessions || c["table"] == user_sessions)),
        "{changes:#?}"
    );
    // A rename is not also reported as a drop plus an add.
    assert!(
        !changes
            .iter()
            .any(|c| c["column"] == "email" || c["column"] == "email_address")
    );
    let report = std::fs::read_to_string(second["report_path"].as_str().unwrap()).unwrap();
    assert!(report.contains("renamed to `email_address`"), "{report}");
    assert!(
        report.contains(&format!("table `{sessions}` renamed to `{user_sessions}`")),
        "{report}"
    );
    // Severity of the run: drops and renames are critical.
    let summary_at = report.find("## Summary").unwrap();
    assert!(report[summary_at..].contains("Highest severity: **critical**"));
    // A third run with no change reports none.
    let third = ghost(ws.path(), &url, &[]);
    assert_eq!(third["schema_changes"], json!([]));
    crate::assert_report_consistent(&third);
}

#[tokio::test]
async fn sqlite_schema_diff_across_runs() {
    let ws = support::Workspace::new();
    let (db, url) = sqlite_db(ws.path(), "diff").await;
    check(db, url, &ws).await;
}

#[tokio::test]
async fn postgres_schema_diff_across_runs() {
    let Some((db, url)) = pg_db("diff").await else {
        return;
    };
    let ws = support::Workspace::new();
    check(db, url, &ws).await;
}
