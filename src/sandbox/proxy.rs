//! pi-mcp's egress proxy: the only way out of a `bash` child's network namespace. It speaks
//! HTTP proxying (`CONNECT host:port` for HTTPS and any TCP, absolute-form requests for plain
//! HTTP) on a Unix socket per call, asks the policy ([`NetworkPolicy::allows`]) about every
//! destination, resolves names itself (the namespace has no DNS, so DNS cannot carry data out),
//! refuses what is not listed with a message that names the rule, and records each connection
//! (host, port, bytes, allowed or refused) for the call's result and audit entry.
//!
//! Hand-written on tokio and httparse: the proxy crates on crates.io are full HTTP stacks that
//! re-encode traffic and would need their own policy hooks, while this one only reads a request
//! head, decides, and then moves bytes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpStream, UnixListener};
use tokio::sync::Semaphore;

use super::handoff::{self, Incoming};
use crate::guard::egress::{HostPattern, NetworkPolicy};

/// Largest request head read from a child.
const MAX_HEAD: usize = 16 * 1024;
/// How long a child has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long resolving and connecting to a destination may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections one call may have open at once; more are refused, not queued.
pub const MAX_OPEN_PER_CALL: usize = 64;
/// Connections recorded one by one per call; the rest are only counted.
const MAX_RECORDS: usize = 200;
/// Buffer per direction of a connection: large enough that a bulk download costs few system
/// calls per MiB (tokio's default of 8 KiB made a 100 MiB download five times slower than
/// direct), small enough that [`MAX_OPEN_PER_CALL`] connections stay within a few tens of MiB.
pub const COPY_BUF: usize = 128 * 1024;
/// How long the end of a call waits for its connections to close.
const CLOSE_WAIT: Duration = Duration::from_millis(300);

/// One connection a child asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub host: String,
    pub port: u16,
    pub allowed: bool,
    /// The `network.allow` entry that let it through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why it failed or was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// What a call's connections came to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    pub connections: Vec<Connection>,
    /// Connections past [`MAX_RECORDS`], counted only.
    pub unrecorded: u64,
}

impl Traffic {
    /// The refused destinations, each once, in order of first refusal.
    pub fn refused(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in self.connections.iter().filter(|c| !c.allowed) {
            let d = format!("{}:{}", c.host, c.port);
            if !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }
}

/// The long-lived proxy service the app owns; [`EgressProxy::session`] opens the socket of one
/// `bash` call.
#[derive(Debug)]
pub struct EgressProxy {
    policy: Arc<NetworkPolicy>,
    dir: PathBuf,
    seq: AtomicU64,
}

/// The proxy socket of one call.
pub struct Session {
    socket: PathBuf,
    traffic: Arc<Mutex<Traffic>>,
    open: Arc<Semaphore>,
    accept: tokio::task::JoinHandle<()>,
}

impl EgressProxy {
    /// A proxy deciding by `policy`, with its sockets in `dir` (private to this user, outside
    /// every path a child may write or that is hidden from it).
    pub fn new(policy: NetworkPolicy, dir: PathBuf) -> EgressProxy {
        EgressProxy {
            policy: Arc::new(policy),
            dir,
            seq: AtomicU64::new(0),
        }
    }

    /// Opens a socket for one call. Call it inside the tokio runtime.
    pub fn session(&self) -> std::io::Result<Session> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let socket = self.dir.join(format!("egress-{n}.sock"));
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket)?;
        let traffic = Arc::new(Mutex::new(Traffic::default()));
        let open = Arc::new(Semaphore::new(MAX_OPEN_PER_CALL));
        let accept = tokio::spawn(accept_loop(
            listener,
            self.policy.clone(),
            traffic.clone(),
            open.clone(),
        ));
        Ok(Session {
            socket,
            traffic,
            open,
            accept,
        })
    }
}

