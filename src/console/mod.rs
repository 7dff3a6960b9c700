//! The web console: where the human half of the human-in-the-loop lives. Server-rendered
//! pages (maud templates compiled into the binary, one small script for live updates) to
//! approve or deny waiting commands, see and silence alerts, read reports with their charts,
//! follow investigations and the audit log. It is a face like the MCP endpoint: it reads and
//! writes through the same store, guard and approval code as the CLI and MCP ([`App`],
//! [`crate::tools::answer`], [`crate::monitor::silence`]), never around them. The faces that
//! listen on HTTP (`serve --http`, `heartbeat --listen`) mount [`Console::router`] at `/`.

pub mod alerts;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod investigations;
pub mod layout;
pub mod markdown;
pub mod overview;
pub mod reports;
pub mod signin;
pub mod throttle;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};

use crate::app::App;
use crate::heartbeat::metrics::Metrics;
use auth::Auth;

/// Everything the pages read from and write to.
#[derive(Clone)]
pub struct Console {
    pub app: App,
    /// The alert rules file the monitor evaluates.
    pub rules_path: PathBuf,
    /// The heartbeat's own counters, when the console runs inside the daemon.
    pub metrics: Option<Arc<Metrics>>,
}

/// Who may reach the HTTP faces (`/mcp` of `serve --http`, the console of both `serve --http`
/// and `heartbeat --listen`): the token (if any) and the names they answer to. One set of
/// options, flattened into both commands.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Access {
    /// Bearer token: HTTP MCP clients send it, the console's sign-in asks for it. Without
    /// one, `/mcp` and the console are served on loopback addresses only (the heartbeat's
    /// /healthz and /metrics on any).
    #[arg(long, env = "PI_MCP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Extra Host header values to accept (loopback names and the bound address always are),
    /// e.g. a name a reverse proxy forwards.
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// Extra browser Origins to accept, e.g. https://ops.example.com.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
}

/// The `Host` names a listener on `local` answers to: loopback names, its own address when
/// it is a specific one, and `extra`.
pub fn hosts_for(local: SocketAddr, extra: &[String]) -> Vec<String> {
    let mut hosts: Vec<String> = vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
        "[::1]".into(),
    ];
    if !local.ip().is_loopback() && !local.ip().is_unspecified() {
        hosts.push(local.ip().to_string());
        if local.ip().is_ipv6() {
            hosts.push(format!("[{}]", local.ip()));
        }
    }
    hosts.extend(extra.iter().cloned());
    hosts
}

/// Why an HTTP face at `addr` (the console, `/mcp`) needs a token it does not have: `addr`
/// is not a loopback address, or `bash` children could connect to it (`children_reach`, from
/// [`crate::sandbox::host_reachable`]) and use it to approve their own commands.
pub fn token_missing(
    addr: SocketAddr,
    token: Option<&str>,
    children_reach: Option<&str>,
) -> Option<String> {
    if token.is_some_and(|t| !t.is_empty()) {
        return None;
    }
    if !addr.ip().is_loopback() {
        return Some(format!("{addr} is not a loopback address"));
    }
    children_reach.map(|why| {
        format!("bash children can reach it ({why}) and could approve their own commands")
    })
}

/// Refuses to show the console beyond loopback, or where children reach it, without a token
/// (the daemon then serves only `/healthz` and `/metrics` there).
pub fn check_bind(
    addr: SocketAddr,
    token: Option<&str>,
    children_reach: Option<&str>,
) -> Result<(), String> {
    match token_missing(addr, token, children_reach) {
        Some(why) => Err(format!(
            "not serving the web console on {addr} without a token: {why}; set --token or \
             PI_MCP_TOKEN"
        )),
        None => Ok(()),
    }
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct Shared {
    pub console: Arc<Console>,
    pub auth: Arc<Auth>,
}

impl Console {
    /// The console's routes for a listener on `local`, behind its gate (Host, Origin,
    /// session, CSRF) and its security headers.
    pub fn router(self, local: SocketAddr, access: Access) -> Router {
        let auth = Arc::new(Auth::new(
            access.token,
            hosts_for(local, &access.allowed_hosts),
            access.allowed_origins,
            self.app.store.clone(),
        ));
        let shared = Shared {
            console: Arc::new(self),
            auth: auth.clone(),
        };
        Router::new()
            .route("/", get(overview::page))
            .route("/login", get(signin::form).post(signin::submit))
            .route("/logout", post(signin::sign_out))
            .route("/alerts", get(alerts::page))
            .route("/alerts/{id}/chart.png", get(alerts::chart))
            .route("/alerts/{id}/silence", post(alerts::silence))
            .route("/silences/{id}/lift", post(alerts::lift))
            .route("/approvals", get(approvals::page))
            .route("/approvals/{id}/decide", post(approvals::decide))
            .route("/reports", get(reports::list))
            .route("/reports/{db}/{run}", get(reports::show))
            .route("/reports/{db}/{run}/{file}", get(reports::file))
            .route("/investigations", get(investigations::list))
            .route("/investigations/{name}", get(investigations::show))
            .route("/audit", get(audit::page))
            .route("/console.css", get(layout::css))
            .route("/console.js", get(layout::js))
            .route("/favicon.ico", get(layout::no_icon))
            .with_state(shared)
            .layer(middleware::from_fn_with_state(auth, auth::gate))
            .layer(middleware::from_fn(auth::headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_needs_a_token_beyond_loopback_or_where_children_reach() {
        let lo: SocketAddr = "127.0.0.1:9464".parse().unwrap();
        let public: SocketAddr = "0.0.0.0:9464".parse().unwrap();
        assert!(check_bind(lo, None, None).is_ok());
        assert!(check_bind(public, None, None).is_err());
        assert!(check_bind(public, Some("t"), None).is_ok());
        let reach = Some("the policy's network mode is `open`");
        assert!(
            check_bind(lo, None, reach)
                .unwrap_err()
                .contains("network mode is `open`")
        );
        assert!(check_bind(lo, Some("t"), reach).is_ok());
    }
}
