//! The Data Ghost through the built binary (`pi-mcp ghost --database URL --json`) on SQLite and
//! on a real PostgreSQL (`PI_MCP_TEST_PG_URL`, a fresh database per test): schema diff across
//! runs, planted anomalies, report files and charts, bad input, heartbeat and demo.

#[path = "../support/mod.rs"]
mod support;

mod anomalies;
mod bad_input;
mod charts;
mod delivery;
mod entry_points;
mod pg_objects;
mod profiling;
mod schema_diff;

use std::path::{Path, PathBuf};

use serde_json::Value;
use sqlx::{PgPool, SqlitePool};

/// A database a test owns, and the URL ghost is given.
pub enum TestDb {
    Pg(PgPool),
    Lite(SqlitePool),
}

impl TestDb {
    /// Runs `sql` (several statements allowed).
    pub async fn exec(&self, sql: &str) {
        let result = match self {
            TestDb::Pg(p) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(p)
                .await
                .map(|_| ()),
            TestDb::Lite(p) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(p)
                .await
                .map(|_| ()),
        };
        if let Err(e) = result {
            panic!("test setup SQL failed: {e}\n{sql}");
        }
    }

    pub fn is_pg(&self) -> bool {
        matches!(self, TestDb::Pg(_))
    }

    /// `public.name` on PostgreSQL, `name` on SQLite.
    pub fn table(&self, name: &str) -> String {
        if self.is_pg() {
            format!("public.{name}")
        } else {
            name.to_string()
        }
    }
}

/// A fresh PostgreSQL database `ghost_<name>` (None when the service is absent: test skips).
pub async fn pg_db(name: &str) -> Option<(TestDb, String)> {
    let base = support::require_service("PI_MCP_TEST_PG_URL")?;
    let admin = PgPool::connect(&base)
        .await
        .expect("connect to PI_MCP_TEST_PG_URL");
    let db = format!("ghost_{name}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .expect("drop test database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let (prefix, _) = base.split('?').next().unwrap().rsplit_once('/').unwrap();
    let url = format!("{prefix}/{db}");
    let pool = PgPool::connect(&url)
        .await
        .expect("connect to the test database");
    Some((TestDb::Pg(pool), url))
}

/// A fresh SQLite file `<ws>/<name>.db`.
pub async fn sqlite_db(ws: &Path, name: &str) -> (TestDb, String) {
    let url = format!("sqlite://{}/{name}.db?mode=rwc", ws.display());
    let pool = SqlitePool::connect(&url)
        .await
        .expect("create the SQLite database");
    (
        TestDb::Lite(pool),
        format!("sqlite://{}/{name}.db", ws.display()),
    )
}

/// `pi-mcp ghost --database URL --json <extra>`: the run as JSON (panics with stderr on failure).
pub fn ghost(ws: &Path, url: &str, extra: &[&str]) -> Value {
    // No notify channel unless a test configures one.
    let quiet = [
        ("SLACK_WEBHOOK_URL", ""),
        ("SMTP_URL", ""),
        ("ALERT_WEBHOOK_URL", ""),
    ];
    ghost_env(ws, url, extra, &quiet)
}

/// [`ghost`] with extra environment variables.
pub fn ghost_env(ws: &Path, url: &str, extra: &[&str], env: &[(&str, &str)]) -> Value {
    let mut args = vec!["ghost", "--database", url, "--json"];
    args.extend_from_slice(extra);
    let out = support::cli(ws, &args, env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pi-mcp ghost failed: {stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ghost --json printed no JSON ({e}): {stderr}"))
}

/// The findings of a run as `(kind, table, column, severity)`.
pub fn findings(run: &Value) -> Vec<(String, String, Option<String>, String)> {
    run["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_string(),
                f["table"].as_str().unwrap().to_string(),
                f["column"].as_str().map(str::to_string),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Relative link targets `](target)` of a Markdown file.
pub fn links(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = markdown;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    out
}

/// The report and latest.md exist, every link in both resolves, every chart decodes as a PNG of
/// the documented size; returns the chart paths.
pub fn assert_report_consistent(run: &Value) -> Vec<PathBuf> {
    let report = PathBuf::from(run["report_path"].as_str().unwrap());
    let latest = PathBuf::from(run["latest_path"].as_str().unwrap());
    for md in [&report, &latest] {
        let text = std::fs::read_to_string(md).unwrap_or_else(|e| panic!("{}: {e}", md.display()));
        assert!(text.contains("## Summary"), "{}", md.display());
        for link in links(&text) {
            let target = md.parent().unwrap().join(&link);
            assert!(target.is_file(), "{} links to missing {link}", md.display());
        }
    }
    assert_eq!(
        report.parent().unwrap().parent(),
        latest.parent(),
        "latest.md sits beside the run directories"
    );
    let charts: Vec<PathBuf> = run["charts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| PathBuf::from(c.as_str().unwrap()))
        .collect();
    for chart in &charts {
        assert_eq!(
            chart.parent(),
            report.parent(),
            "charts sit beside report.md"
        );
        assert_chart_png(chart);
    }
    charts
}

/// `path` decodes as a PNG of the documented chart size.
pub fn assert_chart_png(path: &Path) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder.read_info().expect("chart is a PNG");
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).expect("chart decodes");
    assert_eq!(
        (info.width, info.height),
        (
            pi_mcp::ghost::charts::CHART_WIDTH,
            pi_mcp::ghost::charts::CHART_HEIGHT
        ),
        "{}",
        path.display()
    );
}
