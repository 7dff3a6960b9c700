//! The providers' documented request formats, checked field by field on recorded requests,
//! and the tool results read back out of them.

use serde_json::Value;

use super::Recorded;

/// The last message of an Anthropic request.
pub fn last_message(r: &Recorded) -> &Value {
    r.body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .expect("messages")
}

/// Tool results of the last user message of an Anthropic request: (tool_use_id, content, is_error).
pub fn anthropic_results(r: &Recorded) -> Vec<(String, String, bool)> {
    let last = last_message(r);
    assert_eq!(last["role"], "user");
    last["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| {
            (
                b["tool_use_id"].as_str().unwrap().to_string(),
                b["content"].as_str().unwrap().to_string(),
                b["is_error"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The trailing `role: tool` messages of an OpenAI request: (tool_call_id, content).
pub fn openai_results(r: &Recorded) -> Vec<(String, String)> {
    let msgs = r.body["messages"].as_array().unwrap();
    let mut out: Vec<(String, String)> = msgs
        .iter()
        .rev()
        .take_while(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.reverse();
    out
}

/// Checks one recorded request against Anthropic's documented Messages API format.
pub fn assert_anthropic_format(r: &Recorded) {
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some("test-anthropic-key"));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    let b = &r.body;
    assert_eq!(b["model"], "test-model");
    assert!(
        b["max_tokens"].as_u64().is_some_and(|n| n > 0),
        "max_tokens: {b}"
    );
    assert!(
        b["system"].as_str().is_some_and(|s| !s.is_empty()),
        "system is a string"
    );
    for tool in b["tools"].as_array().expect("tools array") {
        let keys: Vec<&str> = tool
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys.len(),
            3,
            "a tool has exactly name, description, input_schema: {tool}"
        );
        assert!(tool["name"].as_str().is_some_and(|n| {
            !n.is_empty()
                && n.len() <= 64
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }));
        assert!(tool["description"].is_string());
        assert_eq!(tool["input_schema"]["type"], "object", "{tool}");
    }
    let messages = b["messages"].as_array().expect("messages array");
    assert_eq!(
        messages[0]["role"], "user",
        "the conversation starts with the user"
    );
    assert_eq!(
        messages.last().map(|m| &m["role"]),
        Some(&Value::from("user")),
        "the request ends with a user message for the model to answer"
    );
    let mut previous = "";
    // The tool_use ids of the previous assistant message, each to be answered next.
    let mut open_calls: Vec<String> = Vec::new();
    for m in messages {
        let role = m["role"].as_str().expect("role");
        assert!(role == "user" || role == "assistant", "{m}");
        assert_ne!(role, previous, "roles alternate: {m}");
        previous = role;
        let blocks = m["content"].as_array().expect("content blocks");
        assert!(!blocks.is_empty(), "no empty content: {m}");
        if role == "user" {
            let answered: Vec<&str> = blocks
                .iter()
                .filter(|b| b["type"] == "tool_result")
                .filter_map(|b| b["tool_use_id"].as_str())
                .collect();
            let mut expected: Vec<&str> = open_calls.iter().map(String::as_str).collect();
            let mut got = answered.clone();
            expected.sort_unstable();
            got.sort_unstable();
            assert_eq!(
                got, expected,
                "each tool_use is answered by a tool_result with its id in the very next user message, \
                 and nothing else is: {m}"
            );
            let first_other = blocks
                .iter()
                .position(|b| b["type"] != "tool_result")
                .unwrap_or(blocks.len());
            assert!(
                blocks[first_other..]
                    .iter()
                    .all(|b| b["type"] != "tool_result"),
                "tool_result blocks come first in their message: {m}"
            );
            open_calls.clear();
        } else {
            assert!(
                open_calls.is_empty(),
                "tool calls answered before the next assistant turn"
            );
            open_calls = blocks
                .iter()
                .filter(|b| b["type"] == "tool_use")
                .map(|b| b["id"].as_str().expect("tool_use id").to_string())
                .collect();
        }
        for block in blocks {
            match block["type"].as_str().unwrap() {
                "text" => assert!(block["text"].as_str().is_some_and(|t| !t.trim().is_empty())),
                "tool_use" => {
                    assert_eq!(role, "assistant");
                    assert!(block["id"].is_string() && block["name"].is_string());
                    assert!(block["input"].is_object());
                }
                "tool_result" => {
                    assert_eq!(role, "user");
                    assert!(block["tool_use_id"].is_string());
                    assert!(block["content"].is_string());
                    assert!(block["is_error"].is_boolean());
                }
                other => panic!("unexpected block type {other}"),
            }
        }
    }
}

/// Checks one recorded request against OpenAI's documented Chat Completions format.
pub fn assert_openai_format(r: &Recorded) {
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some("Bearer test-openai-key"));
    let b = &r.body;
    assert_eq!(b["model"], "test-model");
    for tool in b["tools"].as_array().expect("tools array") {
        assert_eq!(tool["type"], "function");
        let f = &tool["function"];
        assert!(
            f["name"]
                .as_str()
                .is_some_and(|n| !n.is_empty() && n.len() <= 64)
        );
        assert!(f["description"].is_string());
        assert_eq!(f["parameters"]["type"], "object", "{tool}");
    }
    let messages = b["messages"].as_array().expect("messages");
    assert_eq!(messages[0]["role"], "system");
    let mut open_calls: Vec<String> = Vec::new();
    for m in messages {
        match m["role"].as_str().unwrap() {
            "system" | "user" => {
                assert!(
                    open_calls.is_empty(),
                    "every tool call is answered before the next user message"
                );
                assert!(m["content"].is_string());
            }
            "assistant" => {
                assert!(open_calls.is_empty());
                for c in m["tool_calls"].as_array().into_iter().flatten() {
                    assert_eq!(c["type"], "function");
                    let args = c["function"]["arguments"]
                        .as_str()
                        .expect("arguments is a JSON string");
                    assert!(
                        serde_json::from_str::<Value>(args).is_ok_and(|v| v.is_object()),
                        "{args}"
                    );
                    open_calls.push(c["id"].as_str().unwrap().to_string());
                }
            }
            "tool" => {
                let id = m["tool_call_id"].as_str().expect("tool_call_id");
                assert!(open_calls.contains(&id.to_string()), "answers a call: {id}");
                open_calls.retain(|c| c != id);
                assert!(m["content"].is_string());
            }
            other => panic!("unexpected role {other}"),
        }
    }
}
