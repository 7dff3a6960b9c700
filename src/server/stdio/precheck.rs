//! The line-level pre-check of the stdio transport ([`super`] says why it exists): every line
//! is parsed here before rmcp sees it, and what rmcp would mishandle is answered (with the
//! request's `id`) or dropped here instead.

use rmcp::model::{
    CallToolRequest, CancelTaskRequest, ClientJsonRpcMessage, ClientRequest, CompleteRequest,
    ConstString, DiscoverRequest, GetMeta, GetPromptRequest, GetTaskRequest, InitializeRequest,
    ListPromptsRequest, ListResourceTemplatesRequest, ListResourcesRequest, ListToolsRequest,
    PingRequest, ProtocolVersion, ReadResourceRequest, SetLevelRequest, SubscribeRequest,
    SubscriptionsListenRequest, UnsubscribeRequest,
};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Value, json};

/// Whether rmcp has left its pre-initialize loop, which ends the process on anything but a
/// request.
pub(super) struct Lifecycle {
    pub(super) begun: bool,
    pub(super) versions: Vec<ProtocolVersion>,
}

impl Lifecycle {
    /// Whether rmcp may be given `msg` now; updates the state as rmcp will.
    pub(super) fn admit(&mut self, msg: &ClientJsonRpcMessage) -> bool {
        if self.begun {
            return true;
        }
        let ClientJsonRpcMessage::Request(req) = msg else {
            return false;
        };
        // The same test as rmcp's `serve_server`: `initialize`, or a request with complete
        // 2026-07-28 `_meta` in a supported version; ping and discover leave it waiting.
        self.begun = match &req.request {
            ClientRequest::InitializeRequest(_) => true,
            ClientRequest::PingRequest(_) | ClientRequest::DiscoverRequest(_) => false,
            other => {
                let meta = other.get_meta();
                meta.missing_required_keys(&ProtocolVersion::V_2026_07_28)
                    .is_empty()
                    && meta
                        .protocol_version()
                        .is_some_and(|v| self.versions.contains(&v))
            }
        };
        true
    }
}

pub(super) fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line)
}

pub(super) fn describe(msg: &ClientJsonRpcMessage) -> Option<&'static str> {
    Some(match msg {
        ClientJsonRpcMessage::Notification(_) => "notification",
        ClientJsonRpcMessage::Response(_) | ClientJsonRpcMessage::Error(_) => "response",
        ClientJsonRpcMessage::Request(_) => return None,
    })
}

/// What to do with one line.
#[derive(Debug)]
pub(super) enum Checked {
    /// A message rmcp can take.
    Message(Box<ClientJsonRpcMessage>),
    /// An error response for this layer to write.
    Answer(Value),
    /// Nothing to answer (not JSON, a notification or response of the wrong shape).
    Ignore(String),
}

const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

fn error(id: Value, code: i64, message: String) -> Checked {
    Checked::Answer(
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
    )
}

pub(super) fn check(line: &[u8]) -> Checked {
    // The common line first, without trying every request type (see `tools_call`).
    if let Some(msg) = super::tools_call::read(line) {
        return Checked::Message(Box::new(msg));
    }
    let parse_error = match serde_json::from_slice::<ClientJsonRpcMessage>(line) {
        Ok(ClientJsonRpcMessage::Request(req)) => {
            // rmcp reads a known method whose params do not fit as a custom request and
            // answers -32601, as if the method did not exist.
            if let ClientRequest::CustomRequest(custom) = &req.request
                && is_known(&custom.method)
                && let Ok(value) = serde_json::from_slice::<Value>(line)
            {
                return invalid_params(
                    json!(req.id),
                    &custom.method,
                    params_problem(&custom.method, &value)
                        .unwrap_or_else(|| "they do not fit the method".into()),
                );
            }
            return Checked::Message(Box::new(ClientJsonRpcMessage::Request(req)));
        }
        Ok(msg) => return Checked::Message(Box::new(msg)),
        Err(e) => e,
    };
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return Checked::Ignore(format!("not JSON ({e})")),
    };
    let Some(obj) = value.as_object() else {
        return error(
            Value::Null,
            INVALID_REQUEST,
            "a message is one JSON-RPC object; batches (arrays) are not part of MCP: send each \
             request on its own line"
                .into(),
        );
    };
    let method = obj.get("method");
    let Some(id) = obj.get("id") else {
        // A notification (or something like one): there is no one to answer.
        let name = method.and_then(Value::as_str).unwrap_or("?");
        return Checked::Ignore(format!("malformed notification `{name}` ({parse_error})"));
    };
    if !(id.is_string() || id.is_i64() || id.is_u64()) {
        return error(
            Value::Null,
            INVALID_REQUEST,
            format!("`id` must be a string or an integer, not {id}"),
        );
    }
    let id = id.clone();
    let Some(method) = method else {
        if obj.contains_key("result") || obj.contains_key("error") {
            return Checked::Ignore(format!("malformed response ({parse_error})"));
        }
        return error(
            id,
            INVALID_REQUEST,
            "a request needs a `method` (a string, e.g. \"tools/list\")".into(),
        );
    };
    let Some(method) = method.as_str() else {
        return error(
            id,
            INVALID_REQUEST,
            format!("`method` must be a string, not {method}"),
        );
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return error(
            id,
            INVALID_REQUEST,
            "`jsonrpc` must be the string \"2.0\"".into(),
        );
    }
    match params_problem(method, &value) {
        Some(problem) => invalid_params(id, method, problem),
        None if is_known(method) => invalid_params(id, method, parse_error.to_string()),
        None => error(id, METHOD_NOT_FOUND, format!("unknown method `{method}`")),
    }
}

