//! The audit log, newest first, filterable by tool, decision, time and text (an approval id,
//! a command), a page at a time. Entries are shown as the store holds them (secrets were
//! redacted when they were written) and passed through the redactor once more on the way out.

use axum::Extension;
use axum::extract::{Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::Shared;
use super::auth::Session;
use super::layout::{self, problem, when};
use crate::store::audit::{AuditFilter, search};

/// Entries per page.
pub const PAGE: i64 = 50;

/// The filter as the form sends it (every field may be empty).
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    #[serde(default)]
    tool: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    before: String,
}

impl Params {
    fn filter(&self) -> AuditFilter {
        let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        AuditFilter {
            tool: opt(&self.tool),
            decision: opt(&self.decision),
            since: opt(&self.since),
            until: opt(&self.until),
            text: opt(&self.text),
            before: self.before.trim().parse().ok(),
        }
    }

    fn next_page(&self, before: i64) -> String {
        let before = before.to_string();
        let q: Vec<(&str, &str)> = vec![
            ("tool", &self.tool),
            ("decision", &self.decision),
            ("since", &self.since),
            ("until", &self.until),
            ("text", &self.text),
            ("before", &before),
        ];
        format!(
            "/audit?{}",
            serde_urlencoded::to_string(q).unwrap_or_default()
        )
    }
}

async fn render(s: &Shared, session: &Session, params: &Params) -> Markup {
    let found = search(&s.console.app.store, &params.filter(), PAGE).await;
    let redact = crate::redact::text;
    layout::page(
        "Audit log",
        "/audit",
        Some(session),
        html! {
            form.inline method="get" action="/audit" role="search" aria-label="Filter the audit log" {
                label { "Tool" input type="text" name="tool" value=(params.tool) placeholder="bash, approval, …"; }
                label { "Decision"
                    select name="decision" {
                        @for d in ["", "allow", "ask", "deny"] {
                            option value=(d) selected[params.decision == d] { @if d.is_empty() { "any" } @else { (d) } }
                        }
                    }
                }
                label { "Since (UTC)" input type="text" name="since" value=(params.since) placeholder="2026-01-31T00:00"; }
                label { "Until (UTC)" input type="text" name="until" value=(params.until); }
                label { "Arguments contain" input type="text" name="text" value=(params.text) placeholder="approval id, command"; }
                button type="submit" { "Filter" }
                a href="/audit" { "Clear" }
            }
            @match &found {
                Err(e) => (problem("The audit log cannot be read", &e.to_string())),
                Ok(entries) if entries.is_empty() => p { "No entries match." },
                Ok(entries) => {
                    div.table-wrap { table #audit {
                        thead { tr {
                            th scope="col" { "Time" } th scope="col" { "Tool" } th scope="col" { "Decision" }
                            th scope="col" { "Risk" } th scope="col" { "Arguments" } th scope="col" { "Outcome" }
                            th scope="col" { "Client" }
                        } }
                        tbody {
                            @for e in entries {
                                tr {
                                    td { (when(&e.ts)) }
                                    td { code { (e.tool) } }
                                    td { (super::layout::badge(&e.decision)) }
                                    td { (e.risk) }
                                    td { code { (redact(&e.arguments.to_string())) } }
                                    td { (redact(&e.outcome)) }
                                    td { (e.client) }
                                }
                            }
                        }
                    } }
                    @if entries.len() as i64 == PAGE {
                        @if let Some(last) = entries.last() {
                            p { a href=(params.next_page(last.id)) rel="next" { "Older entries" } }
                        }
                    }
                }
            }
        },
    )
}

/// `GET /audit?tool=&decision=&since=&until=&text=&before=`.
pub async fn page(
    State(s): State<Shared>,
    Extension(session): Extension<Session>,
    Query(params): Query<Params>,
) -> Markup {
    render(&s, &session, &params).await
}
