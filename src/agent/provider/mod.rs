//! The model side of the loop: one neutral conversation shape (text, tool calls, tool results)
//! and two wire formats that speak it to real APIs: Anthropic's Messages API and OpenAI's Chat
//! Completions (which Ollama, llama.cpp's server, vLLM and LM Studio also serve).

pub mod anthropic;
pub mod openai;
pub mod retry;

use std::time::Duration;

use serde::Serialize;

/// Which wire format to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Anthropic,
    Openai,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Openai => "openai",
        }
    }

    /// Parses `PI_PROVIDER`'s value.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "anthropic" => Some(ProviderKind::Anthropic),
            "openai" => Some(ProviderKind::Openai),
            _ => None,
        }
    }
}

/// Where and how to reach the model. Its `Debug` hides the API key.
#[derive(Clone)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    pub model: String,
    /// Base URL: Anthropic's without `/v1`, OpenAI's with it (`https://api.openai.com/v1`).
    pub base_url: String,
    pub api_key: Option<String>,
    pub max_tokens: u32,
    pub temperature: Option<f32>,
    /// Per-request HTTP timeout.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .field("max_tokens", &self.max_tokens)
            .field("temperature", &self.temperature)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// A tool as the model sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub input_schema: serde_json::Value,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, Serialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The parsed arguments, or why they could not be used (told to the model).
    #[serde(skip)]
    pub arguments: Result<serde_json::Map<String, serde_json::Value>, String>,
    /// The arguments exactly as the model sent them (echoed back in the history).
    pub raw_arguments: serde_json::Value,
}

impl ToolCall {
    /// The arguments as a JSON object whatever the wire format (Chat Completions sends a JSON
    /// string, the Messages API an object): the one form transcripts record. Arguments that
    /// could not be used are `{}` (see [`ToolCall::arguments_error`]).
    pub fn arguments_object(&self) -> serde_json::Value {
        match &self.arguments {
            Ok(args) => serde_json::Value::Object(args.clone()),
            Err(_) => serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// Why the arguments could not be used, if they could not.
    pub fn arguments_error(&self) -> Option<&str> {
        self.arguments.as_ref().err().map(String::as_str)
    }
}

/// The result of one tool call, as sent back to the model.
#[derive(Debug, Clone, Serialize)]
pub struct ToolResult {
    pub call_id: String,
    pub text: String,
    pub is_error: bool,
}

/// One message of the conversation (the system prompt travels separately).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Message {
    User {
        text: String,
    },
    Assistant {
        text: String,
        tool_calls: Vec<ToolCall>,
    },
    /// The results of every tool call of one assistant turn.
    ToolResults {
        results: Vec<ToolResult>,
        /// A note for the model after the results (e.g. "step limit reached").
        note: Option<String>,
    },
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    /// A final answer (or a turn of tool calls, told apart by `tool_calls`).
    EndTurn,
    ToolUse,
    /// Cut at `max_tokens`.
    MaxTokens,
    Other,
}

/// Tokens one request used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    /// Token counts from a reply's `usage` object, under the wire format's key names
    /// (missing counts are 0).
    pub fn from_reply(
        usage: Option<&serde_json::Value>,
        input_key: &str,
        output_key: &str,
    ) -> Usage {
        let tokens = |k: &str| {
            usage
                .and_then(|u| u.get(k))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        };
        Usage {
            input_tokens: tokens(input_key),
            output_tokens: tokens(output_key),
        }
    }
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }

    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }
}

/// What the model answered.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReply {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub stop: StopKind,
    pub usage: Usage,
    /// Time spent waiting on the API (HTTP round trips and retry waits), not building or
    /// reading the messages.
    #[serde(skip)]
    pub wire_time: Duration,
}

/// One request to the model.
pub struct Request<'a> {
    pub system: &'a str,
    pub messages: &'a [Message],
    pub tools: &'a [ToolSpec],
    /// Ask for text only (the summary at the step limit).
    pub no_tools: bool,
}

/// A model request that failed for good (after retries).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot reach the model at {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the model API at {url} answered HTTP {status}: {body}{}", http_hint(*status))]
    Http {
        url: String,
        status: u16,
        body: String,
        /// The server's `retry-after`, when it sent one.
        retry_after: Option<Duration>,
    },
    #[error("the model API at {url} sent a reply that is not {what}: {detail}")]
    Malformed {
        url: String,
        what: &'static str,
        detail: String,
    },
}

/// What to check after an HTTP error that retrying does not fix.
fn http_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => " (check the API key: ANTHROPIC_API_KEY or OPENAI_API_KEY)",
        404 => " (check the base URL and the model name: --model / PI_MODEL)",
        400 | 413 | 422 => " (the API refused the request; its message above says why)",
        _ => "",
    }
}

impl ProviderError {
    /// Worth trying again: rate limits (429), overload (529), server errors, connection trouble.
    pub fn is_transient(&self) -> bool {
        match self {
            ProviderError::Transport { .. } => true,
            ProviderError::Http { status, .. } => *status == 429 || *status >= 500,
            ProviderError::Malformed { .. } => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A configured model endpoint.
pub struct Provider {
    config: ProviderConfig,
    http: reqwest::Client,
}

impl Provider {
    pub fn new(config: ProviderConfig) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .build()
            .map_err(|source| ProviderError::Transport {
                url: config.base_url.clone(),
                source,
            })?;
        Ok(Provider { config, http })
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// Sends one request, retrying transient failures with backoff; `on_retry` hears each retry.
    pub async fn complete(
        &self,
        request: &Request<'_>,
        on_retry: &(dyn Fn(&ProviderError, Duration) + Sync),
    ) -> Result<ModelReply, ProviderError> {
        let (url, body, headers) = match self.config.kind {
            ProviderKind::Anthropic => anthropic::build(&self.config, request),
            ProviderKind::Openai => openai::build(&self.config, request),
        };
        let started = std::time::Instant::now();
        let value = retry::post_json(&self.http, &url, &headers, &body, on_retry).await?;
        let wire_time = started.elapsed();
        let mut reply = match self.config.kind {
            ProviderKind::Anthropic => anthropic::parse(&url, &value),
            ProviderKind::Openai => openai::parse(&url, &value),
        }?;
        reply.wire_time = wire_time;
        Ok(reply)
    }
}

/// Header name/value pairs a wire format adds to its requests.
pub type Headers = Vec<(&'static str, String)>;

/// A tool call's id, or a stand-in naming its position when the model sent none.
pub(crate) fn call_id(call: &serde_json::Value, missing_prefix: &str, index: usize) -> String {
    call.get("id")
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
        .map_or_else(|| format!("{missing_prefix}_{index}"), str::to_string)
}

/// The first 200 characters of `value`, for messages to the model.
pub(crate) fn short(value: &serde_json::Value) -> String {
    value.to_string().chars().take(200).collect()
}
