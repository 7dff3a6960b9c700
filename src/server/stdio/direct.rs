//! The direct lane: a plain `tools/call` on stdio goes from the line reader to the handler
//! without the trip through rmcp's service loop (issue 14).
//!
//! rmcp hands every request to its loop over a channel, spawns a task for it (4 KiB: the
//! future of its dispatch over every request type), gives it two cancellation tokens and a
//! hash-map entry, sends the answer back to the loop over a second channel and spawns a second
//! task to write it. For a small pipelined `read` that was a fifth of the server's work. Here
//! the reader spawns the call itself and queues its answer for stdout.
//!
//! What rmcp does for such a request is done here the same way, and nothing else takes this
//! lane:
//! - only after a session opened by `initialize` on a version before 2026-07-28 (the lane is
//!   made once rmcp has answered it: [`Lane::for_session`]); a session that began with a
//!   self-describing request, or a later one, goes through rmcp;
//! - only a `tools/call` whose `_meta` holds nothing but a `progressToken`: with a protocol
//!   version in `_meta`, rmcp checks it and records it for the handler;
//! - the handler gets the same [`RequestContext`]: the request's id, `_meta` and extensions,
//!   the session's peer, and a token cancelled by `notifications/cancelled` for its id, by the
//!   end of the session, or when the call has not ended within the wait rmcp also grants
//!   ([`Lane::close`]);
//! - an answer to a call the client cancelled is dropped, as rmcp drops it; the cancellation
//!   still reaches rmcp (and the handler's `on_cancelled`) as before;
//! - a task handle is refused to a client that did not declare tasks, as rmcp refuses it.
//!
//! rmcp also sets two task-locals around a handler. One names the call's protocol version,
//! which a lane call does not carry. The other ties the handler's own requests to the call
//! for streamable HTTP's streams, which stdio does not have.
//!
//! rmcp offers no hook for this (its loop is private), which is why the lane is written here.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ClientCapabilities, ClientJsonRpcMessage,
    ClientNotification, ClientRequest, ErrorData, GetExtensions, GetMeta, JsonRpcMessage,
    JsonRpcRequest, ProtocolVersion, RequestId, ServerJsonRpcMessage, ServerResult,
};
use rmcp::service::{Peer, RequestContext, RoleServer};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Outbox, queue_message};

type CallFuture = Pin<Box<dyn Future<Output = Result<CallToolResponse, ErrorData>> + Send>>;
type CallTool =
    Box<dyn Fn(CallToolRequestParams, RequestContext<RoleServer>) -> CallFuture + Send + Sync>;

/// Where the lane is put once the session is up; the line reader looks there.
pub type LaneSlot = Arc<OnceLock<Lane>>;

/// The only `_meta` key a call on this lane may carry.
const PROGRESS_TOKEN: &str = "progressToken";

/// How long rmcp lets the calls it dispatched answer once stdin has closed, and once a signal
/// has cancelled the session; the lane's calls get the same.
const DRAIN_AFTER_EOF: Duration = Duration::from_secs(5);
const DRAIN_AFTER_SIGNAL: Duration = Duration::from_secs(2);

/// The calls in flight, by id, with their cancellation tokens.
type InFlight = Arc<Mutex<HashMap<RequestId, CancellationToken>>>;

/// The direct lane of one stdio session (see the module comment).
pub struct Lane {
    call_tool: CallTool,
    /// Whether the client declared tasks (rmcp refuses a task handle to one that did not).
    declared_tasks: bool,
    peer: Peer<RoleServer>,
    /// Cancelled when the session ends; every call's token is a child of it.
    session: CancellationToken,
    /// A call cancelled by the client is taken out of here, and its answer is then dropped.
    calls: InFlight,
    running: TaskTracker,
}

impl Lane {
    /// The lane for the session `peer` belongs to, served by `service`; `None` when the
    /// session did not open with `initialize` on a version before 2026-07-28.
    pub fn for_session<S>(service: S, peer: Peer<RoleServer>) -> Option<Lane>
    where
        S: ServerHandler + Clone,
    {
        let info = peer.peer_info()?;
        if info.protocol_version >= ProtocolVersion::V_2026_07_28 {
            return None;
        }
        // A lane call's `_meta` holds no capabilities, so rmcp's answer is the session's.
        let declared_tasks = info.capabilities.supports_tasks();
        let service = Arc::new(service);
        Some(Lane {
            call_tool: Box::new(move |params, context| {
                let service = service.clone();
                Box::pin(async move { service.call_tool(params, context).await })
            }),
            declared_tasks,
            peer,
            session: CancellationToken::new(),
            calls: InFlight::default(),
            running: TaskTracker::new(),
        })
    }

