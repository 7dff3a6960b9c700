//! The generic webhook channel: a JSON POST of `{subject, text, severity, sent_at,
//! attachments, ...data}` to `ALERT_WEBHOOK_URL`, signed with `X-Pi-Signature:
//! sha256=<hex HMAC-SHA256 of the exact body>` when `ALERT_WEBHOOK_SECRET` is set, with the
//! extra headers of `ALERT_WEBHOOK_HEADERS`. Any 2xx answer is a delivery.

use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::Message;
use super::config::ALERT_WEBHOOK_HEADERS;
use super::http::post_json;
use super::retry::Failure;

/// Header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Pi-Signature";

/// The JSON body: the message's `data` object merged in first (a non-object `data` goes under
/// `data`), so its keys cannot override the core fields.
pub fn body(
    msg: &Message,
    attachments: &[String],
    sent_at: chrono::DateTime<chrono::Utc>,
) -> Value {
    let mut out = Map::new();
    match &msg.data {
        Some(Value::Object(data)) => out.extend(data.clone()),
        Some(Value::Null) | None => {}
        Some(other) => {
            out.insert("data".into(), other.clone());
        }
    }
    out.insert("channel".into(), json!("webhook"));
    out.insert("subject".into(), json!(msg.subject));
    out.insert("text".into(), json!(msg.text));
    out.insert("severity".into(), json!(msg.severity));
    out.insert("attachments".into(), json!(attachments));
    out.insert(
        "sent_at".into(),
        json!(sent_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    );
    Value::Object(out)
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Parses extra headers: `"K: V; K2: V2"` or a JSON object of strings.
pub fn parse_headers(spec: &str) -> Result<HeaderMap, String> {
    let spec = spec.trim();
    let pairs: Vec<(String, String)> = if spec.starts_with('{') {
        let map: Map<String, Value> = serde_json::from_str(spec)
            .map_err(|e| format!("{ALERT_WEBHOOK_HEADERS} is not a JSON object: {e}"))?;
        map.into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                other => Ok((k, other.to_string())),
            })
            .collect::<Result<_, String>>()?
    } else {
        spec.split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| {
                        format!("{ALERT_WEBHOOK_HEADERS}: `{p}` is not `Name: value` (separate headers with `;`)")
                    })
            })
            .collect::<Result<_, String>>()?
    };
    let mut headers = HeaderMap::new();
    for (k, v) in pairs {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("{ALERT_WEBHOOK_HEADERS}: `{k}` is not a valid header name"))?;
        let value = HeaderValue::from_str(&v).map_err(|_| {
            format!("{ALERT_WEBHOOK_HEADERS}: the value of `{k}` is not a valid header value")
        })?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// Posts `msg` to `url` with `headers`, signed with `secret` when given.
pub async fn deliver(
    url: &str,
    secret: Option<&str>,
    headers: &HeaderMap,
    msg: &Message,
    attachments: &[String],
) -> Result<String, Failure> {
    let body = serde_json::to_vec(&body(msg, attachments, chrono::Utc::now()))
        .map_err(|e| Failure::permanent(format!("cannot encode the webhook body: {e}")))?;
    let mut headers = headers.clone();
    if let Some(secret) = secret {
        let signature = HeaderValue::from_str(&sign(secret, &body))
            .map_err(|e| Failure::permanent(format!("cannot sign the body: {e}")))?;
        headers.insert(SIGNATURE_HEADER, signature);
    }
    let answer = post_json(url, headers, body).await?;
    if answer.is_success() {
        Ok(format!("HTTP {}", answer.status))
    } else {
        Err(answer.failure("the webhook"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::notify::Channel;

    #[test]
    fn headers_parse_in_both_forms_and_errors_name_the_variable() {
        let h = parse_headers("X-Team: ops; Authorization: Bearer abc").unwrap();
        assert_eq!(h["x-team"], "ops");
        assert_eq!(h["authorization"], "Bearer abc");
        let h = parse_headers(r#"{"X-Env": "prod", "X-N": 3}"#).unwrap();
        assert_eq!(
            (h["x-env"].to_str().ok(), h["x-n"].to_str().ok()),
            (Some("prod"), Some("3"))
        );
        let e = parse_headers("no colon here").unwrap_err();
        assert!(
            e.starts_with(ALERT_WEBHOOK_HEADERS) && e.contains("Name: value"),
            "{e}"
        );
        assert!(
            parse_headers("Bad Name: x")
                .unwrap_err()
                .contains("header name")
        );
    }

    #[test]
    fn data_is_merged_but_cannot_override_core_fields() {
        let msg = Message {
            subject: Some("disk".into()),
            data: Some(json!({"rule": "r1", "text": "spoofed"})),
            ..Message::new(Channel::Webhook, "real")
        };
        let b = body(&msg, &[], chrono::Utc::now());
        assert_eq!(
            (b["rule"].as_str(), b["text"].as_str()),
            (Some("r1"), Some("real"))
        );
        let b = body(
            &Message {
                data: Some(json!([1, 2])),
                ..msg
            },
            &[],
            chrono::Utc::now(),
        );
        assert_eq!(b["data"], json!([1, 2]));
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
