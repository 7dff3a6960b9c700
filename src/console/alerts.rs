//! Alerts: every rule with its state, value against threshold, since when, the last
//! notification, the cooldown end, its runbook, the investigations it started and a chart of
//! its recent values with the threshold drawn; and silences: mute a rule for a while or until
//! it resolves, with a comment ([`crate::monitor::silence`], the monitor keeps evaluating it).

use std::collections::HashMap;

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::Utc;
use maud::{Markup, html};
use serde::Deserialize;

use super::Shared;
use super::auth::Session;
use super::layout::{self, badge, csrf, number, problem, when_opt};
use crate::monitor::silence::{self, Silence};
use crate::monitor::state::{self, RuleState};
use crate::monitor::{Rule, validate};

/// The audit log's tool for silence changes made here.
const SILENCE_TOOL: &str = "console.silence";

/// The rules of the rules file, or why they cannot be read.
pub fn rules(s: &Shared) -> Result<validate::LoadedRules, String> {
    validate::load(&s.console.rules_path).map_err(|p| p.to_string())
}

fn silence_text(x: &Silence) -> Markup {
    html! {
        (badge("silenced")) " " (x.until()) " by " (x.created_by) ": " q { (x.comment) }
    }
}

fn rule_card(
    session: &Session,
    rule: &Rule,
    st: Option<&RuleState>,
    silence: Option<&Silence>,
    runs: &[&String],
) -> Markup {
    let id = rule.id();
    let state = st.map_or("never evaluated", |s| s.state.as_str());
    let runbook = rule.spec.runbook.as_deref();
    html! {
        article.rule id={"rule-" (id)} aria-labelledby={"h-" (id)} {
            h2 id={"h-" (id)} { (rule.display_name()) " " (badge(state)) }
            dl.facts {
                dt { "Rule" } dd { code { (id) } " (" (rule.spec.kind.as_str()) ", " (rule.spec.severity.as_str()) ")" }
                dt { "Value" } dd { (number(st.and_then(|s| s.value))) " against " code { (rule.condition_text()) } }
                dt { "Since" } dd { (when_opt(st.map(|s| crate::store::approvals::timestamp(s.since)).as_deref())) }
                dt { "Last evaluated" } dd { (when_opt(st.and_then(|s| s.last_evaluated).map(crate::store::approvals::timestamp).as_deref())) }
                dt { "Last notification" } dd { (when_opt(st.and_then(|s| s.last_notified).map(crate::store::approvals::timestamp).as_deref())) }
                dt { "Cooldown ends" } dd { (when_opt(st.and_then(|s| s.cooldown_until).map(crate::store::approvals::timestamp).as_deref())) }
                @if let Some(p) = st.and_then(|s| s.problem.as_deref()) { dt { "Problem" } dd { (p) } }
                dt { "Runbook" } dd {
                    @match runbook {
                        Some(r) if r.starts_with("https://") || r.starts_with("http://") => a href=(r) rel="noreferrer" { (r) },
                        Some(r) => (r),
                        None => "–",
                    }
                }
                dt { "Investigations" } dd { @if runs.is_empty() { "–" } @else { (super::investigations::links(runs)) } }
                dt { "Silence" } dd { @match silence { Some(x) => (silence_text(x)), None => "none" } }
            }
            img src={"/alerts/" (id) "/chart.png"} width="800" height="400" loading="lazy"
                alt={"Recent values of " (rule.display_name()) " with the threshold " (rule.condition_text())};
            @match silence {
                Some(x) => {
                    form.inline method="post" action={"/silences/" (x.id) "/lift"} {
                        (csrf(session))
                        button type="submit" { "Lift the silence" }
                    }
                }
                None => {
                    form.inline method="post" action={"/alerts/" (id) "/silence"} aria-label={"Silence " (id)} {
                        (csrf(session))
                        label { "Mute for"
                            select name="length" {
                                option value="30m" { "30 minutes" }
                                option value="1h" selected { "1 hour" }
                                option value="4h" { "4 hours" }
                                option value="1d" { "1 day" }
                                option value="7d" { "7 days" }
                                option value="resolved" { "until it resolves" }
                            }
                        }
                        label { "Comment" input type="text" name="comment" required maxlength="500" placeholder="why"; }
                        button type="submit" { "Silence" }
                    }
                }
            }
        }
    }
}

