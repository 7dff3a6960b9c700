//! Every chart kind drawn from the library over the spans runs really have (moments apart, five
//! minutes apart, across midnight, days, weeks, more than a year): each is a PNG of the
//! documented size. The PNGs stay in `target/tmp/chart-gallery/` for a person to look at.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use pi_mcp::ghost::charts::{self, NullHistory};

use super::assert_chart_png;

fn gallery() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("chart-gallery");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T16:33:04.440Z")
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn row_count_charts_over_every_span() {
    let dir = gallery();
    for (name, every, runs, start) in [
        ("seconds", Duration::milliseconds(180), 5, 1_200),
        ("minutes", Duration::minutes(5), 8, 84_000),
        ("midnight", Duration::hours(2), 10, 1_200_000),
        ("days", Duration::hours(6), 12, 5_400),
        ("weeks", Duration::days(1), 30, 48_000_000),
        ("year", Duration::days(7), 62, 250),
    ] {
        let mut points: Vec<(DateTime<Utc>, i64)> = (0..runs)
            .map(|i| (t0() + every * i, start + i64::from(i) * start / 20))
            .collect();
        // This run fell by 87.5%.
        if let Some(last) = points.last_mut() {
            last.1 = start / 8;
        }
        let path = dir.join(format!("rows-{name}.png"));
        charts::row_count_history(
            &path,
            "public.page_views",
            &points,
            Some("critical: row count change (this run)"),
        )
        .unwrap();
        assert_chart_png(&path);
    }
    // The first run: one point, nothing to mark.
    let path = dir.join("rows-first-run.png");
    charts::row_count_history(&path, "orders", &[(t0(), 480)], None).unwrap();
    assert_chart_png(&path);
}

#[test]
fn null_rate_chart_rings_the_spike() {
    let rates = |base: f64, last: f64| -> Vec<(DateTime<Utc>, f64)> {
        (0..6)
            .map(|i| (t0() + Duration::days(i), if i == 5 { last } else { base }))
            .collect()
    };
    let path = gallery().join("nulls.png");
    charts::null_rate_history(
        &path,
        "customers",
        &[
            NullHistory {
                column: "email".into(),
                points: rates(0.035, 0.52),
                anomalous: true,
            },
            NullHistory {
                column: "phone_number_of_the_customer".into(),
                points: rates(0.20, 0.23),
                anomalous: false,
            },
        ],
    )
    .unwrap();
    assert_chart_png(&path);
}

#[test]
fn value_chart_shows_new_values() {
    let values: Vec<(String, i64, bool)> = [
        ("paid", 41_250, false),
        ("shipped", 38_900, false),
        ("delivered", 120_400, false),
        ("cancelled", 2_100, false),
        ("refunded_by_bot", 6_600, true),
        ("a-very-long-status-name-nobody-reads", 12, true),
    ]
    .iter()
    .map(|(v, n, new)| (v.to_string(), *n, *new))
    .collect();
    let path = gallery().join("values.png");
    charts::value_distribution(&path, "orders", "status", &values).unwrap();
    assert_chart_png(&path);
}

#[test]
fn alert_chart_draws_the_threshold_and_rings_breaches() {
    let text = r#"[{"id": "checkout-p95", "name": "Checkout p95 latency", "type": "db_query",
        "params": {"query": "select 1"},
        "condition": {"operator": "gt", "threshold": 1500}}]"#;
    let rule = pi_mcp::monitor::validate::parse(text, "t")
        .unwrap()
        .rules
        .remove(0);
    let mut state = pi_mcp::monitor::state::RuleState::new("checkout-p95", t0());
    let dir = gallery();
    let empty = dir.join("alert-no-values.png");
    pi_mcp::monitor::chart::render(&empty, &rule, &state).unwrap();
    assert_chart_png(&empty);
    state.recent = (0..20)
        .map(|i| {
            let v = if i >= 15 {
                1_900.0 + f64::from(i) * 40.0
            } else {
                900.0 + f64::from(i % 4) * 110.0
            };
            (t0() + Duration::minutes(5 * i64::from(i)), v)
        })
        .collect();
    state.state = pi_mcp::monitor::state::StateKind::Firing;
    let path = dir.join("alert.png");
    pi_mcp::monitor::chart::render(&path, &rule, &state).unwrap();
    assert_chart_png(&path);
}
