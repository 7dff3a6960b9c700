//! Data Ghost reports: every run per database, newest first (`reports/<database>/<run>/
//! report.md`), each shown with its Markdown rendered and its PNG charts inline, served from
//! the run's own directory and nowhere else.

use std::path::{Path, PathBuf};

use axum::Extension;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::Shared;
use super::auth::Session;
use super::layout::{markdown, page};

/// The directory of transcripts under the reports directory (not a database).
pub const AGENT_DIR: &str = "agent";
/// Runs listed per database.
pub const RUNS_PER_DATABASE: usize = 50;

/// One report run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub database: String,
    /// The run directory's name (a UTC timestamp, so names sort by time).
    pub run: String,
}

impl Run {
    pub fn href(&self) -> String {
        format!("/reports/{}/{}", self.database, self.run)
    }
}

/// A path segment that names a file or directory directly: no separators, no `..`, no
/// hidden names, printable ASCII only.
pub fn plain_segment(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | ':'))
}

fn dirs(path: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| plain_segment(n))
        .collect();
    out.sort();
    out
}

/// Every database's runs, newest first within each; databases by name.
pub fn runs(reports_dir: &Path) -> Vec<(String, Vec<Run>)> {
    dirs(reports_dir)
        .into_iter()
        .filter(|d| d != AGENT_DIR)
        .map(|database| {
            let mut runs: Vec<Run> = dirs(&reports_dir.join(&database))
                .into_iter()
                .filter(|r| {
                    reports_dir
                        .join(&database)
                        .join(r)
                        .join("report.md")
                        .is_file()
                })
                .map(|run| Run {
                    database: database.clone(),
                    run,
                })
                .collect();
            runs.reverse();
            runs.truncate(RUNS_PER_DATABASE);
            (database, runs)
        })
        .filter(|(_, runs)| !runs.is_empty())
        .collect()
}

/// The newest `n` runs over all databases.
pub fn newest(reports_dir: &Path, n: usize) -> Vec<Run> {
    let mut all: Vec<Run> = runs(reports_dir).into_iter().flat_map(|(_, r)| r).collect();
    all.sort_by(|a, b| b.run.cmp(&a.run));
    all.truncate(n);
    all
}

/// `reports_dir/parts...` if every part is a plain segment and the result stays inside.
pub fn inside(reports_dir: &Path, parts: &[&str]) -> Option<PathBuf> {
    if !parts.iter().all(|p| plain_segment(p)) {
        return None;
    }
    let base = reports_dir.canonicalize().ok()?;
    let path = parts
        .iter()
        .fold(base.clone(), |p, part| p.join(part))
        .canonicalize()
        .ok()?;
    path.starts_with(&base).then_some(path)
}

/// A list of runs as links.
pub fn run_list(runs: &[Run]) -> Markup {
    html! {
        ul {
            @for r in runs {
                li { a href=(r.href()) { (r.database) " · " (r.run) } }
            }
        }
    }
}

/// `GET /reports`.
pub async fn list(State(s): State<Shared>, Extension(session): Extension<Session>) -> Markup {
    let all = runs(&s.console.app.reports_dir);
    page(
        "Reports",
        "/reports",
        Some(&session),
        html! {
            @if all.is_empty() {
                p { "No Data Ghost reports yet under " code { (s.console.app.reports_dir.display()) } "." }
            }
            @for (database, runs) in &all {
                section aria-labelledby={"db-" (database)} {
                    h2 id={"db-" (database)} { "Database " (database) }
                    (run_list(runs))
                }
            }
        },
    )
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such report\n").into_response()
}

/// `GET /reports/{db}/{run}`: the report with its charts.
pub async fn show(
    State(s): State<Shared>,
    Extension(session): Extension<Session>,
    UrlPath((db, run)): UrlPath<(String, String)>,
) -> Response {
    if db == AGENT_DIR {
        return not_found();
    }
    let Some(path) = inside(&s.console.app.reports_dir, &[&db, &run, "report.md"]) else {
        return not_found();
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return not_found();
    };
    let html = super::markdown::render(&text, &format!("/reports/{db}/{run}/"));
    page(
        &format!("Report {db} · {run}"),
        "/reports",
        Some(&session),
        html! {
            p { a href="/reports" { "All reports" } }
            (markdown(html))
        },
    )
    .into_response()
}

/// `GET /reports/{db}/{run}/{file}`: a chart (PNG) of the run, or its Markdown.
pub async fn file(
    State(s): State<Shared>,
    UrlPath((db, run, name)): UrlPath<(String, String, String)>,
) -> Response {
    let kind = if name.ends_with(".png") {
        "image/png"
    } else if name.ends_with(".md") {
        "text/plain; charset=utf-8"
    } else {
        return not_found();
    };
    let Some(path) = inside(&s.console.app.reports_dir, &[&db, &run, &name]) else {
        return not_found();
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let mut r = bytes.into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=3600"),
            );
            r
        }
        Err(_) => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_inside_the_reports_directory_are_served() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("shop/20260101T000000Z")).unwrap();
        std::fs::write(dir.path().join("shop/20260101T000000Z/report.md"), "# r").unwrap();
        std::fs::write(dir.path().join("secret.png"), "x").unwrap();
        assert!(inside(dir.path(), &["shop", "20260101T000000Z", "report.md"]).is_some());
        assert!(inside(dir.path(), &["shop", "..", "secret.png"]).is_none());
        assert!(inside(dir.path(), &["..", "etc"]).is_none());
        assert!(inside(dir.path(), &["shop/20260101T000000Z"]).is_none());
        assert_eq!(
            runs(dir.path()),
            vec![(
                "shop".to_string(),
                vec![Run {
                    database: "shop".into(),
                    run: "20260101T000000Z".into()
                }]
            )]
        );
    }
}
