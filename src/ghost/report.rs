//! The run's Markdown report and its charts: `reports/<database>/<UTC timestamp>/report.md`
//! with PNGs beside it, and `reports/<database>/latest.md`, the same report with its links
//! pointing into the newest run's directory. The Markdown reads on its own: summary first, then
//! schema changes, findings by severity (with their charts linked), problems and the tables.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::anomaly::{Finding, FindingKind, median_mad};
use super::charts;
use super::history::History;
use super::markdown::{inline, link_text};
use super::{GhostRun, TableProfile};
use crate::severity::Severity;

/// Tables that get a row-count history chart (those with findings first).
pub const MAX_ROW_CHARTS: usize = 20;
/// Findings listed in the summary.
pub const SUMMARY_TOP_FINDINGS: usize = 5;
/// A null-rate change below this is not charted.
const NULL_CHART_MIN_CHANGE: f64 = 0.01;

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// What was written.
pub struct Written {
    pub markdown: String,
    pub charts: Vec<PathBuf>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A chart's file name: `<kind>-<names, file-name-safe and cut>-<hash>.png`. The readable part
/// may collide (`a.b` and `a_b`, long names cut alike); the hash of the exact names does not.
fn chart_file(kind: &str, names: &[&str]) -> String {
    use sha2::Digest;
    let readable: Vec<String> = names
        .iter()
        .map(|name| {
            name.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .take(60)
                .collect()
        })
        .collect();
    let digest = sha2::Sha256::digest(names.join("\0"));
    format!(
        "{kind}-{}-{}.png",
        readable.join("-"),
        hex::encode(&digest[..4])
    )
}

/// Writes the report directory, `report.md`, the charts and `latest.md`; sets the run's paths.
pub fn write(
    reports_dir: &Path,
    run: &mut GhostRun,
    past: &History,
    now: DateTime<Utc>,
) -> Result<Written, ReportError> {
    let base = reports_dir.join(&run.database);
    let stamp = now.format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let mut dir_name = stamp.clone();
    let mut n = 1;
    while base.join(&dir_name).exists() {
        n += 1;
        dir_name = format!("{stamp}-{n}");
    }
    let dir = base.join(&dir_name);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let (chart_links, chart_paths, chart_errors) = draw_charts(&dir, run, past);
    run.errors.extend(chart_errors);
    let report = render(run, past, &chart_links, "");
    let report_path = dir.join("report.md");
    std::fs::write(&report_path, &report).map_err(io(&report_path))?;
    let latest = render(run, past, &chart_links, &format!("{dir_name}/"));
    let latest = format!("> Latest run: [{dir_name}/report.md]({dir_name}/report.md)\n\n{latest}");
    let latest_path = base.join("latest.md");
    let tmp = base.join(".latest.md.tmp");
    std::fs::write(&tmp, latest).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &latest_path).map_err(io(&latest_path))?;
    run.report_path = report_path;
    run.latest_path = latest_path;
    Ok(Written {
        markdown: report,
        charts: chart_paths,
    })
}

