//! The common line, a `tools/call` request, read straight into rmcp's message type (issue 14).
//!
//! rmcp reads a client message as an untagged enum of every request type: a `tools/call` is
//! buffered, then tried as thirteen other requests first, each failure building an error
//! message. That was a quarter of the instructions of a whole pipelined `read` call. Here the
//! line is read once into the fields a `tools/call` has, and the same value rmcp would build is
//! assembled from them: `params._meta` into the request's extensions, the rest into
//! [`CallToolRequestParams`].
//!
//! Only a line this reader accounts for completely takes this way: any key it does not know
//! (at the top or in `params`), a duplicate key, another method, or a value of the wrong type
//! makes it answer `None`, and the line goes through rmcp's own reader as before. So a line is
//! never accepted here that rmcp would reject or read differently; the unit tests compare both
//! readers on the lines either may see.

use rmcp::model::{
    CallToolRequest, CallToolRequestMethod, CallToolRequestParams, ClientJsonRpcMessage,
    ClientRequest, InputResponses, JsonObject, JsonRpcMessage, JsonRpcRequest, RequestId,
    RequestMetaObject,
};
use serde::Deserialize;

/// A `tools/call` line, every key named: nothing else is accepted.
///
/// `jsonrpc` and `method` are borrowed from the line and compared, not read into rmcp's types
/// (which read each into a `String` first); a value written with escapes cannot be borrowed,
/// and such a line goes to rmcp's reader.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    jsonrpc: &'a str,
    id: RequestId,
    method: &'a str,
    params: Params,
}

/// Its `params`: the fields of [`CallToolRequestParams`], with `_meta` read apart as rmcp's
/// request reader reads it (it goes to the extensions, not to the params' own `meta`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Params {
    #[serde(rename = "_meta")]
    meta: Option<JsonObject>,
    name: String,
    arguments: Option<JsonObject>,
    input_responses: Option<InputResponses>,
    request_state: Option<String>,
}

/// `line` as rmcp would read it, if it is a `tools/call` request made only of the keys above;
/// `None` for anything else (rmcp's reader then decides).
pub(super) fn read(line: &[u8]) -> Option<ClientJsonRpcMessage> {
    let Line {
        jsonrpc,
        id,
        method,
        params,
    } = serde_json::from_slice(line).ok()?;
    if jsonrpc != "2.0" || method != "tools/call" {
        return None;
    }
    let mut call = CallToolRequestParams::new(params.name);
    call.arguments = params.arguments;
    call.input_responses = params.input_responses;
    call.request_state = params.request_state;
    let mut request = CallToolRequest::new(call);
    request.method = CallToolRequestMethod;
    if let Some(meta) = params.meta {
        request.extensions.insert(RequestMetaObject::from(meta));
    }
    Some(JsonRpcMessage::Request(JsonRpcRequest::new(
        id,
        ClientRequest::CallToolRequest(request),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::GetMeta;

    /// Both readers' view of `line`: the message as it would be written back, and the
    /// request's `_meta` from its extensions.
    fn seen(msg: &ClientJsonRpcMessage) -> (serde_json::Value, Option<JsonObject>) {
        let meta = match msg {
            JsonRpcMessage::Request(r) => Some(r.request.get_meta().0.0.clone()),
            _ => None,
        };
        (serde_json::to_value(msg).expect("serializes"), meta)
    }

    /// Lines this reader takes: every one is read as rmcp reads it.
    const TAKEN: [&str; 7] = [
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":{"path":"a.txt"}}}"#,
        r#"{"id":"x-1","params":{"arguments":{"n":1.5,"big":18446744073709551615,"neg":-3,"s":"\u00e9\n"},"name":"sql"},"method":"tools/call","jsonrpc":"2.0"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"bash","arguments":{"command":"ls"},"_meta":{"progressToken":7,"x":{"y":[1,null]}}}}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"bash","arguments":null,"_meta":null}}"#,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"bash","inputResponses":{"a":{"action":"accept"}},"requestState":"s"}}"#,
        r#"{"jsonrpc":"2.0","id":1e2,"method":"tools/call","params":{"name":"read"}}"#,
        r#"{"jsonrpc":"2.0","id":-5,"method":"tools/call","params":{"name":"re\u0061d"}}"#,
    ];

    /// Lines left to rmcp's reader (which reads some of them and rejects others).
    const LEFT: [&str; 24] = [
        // Other methods, shapes and versions.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"read"}}"#,
        r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"read"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read"},"result":{}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call ","params":{"name":"read"}}"#,
        // An escaped `jsonrpc` or `method` cannot be borrowed from the line (rmcp reads both).
        r#"{"jsonrpc":"2.0","id":-5,"method":"tools\/call","params":{"name":"read"}}"#,
        r#"{"jsonrpc":"2\u002e0","id":-5,"method":"tools/call","params":{"name":"read"}}"#,
        // Keys this reader does not know, at the top or in params.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read"},"x":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","task":{}}}"#,
        // Duplicates: which one counts is rmcp's to say.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","name":"bash"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"read"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","_meta":{},"_meta":{}}}"#,
        // Wrong types.
        r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"read"}}"#,
        r#"{"jsonrpc":"2.0","id":true,"method":"tools/call","params":{"name":"read"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":null}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","requestState":5}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","_meta":"s"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":[1]}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["read"]}"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read"}}]"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read"}} x"#,
        "not json",
    ];

    #[test]
    fn reads_a_tools_call_as_rmcp_does() {
        for line in TAKEN {
            let fast = read(line.as_bytes()).unwrap_or_else(|| panic!("not read: {line}"));
            let slow: ClientJsonRpcMessage = serde_json::from_str(line).expect("rmcp reads it");
            assert!(matches!(
                &fast,
                JsonRpcMessage::Request(JsonRpcRequest {
                    request: ClientRequest::CallToolRequest(_),
                    ..
                })
            ));
            assert_eq!(seen(&fast), seen(&slow), "{line}");
        }
    }

    #[test]
    fn leaves_everything_else_to_rmcp() {
        for line in LEFT {
            assert!(read(line.as_bytes()).is_none(), "read here: {line}");
        }
    }
}
