//! Who may use the console, and how a browser proves it on every request. The same rules as
//! the MCP endpoint: loopback only unless a token is configured (the faces refuse to bind
//! otherwise); with a token, a sign-in page exchanges it for a session cookie (`HttpOnly`,
//! `SameSite=Strict`, `Secure` behind TLS, with an expiry); without one, a loopback visitor
//! gets a session on the first page. Every request passes a Host check against DNS rebinding;
//! every state-changing request must come from the console's own origin and carry the
//! session's CSRF token, checked here, before any handler runs, so no form can forget it.
//! Sessions live in the state store (`store::sessions`): they survive a restart and are
//! shared by replicas; a store that cannot be read signs nobody in (fail closed).

use std::net::IpAddr;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};

use super::throttle::Throttle;
use crate::store::{Store, sessions};

/// The session cookie's name.
pub const COOKIE: &str = "pi_mcp_console";
/// How long a session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once (the oldest go first).
pub const MAX_SESSIONS: usize = 256;
/// Largest form body accepted.
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// The form field (or `X-CSRF-Token` header) carrying the session's CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub csrf: String,
    /// The address it signed in from (and a proxy's `X-Forwarded-For`, if any).
    pub remote: String,
    /// A one-time message for the next page (what the last form did).
    pub flash: Option<String>,
}

impl Session {
    /// How decisions made in this session are recorded: a short session id and the address.
    pub fn who(&self) -> String {
        format!("console session {} from {}", &self.id[..8], self.remote)
    }
}

/// The console's access rules and live sessions.
#[derive(Debug)]
pub struct Auth {
    token: Option<String>,
    /// Host names accepted in `Host` (loopback names, the bound address, configured ones).
    hosts: Vec<String>,
    /// Extra origins accepted besides the console's own (`http://name:*` allows any port).
    origins: Vec<String>,
    /// Where sessions are kept.
    store: Store,
    /// Wrong tokens per address (against guessing; the token should be long and random).
    pub throttle: Throttle,
}

fn random_hex(bytes: usize) -> Option<String> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).ok()?;
    Some(hex::encode(b))
}

/// Compares in time independent of where the strings differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The host part of a `Host` header or URL authority (`[::1]:8080` → `[::1]`, `a:80` → `a`).
fn host_part(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.find(']').map_or(authority, |i| &authority[..=i]);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

fn refuse(code: StatusCode, why: &str) -> Response {
    (code, format!("{why}\n")).into_response()
}

impl Auth {
    pub fn new(
        token: Option<String>,
        hosts: Vec<String>,
        origins: Vec<String>,
        store: Store,
    ) -> Auth {
        Auth {
            token: token.filter(|t| !t.is_empty()),
            hosts,
            origins,
            store,
            throttle: Throttle::default(),
        }
    }

    /// A token is configured: sign-in required.
    pub fn needs_sign_in(&self) -> bool {
        self.token.is_some()
    }

    /// The token is right (compared in constant time).
    pub fn token_is(&self, given: &str) -> bool {
        self.token
            .as_deref()
            .is_some_and(|t| same(given.trim().as_bytes(), t.as_bytes()))
    }

    /// A fresh session for a browser at `remote`, recorded in the store; `None` (logged) when
    /// no randomness is available or the store refuses it.
    pub async fn open(&self, remote: String) -> Option<Session> {
        let s = Session {
            id: random_hex(32)?,
            csrf: random_hex(32)?,
            remote,
            flash: None,
        };
        let stored = sessions::open(
            &self.store,
            &s.id,
            self.token.as_deref(),
            &s.csrf,
            &s.remote,
            SESSION_TTL,
            MAX_SESSIONS,
        )
        .await;
        match stored {
            Ok(()) => Some(s),
            Err(e) => {
                tracing::error!("console: cannot record a session: {e}");
                None
            }
        }
    }

    /// Ends session `id`.
    pub async fn close(&self, id: &str) {
        if let Err(e) = sessions::close(&self.store, id).await {
            tracing::error!("console: cannot end a session: {e}");
        }
    }

    /// Sets the message the session's next page shows once.
    pub async fn flash(&self, id: &str, message: String) {
        if let Err(e) = sessions::flash(&self.store, id, &message).await {
            tracing::warn!("console: cannot keep the message for the next page: {e}");
        }
    }

    /// The live session the request's cookie names (its flash taken); `None` when there is
    /// none or the store cannot be read.
    async fn session_of(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie_value(headers)?;
        match sessions::take(&self.store, &id, self.token.as_deref()).await {
            Ok(found) => found.map(|s| Session {
                id,
                csrf: s.csrf,
                remote: s.remote,
                flash: s.flash,
            }),
            Err(e) => {
                tracing::error!("console: cannot read sessions: {e}");
                None
            }
        }
    }

    fn host_ok(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let name = host_part(host).to_ascii_lowercase();
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(&name))
    }

    /// The request comes from the console's own origin (or a configured one). Without an
    /// `Origin`, its `Referer` is judged the same way; with neither, it is refused.
    fn origin_ok(&self, headers: &HeaderMap) -> bool {
        let get = |h| headers.get(h).and_then(|v: &HeaderValue| v.to_str().ok());
        let Some(host) = get(header::HOST) else {
            return false;
        };
        let origin = match (get(header::ORIGIN), get(header::REFERER)) {
            (Some(o), _) => o.to_string(),
            (None, Some(r)) => {
                let Some((scheme, rest)) = r.split_once("://") else {
                    return false;
                };
                format!("{scheme}://{}", rest.split('/').next().unwrap_or(""))
            }
            (None, None) => return false,
        };
        let own = [format!("http://{host}"), format!("https://{host}")];
        own.iter().any(|o| o.eq_ignore_ascii_case(&origin))
            || self
                .origins
                .iter()
                .any(|allowed| match allowed.strip_suffix(":*") {
                    Some(base) => origin
                        .strip_prefix(base)
                        .is_some_and(|port| port.is_empty() || port.starts_with(':')),
                    None => allowed.eq_ignore_ascii_case(&origin),
                })
    }
}

