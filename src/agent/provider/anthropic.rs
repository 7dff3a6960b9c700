//! Anthropic's Messages API (`POST {base}/v1/messages`): `x-api-key` and
//! `anthropic-version: 2023-06-01` headers, the system prompt as a top-level field, tools as
//! `{name, description, input_schema}`, calls as `tool_use` blocks and all of a turn's results as
//! `tool_result` blocks in one user message.

use super::short;
use serde_json::{Map, Value, json};

use super::{
    Headers, Message, ModelReply, ProviderConfig, ProviderError, Request, StopKind, ToolCall, Usage,
};

/// The API version this module speaks.
pub const API_VERSION: &str = "2023-06-01";

/// The URL, body and headers of one request.
pub fn build(config: &ProviderConfig, request: &Request<'_>) -> (String, Value, Headers) {
    let url = format!("{}/v1/messages", config.base_url.trim_end_matches('/'));
    let tools: Vec<Value> = request
        .tools
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
        .collect();
    let mut body = json!({
        "model": config.model,
        "max_tokens": config.max_tokens,
        "system": request.system,
        "messages": messages(request.messages),
    });
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools);
        if request.no_tools {
            body["tool_choice"] = json!({"type": "none"});
        }
    }
    if let Some(t) = config.temperature {
        body["temperature"] = json!(t);
    }
    let mut headers: Headers = vec![("anthropic-version", API_VERSION.to_string())];
    if let Some(key) = &config.api_key {
        headers.push(("x-api-key", key.clone()));
    }
    (url, body, headers)
}

/// The conversation in Anthropic's shape; consecutive messages of one role are merged (the
/// API wants user and assistant turns to alternate).
fn messages(history: &[Message]) -> Vec<Value> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in history {
        let (role, blocks) = match m {
            Message::User { text } => ("user", vec![text_block(text)]),
            Message::Assistant { text, tool_calls } => {
                let mut blocks = Vec::new();
                if !text.trim().is_empty() {
                    blocks.push(text_block(text));
                }
                for c in tool_calls {
                    let input = match &c.raw_arguments {
                        Value::Object(o) => Value::Object(o.clone()),
                        _ => Value::Object(Map::new()),
                    };
                    blocks.push(
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                    );
                }
                if blocks.is_empty() {
                    continue;
                }
                ("assistant", blocks)
            }
            Message::ToolResults { results, note } => {
                let mut blocks: Vec<Value> = results
                    .iter()
                    .map(|r| {
                        json!({"type": "tool_result", "tool_use_id": r.call_id,
                               "content": non_empty(&r.text), "is_error": r.is_error})
                    })
                    .collect();
                if let Some(n) = note {
                    blocks.push(text_block(n));
                }
                ("user", blocks)
            }
        };
        match out.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    out.into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": non_empty(text)})
}

/// The API refuses empty text blocks.
fn non_empty(text: &str) -> &str {
    if text.trim().is_empty() {
        "(empty)"
    } else {
        text
    }
}

/// Reads a Messages API reply.
pub fn parse(url: &str, value: &Value) -> Result<ModelReply, ProviderError> {
    let malformed = |detail: String| ProviderError::Malformed {
        url: url.to_string(),
        what: "an Anthropic message",
        detail,
    };
    let content = value
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed(format!("no `content` array in {}", short(value))))?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for (i, block) in content.iter().enumerate() {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(t) = block.get("text").and_then(Value::as_str) {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(t);
                }
            }
            Some("tool_use") => tool_calls.push(tool_call(block, i)),
            // Thinking and other blocks are not part of the answer.
            _ => {}
        }
    }
    let stop = match value.get("stop_reason").and_then(Value::as_str) {
        Some("end_turn") | Some("stop_sequence") => StopKind::EndTurn,
        Some("tool_use") => StopKind::ToolUse,
        Some("max_tokens") => StopKind::MaxTokens,
        _ => StopKind::Other,
    };
    Ok(ModelReply {
        wire_time: std::time::Duration::ZERO,
        text,
        tool_calls,
        stop,
        usage: Usage::from_reply(value.get("usage"), "input_tokens", "output_tokens"),
    })
}

/// A `tool_use` block; a missing id or name, or an input that is not an object, is kept as an
/// error the model is told about.
fn tool_call(block: &Value, index: usize) -> ToolCall {
    let id = super::call_id(block, "toolu_missing", index);
    let name = block
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let raw = block.get("input").cloned().unwrap_or(Value::Null);
    let arguments = match &raw {
        _ if name.is_empty() => Err("the tool_use block has no tool name".to_string()),
        Value::Object(o) => Ok(o.clone()),
        other => Err(format!(
            "the tool input must be a JSON object, got {}",
            short(other)
        )),
    };
    ToolCall {
        id,
        name,
        arguments,
        raw_arguments: raw,
    }
}
