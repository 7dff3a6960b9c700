//! Slack interactive approvals: the endpoint Slack calls when someone clicks Approve or Deny on
//! an approval announcement. A request counts only with a valid `X-Slack-Signature` (HMAC-SHA256
//! of `v0:timestamp:body` under the app's signing secret) and a timestamp at most five minutes
//! old; the decision is recorded in the state store and the audit log like a CLI decision.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::store::approvals;
use crate::store::{AuditLog, Store};

/// Path of the endpoint, to be set as the Slack app's interactivity request URL.
pub const PATH: &str = "/slack/interactive";
/// Oldest request timestamp accepted, against replays.
pub const MAX_AGE_SECS: i64 = 5 * 60;

#[derive(Clone)]
struct Interactive {
    store: Store,
    audit: AuditLog,
    secret: String,
}

/// The endpoint's router, for a server whose Slack app signs with `secret`.
pub fn router(store: Store, audit: AuditLog, secret: String) -> Router {
    Router::new()
        .route(PATH, axum::routing::post(handle))
        .with_state(Interactive {
            store,
            audit,
            secret,
        })
}

/// Checks Slack's signature over the raw body.
pub fn verify(
    secret: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let ts: i64 = timestamp.parse().map_err(|_| "bad timestamp")?;
    if (now - ts).abs() > MAX_AGE_SECS {
        return Err("timestamp too old");
    }
    let given = signature
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or("bad signature format")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| "bad secret")?;
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| "signature mismatch")
}

async fn handle(State(s): State<Interactive>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let now = chrono::Utc::now().timestamp();
    if let Err(why) = verify(
        &s.secret,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        now,
    ) {
        tracing::warn!("Slack interactive request refused: {why}");
        return (StatusCode::UNAUTHORIZED, "invalid signature\n").into_response();
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let Some(payload) = form
        .iter()
        .find(|(k, _)| k == "payload")
        .and_then(|(_, v)| serde_json::from_str::<serde_json::Value>(v).ok())
    else {
        return (StatusCode::BAD_REQUEST, "no payload\n").into_response();
    };
    let action = payload["actions"][0]["value"].as_str().unwrap_or("");
    let Some((verb, id)) = action.split_once(':') else {
        return (StatusCode::BAD_REQUEST, "unknown action\n").into_response();
    };
    let approve = match verb {
        "approve" => true,
        "deny" => false,
        _ => return (StatusCode::BAD_REQUEST, "unknown action\n").into_response(),
    };
    let user = ["username", "name", "id"]
        .iter()
        .find_map(|k| payload["user"][*k].as_str())
        .unwrap_or("slack user")
        .to_string();
    let text = match approvals::decide(&s.store, id, approve, &user, Some("via Slack")).await {
        Ok(a) => {
            s.audit.record(approvals::decision_audit_entry(
                &a,
                approve,
                &user,
                Some("via Slack"),
                "slack",
            ));
            format!("{} `{}` ({}) by {user}", a.status, a.id, a.command)
        }
        Err(e) => format!("could not record it: {e}"),
    };
    axum::Json(serde_json::json!({ "text": text, "replace_original": false })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, ts: &str, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        format!("v0={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn signatures_are_checked_with_the_secret_and_the_clock() {
        let body = "payload=%7B%7D";
        let sig = sign("s3cret", "1000", body);
        assert!(verify("s3cret", "1000", &sig, body.as_bytes(), 1000 + 60).is_ok());
        assert_eq!(
            verify("other", "1000", &sig, body.as_bytes(), 1000),
            Err("signature mismatch")
        );
        assert_eq!(
            verify("s3cret", "1000", &sig, b"payload=x", 1000),
            Err("signature mismatch")
        );
        assert_eq!(
            verify(
                "s3cret",
                "1000",
                &sig,
                body.as_bytes(),
                1000 + MAX_AGE_SECS + 1
            ),
            Err("timestamp too old")
        );
        assert_eq!(
            verify("s3cret", "1000", "nope", body.as_bytes(), 1000),
            Err("bad signature format")
        );
    }
}
