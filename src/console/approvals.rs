//! Approvals: each pending command with its directory, risk, reasons, who asked and the time
//! left, to approve or deny with a reason; decided ones with who decided, whether the command
//! ran and how it ended. An answer goes through [`crate::tools::answer`], the code the CLI
//! uses: the `bash` call waiting on the approval sees it in the store and is released once.

use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;

use super::Shared;
use super::auth::Session;
use super::layout::{self, badge, csrf, problem, time_left, when, when_opt};
use crate::store::approvals::{self, Approval, DecideError};
use crate::store::audit::{AuditEntry, AuditFilter, search};
use crate::tools::answer::{Answer, Answerer};

/// Approvals read for the page (pending ones first, then the newest decided).
pub const LISTED: i64 = 100;
/// Decided approvals shown.
pub const DECIDED_SHOWN: usize = 20;
/// The audit log's client for decisions made here.
pub const CLIENT: &str = "console";
/// How long before its approval was asked for the call that asked may have started.
const RUN_SLACK: chrono::Duration = chrono::Duration::seconds(60);

fn reasons(a: &Approval) -> Vec<String> {
    match &a.reasons {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|r| match (r["rule"].as_str(), r["message"].as_str()) {
                (Some(rule), Some(m)) => format!("[{rule}] {m}"),
                _ => r.to_string(),
            })
            .collect(),
        other => vec![other.to_string()],
    }
}

/// Who asked: the name stored when the approval was queued (the client, or the run that
/// asked); for approvals queued before that was kept, the kind of caller its tool shows.
fn asker(a: &Approval) -> &str {
    if let Some(by) = a.requested_by.as_deref() {
        return by;
    }
    match a.tool.as_str() {
        "agent:bash" => "an agent run (investigation or HEARTBEAT.md)",
        "bash" => "an MCP client's bash call",
        _ => "a tool call",
    }
}

/// The audit steps of approval `id`, oldest first.
async fn steps(s: &Shared, id: &str) -> Vec<AuditEntry> {
    let filter = AuditFilter {
        tool: Some("approval".into()),
        text: Some(id.to_string()),
        ..AuditFilter::default()
    };
    let mut out = search(&s.console.app.store, &filter, 50)
        .await
        .unwrap_or_default();
    out.reverse();
    out
}

/// How the run of a used approval ended: the call of its command that started between shortly
/// before the approval was asked for and its use, and ran (`exit N`, `timeout`, `killed`).
async fn run_of(s: &Shared, a: &Approval) -> Option<AuditEntry> {
    let used = a.used_at.clone()?;
    let created = chrono::DateTime::parse_from_rfc3339(&a.created_at).ok()?;
    let since = approvals::timestamp(created.with_timezone(&chrono::Utc) - RUN_SLACK);
    let quoted = serde_json::to_string(&crate::redact::text(&a.command)).ok()?;
    let text: String = quoted.trim_matches('"').chars().take(200).collect();
    let filter = AuditFilter {
        text: Some(text),
        since: Some(since),
        until: Some(used),
        ..AuditFilter::default()
    };
    let found = search(&s.console.app.store, &filter, 20).await.ok()?;
    found.into_iter().rev().find(|e| {
        (e.tool == "bash" || e.tool == "agent:bash")
            && (e.outcome.starts_with("exit ") || e.outcome == "timeout" || e.outcome == "killed")
    })
}

fn pending_card(session: &Session, a: &Approval, steps: &[AuditEntry]) -> Markup {
    let (command, disguised) = crate::display::visible(&a.command);
    html! {
        article.rule id={"approval-" (a.id)} aria-labelledby={"h-" (a.id)} {
            h2 id={"h-" (a.id)} { "Approval " code { (a.id) } " " (badge(&a.status)) }
            // Exactly what runs if approved: a masked command could hide what it does, and
            // invisible or direction-changing characters are shown as escapes.
            pre { code { (command) } }
            @if disguised {
                p.warning { "This command contains invisible or direction-changing characters, shown above as escapes (\\u{…}): what runs is not what it would look like. Deny it unless you know why they are there." }
            }
            @if crate::redact::text(&a.command) != a.command {
                p.muted { "Part of this command looks like a secret; it is shown in full so you can judge what runs." }
            }
            dl.facts {
                dt { "Directory" } dd { code { (a.cwd) } }
                dt { "Risk" } dd { (a.risk) " / 100" }
                dt { "Asked by" } dd { (asker(a)) " (" code { (a.tool) } ")" }
                dt { "Asked at" } dd { (when(&a.created_at)) }
                dt { "Time left" } dd { (time_left(&a.expires_at)) " (expires " (when(&a.expires_at)) ")" }
                dt { "Reasons" } dd { ul { @for r in reasons(a) { li { (r) } } } }
                @if !steps.is_empty() {
                    dt { "Audit" } dd { ul { @for e in steps { li { (when(&e.ts)) " " (e.client) ": " (e.outcome) } } } }
                }
            }
            form.inline method="post" action={"/approvals/" (a.id) "/decide"} {
                (csrf(session))
                label { "Reason (optional)" input type="text" name="reason" maxlength="500"; }
                button.approve type="submit" name="decision" value="approve" { "Approve" }
                button.deny type="submit" name="decision" value="deny" { "Deny" }
            }
        }
    }
}