/// The session id in the request's cookies.
fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

/// Behind a TLS-terminating proxy (it says so with `X-Forwarded-Proto: https`).
fn behind_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value of a session (or of its removal with `None`).
pub fn set_cookie(session: Option<&Session>, headers: &HeaderMap) -> HeaderValue {
    let mut c = Cookie::build((COOKIE, session.map(|s| s.id.clone()).unwrap_or_default()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(behind_tls(headers))
        .max_age(cookie::time::Duration::seconds(match session {
            Some(_) => SESSION_TTL.as_secs() as i64,
            None => 0,
        }))
        .build();
    c.set_secure(behind_tls(headers));
    HeaderValue::from_str(&c.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// The address and port the request's connection comes from.
fn peer(request: &Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// The address the request's connection comes from (unspecified when unknown).
pub fn peer_ip(request: &Request) -> IpAddr {
    peer(request).map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip())
}

/// Where a request came from, for the record: the peer address and what a proxy's
/// `X-Forwarded-For` claims (unchecked: any client can send it, so it is marked as a claim).
pub fn remote_of(request: &Request) -> String {
    let peer = peer(request).map_or_else(|| "unknown address".to_string(), |p| p.to_string());
    match request
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(f) => format!(
            "{peer} (forwarded for {}, as claimed)",
            crate::display::label(&crate::redact::text(f.trim()), 100)
        ),
        None => peer,
    }
}

/// Paths reachable without a session: the sign-in page and the static assets.
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/login" | "/console.css" | "/console.js" | "/favicon.ico"
    )
}

/// The console's gate: Host, Origin, session and CSRF token, in that order.
pub async fn gate(State(auth): State<Arc<Auth>>, request: Request, next: Next) -> Response {
    if !auth.host_ok(request.headers()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Forbidden: this Host is not one the console answers to (DNS rebinding protection); \
             use the address it listens on, or configure the name as an allowed host",
        );
    }
    let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
    let has_origin = request.headers().contains_key(header::ORIGIN);
    if (changes || has_origin) && !auth.origin_ok(request.headers()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Forbidden: the request does not come from the console's own origin",
        );
    }
    let path = request.uri().path().to_string();
    if is_public(&path) {
        return next.run(request).await;
    }
    let session = auth.session_of(request.headers()).await;
    let Some(session) = session else {
        if changes {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: no console session; sign in again",
            );
        }
        if auth.needs_sign_in() {
            return Redirect::to("/login").into_response();
        }
        // Loopback without a token: a visitor gets a session on the first page.
        let Some(s) = auth.open(remote_of(&request)).await else {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not open a console session (the server's log says why)",
            );
        };
        let cookie = set_cookie(Some(&s), request.headers());
        let mut request = request;
        request.extensions_mut().insert(s);
        let mut response = next.run(request).await;
        response.headers_mut().append(header::SET_COOKIE, cookie);
        return response;
    };
    if !changes {
        let mut request = request;
        request.extensions_mut().insert(session);
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "form too large");
    };
    let from_header = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let from_form = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .unwrap_or_default()
        .into_iter()
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v);
    let given = from_header.or(from_form).unwrap_or_default();
    if !same(given.as_bytes(), session.csrf.as_bytes()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Forbidden: missing or wrong CSRF token; reload the page and try again",
        );
    }
    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// Security headers on every console answer: a strict CSP (only this origin's scripts,
/// styles and images; no inline code, no framing, forms post here only), no sniffing, no
/// caching of pages that show state.
pub async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[tokio::test]
    async fn hosts_and_origins_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(None, dir.path()).await.unwrap();
        let auth = Auth::new(
            Some("t".into()),
            vec!["127.0.0.1".into(), "[::1]".into()],
            vec![
                "https://ops.example.com".into(),
                "http://localhost:*".into(),
            ],
            store,
        );
        assert!(auth.host_ok(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(auth.host_ok(&headers(&[("host", "[::1]:8080")])));
        assert!(!auth.host_ok(&headers(&[("host", "evil.example:8080")])));
        let own = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert!(auth.origin_ok(&own));
        let other = headers(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert!(!auth.origin_ok(&other));
        let listed = headers(&[("host", "x"), ("origin", "https://ops.example.com")]);
        assert!(auth.origin_ok(&listed));
        let any_port = headers(&[("host", "x"), ("origin", "http://localhost:3000")]);
        assert!(auth.origin_ok(&any_port));
        let lookalike = headers(&[("host", "x"), ("origin", "http://localhost.evil:3000")]);
        assert!(!auth.origin_ok(&lookalike));
        let referer = headers(&[("host", "127.0.0.1:1"), ("referer", "http://127.0.0.1:1/a")]);
        assert!(auth.origin_ok(&referer));
        assert!(!auth.origin_ok(&headers(&[("host", "127.0.0.1:1")])));
        assert!(auth.token_is("t") && !auth.token_is("u"));
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }
}
