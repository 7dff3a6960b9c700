//! The page shell every console page shares: one stylesheet and one script from this origin
//! (compiled into the binary; no CDN, so it works offline), a navigation that works with the
//! keyboard and on a phone, the live-update status line, and small helpers for forms (the CSRF
//! field) and times. Everything shown passes through maud, which escapes it.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::auth::{CSRF_FIELD, Session};

/// Seconds between the live-update script's polls.
pub const POLL_SECS: u32 = 5;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The pages in the navigation: (path, label).
const NAV: [(&str, &str); 6] = [
    ("/", "Overview"),
    ("/alerts", "Alerts"),
    ("/approvals", "Approvals"),
    ("/reports", "Reports"),
    ("/investigations", "Investigations"),
    ("/audit", "Audit"),
];

/// A whole page: `active` is the navigation entry's path.
pub fn page(title: &str, active: &str, session: Option<&Session>, body: Markup) -> Markup {
    let now = crate::store::approvals::timestamp(chrono::Utc::now());
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · pi-mcp console" }
                link rel="stylesheet" href="/console.css";
                script src="/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    span.brand { "pi-mcp" }
                    @if let Some(s) = session {
                        nav aria-label="Console pages" {
                            ul {
                                @for (path, label) in NAV {
                                    li {
                                        @if path == active {
                                            a href=(path) aria-current="page" { (label) }
                                        } @else {
                                            a href=(path) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form.signout method="post" action="/logout" {
                            (csrf(s))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                @if session.is_some() {
                    p #live role="status" aria-live="polite" data-poll=(POLL_SECS) data-at=(now) {
                        "Data as of " time datetime=(now) { (now) }
                    }
                }
                @if let Some(msg) = session.and_then(|s| s.flash.as_ref()) {
                    p.flash role="alert" { (msg) }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(session.csrf); }
}

/// A short human form of a stored UTC time, with the exact time for machines.
pub fn when(ts: &str) -> Markup {
    let shown = ts.get(..19).unwrap_or(ts).replace('T', " ");
    html! { time datetime=(ts) title=(ts) { (shown) " UTC" } }
}

/// An optional time, or a dash.
pub fn when_opt(ts: Option<&str>) -> Markup {
    match ts {
        Some(t) => when(t),
        None => html! { "–" },
    }
}

/// Seconds until `ts` as "4 min 10 s" (or "expired").
pub fn time_left(ts: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts) else {
        return "unknown".into();
    };
    let left = t.with_timezone(&chrono::Utc) - chrono::Utc::now();
    let s = left.num_seconds();
    match s {
        ..=0 => "expired".into(),
        1..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// A value as a short number.
pub fn number(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
    }
}

/// A state badge (`firing`, `ok`, `pending`, ...).
pub fn badge(state: &str) -> Markup {
    html! { span class={"badge " (state)} { (state) } }
}

/// A message instead of a page, e.g. when the store cannot be read.
pub fn problem(what: &str, why: &str) -> Markup {
    html! { p.problem role="alert" { (what) ": " (why) } }
}

/// Markdown rendered by the console's renderer.
pub fn markdown(html: String) -> Markup {
    html! { div.markdown { (PreEscaped(html)) } }
}

/// `GET /console.css`.
pub async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

/// `GET /console.js`.
pub async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

/// `GET /favicon.ico`: none (browsers ask for it on every page).
pub async fn no_icon() -> axum::http::StatusCode {
    axum::http::StatusCode::NO_CONTENT
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    r
}
