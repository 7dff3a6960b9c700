//! The stdio transport with a line-level pre-check in front of rmcp, because rmcp 3.11's own
//! stdio transport mishandles a hostile or sloppy client in two ways (both rmcp's, not
//! pi-mcp's; this layer stays until they are fixed upstream):
//!
//! - a request that is valid JSON-RPC but whose `params` do not have the MCP shape (an array
//!   for `tools/call`, `_meta` as a string) is answered `-32600 Invalid request` *without an
//!   id*, so the caller can never match the answer and waits forever;
//! - a notification or a stray response before `initialize` makes `serve_server` give up
//!   ("expect initialized request"), ending `serve --stdio` with status 1.
//!
//! Here every line is parsed before rmcp sees it ([`precheck`]). A line rmcp would reject is
//! answered by this layer with an error that carries the request's `id` (JSON-RPC 2.0 §5):
//! `-32602` for a known method with bad params (naming what is wrong), `-32601` for an unknown
//! one, `-32600` for a message that is not a request at all. Notifications and responses that
//! arrive before the lifecycle has begun are dropped (logged), as rmcp would drop them after
//! it. Input that is not JSON is ignored, as rmcp and the other SDKs do (answering it invites
//! an error storm). Answers leave through one writer task, in the order they are ready, batched
//! per `write`. Once the session is up, a plain `tools/call` goes straight to the handler
//! ([`direct`]) instead of through rmcp's service loop.

mod direct;
mod precheck;
mod tools_call;

use std::borrow::Cow;

use rmcp::RoleServer;
use rmcp::model::{ClientJsonRpcMessage, ProtocolVersion, ServerJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

pub use direct::{Lane, LaneSlot};
use precheck::{Checked, Lifecycle, check, describe, trim_line};

/// Longest line read from stdin (rmcp's own stdio limit); a longer one is dropped whole.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Messages parsed ahead of rmcp.
const QUEUE: usize = 64;

/// Lines for stdout, each with its newline, in the order they are to be written.
type Outbox = mpsc::UnboundedSender<Vec<u8>>;

/// How long closing waits for stdout to take the answers still queued.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Messages one `write` of stdout takes at most.
const WRITE_BATCH: usize = 256;

/// An rmcp server transport over a reader and a writer of JSON lines, with the pre-check.
pub struct CheckedStdio {
    incoming: mpsc::Receiver<ClientJsonRpcMessage>,
    /// `None` once closed.
    out: Option<Outbox>,
    reader: tokio::task::JoinHandle<()>,
    writer: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The direct lane for plain `tools/call` requests, once the session is up ([`direct`]).
    lane: LaneSlot,
}

impl CheckedStdio {
    /// Starts reading `input`; `versions` are the protocol versions the server accepts (to
    /// tell, as rmcp does, when a stateless request begins the lifecycle).
    pub fn new(
        input: impl AsyncRead + Send + Unpin + 'static,
        output: impl AsyncWrite + Send + Unpin + 'static,
        versions: Vec<ProtocolVersion>,
    ) -> Self {
        let (out, queued) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_lines(output, queued));
        let (tx, incoming) = mpsc::channel(QUEUE);
        let lane = LaneSlot::default();
        let reader = tokio::spawn(read_lines(input, tx, out.clone(), versions, lane.clone()));
        CheckedStdio {
            incoming,
            out: Some(out),
            reader,
            writer: Some(writer),
            lane,
        }
    }

    /// Where the session's [`Lane`] is to be put once rmcp has opened the session.
    pub fn lane_slot(&self) -> LaneSlot {
        self.lane.clone()
    }
}

