//! A small SQLite shop database (customers, orders, products) in a test's workspace, and a
//! policy naming it `shop`: what the `ghost` and task tests profile.

use std::str::FromStr;

use serde_json::json;
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode};

use super::Workspace;

/// Opens the SQLite file at `url` (creating it, rollback journal) and runs `script` on it;
/// returns the connection (kept open, e.g. to hold a lock the script took).
pub async fn sqlite_script(url: &str, script: &str) -> SqliteConnection {
    let mut conn = SqliteConnectOptions::from_str(url)
        .unwrap()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Delete)
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(script.to_string()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

/// `<ws>/shop.db` with three small tables.
pub async fn shop_db(ws: &Workspace) -> String {
    let url = format!("sqlite://{}", ws.path().join("shop.db").display());
    sqlite_script(
        &url,
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT);
         INSERT INTO customers VALUES (1, 'ada', 'uk'), (2, 'bob', 'fr'), (3, 'cy', NULL);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total REAL, placed TEXT);
         INSERT INTO orders VALUES (1, 1, 9.5, '2026-01-01T10:00:00Z'), (2, 2, 20.0, '2026-01-02T10:00:00Z');
         CREATE TABLE products (id INTEGER PRIMARY KEY, sku TEXT, price REAL);
         INSERT INTO products VALUES (1, 'a-1', 1.5), (2, 'b-2', 2.5);",
    )
    .await;
    url
}

/// A policy naming the database `shop`.
pub fn policy(ws: &Workspace, url: &str) -> String {
    ws.write(
        "policy.json",
        json!({ "sql": { "databases": { "shop": { "url": url } } } }).to_string(),
    )
    .display()
    .to_string()
}