/// The charts drawn: `(table, column for a value chart, kind, file name)`, kind being `rows`,
/// `nulls` or `values`.
type ChartLinks = Vec<(String, Option<String>, &'static str, String)>;

fn draw_charts(
    dir: &Path,
    run: &GhostRun,
    past: &History,
) -> (ChartLinks, Vec<PathBuf>, Vec<String>) {
    let mut links = ChartLinks::new();
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut record =
        |result: Result<(), charts::ChartError>,
         file: String,
         (table, column, kind): (String, Option<String>, &'static str)| match result {
            Ok(()) => {
                files.push(dir.join(&file));
                links.push((table, column, kind, file));
            }
            Err(e) => errors.push(e.to_string()),
        };
    let mut tables: Vec<&TableProfile> = run.profiles.iter().collect();
    tables.sort_by_key(|p| !run.findings.iter().any(|f| f.table == p.table));
    let now = parse_time(&run.taken_at);
    let history = |table: &str| -> Vec<(DateTime<Utc>, &TableProfile)> {
        past.get(table)
            .into_iter()
            .flatten()
            .filter_map(|h| Some((parse_time(&h.taken_at)?, &h.profile)))
            .collect()
    };
    for p in tables.iter().take(MAX_ROW_CHARTS) {
        let mut points: Vec<(DateTime<Utc>, i64)> = history(&p.table)
            .into_iter()
            .map(|(t, h)| (t, h.row_count))
            .collect();
        points.extend(now.map(|t| (t, p.row_count)));
        let anomaly = run
            .findings
            .iter()
            .filter(|f| f.table == p.table && rows_chart_kind(f.kind))
            .max_by_key(|f| f.severity)
            .map(|f| format!("{}: {} (this run)", f.severity, kind_text(f.kind)));
        let file = chart_file("rows", &[&p.table]);
        let result =
            charts::row_count_history(&dir.join(&file), &p.table, &points, anomaly.as_deref());
        record(result, file, (p.table.clone(), None, "rows"));
    }
    for p in &run.profiles {
        let earlier = history(&p.table);
        let changed: Vec<charts::NullHistory> = p
            .columns
            .iter()
            .filter_map(|c| {
                let mut points: Vec<(DateTime<Utc>, f64)> = earlier
                    .iter()
                    .filter_map(|(t, h)| Some((*t, h.column(&c.name)?.null_rate)))
                    .collect();
                if points.is_empty() {
                    return None;
                }
                let rates: Vec<f64> = points.iter().map(|p| p.1).collect();
                let usual = median_mad(&rates).0;
                if (c.null_rate - usual).abs() < NULL_CHART_MIN_CHANGE {
                    return None;
                }
                points.extend(now.map(|t| (t, c.null_rate)));
                let anomalous = run.findings.iter().any(|f| {
                    f.kind == FindingKind::NullSpike
                        && f.table == p.table
                        && f.column.as_deref() == Some(c.name.as_str())
                });
                Some(charts::NullHistory {
                    column: c.name.clone(),
                    points,
                    anomalous,
                })
            })
            .collect();
        if !changed.is_empty() {
            let file = chart_file("nulls", &[&p.table]);
            let result = charts::null_rate_history(&dir.join(&file), &p.table, &changed);
            record(result, file, (p.table.clone(), None, "nulls"));
        }
    }
    for f in run
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::NewValues)
    {
        let (Some(col), Some(p)) = (&f.column, run.profiles.iter().find(|p| p.table == f.table))
        else {
            continue;
        };
        let Some(values) = p.column(col).and_then(|c| c.values.as_ref()) else {
            continue;
        };
        let seen: std::collections::BTreeSet<&str> = past
            .get(&p.table)
            .into_iter()
            .flatten()
            .filter_map(|h| h.profile.column(col)?.values.as_ref())
            .flatten()
            .map(|v| v.value.as_str())
            .collect();
        let bars: Vec<(String, i64, bool)> = values
            .iter()
            .map(|v| (v.value.clone(), v.count, !seen.contains(v.value.as_str())))
            .collect();
        let file = chart_file("values", &[&p.table, col]);
        let result = charts::value_distribution(&dir.join(&file), &p.table, col, &bars);
        record(result, file, (p.table.clone(), Some(col.clone()), "values"));
    }
    (links, files, errors)
}

/// A run's time as stored (RFC 3339); `None` for a value that does not parse.
fn parse_time(taken_at: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(taken_at)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Findings shown on the row-count chart.
fn rows_chart_kind(kind: FindingKind) -> bool {
    matches!(
        kind,
        FindingKind::RowCount | FindingKind::GrowthStalled | FindingKind::FreshnessStalled
    )
}

/// A row-count chart's finding in the legend.
fn kind_text(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::GrowthStalled => "growth stalled",
        FindingKind::FreshnessStalled => "freshness stalled",
        _ => "row count change",
    }
}

fn chart_for<'a>(
    links: &'a ChartLinks,
    table: &str,
    column: Option<&str>,
    kind: &str,
) -> Option<&'a str> {
    links
        .iter()
        .find(|(t, c, k, _)| t == table && c.as_deref() == column && *k == kind)
        .map(|l| l.3.as_str())
}

fn finding_chart<'a>(links: &'a ChartLinks, f: &Finding) -> Option<&'a str> {
    match f.kind {
        FindingKind::NewValues => chart_for(links, &f.table, f.column.as_deref(), "values"),
        FindingKind::NullSpike => chart_for(links, &f.table, None, "nulls"),
        k if rows_chart_kind(k) => chart_for(links, &f.table, None, "rows"),
        _ => None,
    }
}

fn counts_by_severity<'a>(severities: impl Iterator<Item = &'a Severity>) -> String {
    let mut counts = [0usize; 3];
    for s in severities {
        counts[*s as usize] += 1;
    }
    format!(
        "{} critical, {} warning, {} info",
        counts[2], counts[1], counts[0]
    )
}

