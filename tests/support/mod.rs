//! Shared helpers for the integration tests in `tests/` (each file does `mod support;`):
//! service variables exported by `scripts/test` ([`require_service`]), temporary
//! workspaces with their own state directories ([`state_dir`]: a spawned `pi-mcp` never writes
//! into the real home), an rmcp client over `pi-mcp serve --stdio`, and `pi-mcp serve --http`
//! as a child process. Server output is forwarded to the test's stderr as `[pi-mcp] ...`
//! lines (libtest shows them when a test fails, or with `--nocapture`).
#![allow(dead_code)]

pub mod schema;
pub mod shop;
mod state;
pub mod user;

#[allow(unused_imports)] // each test crate uses some of them
pub use state::{osv_dir, state_db, state_dir, state_env};

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt as _, RunningService};
use rmcp::transport::{ConfigureCommandExt as _, TokioChildProcess};
use rmcp::{ClientHandler, Peer, RoleClient};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader, Lines};
use tokio::process::{Child, Command};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Path of the `pi-mcp` binary built by cargo for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pi-mcp")
}

/// The value of service variable `var`, or `None` (after one `skipped:` line on stderr).
/// Panics instead when `PI_MCP_TEST_REQUIRE_SERVICES` is set, as `scripts/test` does.
pub fn require_service(var: &str) -> Option<String> {
    if let Some(value) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
        return Some(value);
    }
    if std::env::var_os("PI_MCP_TEST_REQUIRE_SERVICES").is_some() {
        panic!(
            "{var} is not set but PI_MCP_TEST_REQUIRE_SERVICES is: \
             the README test command (scripts/test) must provide {var}"
        );
    }
    let test = std::thread::current().name().map(str::to_owned);
    let test = test.as_deref().unwrap_or("test");
    // Written to the real stderr (not libtest's capture) so that skips are visible.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test} needs {var} (run scripts/test)"
    );
    None
}

/// A temporary workspace directory (and its [`state_dir`]), removed on drop.
pub struct Workspace {
    dir: tempfile::TempDir,
    root: PathBuf,
}

