//! Signing in and out: the configured token is exchanged for a session cookie on the sign-in
//! page; a wrong token is refused (and audited, as is every sign-in), never hinted at.

use std::time::Instant;

use axum::Form;
use axum::extract::{FromRequest as _, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::Shared;
use super::auth::{Session, peer_ip, remote_of, set_cookie};
use super::layout::page;

fn sign_in_page(error: Option<&str>) -> maud::Markup {
    page(
        "Sign in",
        "/login",
        None,
        html! {
            div.signin {
                @if let Some(e) = error { p.problem role="alert" { (e) } }
                form method="post" action="/login" {
                    label for="token" { "Access token (PI_MCP_TOKEN)" }
                    input #token type="password" name="token" autocomplete="current-password" required;
                    p { button type="submit" { "Sign in" } }
                }
            }
        },
    )
}

/// `GET /login`.
pub async fn form(State(s): State<Shared>) -> Response {
    if !s.auth.needs_sign_in() {
        return Redirect::to("/").into_response();
    }
    sign_in_page(None).into_response()
}

#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    token: String,
}

fn audit(s: &Shared, outcome: &str, decision: &str, remote: &str) {
    let mut e = crate::monitor::audit_entry(
        "console.sign_in",
        serde_json::json!({"remote": remote}),
        outcome,
        Instant::now(),
        "console",
    );
    e.decision = decision.into();
    s.console.app.audit.record(e);
}

/// `POST /login`.
pub async fn submit(State(s): State<Shared>, request: Request) -> Response {
    let remote = remote_of(&request);
    let ip = peer_ip(&request);
    let headers: HeaderMap = request.headers().clone();
    let Ok(Form(form)) = Form::<SignIn>::from_request(request, &()).await else {
        return (StatusCode::BAD_REQUEST, "bad form\n").into_response();
    };
    if !s.auth.needs_sign_in() {
        return Redirect::to("/").into_response();
    }
    if s.auth.throttle.throttled(ip) {
        audit(&s, "refused: too many wrong tokens lately", "deny", &remote);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            sign_in_page(Some(
                "Too many wrong tokens in the last minute. Wait a minute and try again.",
            )),
        )
            .into_response();
    }
    if !s.auth.token_is(&form.token) {
        s.auth.throttle.failed(ip);
        audit(&s, "wrong token: refused", "deny", &remote);
        tracing::warn!("console: a sign-in from {remote} gave a wrong token");
        return (
            StatusCode::UNAUTHORIZED,
            sign_in_page(Some("That token is not right. Nothing was signed in.")),
        )
            .into_response();
    }
    let Some(session) = s.auth.open(remote.clone()).await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not open a console session (the server's log says why)\n",
        )
            .into_response();
    };
    audit(
        &s,
        &format!("signed in: {}", session.who()),
        "allow",
        &remote,
    );
    let mut r = Redirect::to("/").into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(Some(&session), &headers));
    r
}

/// `POST /logout` (behind the gate: session and CSRF token checked).
pub async fn sign_out(
    State(s): State<Shared>,
    headers: HeaderMap,
    axum::Extension(session): axum::Extension<Session>,
) -> Response {
    s.auth.close(&session.id).await;
    let mut r = if s.auth.needs_sign_in() {
        Redirect::to("/login").into_response()
    } else {
        Redirect::to("/").into_response()
    };
    r.headers_mut()
        .append(header::SET_COOKIE, set_cookie(None, &headers));
    r
}