impl Drop for CheckedStdio {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Queues `bytes` as one line for stdout; an error once the writer has stopped (stdout failed).
fn queue_line(out: Option<&Outbox>, mut bytes: Vec<u8>) -> std::io::Result<()> {
    bytes.push(b'\n');
    out.ok_or_else(|| std::io::Error::other("the stdio transport is closed"))?
        .send(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdout failed"))
}

/// Queues `msg` for stdout as one JSON line.
fn queue_message(out: Option<&Outbox>, msg: &ServerJsonRpcMessage) -> std::io::Result<()> {
    serde_json::to_vec(msg)
        .map_err(std::io::Error::other)
        .and_then(|bytes| queue_line(out, bytes))
}

/// Writes queued lines to `output` in order, all that have queued up in one `write` (issue 14:
/// with calls pipelined, a `write` per answer, and the client's wake-up for each, was an eighth
/// of the server's time; a lone answer is still written at once). Ends when every sender is
/// gone and the queue is written out, or at the first failed write.
async fn write_lines(
    mut output: impl AsyncWrite + Unpin,
    mut queued: mpsc::UnboundedReceiver<Vec<u8>>,
) -> std::io::Result<()> {
    let mut lines = Vec::with_capacity(WRITE_BATCH);
    let mut joined = Vec::new();
    while queued.recv_many(&mut lines, WRITE_BATCH).await > 0 {
        let bytes = if let [line] = lines.as_slice() {
            line
        } else {
            joined.clear();
            lines.iter().for_each(|l| joined.extend_from_slice(l));
            &joined
        };
        if let Err(e) = async {
            output.write_all(bytes).await?;
            output.flush().await
        }
        .await
        {
            tracing::error!("writing stdout: {e}");
            return Err(e);
        }
        lines.clear();
    }
    output.flush().await
}

impl Transport<RoleServer> for CheckedStdio {
    type Error = std::io::Error;

    fn name() -> Cow<'static, str> {
        "pi-mcp checked stdio".into()
    }

    fn send(
        &mut self,
        item: ServerJsonRpcMessage,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        // Queued now, in the order rmcp sends, and written by `write_lines`.
        std::future::ready(queue_message(self.out.as_ref(), &item))
    }

    async fn receive(&mut self) -> Option<ClientJsonRpcMessage> {
        // Cancellation-safe: a message stays in the channel until it is taken.
        self.incoming.recv().await
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.reader.abort();
        self.incoming.close();
        // rmcp has given its own calls their time to answer; the lane's get the same.
        if let Some(lane) = self.lane.get() {
            lane.close().await;
        }
        // With the last sender gone the writer writes what is queued, then ends.
        self.out = None;
        let _ = (&mut self.reader).await;
        let Some(mut writer) = self.writer.take() else {
            return Ok(());
        };
        // A client that stops reading must not keep the server from exiting.
        match tokio::time::timeout(CLOSE_WAIT, &mut writer).await {
            Ok(written) => written.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            Err(_) => {
                writer.abort();
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "stdout took no more of the last answers for {}s; they are dropped",
                        CLOSE_WAIT.as_secs()
                    ),
                ))
            }
        }
    }
}

async fn read_lines(
    input: impl AsyncRead + Send + Unpin,
    tx: mpsc::Sender<ClientJsonRpcMessage>,
    out: Outbox,
    versions: Vec<ProtocolVersion>,
    lane: LaneSlot,
) {
    let mut input = BufReader::new(input);
    let mut life = Lifecycle {
        begun: false,
        versions,
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX) + 1;
        match (&mut input).take(limit).read_until(b'\n', &mut line).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                tracing::error!("reading stdin: {e}");
                return;
            }
        }
        if line.len() > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
            tracing::error!("dropping a message longer than {MAX_LINE_BYTES} bytes");
            if skip_rest_of_line(&mut input).await.is_err() {
                return;
            }
            continue;
        }
        let text = trim_line(&line);
        if text.is_empty() {
            continue;
        }
        match check(text) {
            Checked::Message(msg) => {
                if !life.admit(&msg) {
                    tracing::warn!(
                        "ignoring a {} sent before `initialize`",
                        describe(&msg).unwrap_or("message")
                    );
                    continue;
                }
                if let Some(lane) = lane.get() {
                    if Lane::takes(&msg) {
                        lane.start(*msg, &out).await;
                        continue;
                    }
                    lane.cancelled(&msg);
                }
                if tx.send(*msg).await.is_err() {
                    return;
                }
            }
            Checked::Answer(reply) => {
                tracing::warn!("answering a malformed request: {reply}");
                let Ok(bytes) = serde_json::to_vec(&reply) else {
                    continue;
                };
                if queue_line(Some(&out), bytes).is_err() {
                    return;
                }
            }
            Checked::Ignore(why) => tracing::warn!("ignoring input on stdin: {why}"),
        }
    }
}

async fn skip_rest_of_line(input: &mut (impl AsyncBufReadExt + Unpin)) -> std::io::Result<()> {
    loop {
        let buf = input.fill_buf().await?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            input.consume(i + 1);
            return Ok(());
        }
        let n = buf.len();
        input.consume(n);
    }
}
