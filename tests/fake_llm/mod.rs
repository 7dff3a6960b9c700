//! A scripted stand-in for a model API (the only mock the tests use for an LLM): an axum
//! server that answers each POST with the next response of a fixed script, in the real wire
//! format of Anthropic's Messages API or OpenAI's Chat Completions, and records every request
//! (path, headers, JSON body) for the tests to inspect.
#![allow(dead_code)]

pub mod run;
pub mod wire;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt as _;
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn ok(body: Value) -> Self {
        Reply {
            status: 200,
            headers: Vec::new(),
            body,
            delay: Duration::ZERO,
        }
    }

    /// A 429 with `retry-after: 0` (rate limited; come back at once).
    pub fn rate_limited() -> Self {
        Reply {
            status: 429,
            headers: vec![("retry-after".into(), "0".into())],
            body: json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Too many requests"}}),
            delay: Duration::ZERO,
        }
    }

    /// An HTTP error with a JSON body.
    pub fn error(status: u16, body: Value) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body,
            delay: Duration::ZERO,
        }
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    recorded: Mutex<Vec<Recorded>>,
}

/// The running fake; stops when dropped.
pub struct FakeLlm {
    pub base: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeLlm {
    /// Serves `script` on 127.0.0.1 (a random port); `base` is `http://127.0.0.1:PORT`.
    pub async fn start(script: Vec<Reply>) -> FakeLlm {
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into()),
            recorded: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake LLM");
        let addr = listener.local_addr().expect("local address");
        // Answer without Nagle's delay, as real API front ends do.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeLlm {
            base: format!("http://{addr}"),
            shared,
            task,
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().unwrap().clone()
    }

    /// Scripted replies not yet served.
    pub fn remaining(&self) -> usize {
        self.shared.script.lock().unwrap().len()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.recorded.lock().unwrap().push(Recorded {
        path: uri.path().to_string(),
        headers,
        body,
    });
    let next = shared.script.lock().unwrap().pop_front();
    let Some(reply) = next else {
        return (
            StatusCode::BAD_REQUEST,
            "the fake LLM's script is exhausted: the agent made more requests than the test expected",
        )
            .into_response();
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        reply.body.to_string(),
    )
        .into_response();
    for (k, v) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(&v),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Anthropic Messages API replies.
pub mod anthropic {
    use super::*;

    pub fn text(text: &str) -> Reply {
        stopped(text, "end_turn")
    }

    /// A text reply that ended for `stop_reason` (`max_tokens`: cut off); `""` sends no blocks.
    pub fn stopped(text: &str, stop_reason: &str) -> Reply {
        let content: Vec<Value> = if text.is_empty() {
            Vec::new()
        } else {
            vec![json!({"type": "text", "text": text})]
        };
        Reply::ok(json!({
            "id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-test",
            "content": content,
            "stop_reason": stop_reason, "stop_sequence": null,
            "usage": {"input_tokens": 100, "output_tokens": 20}
        }))
    }

    /// A turn of tool calls: (id, name, input).
    pub fn tools(text: &str, calls: &[(&str, &str, Value)]) -> Reply {
        let mut content = Vec::new();
        if !text.is_empty() {
            content.push(json!({"type": "text", "text": text}));
        }
        for (id, name, input) in calls {
            content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
        }
        Reply::ok(json!({
            "id": "msg_fake", "type": "message", "role": "assistant", "model": "claude-test",
            "content": content, "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 100, "output_tokens": 20}
        }))
    }
}

/// OpenAI Chat Completions replies.
pub mod openai {
    use super::*;

    fn completion(message: Value, finish: &str) -> Reply {
        Reply::ok(json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": "gpt-test",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
        }))
    }

    pub fn text(text: &str) -> Reply {
        stopped(text, "stop")
    }

    /// A text reply that ended for `finish_reason` (`length`: cut off at max_tokens).
    pub fn stopped(text: &str, finish_reason: &str) -> Reply {
        completion(json!({"role": "assistant", "content": text}), finish_reason)
    }

    /// A turn of tool calls: (id, name, arguments as the JSON string the API sends).
    pub fn tools(calls: &[(&str, &str, &str)]) -> Reply {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
            .collect();
        completion(
            json!({"role": "assistant", "content": null, "tool_calls": calls}),
            "tool_calls",
        )
    }
}