/// The Markdown of the report; `prefix` is put before every relative link.
pub fn render(run: &GhostRun, past: &History, links: &ChartLinks, prefix: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Data Ghost report: {}\n", run.database);
    let _ = writeln!(
        md,
        "{} · run {} UTC · {} table(s) profiled, {} failed · {:.1} s\n",
        run.backend.as_deref().unwrap_or("unreachable database"),
        run.taken_at,
        run.tables_profiled,
        run.tables_failed,
        run.elapsed_ms as f64 / 1000.0
    );
    md.push_str("## Summary\n\n");
    let highest = run
        .max_severity()
        .map_or("none".to_string(), |s| s.to_string());
    let _ = writeln!(md, "- Highest severity: **{highest}**");
    let change_sev: Vec<Severity> = run.schema_changes.iter().map(|c| c.severity()).collect();
    let _ = writeln!(
        md,
        "- Schema changes: {} ({})",
        run.schema_changes.len(),
        counts_by_severity(change_sev.iter())
    );
    let _ = writeln!(
        md,
        "- Findings: {} ({})",
        run.findings.len(),
        counts_by_severity(run.findings.iter().map(|f| &f.severity))
    );
    if run.first_run && run.backend.is_some() {
        md.push_str(
            "- First run on this database: this is the baseline; schema changes and anomalies \
             are reported from the next run on.\n",
        );
    }
    if !run.errors.is_empty() {
        let _ = writeln!(md, "- Problems: {} (see below)", run.errors.len());
    }
    for p in run.profiles.iter().filter(|p| p.sample_percent.is_some()) {
        let _ = writeln!(
            md,
            "- Sampled: `{}` column statistics come from `TABLESAMPLE SYSTEM ({:.4}%)` ({} rows \
             examined) because its estimate of {:.0} rows is above the sampling threshold; the \
             row count and freshness are exact, and distinct counts are estimated from the \
             sample (Haas–Stokes estimator).",
            inline(&p.table),
            p.sample_percent.unwrap_or_default(),
            p.rows_examined,
            p.row_estimate.unwrap_or_default()
        );
    }
    // Most severe first; at the same severity, schema changes first.
    let top: Vec<String> = run
        .items()
        .into_iter()
        .filter(|(s, _)| *s > Severity::Info)
        .take(SUMMARY_TOP_FINDINGS)
        .map(|(s, m)| format!("  - **{s}** {m}"))
        .collect();
    if !top.is_empty() {
        let _ = writeln!(md, "- Top items:\n{}", top.join("\n"));
    }
    md.push_str("\n## Schema changes\n\n");
    if run.schema_changes.is_empty() {
        md.push_str(if run.first_run {
            "Baseline snapshot taken.\n"
        } else {
            "None since the previous run.\n"
        });
    } else {
        md.push_str("| Severity | Change |\n|---|---|\n");
        let mut changes: Vec<_> = run.schema_changes.iter().collect();
        changes.sort_by_key(|c| std::cmp::Reverse(c.severity()));
        for c in changes {
            let _ = writeln!(md, "| {} | {} |", c.severity(), c.describe());
        }
    }
    md.push_str("\n## Findings\n\n");
    if run.findings.is_empty() {
        md.push_str("Nothing unusual.\n");
    }
    for sev in [Severity::Critical, Severity::Warning, Severity::Info] {
        let group: Vec<&Finding> = run.findings.iter().filter(|f| f.severity == sev).collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(md, "### {}\n", capitalised(sev.as_str()));
        for f in group {
            let chart = finding_chart(links, f)
                .map(|file| format!(" ([chart]({prefix}{file}))"))
                .unwrap_or_default();
            let _ = writeln!(md, "- `{}`: {}{chart}", inline(&f.table), f.message);
        }
        md.push('\n');
    }
    if !run.errors.is_empty() {
        md.push_str("\n## Problems\n\n");
        for e in &run.errors {
            let _ = writeln!(md, "- {e}");
        }
    }
    if !run.profiles.is_empty() {
        md.push_str("\n## Tables\n\n| Table | Rows | Change | Sampled | Freshness | Full scans | Time |\n|---|---:|---:|---|---|---:|---:|\n");
        for p in &run.profiles {
            let change = past
                .get(&p.table)
                .and_then(|h| h.last())
                .map_or("new".to_string(), |h| {
                    format!("{:+}", p.row_count - h.profile.row_count)
                });
            let kind = if p.kind.is_table() {
                String::new()
            } else {
                format!(" ({})", p.kind.label())
            };
            let _ = writeln!(
                md,
                "| `{}`{kind} | {} | {} | {} | {} | {} | {} ms |",
                inline(&p.table),
                p.row_count,
                change,
                p.sample_percent.map_or("no".into(), |s| format!("{s:.4}%")),
                p.freshness.as_deref().map_or("-".into(), inline),
                p.full_scans,
                p.elapsed_ms
            );
        }
    }
    for p in run.profiles.iter().filter(|p| !p.partitions.is_empty()) {
        let _ = writeln!(
            md,
            "\n### Partitions of `{}`\n\n| Partition | Rows | Freshness |\n|---|---:|---|",
            inline(&p.table)
        );
        for part in &p.partitions {
            let _ = writeln!(
                md,
                "| `{}` | {} | {} |",
                inline(&part.partition),
                part.row_count,
                part.freshness.as_deref().map_or("-".into(), inline)
            );
        }
    }
    if !links.is_empty() {
        md.push_str("\n## Charts\n\n");
        for (table, column, kind, file) in links {
            let title = match (kind, column) {
                (&"rows", _) => format!("Row count history of {table}"),
                (&"nulls", _) => format!("Null rates of {table}"),
                (_, Some(c)) => format!("Values of {table}.{c}"),
                _ => table.clone(),
            };
            let title = link_text(&title);
            let _ = writeln!(md, "![{title}]({prefix}{file})\n");
        }
    }
    md
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ghost::diff::SchemaChange;

    fn run(schema_changes: Vec<SchemaChange>, findings: Vec<Finding>) -> GhostRun {
        GhostRun {
            backend: Some("sqlite".into()),
            first_run: false,
            tables_profiled: 1,
            schema_changes,
            findings,
            ..GhostRun::started(
                "r1".into(),
                "shop".into(),
                "2026-01-01T00:00:00.000Z".into(),
            )
        }
    }

    fn finding(severity: Severity, table: &str, message: &str) -> Finding {
        Finding {
            severity,
            kind: FindingKind::RowCount,
            table: table.into(),
            column: None,
            message: message.into(),
        }
    }

    fn top_items(md: &str) -> Vec<&str> {
        md.lines()
            .skip_while(|l| !l.starts_with("- Top items:"))
            .skip(1)
            .take_while(|l| l.starts_with("  - "))
            .collect()
    }

    #[test]
    fn top_items_are_the_most_severe_with_schema_changes_first_among_equals() {
        let changes: Vec<SchemaChange> = (0..6)
            .map(|i| SchemaChange::IndexDropped {
                table: "t".into(),
                index: format!("ix{i}"),
            })
            .chain([SchemaChange::ColumnDropped {
                table: "t".into(),
                column: "gone".into(),
            }])
            .collect();
        let r = run(
            changes,
            vec![finding(Severity::Critical, "orders", "row count fell")],
        );
        let md = render(&r, &History::new(), &ChartLinks::new(), "");
        let top = top_items(&md);
        assert_eq!(top.len(), SUMMARY_TOP_FINDINGS, "{md}");
        assert!(
            top[0].contains("**critical** column `t.gone` dropped"),
            "{top:?}"
        );
        assert!(
            top[1].contains("**critical** `orders`: row count fell"),
            "{top:?}"
        );
        assert!(
            top[2..].iter().all(|l| l.contains("**warning**")),
            "{top:?}"
        );
    }

    #[test]
    fn names_from_the_database_cannot_break_the_markdown() {
        let r = run(
            vec![SchemaChange::TableAdded {
                table: "a`b|c\nd".into(),
            }],
            vec![finding(Severity::Warning, "x`y|z", "m")],
        );
        let md = render(&r, &History::new(), &ChartLinks::new(), "");
        assert!(md.contains("table `a'b¦c d` added"), "{md}");
        assert!(md.contains("- `x'y¦z`: m"), "{md}");
        assert!(!md.contains("a`b") && !md.contains("x`y"), "{md}");
        let links: ChartLinks = vec![("t](evil)".into(), None, "rows", "rows-t.png".into())];
        let md = render(&r, &History::new(), &links, "");
        assert!(
            md.contains("![Row count history of t)(evil)](rows-t.png)"),
            "{md}"
        );
    }

    #[test]
    fn chart_files_of_different_names_never_collide() {
        let long = "x".repeat(70);
        let pairs = [
            (chart_file("rows", &["a.b"]), chart_file("rows", &["a_b"])),
            (
                chart_file("rows", &[&format!("{long}1")]),
                chart_file("rows", &[&format!("{long}2")]),
            ),
            (
                chart_file("values", &["a", "b_c"]),
                chart_file("values", &["a_b", "c"]),
            ),
        ];
        for (one, other) in pairs {
            assert_ne!(one, other);
        }
        let f = chart_file("values", &["public.orders", "kind"]);
        assert!(
            f.starts_with("values-public_orders-kind-") && f.ends_with(".png"),
            "{f}"
        );
        assert_eq!(
            f,
            chart_file("values", &["public.orders", "kind"]),
            "stable"
        );
    }
}