impl Session {
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Stops accepting, lets open connections close for a moment, and returns the traffic.
    pub async fn finish(self) -> Traffic {
        self.accept.abort();
        let _ = std::fs::remove_file(&self.socket);
        let all = MAX_OPEN_PER_CALL as u32;
        let _ = tokio::time::timeout(CLOSE_WAIT, self.open.acquire_many(all)).await;
        self.traffic.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

async fn accept_loop(
    listener: UnixListener,
    policy: Arc<NetworkPolicy>,
    traffic: Arc<Mutex<Traffic>>,
    open: Arc<Semaphore>,
) {
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        // The permit (when there is one) lives as long as the arm that carries the connection.
        let permit = open.clone().try_acquire_owned();
        let (policy, traffic) = (policy.clone(), traffic.clone());
        tokio::spawn(async move {
            let incoming = tokio::time::timeout(HEAD_TIMEOUT, handoff::receive(conn)).await;
            let record = match (incoming, permit) {
                (Err(_) | Ok(Err(_)), _) => None,
                // A flood: refuse at once rather than hold memory for it.
                (Ok(Ok(incoming)), Err(_)) => {
                    refuse_flood(incoming).await;
                    None
                }
                (Ok(Ok(Incoming::Http(tcp))), Ok(_permit)) => {
                    handle(tcp, Vec::new(), &policy).await
                }
                (Ok(Ok(Incoming::Direct(unix, prefix))), Ok(_permit)) => {
                    handle(unix, prefix, &policy).await
                }
                (Ok(Ok(Incoming::Forward(tcp, target))), Ok(_permit)) => {
                    forward(tcp, &target, &policy).await
                }
            };
            if let Some(record) = record
                && let Ok(mut t) = traffic.lock()
            {
                if t.connections.len() < MAX_RECORDS {
                    t.connections.push(record);
                } else {
                    t.unrecorded += 1;
                }
            }
        });
    }
}

async fn refuse_flood(incoming: Incoming) {
    let busy = answer(503, "too many open connections from this command");
    match incoming {
        Incoming::Http(mut tcp) => {
            let _ = tcp.write_all(&busy).await;
        }
        Incoming::Direct(mut unix, _) => {
            let _ = unix.write_all(&busy).await;
        }
        Incoming::Forward(..) => {}
    }
}

/// A request as far as the proxy needs it.
struct Request {
    connect: bool,
    host: String,
    port: u16,
    /// For plain HTTP: the head rewritten to origin form, with `Connection: close`.
    head: Vec<u8>,
    /// Bytes the child sent after the head.
    rest: Vec<u8>,
}

/// A plain-TCP forward: the child's connection goes to `target` when it is listed, and is
/// closed otherwise (a raw protocol has no way to show a message; the call's result does).
async fn forward(mut conn: TcpStream, target: &str, policy: &NetworkPolicy) -> Option<Connection> {
    let (host, port) = split_authority(target, None).ok()?;
    let mut record = Connection {
        host,
        port,
        allowed: false,
        rule: None,
        error: None,
        bytes_sent: 0,
        bytes_received: 0,
    };
    let Some(rule) = policy.allows(&record.host, record.port) else {
        record.error = Some("not in network.allow".into());
        return Some(record);
    };
    record.allowed = true;
    record.rule = Some(rule.to_string());
    let mut upstream =
        match tokio::time::timeout(CONNECT_TIMEOUT, connect(&record.host, record.port, rule)).await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                record.error = Some(e);
                return Some(record);
            }
            Err(_) => {
                record.error = Some("timed out".into());
                return Some(record);
            }
        };
    let (up, down) =
        tokio::io::copy_bidirectional_with_sizes(&mut conn, &mut upstream, COPY_BUF, COPY_BUF)
            .await
            .unwrap_or((0, 0));
    record.bytes_sent = up;
    record.bytes_received = down;
    Some(record)
}