fn invalid_params(id: Value, method: &str, problem: String) -> Checked {
    error(
        id,
        INVALID_PARAMS,
        format!(
            "invalid params for `{method}`: {problem}. `params` must be an object shaped as the \
             MCP schema says for `{method}` (and `params._meta`, if sent, an object)"
        ),
    )
}

/// Deserializes `message` as request type `R`, with the path to what does not fit; rmcp's
/// `params` go through a flattened map that hides the path inside them, so when the problem
/// is there, `params` (without `_meta`) are read again as the parameter type `P`.
fn problem_with<R: DeserializeOwned, P: DeserializeOwned>(message: &Value) -> Option<String> {
    let mut message = message.clone();
    if let Some(obj) = message.as_object_mut() {
        obj.remove("jsonrpc");
        obj.remove("id");
    }
    let e = serde_path_to_error::deserialize::<_, R>(message.clone()).err()?;
    let mut path = e.path().to_string();
    let mut inner = e.into_inner().to_string();
    if path == "params"
        && let Some(mut params) = message.get("params").filter(|p| p.is_object()).cloned()
    {
        if let Some(p) = params.as_object_mut() {
            p.remove("_meta");
        }
        if let Err(e) = serde_path_to_error::deserialize::<_, P>(params) {
            path = format!("params.{}", e.path());
            inner = e.into_inner().to_string();
        }
    }
    Some(if path == "." || path.is_empty() {
        inner
    } else {
        format!("`{path}`: {inner}")
    })
}

type Explain = fn(&Value) -> Option<String>;

