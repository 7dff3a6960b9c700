//! OpenAI's Chat Completions API (`POST {base}/chat/completions`), also served by Ollama,
//! llama.cpp's server, vLLM and LM Studio: `Authorization: Bearer`, the system prompt as the
//! first message, tools as `{type: "function", function: {name, description, parameters}}`,
//! calls as `tool_calls` with JSON-string `arguments`, one `role: tool` message per result.

use super::short;
use serde_json::{Value, json};

use super::{
    Headers, Message, ModelReply, ProviderConfig, ProviderError, Request, StopKind, ToolCall, Usage,
};

/// The URL, body and headers of one request.
pub fn build(config: &ProviderConfig, request: &Request<'_>) -> (String, Value, Headers) {
    let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
    let mut messages = vec![json!({"role": "system", "content": request.system})];
    for m in request.messages {
        match m {
            Message::User { text } => messages.push(json!({"role": "user", "content": text})),
            Message::Assistant { text, tool_calls } => {
                let mut msg = json!({"role": "assistant", "content": text});
                if !tool_calls.is_empty() {
                    let calls: Vec<Value> = tool_calls
                        .iter()
                        .map(|c| {
                            json!({"id": c.id, "type": "function",
                                   "function": {"name": c.name, "arguments": arguments_text(c)}})
                        })
                        .collect();
                    msg["tool_calls"] = Value::Array(calls);
                }
                messages.push(msg);
            }
            Message::ToolResults { results, note } => {
                for r in results {
                    messages.push(
                        json!({"role": "tool", "tool_call_id": r.call_id, "content": r.text}),
                    );
                }
                if let Some(n) = note {
                    messages.push(json!({"role": "user", "content": n}));
                }
            }
        }
    }
    let mut body = json!({
        "model": config.model,
        "messages": messages,
        "max_tokens": config.max_tokens,
    });
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.input_schema}})
            })
            .collect();
        body["tools"] = Value::Array(tools);
        if request.no_tools {
            body["tool_choice"] = json!("none");
        }
    }
    if let Some(t) = config.temperature {
        body["temperature"] = json!(t);
    }
    let mut headers: Headers = Vec::new();
    if let Some(key) = &config.api_key {
        headers.push(("authorization", format!("Bearer {key}")));
    }
    (url, body, headers)
}

/// The arguments as the JSON string the API expects; arguments that were not valid JSON are
/// echoed as `{}` (the error result tells the model what was wrong with them).
fn arguments_text(call: &ToolCall) -> String {
    match (&call.arguments, &call.raw_arguments) {
        (Ok(_), Value::String(s)) => s.clone(),
        (Ok(args), _) => Value::Object(args.clone()).to_string(),
        (Err(_), _) => "{}".to_string(),
    }
}

/// Reads a Chat Completions reply.
pub fn parse(url: &str, value: &Value) -> Result<ModelReply, ProviderError> {
    let malformed = |detail: String| ProviderError::Malformed {
        url: url.to_string(),
        what: "a chat completion",
        detail,
    };
    let choice = value
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| malformed(format!("no `choices[0]` in {}", short(value))))?;
    let message = choice
        .get("message")
        .ok_or_else(|| malformed(format!("no `message` in {}", short(choice))))?;
    let text = message
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let tool_calls: Vec<ToolCall> = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(i, c)| tool_call(c, i))
                .collect()
        })
        .unwrap_or_default();
    let stop = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("stop") => StopKind::EndTurn,
        Some("tool_calls") | Some("function_call") => StopKind::ToolUse,
        Some("length") => StopKind::MaxTokens,
        _ => StopKind::Other,
    };
    Ok(ModelReply {
        wire_time: std::time::Duration::ZERO,
        text,
        tool_calls,
        stop,
        usage: Usage::from_reply(value.get("usage"), "prompt_tokens", "completion_tokens"),
    })
}

/// One entry of `tool_calls`. Arguments that are not a JSON object (or not JSON at all) and a
/// missing function name are kept as errors the model is told about; some local servers send
/// the arguments as an object rather than a string, which is accepted.
fn tool_call(call: &Value, index: usize) -> ToolCall {
    let id = super::call_id(call, "call_missing", index);
    let function = call.get("function");
    let name = function
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let raw = function
        .and_then(|f| f.get("arguments"))
        .cloned()
        .unwrap_or(Value::Null);
    let parsed = match &raw {
        Value::String(s) if s.trim().is_empty() => Ok(Value::Object(Default::default())),
        Value::String(s) => serde_json::from_str::<Value>(s).map_err(|e| {
            format!(
                "the arguments are not valid JSON ({e}): {}",
                s.chars().take(200).collect::<String>()
            )
        }),
        Value::Null => Ok(Value::Object(Default::default())),
        other => Ok(other.clone()),
    };
    let arguments = match parsed {
        _ if name.is_empty() => Err("the tool call has no function name".to_string()),
        Ok(Value::Object(o)) => Ok(o),
        Ok(other) => Err(format!(
            "the arguments must be a JSON object, got {}",
            short(&other)
        )),
        Err(e) => Err(e),
    };
    ToolCall {
        id,
        name,
        arguments,
        raw_arguments: raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_json_arguments_become_an_error_for_the_model() {
        let c = tool_call(
            &json!({"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{\"path\": "}}),
            0,
        );
        assert!(c.arguments.unwrap_err().contains("not valid JSON"));
        let c = tool_call(
            &json!({"function": {"name": "read", "arguments": "[1]"}}),
            3,
        );
        assert_eq!(c.id, "call_missing_3");
        assert!(c.arguments.unwrap_err().contains("JSON object"));
        let c = tool_call(&json!({"id": "x", "function": {"arguments": "{}"}}), 0);
        assert!(c.arguments.unwrap_err().contains("no function name"));
    }
}