async fn handle<S>(mut conn: S, prefix: Vec<u8>, policy: &NetworkPolicy) -> Option<Connection>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let raw = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut conn, prefix)).await {
        Ok(Ok(Some(raw))) => raw,
        _ => return None,
    };
    let req = match parse(&raw) {
        Ok(r) => r,
        Err(why) => {
            let _ = conn.write_all(&answer(400, &why)).await;
            return None;
        }
    };
    let mut record = Connection {
        host: req.host.clone(),
        port: req.port,
        allowed: false,
        rule: None,
        error: None,
        bytes_sent: 0,
        bytes_received: 0,
    };
    let Some(rule) = policy.allows(&req.host, req.port) else {
        let why = format!(
            "{}:{} is not in the policy's network.allow list, so pi-mcp refused the connection \
             (an operator can list it there, e.g. \"{}:{}\")",
            req.host, req.port, req.host, req.port
        );
        record.error = Some("not in network.allow".into());
        let _ = conn.write_all(&answer(403, &why)).await;
        return Some(record);
    };
    record.allowed = true;
    record.rule = Some(rule.to_string());
    let upstream =
        match tokio::time::timeout(CONNECT_TIMEOUT, connect(&req.host, req.port, rule)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Some(fail(&mut conn, record, 502, e).await),
            Err(_) => return Some(fail(&mut conn, record, 504, "timed out".into()).await),
        };
    let mut upstream = upstream;
    let sent_first = if req.connect {
        if conn
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await
            .is_err()
        {
            return Some(record);
        }
        0
    } else {
        let n = req.head.len() as u64;
        if upstream.write_all(&req.head).await.is_err() {
            return Some(record);
        }
        n
    };
    if !req.rest.is_empty() && upstream.write_all(&req.rest).await.is_err() {
        return Some(record);
    }
    let (up, down) =
        tokio::io::copy_bidirectional_with_sizes(&mut conn, &mut upstream, COPY_BUF, COPY_BUF)
            .await
            .unwrap_or((0, 0));
    record.bytes_sent = sent_first + req.rest.len() as u64 + up;
    record.bytes_received = down;
    Some(record)
}

async fn fail<S: AsyncWrite + Unpin>(
    conn: &mut S,
    mut record: Connection,
    code: u16,
    e: String,
) -> Connection {
    let _ = conn
        .write_all(&answer(
            code,
            &format!("cannot reach {}:{}: {e}", record.host, record.port),
        ))
        .await;
    record.error = Some(e);
    record
}