fn decided_row(a: &Approval, run: Option<&AuditEntry>) -> Markup {
    html! {
        tr id={"approval-" (a.id)} {
            td { code { (a.id) } }
            td { code { (crate::redact::text(&a.command)) } }
            td { (badge(&a.status)) }
            td { (a.decided_by.as_deref().unwrap_or("–")) @if let Some(n) = &a.note { br; span.muted { (n) } } }
            td { (when_opt(a.decided_at.as_deref())) }
            td {
                @match (a.status.as_str(), run) {
                    ("used", Some(e)) => { "ran: " (crate::redact::text(&e.outcome)) },
                    ("used", None) => { "ran at " (when_opt(a.used_at.as_deref())) },
                    ("approved", _) => "approved, not run yet",
                    _ => "did not run",
                }
            }
        }
    }
}

/// `GET /approvals`.
pub async fn page(State(s): State<Shared>, Extension(session): Extension<Session>) -> Markup {
    approvals::audit_expired(&s.console.app.store, &s.console.app.audit, CLIENT).await;
    let all = match approvals::list(&s.console.app.store, LISTED).await {
        Ok(all) => all,
        Err(e) => {
            return layout::page(
                "Approvals",
                "/approvals",
                Some(&session),
                problem("The approvals cannot be read", &e.to_string()),
            );
        }
    };
    let (mut pending, decided): (Vec<&Approval>, Vec<&Approval>) =
        all.iter().partition(|a| a.status == "pending");
    // Oldest first: a new approval arrives at the end, so a live update never moves the card
    // being read (or the button about to be pressed) down the page.
    pending.reverse();
    let mut cards = Vec::new();
    for a in &pending {
        cards.push(pending_card(&session, a, &steps(&s, &a.id).await));
    }
    let mut rows = Vec::new();
    for a in decided.iter().take(DECIDED_SHOWN) {
        rows.push(decided_row(a, run_of(&s, a).await.as_ref()));
    }
    layout::page(
        "Approvals",
        "/approvals",
        Some(&session),
        html! {
            section aria-labelledby="pending" {
                h2 #pending { "Waiting for a decision (" (pending.len()) ")" }
                @if cards.is_empty() { p { "Nothing is waiting." } }
                @for c in cards { (c) }
            }
            section aria-labelledby="decided" {
                h2 #decided { "Decided" }
                @if rows.is_empty() { p { "No decisions yet." } } @else {
                    div.table-wrap { table {
                        thead { tr {
                            th scope="col" { "Id" } th scope="col" { "Command" } th scope="col" { "Status" }
                            th scope="col" { "Decided by" } th scope="col" { "At" } th scope="col" { "Run" }
                        } }
                        tbody { @for r in rows { (r) } }
                    } }
                }
            }
        },
    )
}

#[derive(Deserialize)]
pub struct Decision {
    decision: String,
    #[serde(default)]
    reason: String,
}

/// `POST /approvals/{id}/decide` (the gate checked the session and the CSRF token).
pub async fn decide(
    State(s): State<Shared>,
    Extension(session): Extension<Session>,
    UrlPath(id): UrlPath<String>,
    Form(form): Form<Decision>,
) -> Response {
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => {
            s.auth
                .flash(&session.id, "Choose Approve or Deny.".into())
                .await;
            return Redirect::to("/approvals").into_response();
        }
    };
    let reason: String = form.reason.trim().chars().take(500).collect();
    let reason = Some(reason).filter(|r| !r.is_empty());
    let app = &s.console.app;
    let answerer = Answerer {
        store: &app.store,
        audit: &app.audit,
        guard: &app.tools.guard,
        roots: app.tools.workspace.roots(),
        home: &app.tools.home,
        client: CLIENT,
    };
    let message = match answerer
        .answer(&id, approve, &session.who(), reason.as_deref())
        .await
    {
        Ok(Answer::Decided(a)) => format!("Approval {} {}: {}", a.id, a.status, a.command),
        Ok(Answer::RefusedByPolicy(a, summary)) => format!(
            "Approval {} NOT approved: the policy in force now denies it ({summary}); it is marked denied and will not run.",
            a.id
        ),
        Err(DecideError::NotPending(id, status)) => {
            format!("Approval {id} is already {status}; nothing changed.")
        }
        Err(e) => format!("Could not record the decision: {e}"),
    };
    tracing::info!("console: {message} (by {})", session.who());
    s.auth.flash(&session.id, message).await;
    Redirect::to("/approvals").into_response()
}