    /// The token that ends every call on the lane when cancelled (the session's end).
    pub fn session(&self) -> &CancellationToken {
        &self.session
    }

    /// Whether `msg` is a call this lane takes.
    pub(super) fn takes(msg: &ClientJsonRpcMessage) -> bool {
        let JsonRpcMessage::Request(JsonRpcRequest { request, .. }) = msg else {
            return false;
        };
        matches!(request, ClientRequest::CallToolRequest(_))
            && request.get_meta().keys().all(|k| k == PROGRESS_TOKEN)
    }

    /// Starts the call in `msg` (one [`Lane::takes`] accepted); its answer goes to `out`.
    ///
    /// The reader never waits for a call to end (a `notifications/cancelled` behind it must get
    /// through), but each start spends a unit of the reader's scheduling budget: a client that
    /// pipelines thousands of calls gets them started a budget's worth at a time, between runs
    /// of the calls already started, not thousands of tasks at once (which was slower).
    pub(super) async fn start(&self, msg: ClientJsonRpcMessage, out: &Outbox) {
        let JsonRpcMessage::Request(JsonRpcRequest {
            id, mut request, ..
        }) = msg
        else {
            return;
        };
        // As rmcp's loop does: `_meta` first (taking it leaves an empty one behind), then the
        // rest of the extensions.
        let meta = std::mem::take(request.get_meta_mut());
        let extensions = std::mem::take(request.extensions_mut());
        let ClientRequest::CallToolRequest(call) = request else {
            return;
        };
        let ct = self.session.child_token();
        let mut context = RequestContext::new(id.clone(), self.peer.clone());
        context.ct = ct.clone();
        context.meta = meta;
        context.extensions = extensions;
        let declared_tasks = self.declared_tasks;
        lock(&self.calls).insert(id.clone(), ct);
        let call = (self.call_tool)(call.params, context);
        let calls = self.calls.clone();
        let out = out.clone();
        self.running.spawn(async move {
            let answer = match call.await {
                Ok(CallToolResponse::Task(_)) if !declared_tasks => ServerJsonRpcMessage::error(
                    ErrorData::missing_required_client_capability(
                        ClientCapabilities::builder().enable_tasks().build(),
                    ),
                    Some(id.clone()),
                ),
                Ok(response) => {
                    ServerJsonRpcMessage::response(ServerResult::from(response), id.clone())
                }
                Err(error) => ServerJsonRpcMessage::error(error, Some(id.clone())),
            };
            if lock(&calls).remove(&id).is_none() {
                tracing::debug!(%id, "dropping the answer to a cancelled call");
                return;
            }
            if let Err(e) = queue_message(Some(&out), &answer) {
                tracing::error!("cannot queue the answer to call {id}: {e}");
            }
        });
        tokio::task::consume_budget().await;
    }

    /// Cancels the call a `notifications/cancelled` in `msg` names, if it is on this lane.
    pub(super) fn cancelled(&self, msg: &ClientJsonRpcMessage) {
        let JsonRpcMessage::Notification(n) = msg else {
            return;
        };
        let ClientNotification::CancelledNotification(c) = &n.notification else {
            return;
        };
        if let Some(id) = &c.params.request_id
            && let Some(ct) = lock(&self.calls).remove(id)
        {
            tracing::info!(%id, reason = c.params.reason, "cancelled");
            ct.cancel();
        }
    }

    /// When the session ends: the calls in flight get the time rmcp gives its own to answer
    /// ([`DRAIN_AFTER_EOF`], [`DRAIN_AFTER_SIGNAL`]), then the rest are cancelled.
    pub(super) async fn close(&self) {
        let wait = if self.session.is_cancelled() {
            DRAIN_AFTER_SIGNAL
        } else {
            DRAIN_AFTER_EOF
        };
        self.running.close();
        if tokio::time::timeout(wait, self.running.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "calls still running after {}s are cancelled",
                wait.as_secs()
            );
        }
        self.session.cancel();
    }
}

fn lock(calls: &InFlight) -> std::sync::MutexGuard<'_, HashMap<RequestId, CancellationToken>> {
    calls.lock().unwrap_or_else(|p| p.into_inner())
}
