//! The sandbox's cost, whose numbers the README reports (run: `cargo bench --bench sandbox`,
//! which builds with the release profile): the latency of a `bash` `echo hi` call over stdio
//! with each layer on (sandbox off; Landlock; + seccomp network deny; + namespaces, egress proxy
//! and hidden paths), and a 100 MiB download from a loopback server directly, through the
//! plain-TCP forward and through the HTTP proxy. The workspace holds 2,000 files in 40
//! directories. Not a test: it asserts nothing.

use std::io::{BufRead, BufReader, Read as _, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_pi-mcp");
const CALLS: usize = 60;
const DOWNLOAD_BYTES: usize = 100 * 1024 * 1024;
/// The benchmark's workspace: this many directories of [`FILES_PER_DIR`] files.
const WORKSPACE_DIRS: usize = 40;
const FILES_PER_DIR: usize = 50;

struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: u64,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Server {
    fn start(policy: &Value) -> Server {
        let ws = tempfile::tempdir().unwrap();
        // A workspace of some size: the hidden-path globs are searched in it on every call.
        for d in 0..WORKSPACE_DIRS {
            let dir = ws.path().join(format!("src/module{d}"));
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..FILES_PER_DIR {
                std::fs::write(dir.join(format!("file{f}.rs")), "fn main() {}\n").unwrap();
            }
        }
        let state = tempfile::tempdir().unwrap();
        let path = state.path().join("policy.json");
        std::fs::write(&path, policy.to_string()).unwrap();
        let mut child = Command::new(BIN)
            .args(["--workspace", ws.path().to_str().unwrap()])
            .args(["--policy", path.to_str().unwrap(), "serve", "--stdio"])
            .env("RUST_LOG", "error")
            .env("PI_MCP_STATE_DIR", state.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut s = Server {
            child,
            stdin,
            stdout,
            next: 1,
            _dirs: (ws, state),
        };
        s.request("initialize", json!({"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}));
        writeln!(
            s.stdin,
            "{}",
            json!({"jsonrpc":"2.0","method":"notifications/initialized"})
        )
        .unwrap();
        s
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        writeln!(
            self.stdin,
            "{}",
            json!({"jsonrpc":"2.0","id":id,"method":method,"params":params})
        )
        .unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }

    fn bash(&mut self, command: &str) -> (Duration, String) {
        let started = Instant::now();
        let r = self.request(
            "tools/call",
            json!({"name":"bash","arguments":{"command":command}}),
        );
        let text = r["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (started.elapsed(), text)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A loopback HTTP server that answers every request with `DOWNLOAD_BYTES` bytes.
fn download_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let body = vec![b'x'; 1024 * 1024];
        for conn in listener.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut head = [0u8; 4096];
                let _ = conn.read(&mut head);
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Length: {DOWNLOAD_BYTES}\r\nConnection: close\r\n\r\n"
                );
                for _ in 0..DOWNLOAD_BYTES / body.len() {
                    if conn.write_all(&body).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "benchmarks run with `cargo bench --bench sandbox`; nothing to do under cargo test"
        );
        return;
    }
    let port = download_server();
    let allow = json!({"mode": "allowlist", "allow": [format!("127.0.0.1:{port}")]});
    let layers = [
        ("sandbox off", json!({"sandbox": "off"})),
        (
            "Landlock + no_new_privs",
            json!({"network": "open", "hidden_paths": []}),
        ),
        (
            "+ seccomp network deny",
            json!({"network": "deny", "hidden_paths": []}),
        ),
        (
            "+ namespaces, proxy, hidden paths",
            json!({"network": allow, "hidden_paths": [
            "~/.ssh", "~/.gnupg", "~/.netrc", "~/.git-credentials", "~/.docker/config.json",
            "~/.pgpass", "~/.config/gh", ".env*", "*.pem", "id_*"]}),
        ),
    ];
    println!("bash `echo hi` over stdio, median of {CALLS} calls (first call not counted):");
    let mut base = None;
    for (label, policy) in &layers {
        let mut server = Server::start(policy);
        let _ = server.bash("echo warm-up");
        let times: Vec<Duration> = (0..CALLS).map(|_| server.bash("echo hi").0).collect();
        let m = median(times);
        let added = base
            .map(|b: Duration| m.saturating_sub(b))
            .unwrap_or_default();
        base.get_or_insert(m);
        println!(
            "  {label:<36} {:>7.2} ms  (+{:.2} ms over off)",
            m.as_secs_f64() * 1e3,
            added.as_secs_f64() * 1e3
        );
    }
    let url = format!("http://127.0.0.1:{port}/");
    let curl = |extra: &str| format!("curl -sS -o /dev/null {extra} -w '%{{time_total}}' {url}");
    let direct: Vec<f64> = (0..3)
        .map(|_| {
            let out = Command::new("bash")
                .args(["-c", &curl("")])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .unwrap_or(f64::NAN)
        })
        .collect();
    let mut server = Server::start(&layers[3].1);
    let seconds = |server: &mut Server, cmd: &str| -> f64 {
        let (_, text) = server.bash(cmd);
        text.lines()
            .next()
            .unwrap_or_default()
            .trim()
            .parse::<f64>()
            .unwrap_or(f64::NAN)
    };
    let forward: Vec<f64> = (0..3).map(|_| seconds(&mut server, &curl(""))).collect();
    let proxied: Vec<f64> = (0..3)
        .map(|_| seconds(&mut server, &curl("--noproxy '' -x \"$HTTP_PROXY\"")))
        .collect();
    let mid = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (d, f, p) = (mid(direct), mid(forward), mid(proxied));
    let mib = DOWNLOAD_BYTES as f64 / (1024.0 * 1024.0);
    println!("100 MiB download from loopback, median of 3:");
    println!(
        "  direct (host)                  {:>7.3} s  {:>7.0} MiB/s",
        d,
        mib / d
    );
    println!(
        "  sandboxed, plain-TCP forward   {:>7.3} s  {:>7.0} MiB/s  ({:.2}x direct)",
        f,
        mib / f,
        f / d
    );
    println!(
        "  sandboxed, HTTP proxy          {:>7.3} s  {:>7.0} MiB/s  ({:.2}x direct)",
        p,
        mib / p,
        p / d
    );
}