/// Resolves `host` (the proxy does the DNS) and connects to the first address that answers.
/// The host's own and special addresses (loopback, unspecified, metadata: the web console,
/// `/mcp`, the cloud instance metadata service; and, found once connected, any address of this
/// machine) are reached only through an entry naming them exactly
/// ([`HostPattern::may_reach`], [`HostPattern::may_reach_self`]), never through a wildcard or
/// a rebound name.
async fn connect(host: &str, port: u16, rule: &HostPattern) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = format!("{host} has no address");
    for addr in addrs {
        // `host`, and the address it resolved to when that is not the same text.
        let what = if host.trim_matches(['[', ']']) == addr.ip().to_string() {
            host.to_string()
        } else {
            format!("{host} ({})", addr.ip())
        };
        if !rule.may_reach(addr.ip()) {
            last = format!(
                "{what} is one of this machine's own or link-local addresses, which the entry \
                 `{rule}` does not name exactly (list `{addr}` to allow it)"
            );
            continue;
        }
        match TcpStream::connect(addr).await {
            // The same address at both ends: this machine itself (an interface address, a
            // Docker bridge, ...), which only an entry naming that address may reach.
            Ok(s)
                if s.local_addr().is_ok_and(|l| l.ip() == addr.ip())
                    && !rule.may_reach_self(addr.ip()) =>
            {
                last = format!(
                    "{what} is this machine itself, which the entry `{rule}` does not name \
                     exactly (list `{addr}` to allow it)"
                );
            }
            Ok(s) => return Ok(s),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// Reads up to the end of the request head; `None` when the child closed first.
async fn read_head<S: AsyncRead + Unpin>(
    conn: &mut S,
    prefix: Vec<u8>,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = prefix;
    let mut chunk = [0u8; 2048];
    loop {
        if find_end(&buf).is_some() {
            return Ok(Some(buf));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn parse(raw: &[u8]) -> Result<Request, String> {
    let end = find_end(raw).ok_or("incomplete request head")?;
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(&raw[..end]) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err("not an HTTP proxy request".into()),
    }
    let method = req.method.ok_or("no method")?;
    let target = req.path.ok_or("no request target")?;
    let rest = raw[end..].to_vec();
    if method.eq_ignore_ascii_case("CONNECT") {
        let (host, port) = split_authority(target, None)?;
        return Ok(Request {
            connect: true,
            host,
            port,
            head: Vec::new(),
            rest,
        });
    }
    let Some(after) = target.strip_prefix("http://") else {
        return Err(format!(
            "`{target}`: the proxy takes CONNECT host:port, or a plain-HTTP request with an absolute http:// URL"
        ));
    };
    let (authority, path) = match after.find('/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, "/"),
    };
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = split_authority(authority, Some(80))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\n").into_bytes();
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        if name.starts_with("proxy-") || name == "connection" || name == "keep-alive" {
            continue;
        }
        head.extend_from_slice(h.name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(h.value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    Ok(Request {
        connect: false,
        host,
        port,
        head,
        rest,
    })
}

/// `host:port`, `[v6]:port`, or `host` with `default` as the port.
fn split_authority(text: &str, default: Option<u16>) -> Result<(String, u16), String> {
    let bad = || format!("`{text}` is not host:port");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        (format!("[{h}]"), after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (text.to_string(), None),
        }
    };
    let port = match (port, default) {
        (Some(p), _) => p.parse::<u16>().map_err(|_| bad())?,
        (None, Some(d)) => d,
        (None, None) => return Err(bad()),
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(bad());
    }
    Ok((host.to_ascii_lowercase(), port))
}

fn answer(code: u16, message: &str) -> Vec<u8> {
    let reason = match code {
        400 => "Bad Request",
        403 => "Forbidden",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Gateway Timeout",
    };
    let body = format!("pi-mcp egress proxy: {message}\n");
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixStream;

    #[test]
    fn requests_parse_to_destinations() {
        let r =
            parse(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nxy").unwrap();
        assert!(r.connect && r.host == "example.com" && r.port == 443 && r.rest == b"xy");
        let r = parse(b"GET http://Example.com/a?b HTTP/1.1\r\nHost: example.com\r\nProxy-Connection: keep-alive\r\n\r\n").unwrap();
        assert!(!r.connect && r.host == "example.com" && r.port == 80);
        let head = String::from_utf8(r.head).unwrap();
        assert!(head.starts_with("GET /a?b HTTP/1.1\r\n"), "{head}");
        assert!(!head.contains("Proxy-") && head.ends_with("Connection: close\r\n\r\n"));
        let r = parse(b"CONNECT [::1]:8080 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("[::1]", 8080));
        assert!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").is_err());
        assert!(parse(b"CONNECT nohost HTTP/1.1\r\n\r\n").is_err());
        assert!(parse(b"GET https://x/ HTTP/1.1\r\n\r\n").is_err());
    }

    async fn ask(socket: &Path, request: &str) -> String {
        let mut conn = UnixStream::connect(socket).await.unwrap();
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = conn.read(&mut answer).await.unwrap_or(0);
        String::from_utf8_lossy(&answer[..n]).into_owned()
    }

    #[tokio::test]
    async fn listed_destinations_pass_others_are_refused_and_all_are_recorded() {
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = upstream.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = upstream.accept().await {
                let _ = c.write_all(b"hello").await;
            }
        });
        let policy: NetworkPolicy =
            serde_json::from_str(&format!(r#"{{"allow": ["127.0.0.1:{port}"]}}"#)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let proxy = EgressProxy::new(policy, dir.path().to_path_buf());
        let session = proxy.session().unwrap();
        let ok = ask(
            session.socket(),
            &format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n"),
        )
        .await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        let refused = ask(
            session.socket(),
            "CONNECT evil.example:443 HTTP/1.1\r\n\r\n",
        )
        .await;
        assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
        assert!(refused.contains("network.allow"), "{refused}");
        let traffic = session.finish().await;
        assert_eq!(traffic.refused(), vec!["evil.example:443".to_string()]);
        assert!(
            traffic
                .connections
                .iter()
                .any(|c| c.allowed && c.port == port)
        );
    }

    #[tokio::test]
    async fn a_flood_is_refused_not_queued() {
        let policy: NetworkPolicy = serde_json::from_str(r#"{"allow": []}"#).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let proxy = EgressProxy::new(policy, dir.path().to_path_buf());
        let session = proxy.session().unwrap();
        // Connections that never send a head hold their slot until the head timeout.
        let mut held = Vec::new();
        for _ in 0..MAX_OPEN_PER_CALL {
            held.push(UnixStream::connect(session.socket()).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let answer = ask(session.socket(), "CONNECT x:1 HTTP/1.1\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        drop(held);
    }
}
