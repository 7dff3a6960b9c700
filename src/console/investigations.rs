//! Agent transcripts (`reports/agent/*.md`: steps, tool calls, decisions, results, token
//! usage), newest first, each linked to the alert that started it. Which alert started which
//! run is read from the audit log (`heartbeat.investigate` entries name the rule and the
//! transcript), not kept twice.

use std::collections::HashMap;
use std::path::Path;

use axum::Extension;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::Shared;
use super::auth::Session;
use super::layout::{markdown, page};
use super::reports::{AGENT_DIR, inside, plain_segment};
use crate::store::Store;
use crate::store::audit::{AuditFilter, search};

/// Transcripts listed.
pub const LISTED: usize = 100;
/// Audit entries read to link transcripts to rules.
const LINK_ENTRIES: i64 = 500;

/// Transcript file names (`*.md` under `reports/agent`), newest first.
pub fn transcripts(reports_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(reports_dir.join(AGENT_DIR)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".md") && plain_segment(n))
        .collect();
    names.sort();
    names.reverse();
    names.truncate(LISTED);
    names
}

/// Transcript file name → the rule whose alert started the run.
pub async fn rules_of(store: &Store) -> HashMap<String, String> {
    let filter = AuditFilter {
        tool: Some("heartbeat.investigate".into()),
        ..AuditFilter::default()
    };
    let entries = search(store, &filter, LINK_ENTRIES)
        .await
        .unwrap_or_default();
    let mut out = HashMap::new();
    for e in entries {
        let (Some(rule), Some((_, path))) = (
            e.arguments["rule"].as_str(),
            e.outcome.rsplit_once("transcript "),
        ) else {
            continue;
        };
        if let Some(name) = Path::new(path.trim()).file_name().and_then(|n| n.to_str()) {
            out.entry(name.to_string())
                .or_insert_with(|| rule.to_string());
        }
    }
    out
}

/// Links to transcripts.
pub fn links(names: &[&String]) -> Markup {
    html! {
        @for n in names {
            a href={"/investigations/" (n)} { (n.trim_end_matches(".md")) } " "
        }
    }
}

/// `GET /investigations`.
pub async fn list(State(s): State<Shared>, Extension(session): Extension<Session>) -> Markup {
    let names = transcripts(&s.console.app.reports_dir);
    let rules = rules_of(&s.console.app.store).await;
    page(
        "Investigations",
        "/investigations",
        Some(&session),
        html! {
            @if names.is_empty() {
                p { "No agent runs yet. An alert rule with " code { "on_fire.investigate" } " starts one when it fires." }
            } @else {
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Transcript" } th scope="col" { "Started by" } } }
                    tbody {
                        @for n in &names {
                            tr {
                                td { a href={"/investigations/" (n)} { (n.trim_end_matches(".md")) } }
                                td {
                                    @match rules.get(n) {
                                        Some(rule) => { "alert " a href={"/alerts#rule-" (rule)} { (rule) } },
                                        None => span.muted { "a person or HEARTBEAT.md" },
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        },
    )
}

/// `GET /investigations/{name}`: one transcript.
pub async fn show(
    State(s): State<Shared>,
    Extension(session): Extension<Session>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let path = name
        .ends_with(".md")
        .then(|| inside(&s.console.app.reports_dir, &[AGENT_DIR, &name]))
        .flatten();
    let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return (StatusCode::NOT_FOUND, "no such transcript\n").into_response();
    };
    let rule = rules_of(&s.console.app.store).await.remove(&name);
    page(
        &format!("Investigation {}", name.trim_end_matches(".md")),
        "/investigations",
        Some(&session),
        html! {
            p {
                a href="/investigations" { "All investigations" }
                @if let Some(rule) = rule { " · started by alert " a href={"/alerts#rule-" (rule)} { (rule) } }
            }
            (markdown(super::markdown::render(&text, "/investigations/")))
        },
    )
    .into_response()
}