/// The client-to-server requests rmcp knows, each with its own request type.
fn known() -> [(&'static str, Explain); 17] {
    use rmcp::model::{
        CallToolRequestMethod as CallTool, CancelTaskMethod as CancelTask,
        CompleteRequestMethod as Complete, DiscoverRequestMethod as Discover,
        GetPromptRequestMethod as GetPrompt, GetTaskMethod as GetTask,
        InitializeResultMethod as Initialize, ListPromptsRequestMethod as ListPrompts,
        ListResourceTemplatesRequestMethod as ListTemplates,
        ListResourcesRequestMethod as ListResources, ListToolsRequestMethod as ListTools,
        PingRequestMethod as Ping, ReadResourceRequestMethod as ReadResource,
        SetLevelRequestMethod as SetLevel, SubscribeRequestMethod as Subscribe,
        SubscriptionsListenRequestMethod as Listen, UnsubscribeRequestMethod as Unsubscribe,
    };
    use rmcp::model::{
        CallToolRequestParams, CancelTaskParams, CompleteRequestParams, DiscoverRequestParams,
        GetPromptRequestParams, GetTaskParams, InitializeRequestParams, PaginatedRequestParams,
        ReadResourceRequestParams, SetLevelRequestParams, SubscribeRequestParams,
        SubscriptionsListenRequestParams, UnsubscribeRequestParams,
    };
    [
        (
            Initialize::VALUE,
            problem_with::<InitializeRequest, InitializeRequestParams>,
        ),
        (Ping::VALUE, problem_with::<PingRequest, IgnoredAny>),
        (
            Discover::VALUE,
            problem_with::<DiscoverRequest, DiscoverRequestParams>,
        ),
        (
            Complete::VALUE,
            problem_with::<CompleteRequest, CompleteRequestParams>,
        ),
        (
            SetLevel::VALUE,
            problem_with::<SetLevelRequest, SetLevelRequestParams>,
        ),
        (
            GetPrompt::VALUE,
            problem_with::<GetPromptRequest, GetPromptRequestParams>,
        ),
        (
            ListPrompts::VALUE,
            problem_with::<ListPromptsRequest, PaginatedRequestParams>,
        ),
        (
            ListResources::VALUE,
            problem_with::<ListResourcesRequest, PaginatedRequestParams>,
        ),
        (
            ListTemplates::VALUE,
            problem_with::<ListResourceTemplatesRequest, PaginatedRequestParams>,
        ),
        (
            ReadResource::VALUE,
            problem_with::<ReadResourceRequest, ReadResourceRequestParams>,
        ),
        (
            Listen::VALUE,
            problem_with::<SubscriptionsListenRequest, SubscriptionsListenRequestParams>,
        ),
        (
            Subscribe::VALUE,
            problem_with::<SubscribeRequest, SubscribeRequestParams>,
        ),
        (
            Unsubscribe::VALUE,
            problem_with::<UnsubscribeRequest, UnsubscribeRequestParams>,
        ),
        (
            CallTool::VALUE,
            problem_with::<CallToolRequest, CallToolRequestParams>,
        ),
        (
            ListTools::VALUE,
            problem_with::<ListToolsRequest, PaginatedRequestParams>,
        ),
        (
            GetTask::VALUE,
            problem_with::<GetTaskRequest, GetTaskParams>,
        ),
        (
            CancelTask::VALUE,
            problem_with::<CancelTaskRequest, CancelTaskParams>,
        ),
    ]
}

fn is_known(method: &str) -> bool {
    known().iter().any(|(m, _)| *m == method)
}

fn params_problem(method: &str, message: &Value) -> Option<String> {
    known()
        .iter()
        .find(|(m, _)| *m == method)
        .and_then(|(_, explain)| explain(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(line: &str) -> Value {
        match check(line.as_bytes()) {
            Checked::Answer(v) => v,
            other => panic!("{line}: expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn bad_params_of_a_known_method_are_invalid_params_with_the_id() {
        let a = answer(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":["bash"]}"#);
        assert_eq!(a["id"], 7);
        assert_eq!(a["error"]["code"], INVALID_PARAMS);
        let a = answer(
            r#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"read","_meta":"s"}}"#,
        );
        assert_eq!(a["id"], "x");
        assert_eq!(a["error"]["code"], INVALID_PARAMS);
        let msg = a["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("tools/call") && msg.contains("_meta"), "{msg}");
        // rmcp would take this one for an unknown custom method (-32601).
        let a = answer(r#"{"jsonrpc":"2.0","id":5,"method":"prompts/get","params":{"name":5}}"#);
        assert_eq!(
            (a["id"].clone(), a["error"]["code"].clone()),
            (json!(5), json!(INVALID_PARAMS))
        );
        let msg = a["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("`params.name`"), "{msg}");
    }

    #[test]
    fn other_malformed_requests_keep_their_id() {
        let a = answer(r#"{"jsonrpc":"1.0","id":3,"method":"tools/list"}"#);
        assert_eq!(
            (a["id"].clone(), a["error"]["code"].clone()),
            (json!(3), json!(INVALID_REQUEST))
        );
        let a = answer(r#"{"jsonrpc":"2.0","id":4,"method":5}"#);
        assert_eq!(a["id"], 4);
        let a = answer(r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#);
        assert_eq!(a["id"], Value::Null);
        let a = answer(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#);
        assert_eq!(a["error"]["code"], INVALID_REQUEST);
    }

    #[test]
    fn good_messages_pass_and_junk_is_ignored() {
        assert!(matches!(
            check(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            Checked::Message(_)
        ));
        assert!(matches!(check(b"not json"), Checked::Ignore(_)));
        assert!(matches!(
            check(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":3}"#),
            Checked::Ignore(_)
        ));
        assert_eq!(trim_line(b"\xef\xbb\xbf{}\r\n"), b"{}");
    }

    #[test]
    fn only_requests_reach_rmcp_before_the_lifecycle_begins() {
        let mut life = Lifecycle {
            begun: false,
            versions: ProtocolVersion::KNOWN_VERSIONS.to_vec(),
        };
        let msg = |line: &str| match check(line.as_bytes()) {
            Checked::Message(m) => *m,
            other => panic!("{other:?}"),
        };
        assert!(!life.admit(&msg(
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#
        )));
        assert!(!life.admit(&msg(r#"{"jsonrpc":"2.0","id":9,"result":{}}"#)));
        assert!(life.admit(&msg(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)));
        assert!(!life.begun);
        assert!(life.admit(&msg(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#)));
        assert!(!life.begun, "no _meta: rmcp answers and keeps waiting");
        let init = r#"{"jsonrpc":"2.0","id":3,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        assert!(life.admit(&msg(init)) && life.begun);
        assert!(life.admit(&msg(
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#
        )));
    }
}