impl Workspace {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pi-mcp-ws.")
            .tempdir()
            .expect("create temp workspace");
        let root = dir.path().canonicalize().expect("canonicalize workspace");
        Self { dir, root }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Writes `contents` to `rel` (creating parent directories); returns the full path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {rel}: {e}"));
        path
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        // A server started in the workspace may still be exiting (and writing its state
        // files) when a test drops this; retry briefly instead of leaking the directory.
        for dir in [self.root.clone(), state_dir(&self.root)] {
            for _ in 0..40 {
                if std::fs::remove_dir_all(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
    }
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

/// Output of a child process, shared with the tasks that drain its pipes.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<String>>);

impl Log {
    fn push(&self, line: &str) {
        eprintln!("[pi-mcp] {line}");
        let mut text = self.0.lock().unwrap();
        text.push_str(line);
        text.push('\n');
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

async fn drain<R: AsyncRead + Unpin>(mut lines: Lines<BufReader<R>>, log: Log) {
    while let Ok(Some(line)) = lines.next_line().await {
        log.push(&line);
    }
}

/// Settings a developer's shell may hold that would change what the tests see.
const OUTER_SETTINGS: &[&str] = &[
    "PI_MCP_STATE_URL",
    "PI_MCP_POLICY",
    "PI_MCP_PROMPTS",
    "PI_MCP_REPORTS",
    "PI_MCP_TOKEN",
];

fn server_command(ws: &Path) -> Command {
    Command::new(bin()).configure(|cmd| {
        for var in OUTER_SETTINGS {
            cmd.env_remove(var);
        }
        cmd.arg("--workspace")
            .arg(ws)
            .current_dir(ws)
            .envs(state_env(ws))
            .env("NO_COLOR", "1")
            .kill_on_drop(true);
    })
}

/// Starts `pi-mcp --workspace <ws> serve --stdio <extra_args>` and initializes an MCP client.
pub async fn spawn_stdio(
    ws: &Path,
    extra_args: &[&str],
) -> anyhow::Result<RunningService<RoleClient, ()>> {
    spawn_stdio_with(ws, extra_args, ()).await
}

/// [`spawn_stdio`] with a custom client handler (e.g. one that answers elicitation).
pub async fn spawn_stdio_with<H: ClientHandler>(
    ws: &Path,
    extra_args: &[&str],
    handler: H,
) -> anyhow::Result<RunningService<RoleClient, H>> {
    spawn_stdio_full(ws, extra_args, &[], handler).await
}

/// [`spawn_stdio_with`] for a client that speaks the stateless revision 2026-07-28
/// (`server/discover`, per-request `_meta`) instead of `initialize`.
pub async fn spawn_stdio_modern<H: ClientHandler>(
    ws: &Path,
    handler: H,
) -> anyhow::Result<RunningService<RoleClient, H>> {
    spawn_stdio_modern_with(ws, &[], handler).await
}

/// [`spawn_stdio_modern`] with extra server arguments.
pub async fn spawn_stdio_modern_with<H: ClientHandler>(
    ws: &Path,
    extra_args: &[&str],
    handler: H,
) -> anyhow::Result<RunningService<RoleClient, H>> {
    let modern = ClientLifecycleMode::Discover {
        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
    };
    spawn_stdio_lifecycle(ws, extra_args, &[], handler, modern).await
}

/// [`spawn_stdio`] with extra environment variables for the server.
pub async fn spawn_stdio_env(
    ws: &Path,
    env: &[(&str, &str)],
) -> anyhow::Result<RunningService<RoleClient, ()>> {
    spawn_stdio_full(ws, &[], env, ()).await
}

/// [`spawn_stdio`] with extra server arguments, environment and a custom client handler.
pub async fn spawn_stdio_full<H: ClientHandler>(
    ws: &Path,
    extra_args: &[&str],
    env: &[(&str, &str)],
    handler: H,
) -> anyhow::Result<RunningService<RoleClient, H>> {
    spawn_stdio_lifecycle(
        ws,
        extra_args,
        env,
        handler,
        ClientLifecycleMode::Initialize,
    )
    .await
}

/// [`spawn_stdio_full`] with the client's lifecycle (`initialize`, or `server/discover`).
async fn spawn_stdio_lifecycle<H: ClientHandler>(
    ws: &Path,
    extra_args: &[&str],
    env: &[(&str, &str)],
    handler: H,
    lifecycle: ClientLifecycleMode,
) -> anyhow::Result<RunningService<RoleClient, H>> {
    let cmd = server_command(ws).configure(|cmd| {
        cmd.args(["serve", "--stdio"]).args(extra_args);
        for (k, v) in env {
            cmd.env(k, v);
        }
    });
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn pi-mcp serve --stdio")?;
    let log = Log::default();
    if let Some(stderr) = stderr {
        tokio::spawn(drain(BufReader::new(stderr).lines(), log.clone()));
    }
    let why = match tokio::time::timeout(
        STARTUP_TIMEOUT,
        handler.serve_with_lifecycle(transport, lifecycle),
    )
    .await
    {
        Ok(Ok(client)) => return Ok(client),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer within {STARTUP_TIMEOUT:?}"),
    };
    tokio::time::sleep(Duration::from_millis(200)).await; // let stderr arrive
    bail!(
        "MCP initialize over stdio failed: {why}\nstderr:\n{}",
        log.text()
    )
}

/// A raw `initialize` request with `id` (revision 2025-11-25, client `t`).
pub fn initialize(id: u64) -> serde_json::Value {
    serde_json::json!({"jsonrpc":"2.0","id":id,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})
}

/// `pi-mcp --workspace <ws> <global> serve --stdio` as a plain child with piped stdin and
/// stdout (for raw JSON lines), with extra environment variables `env`.
pub fn stdio_child(
    ws: &Path,
    global: &[&str],
    env: &[(&str, &str)],
    stderr: Stdio,
) -> std::process::Child {
    serve_child(ws, global, &["--stdio"], env, stderr)
}

/// `pi-mcp --workspace <ws> <global> serve <serve>` with piped stdin and stdout, the test's
/// state directory and extra environment variables.
pub fn serve_child(
    ws: &Path,
    global: &[&str],
    serve: &[&str],
    env: &[(&str, &str)],
    stderr: Stdio,
) -> std::process::Child {
    std::process::Command::new(bin())
        .arg("--workspace")
        .arg(ws)
        .args(global)
        .arg("serve")
        .args(serve)
        .envs(state_env(ws))
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn pi-mcp serve")
}

/// Writes JSON-RPC `msg` to a raw stdio child as one line.
pub fn send_line(stdin: &mut std::process::ChildStdin, msg: serde_json::Value) {
    use std::io::Write as _;
    writeln!(stdin, "{msg}").expect("write to the server");
    stdin.flush().expect("flush to the server");
}

/// Reads a raw stdio child's lines until the reply with `id`.
pub fn reply(stdout: &mut impl std::io::BufRead, id: u64) -> serde_json::Value {
    replies(stdout, [id]).remove(&id).expect("the reply")
}

/// The answers to the requests numbered `ids`, in whatever order they come (pipelined calls
/// may be answered out of order), by id; other lines are skipped.
pub fn replies(
    stdout: &mut impl std::io::BufRead,
    ids: impl IntoIterator<Item = u64>,
) -> std::collections::HashMap<u64, serde_json::Value> {
    let mut waiting: std::collections::HashSet<u64> = ids.into_iter().collect();
    let mut got = std::collections::HashMap::new();
    while !waiting.is_empty() {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).expect("read from the server") > 0,
            "the server closed stdout with {} answers missing",
            waiting.len()
        );
        let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
        if let Some(id) = v["id"].as_u64().filter(|id| waiting.remove(id)) {
            got.insert(id, v);
        }
    }
    got
}

/// Polls `done` every 50 ms until it holds; fails naming `what` after `within`.
pub async fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `pi-mcp --workspace <ws> <args>` to the end with extra environment variables and
/// returns its output (success or not).
pub fn cli(ws: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("--workspace")
        .arg(ws)
        .args(args)
        .env_remove("PI_MCP_STATE_URL")
        .envs(state_env(ws));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run pi-mcp")
}

/// Like [`cli`], but panics with its stderr unless it succeeds; returns stdout.
pub fn cli_ok(ws: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = cli(ws, args, env);
    assert!(
        out.status.success(),
        "pi-mcp {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `policy check` exit statuses by decision (README, "pi-mcp policy").
pub const POLICY_EXIT: [(&str, i32); 3] = [("allow", 0), ("ask", 3), ("deny", 4)];

/// Like [`cli`] for `pi-mcp policy check ...`: panics with its stderr unless it exits with a
/// decision's status (0 allow, 3 ask, 4 deny); returns stdout.
pub fn cli_decided(ws: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = cli(ws, args, env);
    let code = out.status.code();
    assert!(
        POLICY_EXIT.iter().any(|(_, c)| Some(*c) == code),
        "pi-mcp {args:?} failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The audit log as `pi-mcp audit --json --tail 1000` prints it.
pub fn audit_entries(ws: &Path, env: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let out = cli_ok(ws, &["audit", "--json", "--tail", "1000"], env);
    serde_json::from_str(&out).expect("audit --json prints a JSON array")
}

/// The outcomes the audit log records for approval `id`, oldest first, once `pi-mcp audit`
/// shows at least `n` of them (the server writes its entries in the background); panics after
/// 15 s with what it has.
pub async fn approval_steps(ws: &Path, id: &str, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let steps: Vec<String> = audit_entries(ws, &[])
            .iter()
            .filter(|e| e["tool"] == "approval" && e["arguments"]["id"] == id)
            .map(|e| e["outcome"].as_str().unwrap_or_default().to_string())
            .collect();
        if steps.len() >= n {
            return steps;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "approval {id}: expected {n} audited steps, found {steps:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Calls `tool` with `args` (a JSON object, or null for none); panics on a protocol error.
pub async fn call(
    client: &Peer<RoleClient>,
    tool: &str,
    args: serde_json::Value,
) -> CallToolResult {
    let mut params = CallToolRequestParams::new(tool.to_owned());
    params.arguments = match args {
        serde_json::Value::Object(map) => Some(map),
        serde_json::Value::Null => None,
        other => panic!("arguments for {tool} must be a JSON object, got {other}"),
    };
    client
        .call_tool(params)
        .await
        .unwrap_or_else(|e| panic!("tools/call {tool} failed: {e}"))
}

/// The text contents of a tool result, joined with newlines.
pub fn text_of(result: &CallToolResult) -> String {
    let texts = result.content.iter().filter_map(|c| c.as_text());
    texts
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A new, empty database on the test PostgreSQL at `base` (a URL naming some database);
/// returns its URL.
pub async fn fresh_pg_database(base: &str) -> String {
    use sqlx::Connection as _;
    let name = format!(
        "pimcp_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let mut admin = sqlx::PgConnection::connect(base)
        .await
        .expect("connect to the test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').expect("URL with a database name");
    format!("{prefix}/{name}")
}

/// `pi-mcp --workspace <ws> serve --http 127.0.0.1:0 [--token T]`, killed on drop.
pub struct HttpServer {
    child: Child,
    url: String,
    log: Log,
}

impl HttpServer {
    /// Starts the server and waits (up to 30 s) for its `listening on http://` line.
    pub async fn start(ws: &Path, token: Option<&str>) -> anyhow::Result<Self> {
        Self::start_with_env(ws, token, &[]).await
    }

    /// [`HttpServer::start`] with extra environment variables for the server.
    pub async fn start_with_env(
        ws: &Path,
        token: Option<&str>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut cmd = server_command(ws);
        cmd.args(["serve", "--http", "127.0.0.1:0"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(token) = token {
            cmd.args(["--token", token]);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("spawn pi-mcp serve --http")?;
        let log = Log::default();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        tokio::spawn(drain(stdout, log.clone()));
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let found = tokio::time::timeout(STARTUP_TIMEOUT, async {
            while let Some(line) = stderr.next_line().await? {
                log.push(&line);
                if let Some(url) = parse_listen_url(&line) {
                    return Ok(Some(url));
                }
            }
            Ok::<_, std::io::Error>(None)
        })
        .await;
        let why = match found {
            Ok(Ok(Some(url))) => {
                tokio::spawn(drain(stderr, log.clone()));
                return Ok(Self { child, url, log });
            }
            Ok(Ok(None)) => match child.wait().await {
                Ok(status) => format!("it exited ({status})"),
                Err(e) => format!("it exited ({e})"),
            },
            Ok(Err(e)) => format!("reading its stderr failed: {e}"),
            Err(_) => format!("no `listening on http://` line within {STARTUP_TIMEOUT:?}"),
        };
        bail!(
            "pi-mcp serve --http did not start: {why}; output so far:\n{}",
            log.text()
        )
    }

    /// The MCP endpoint, e.g. `http://127.0.0.1:PORT/mcp`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Everything the server printed (stdout and stderr) so far.
    pub fn output(&self) -> String {
        self.log.text()
    }
}

pub fn parse_listen_url(line: &str) -> Option<String> {
    let start = line.find("listening on http://")? + "listening on ".len();
    let url: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_graphic() && !"\"'`,;<>()".contains(*c))
        .collect();
    Some(url.trim_end_matches('.').to_owned())
}

/// A local stand-in for Slack and webhook receivers (axum) that records every JSON body it is
/// sent and answers from a script: queued replies first, then `fail_with` while set, else
/// `200 ok`.
#[derive(Clone)]
pub struct HookReceiver {
    state: Arc<Mutex<HookState>>,
    base: String,
}

#[derive(Default)]
struct HookState {
    replies: std::collections::VecDeque<(u16, Option<String>)>,
    failing: Option<u16>,
    hits: Vec<(std::time::Instant, serde_json::Value)>,
}

impl HookReceiver {
    pub async fn start() -> HookReceiver {
        use axum::response::IntoResponse;
        let state = Arc::new(Mutex::new(HookState::default()));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
            let state = shared.clone();
            async move {
                let mut s = state.lock().unwrap();
                let json = serde_json::from_slice(&body).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(&body).into())
                });
                s.hits.push((std::time::Instant::now(), json));
                let (status, retry_after) = s
                    .replies
                    .pop_front()
                    .unwrap_or((s.failing.unwrap_or(200), None));
                let status = axum::http::StatusCode::from_u16(status).unwrap();
                let text = if status.is_success() { "ok" } else { "failing" };
                match retry_after {
                    Some(v) => (status, [("retry-after", v)], text).into_response(),
                    None => (status, text).into_response(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        HookReceiver {
            state,
            base: format!("http://{addr}"),
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Answers the next requests with these (status, Retry-After) pairs.
    pub fn script(&self, replies: &[(u16, Option<&str>)]) {
        self.state.lock().unwrap().replies = replies
            .iter()
            .map(|(s, r)| (*s, r.map(str::to_owned)))
            .collect();
    }

    /// Answers every request with `status` until [`HookReceiver::recover`].
    pub fn fail_with(&self, status: u16) {
        self.state.lock().unwrap().failing = Some(status);
    }

    pub fn recover(&self) {
        self.state.lock().unwrap().failing = None;
    }

    /// Every body received (failed ones included), oldest first.
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.state
            .lock()
            .unwrap()
            .hits
            .iter()
            .map(|h| h.1.clone())
            .collect()
    }

    /// Arrival times, oldest first.
    pub fn times(&self) -> Vec<std::time::Instant> {
        self.state
            .lock()
            .unwrap()
            .hits
            .iter()
            .map(|h| h.0)
            .collect()
    }
}

/// The shipped policy with a `notify` section allowing loopback receivers (`/slack*`,
/// `/hook*`) and `*@example.test`; written into the workspace, returns its path.
pub fn loopback_notify_policy(ws: &Workspace) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/security.json");
    let text = std::fs::read_to_string(shipped).expect("read policies/security.json");
    let mut policy: serde_json::Value = serde_json::from_str(&text).expect("policy JSON");
    policy["notify"] = serde_json::json!({
        "channels": ["slack", "email", "webhook"],
        "slack_webhooks": ["http://127.0.0.1:*/slack*"],
        "webhook_urls": ["http://127.0.0.1:*/hook*"],
        "email_recipients": ["*@example.test"]
    });
    ws.write("policy/notify-policy.json", policy.to_string())
}

/// `pi-mcp heartbeat` running as a child process in a workspace, its stderr collected line by
/// line (and echoed as `[heartbeat] ...`); killed when dropped.
pub struct Daemon {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    /// Starts `pi-mcp --workspace <ws> heartbeat <args>` with `env` added.
    pub fn start(ws: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(bin());
        cmd.arg("--workspace")
            .arg(ws)
            .arg("heartbeat")
            .args(args)
            .env_remove("PI_MCP_STATE_URL")
            .envs(state_env(ws))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn pi-mcp heartbeat");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let sink = lines.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                eprintln!("[heartbeat] {line}");
                sink.lock().unwrap().push(line);
            }
        });
        Daemon { child, lines }
    }

    /// How many lines so far contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        let lines = self.lines.lock().unwrap();
        lines.iter().filter(|l| l.contains(needle)).count()
    }

    /// Every line so far.
    pub fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits (up to 60 s) until `n` lines contain `needle`.
    pub async fn wait_for(&self, needle: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.count(needle) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {n}x `{needle}` within 60 s; output:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits (up to 20 s) for a clean exit.
    pub async fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("the daemon is running");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the daemon stops within 20 s")
            .expect("wait for the daemon")
    }
}

/// Runs a Python `mcp` SDK client script (`tests/<script>`) with `python` as
/// `script SERVER WORKSPACE ARG` against `ws`'s state, and returns its stdout; panics with
/// its output unless it succeeded, or when a line of `expect` is missing from it.
pub async fn python_client(
    python: &str,
    script: &str,
    server: &str,
    ws: &Workspace,
    arg: &str,
    expect: &[&str],
) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let out = Command::new(python)
        .arg(script)
        .arg(server)
        .arg(ws.path())
        .arg(arg)
        .envs(state_env(ws.path()))
        .env_remove("PI_MCP_POLICY")
        .env_remove("PI_MCP_STATE_URL")
        .output()
        .await
        .expect("run the python client");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python client ({server}) failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in expect {
        assert!(
            stdout.contains(line),
            "{server}: missing {line:?} in {stdout}"
        );
    }
    stdout
}
