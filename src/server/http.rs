//! Streamable HTTP transport at `/mcp`: loopback by default, a bearer token required to bind
//! anything else, 401 without the right token, Host and Origin checked against DNS rebinding,
//! and a clean stop on SIGINT/SIGTERM.
//!
//! One layer in front of rmcp: rmcp 3.11 answers `DELETE /mcp` with 202 whatever the session
//! id (unknown, mutated, already ended), where the transport spec says 404 for a session the
//! server does not have; [`unknown_session_is_404`] turns those into 404 until rmcp does.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::{PiServer, shutdown_signal};

/// How the HTTP server is set up.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub addr: SocketAddr,
    /// The token and the extra Host names and Origins accepted (for `/mcp` and the console).
    pub access: crate::console::Access,
    /// Slack app signing secret: enables the interactive approvals endpoint.
    pub slack_signing_secret: Option<String>,
    /// Why `bash` children could connect to `addr` ([`crate::sandbox::host_reachable`]):
    /// then a token is required even on loopback.
    pub children_reach: Option<String>,
}

/// Refuses an unsafe setup before binding: no token where one is needed
/// ([`crate::console::token_missing`]).
pub fn check(options: &HttpOptions) -> Result<(), String> {
    let missing = crate::console::token_missing(
        options.addr,
        options.access.token.as_deref(),
        options.children_reach.as_deref(),
    );
    match missing {
        Some(why) => Err(format!(
            "refusing to serve on {} without a bearer token: {why}; set --token or PI_MCP_TOKEN",
            options.addr
        )),
        None => Ok(()),
    }
}

/// Serves until SIGINT or SIGTERM.
pub async fn serve(
    server: PiServer,
    store: crate::store::Store,
    options: HttpOptions,
    console: Option<crate::console::Console>,
) -> anyhow::Result<()> {
    check(&options).map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", options.addr))?;
    let local = listener.local_addr()?;
    let ct = CancellationToken::new();
    let hosts = crate::console::hosts_for(local, &options.access.allowed_hosts);
    let mut origins: Vec<String> = vec![
        "http://localhost:*".into(),
        "http://127.0.0.1:*".into(),
        "http://[::1]:*".into(),
    ];
    origins.extend(options.access.allowed_origins.iter().cloned());
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(origins)
        .with_cancellation_token(ct.child_token());
    let audit = server.audit.clone();
    let sessions = Arc::new(LocalSessionManager::default());
    let service =
        StreamableHttpService::new(move || Ok(server.for_session()), sessions.clone(), config);
    let token = Arc::new(BearerCheck {
        token: options.access.token.clone().filter(|t| !t.is_empty()),
        throttle: crate::console::throttle::Throttle::default(),
    });
    let mut app = Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(
            sessions,
            unknown_session_is_404,
        ))
        .layer(middleware::from_fn_with_state(token, require_token));
    // Slack cannot send the bearer token; its requests are authenticated by their signature.
    if let Some(secret) = options
        .slack_signing_secret
        .clone()
        .filter(|s| !s.is_empty())
    {
        app = app.merge(super::slack::router(store, audit.clone(), secret));
        tracing::info!("Slack interactive approvals at {}", super::slack::PATH);
    }
    if let Some(console) = console {
        app = app.merge(console.router(local, options.access.clone()));
        tracing::info!("web console at http://{local}/");
    }
    // Install the signal handlers before announcing the address, so an early SIGTERM is caught.
    let stop = shutdown_signal()?;
    tracing::info!("listening on http://{local}/mcp");
    let shutdown = ct.clone();
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        stop.await;
        tracing::info!("shutting down");
        shutdown.cancel();
    })
    .await?;
    audit.flush().await;
    Ok(())
}

/// `DELETE /mcp` for a session this server does not have (never had, a mutated id, already
/// ended) is 404, as the transport spec says; rmcp would answer 202. Every other answer of
/// rmcp's (400 without a session id, 403 for a foreign Host, 405) stands: only its 202 for an
/// unknown session is replaced.
async fn unknown_session_is_404(
    State(sessions): State<Arc<LocalSessionManager>>,
    request: Request,
    next: Next,
) -> Response {
    use rmcp::transport::streamable_http_server::SessionManager;
    let id = (request.method() == http::Method::DELETE)
        .then(|| request.headers().get("mcp-session-id"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .map(|s| s.to_owned());
    let Some(id) = id else {
        return next.run(request).await;
    };
    let known = sessions
        .has_session(&id.as_str().into())
        .await
        .unwrap_or(true);
    let response = next.run(request).await;
    if known || response.status() != StatusCode::ACCEPTED {
        return response;
    }
    (
        StatusCode::NOT_FOUND,
        "Not Found: no session with this Mcp-Session-Id (it never existed or has ended); \
         start a new one with initialize\n",
    )
        .into_response()
}

/// The bearer token `/mcp` requires, and the wrong tokens counted per address.
struct BearerCheck {
    token: Option<String>,
    throttle: crate::console::throttle::Throttle,
}

async fn require_token(
    State(check): State<Arc<BearerCheck>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(expected) = check.token.as_ref() {
        let ip = crate::console::auth::peer_ip(&request);
        if check.throttle.throttled(ip) {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                "too many wrong bearer tokens from this address in the last minute; wait and try again\n",
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            return response;
        }
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        if !given
            .is_some_and(|g| crate::console::auth::same(g.trim().as_bytes(), expected.as_bytes()))
        {
            check.throttle.failed(ip);
            tracing::warn!("/mcp: a wrong bearer token from {ip}");
            let mut response =
                (StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n").into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"pi-mcp\""),
            );
            return response;
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_needs_a_token() {
        let mut o = HttpOptions {
            addr: "0.0.0.0:8080".parse().unwrap(),
            access: crate::console::Access::default(),
            slack_signing_secret: None,
            children_reach: None,
        };
        assert!(check(&o).is_err());
        o.access.token = Some("s3cret".into());
        assert!(check(&o).is_ok());
        o.addr = "127.0.0.1:8080".parse().unwrap();
        o.access.token = None;
        assert!(check(&o).is_ok());
        o.children_reach = Some("network mode open".into());
        assert!(
            check(&o).is_err(),
            "children could reach it: a token is required"
        );
        o.access.token = Some("s3cret".into());
        assert!(check(&o).is_ok());
    }
}
