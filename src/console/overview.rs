//! The overview: rules by state, the last heartbeat and its duration, delivery failures and
//! the outbox, pending approvals and the newest reports, each linking to its page.

use axum::Extension;
use axum::extract::State;
use maud::{Markup, html};

use super::Shared;
use super::auth::Session;
use super::layout::{self, badge, time_left, when};
use crate::monitor::outbox;
use crate::monitor::state::{self, StateKind};
use crate::store::approvals;

/// Rows of each list shown.
const SHOWN: usize = 5;

/// `GET /`.
pub async fn page(State(s): State<Shared>, Extension(session): Extension<Session>) -> Markup {
    let store = &s.console.app.store;
    let rules = super::alerts::rules(&s)
        .map(|l| l.rules)
        .unwrap_or_default();
    let states = state::load_all(store).await.unwrap_or_default();
    let silences = crate::monitor::silence::active(store, chrono::Utc::now())
        .await
        .unwrap_or_default();
    let count = |k: StateKind| {
        rules
            .iter()
            .filter(|r| states.get(r.id()).is_some_and(|s| s.state == k))
            .count()
    };
    let never = rules
        .iter()
        .filter(|r| !states.contains_key(r.id()))
        .count();
    let last_eval = states.values().filter_map(|s| s.last_evaluated).max();
    let beat = s.console.metrics.as_ref().and_then(|m| m.last_beat());
    let pending_out = outbox::pending_count(store).await;
    let troubled = outbox::troubled(store, SHOWN as i64)
        .await
        .unwrap_or_default();
    let waiting: Vec<approvals::Approval> = approvals::list(store, 100)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a.status == "pending")
        .collect();
    let reports = super::reports::newest(&s.console.app.reports_dir, SHOWN);
    let body = html! {
        div.cards {
            section.card aria-labelledby="o-rules" {
                h2 #o-rules { a href="/alerts" { "Rules by state" } }
                ul {
                    @for k in StateKind::ALL {
                        li { (badge(k.as_str())) " " (count(k)) }
                    }
                    @if never > 0 { li { "never evaluated: " (never) } }
                    li { (badge("silenced")) " " (silences.len()) }
                }
            }
            section.card aria-labelledby="o-beat" {
                h2 #o-beat { "Last heartbeat" }
                @match beat {
                    Some(b) => {
                        p { (when(&crate::store::approvals::timestamp(
                            chrono::DateTime::from_timestamp(b.at_unix, 0).unwrap_or_default())))
                            ", took " (format!("{:.0} ms", b.seconds * 1000.0)) }
                        p.muted { (b.heartbeats) " heartbeats, " (b.heartbeat_failures) " failed" }
                    }
                    None => @match last_eval {
                        Some(t) => p { "Last evaluation " (when(&crate::store::approvals::timestamp(t))) }
                        None => p { "No heartbeat yet." }
                    }
                }
            }
            section.card aria-labelledby="o-out" {
                h2 #o-out { "Deliveries" }
                p { "Outbox: " @match &pending_out { Ok(n) => { (n) " waiting" }, Err(e) => { "unreadable: " (e.to_string()) } } }
                @if let Some(b) = beat { p { (b.notification_failures) " failed send attempts since start" } }
                @if !troubled.is_empty() {
                    ul { @for r in &troubled {
                        li { code { (r.rule_id) } " → " (r.channel) " (" (r.kind) "): " (r.status)
                            @if let Some(e) = &r.last_error { ", " (crate::redact::text(e)) } }
                    } }
                }
            }
            section.card aria-labelledby="o-appr" {
                h2 #o-appr { a href="/approvals" { "Pending approvals (" (waiting.len()) ")" } }
                @if waiting.is_empty() { p { "Nothing is waiting." } }
                ul { @for a in waiting.iter().take(SHOWN) {
                    li { a href={"/approvals#approval-" (a.id)} { code { (crate::redact::text(&a.command)) } }
                        " · " (time_left(&a.expires_at)) " left" }
                } }
            }
            section.card aria-labelledby="o-rep" {
                h2 #o-rep { a href="/reports" { "Newest reports" } }
                @if reports.is_empty() { p { "No reports yet." } }
                (super::reports::run_list(&reports))
            }
        }
    };
    layout::page("Overview", "/", Some(&session), body)
}