/// `GET /alerts`.
pub async fn page(State(s): State<Shared>, Extension(session): Extension<Session>) -> Markup {
    let store = &s.console.app.store;
    let loaded = rules(&s);
    let states = state::load_all(store).await;
    let silences = silence::active(store, Utc::now()).await;
    let investigations = super::investigations::rules_of(store).await;
    let mut by_rule: HashMap<&str, Vec<&String>> = HashMap::new();
    for (name, rule) in &investigations {
        by_rule.entry(rule.as_str()).or_default().push(name);
    }
    for runs in by_rule.values_mut() {
        runs.sort();
        runs.reverse();
    }
    let body = match (&loaded, &states, &silences) {
        (Err(e), _, _) => problem("The rules file cannot be read", e),
        (_, Err(e), _) | (_, _, Err(e)) => {
            problem("The alert states cannot be read", &e.to_string())
        }
        (Ok(loaded), Ok(states), Ok(silences)) => html! {
            p.muted { "Rules from " code { (s.console.rules_path.display()) } "." }
            @for p in &loaded.problems { (problem("Rule problem", &p.to_string())) }
            @if loaded.rules.is_empty() { p { "No rules." } }
            @for r in &loaded.rules {
                (rule_card(&session, r, states.get(r.id()), silences.get(r.id()),
                    by_rule.get(r.id()).map(Vec::as_slice).unwrap_or(&[])))
            }
        },
    };
    layout::page("Alerts", "/alerts", Some(&session), body)
}

/// `GET /alerts/{id}/chart.png`: the rule's recent values against its threshold.
pub async fn chart(State(s): State<Shared>, UrlPath(id): UrlPath<String>) -> Response {
    let Ok(loaded) = rules(&s) else {
        return (StatusCode::NOT_FOUND, "no rules file\n").into_response();
    };
    let Some(rule) = loaded.rules.into_iter().find(|r| r.id() == id) else {
        return (StatusCode::NOT_FOUND, "no such rule\n").into_response();
    };
    let st = state::load_all(&s.console.app.store)
        .await
        .ok()
        .and_then(|mut all| all.remove(&id))
        .unwrap_or_else(|| RuleState::new(&id, Utc::now()));
    let drawn = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("chart.png");
        crate::monitor::chart::render(&path, &rule, &st).map_err(|e| e.to_string())?;
        std::fs::read(&path).map_err(|e| e.to_string())
    })
    .await;
    match drawn {
        Ok(Ok(bytes)) => {
            let mut r = bytes.into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
            r
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("chart: {e}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("chart: {e}\n")).into_response(),
    }
}

#[derive(Deserialize)]
pub struct SilenceForm {
    #[serde(default)]
    length: String,
    #[serde(default)]
    comment: String,
}

fn audit(s: &Shared, args: serde_json::Value, outcome: &str, client: &str) {
    s.console.app.audit.record(crate::monitor::audit_entry(
        SILENCE_TOOL,
        args,
        outcome,
        std::time::Instant::now(),
        client,
    ));
}

/// `POST /alerts/{id}/silence`.
pub async fn silence(
    State(s): State<Shared>,
    Extension(session): Extension<Session>,
    UrlPath(id): UrlPath<String>,
    Form(form): Form<SilenceForm>,
) -> Response {
    let known = rules(&s).is_ok_and(|l| l.rules.iter().any(|r| r.id() == id));
    let message = if !known {
        format!("There is no rule `{id}` in the rules file.")
    } else {
        let who = session.who();
        let made = match silence::parse_length(&form.length) {
            Ok(length) => {
                silence::create(&s.console.app.store, &id, length, &form.comment, &who).await
            }
            Err(e) => Err(e),
        };
        match made {
            Ok(x) => {
                let text = format!("Rule {id} silenced {}: {}", x.until(), x.comment);
                audit(
                    &s,
                    serde_json::json!({"rule": id, "silence": x.id, "until": x.until()}),
                    &format!("silenced by {who}: {}", x.comment),
                    super::approvals::CLIENT,
                );
                text
            }
            Err(e) => format!("Rule {id} was not silenced: {e}."),
        }
    };
    s.auth.flash(&session.id, message).await;
    Redirect::to(&format!("/alerts#rule-{}", urlencode(&id))).into_response()
}

/// `POST /silences/{id}/lift`.
pub async fn lift(
    State(s): State<Shared>,
    Extension(session): Extension<Session>,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let who = session.who();
    let message = match silence::lift(&s.console.app.store, &id, &who).await {
        Ok(x) => {
            audit(
                &s,
                serde_json::json!({"rule": x.rule_id, "silence": x.id}),
                &format!("silence lifted by {who}"),
                super::approvals::CLIENT,
            );
            format!(
                "The silence on {} is lifted; its notices are sent again.",
                x.rule_id
            )
        }
        Err(e) => format!("Nothing lifted: {e}."),
    };
    s.auth.flash(&session.id, message).await;
    Redirect::to("/alerts").into_response()
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
