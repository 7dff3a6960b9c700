//! The Slack channel: an incoming-webhook POST of `{text, blocks}`. The subject becomes a
//! header block, the text a section, the message's `data` object up to ten fields, the
//! severity and attachment names a context line. Slack acknowledges with HTTP 200 and the body
//! `ok`; anything else is a failure.

use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::Message;
use super::clip;
use super::http::{Answer, post_json, snippet};
use super::retry::Failure;

/// Longest header block text Slack accepts.
pub const HEADER_MAX_CHARS: usize = 150;
/// Longest section block text Slack accepts.
pub const SECTION_MAX_CHARS: usize = 3000;
/// Most fields in one section block.
pub const MAX_FIELDS: usize = 10;
/// Longest text of one field.
pub const FIELD_MAX_CHARS: usize = 2000;
/// Longest top-level `text` (the notification fallback).
pub const TEXT_MAX_CHARS: usize = 40_000;

/// The webhook payload for `msg`; `attachments` are file names (incoming webhooks cannot
/// carry files, so they are only named).
pub fn payload(msg: &Message, attachments: &[String]) -> Value {
    let severity = msg
        .severity
        .map(|s| format!("[{}] ", s.as_str().to_uppercase()));
    let severity = severity.unwrap_or_default();
    let fallback = match &msg.subject {
        Some(s) => format!("{severity}{s}: {}", msg.text),
        None => format!("{severity}{}", msg.text),
    };
    let mut blocks = Vec::new();
    if let Some(subject) = &msg.subject {
        blocks.push(json!({
            "type": "header",
            "text": {"type": "plain_text", "text": clip(subject, HEADER_MAX_CHARS)}
        }));
    }
    blocks.push(json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": clip(&msg.text, SECTION_MAX_CHARS)}
    }));
    if let Some(Value::Object(data)) = &msg.data {
        let fields: Vec<Value> = data
            .iter()
            .take(MAX_FIELDS)
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                json!({"type": "mrkdwn", "text": clip(&format!("*{k}*\n{v}"), FIELD_MAX_CHARS)})
            })
            .collect();
        if !fields.is_empty() {
            blocks.push(json!({"type": "section", "fields": fields}));
        }
    }
    let mut context = Vec::new();
    if let Some(s) = msg.severity {
        context.push(format!("severity: *{s}*"));
    }
    if !attachments.is_empty() {
        context.push(format!(
            "attachments (not uploaded): {}",
            attachments.join(", ")
        ));
    }
    if !context.is_empty() {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": clip(&context.join(" | "), SECTION_MAX_CHARS)}]
        }));
    }
    json!({"text": clip(&fallback, TEXT_MAX_CHARS), "blocks": blocks})
}

/// Posts `msg` to the incoming webhook at `url`.
pub async fn deliver(url: &str, msg: &Message, attachments: &[String]) -> Result<String, Failure> {
    let body = serde_json::to_vec(&payload(msg, attachments))
        .map_err(|e| Failure::permanent(format!("cannot encode the Slack message: {e}")))?;
    let answer = post_json(url, HeaderMap::new(), body).await?;
    acknowledge(&answer)
}

/// Slack's success is HTTP 200 with the body `ok`.
fn acknowledge(answer: &Answer) -> Result<String, Failure> {
    if !answer.is_success() {
        return Err(answer.failure("Slack"));
    }
    if answer.status == 200 && answer.body.trim() == "ok" {
        return Ok("HTTP 200 ok".into());
    }
    Err(Failure::permanent(format!(
        "Slack answered HTTP {} without the `ok` acknowledgement{}",
        answer.status,
        snippet(&answer.body)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::severity::Severity;
    use crate::tools::notify::Channel;

    #[test]
    fn blocks_respect_slacks_limits() {
        let data: serde_json::Map<String, Value> = (0..15)
            .map(|i| (format!("k{i}"), json!("v".repeat(3000))))
            .collect();
        let msg = Message {
            subject: Some("s".repeat(400)),
            text: "t".repeat(TEXT_MAX_CHARS + 10),
            severity: Some(Severity::Critical),
            data: Some(Value::Object(data)),
            ..Message::new(Channel::Slack, "")
        };
        let p = payload(&msg, &["report.png".into()]);
        let chars = |v: &Value| v.as_str().map(|s| s.chars().count()).unwrap_or(0);
        assert_eq!(chars(&p["text"]), TEXT_MAX_CHARS);
        assert!(
            p["text"]
                .as_str()
                .unwrap_or("")
                .starts_with("[CRITICAL] sss")
        );
        assert_eq!(chars(&p["blocks"][0]["text"]["text"]), HEADER_MAX_CHARS);
        assert_eq!(chars(&p["blocks"][1]["text"]["text"]), SECTION_MAX_CHARS);
        let fields = p["blocks"][2]["fields"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(fields.len(), MAX_FIELDS);
        assert_eq!(chars(&fields[0]["text"]), FIELD_MAX_CHARS);
        let context = p["blocks"][3]["elements"][0]["text"].as_str().unwrap_or("");
        assert!(
            context.contains("critical") && context.contains("report.png"),
            "{context}"
        );
    }
}
