//! Benchmarks whose numbers the README reports (run: `cargo bench --bench server`).
//! Spawn-to-initialize, one `read` of a 1 MiB file, 10,000 sequential small calls over stdio,
//! the guard's decision time over every command of its corpus (median and p99, Rego off and
//! on), and idle RSS. Not a test: it asserts nothing.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pi_mcp::guard::{Guard, PathContext};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_pi-mcp");

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn spawn_to_initialize(ws: &std::path::Path, state: &std::path::Path) -> (Duration, u64) {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["--workspace", ws.to_str().unwrap(), "serve", "--stdio"])
        .env("RUST_LOG", "error")
        .env("PI_MCP_STATE_DIR", state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}});
    writeln!(stdin, "{init}").unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let elapsed = started.elapsed();
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc":"2.0","method":"notifications/initialized"})
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let rss = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    drop(stdin);
    let _ = child.wait();
    (elapsed, rss)
}

/// Every command of the guard corpus (`tests/data/guard_corpus.jsonl`), disguised and everyday.
fn corpus() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/guard_corpus.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["command"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Times `guard` on every corpus command `rounds` times (interleaved, so machine noise spreads
/// over all commands) and prints the median and p99 of all decisions and the slowest command.
fn time_decisions(label: &str, guard: &Guard, ctx: &PathContext, corpus: &[String], rounds: usize) {
    let mut all = Vec::with_capacity(corpus.len() * rounds);
    let mut per_command = vec![Vec::with_capacity(rounds); corpus.len()];
    for _ in 0..rounds {
        for (i, cmd) in corpus.iter().enumerate() {
            let t = Instant::now();
            std::hint::black_box(guard.judge_command(std::hint::black_box(cmd), ctx));
            let d = t.elapsed();
            all.push(d);
            per_command[i].push(d);
        }
    }
    all.sort();
    let p99 = all[(all.len() * 99 / 100).min(all.len() - 1)];
    let (slowest, worst) = per_command
        .into_iter()
        .map(median)
        .enumerate()
        .max_by_key(|(_, d)| *d)
        .unwrap_or_default();
    println!(
        "{label}: median {:.1} us, p99 {:.1} us over {} corpus commands x {rounds} (slowest command's median {:.1} us: {:?})",
        all[all.len() / 2].as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        corpus.len(),
        worst.as_secs_f64() * 1e6,
        corpus[slowest].chars().take(60).collect::<String>()
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it, and a
    // benchmark has nothing to check there.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "benchmarks run with `cargo bench --bench server`; nothing to do under cargo test"
        );
        return;
    }
    let ws = tempfile::tempdir().unwrap();
    // pi-mcp's own state, outside the workspace and away from the real home.
    let state = tempfile::tempdir().unwrap();
    let mut big = String::new();
    let mut i = 0;
    while big.len() < 1024 * 1024 {
        i += 1;
        big.push_str(&format!(
            "{i:08} the quick brown fox jumps over the lazy dog\n"
        ));
    }
    std::fs::write(ws.path().join("big.txt"), &big).unwrap();
    std::fs::write(ws.path().join("small.txt"), "ok\n").unwrap();

    // 1. Spawn to initialize, and idle RSS.
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..20 {
        let (t, r) = spawn_to_initialize(ws.path(), state.path());
        times.push(t);
        rss.push(r);
    }
    rss.sort();
    println!(
        "spawn -> initialize answer: median {:.1} ms (20 runs)",
        median(times).as_secs_f64() * 1e3
    );
    println!(
        "idle RSS after initialize: median {:.1} MiB",
        rss[rss.len() / 2] as f64 / 1024.0
    );

    // 2-3. Tool calls through a real MCP client.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args([
            "--workspace",
            ws.path().to_str().unwrap(),
            "serve",
            "--stdio",
        ])
        .env("PI_MCP_STATE_DIR", state.path())
        .env("RUST_LOG", "error");
        let client = ().serve(rmcp::transport::TokioChildProcess::new(cmd).unwrap()).await.unwrap();
        let params = |path: &str| {
            let mut p = CallToolRequestParams::new("read");
            p.arguments = json!({"path": path}).as_object().cloned();
            p
        };
        let mut reads = Vec::new();
        for _ in 0..20 {
            let t = Instant::now();
            client.call_tool(params("big.txt")).await.unwrap();
            reads.push(t.elapsed());
        }
        println!(
            "read of a 1 MiB file (first 2000 lines / 50 KiB returned): median {:.2} ms",
            median(reads).as_secs_f64() * 1e3
        );
        let n = 10_000;
        let t = Instant::now();
        for _ in 0..n {
            client.call_tool(params("small.txt")).await.unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{n} sequential small read calls over stdio: {secs:.2} s = {:.0} calls/s",
            n as f64 / secs
        );
        client.cancel().await.unwrap();
    });

    // 4. The guard's decision per command, over the whole corpus.
    let corpus = corpus();
    let guard = Guard::load(None).unwrap();
    let ctx = PathContext {
        cwd: ws.path().into(),
        roots: vec![ws.path().into()],
        home: "/home/agent".into(),
    };
    time_decisions("policy decision", &guard, &ctx, &corpus, 200);
    // The same corpus with the example Rego policy added to the shipped policy.
    let root = env!("CARGO_MANIFEST_DIR");
    let mut policy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/policies/security.json")).unwrap(),
    )
    .unwrap();
    policy["rego"] = json!(["example.rego"]);
    std::fs::write(ws.path().join("security.json"), policy.to_string()).unwrap();
    std::fs::copy(
        format!("{root}/policies/example.rego"),
        ws.path().join("example.rego"),
    )
    .unwrap();
    let with_rego = Guard::load(Some(&ws.path().join("security.json"))).unwrap();
    time_decisions(
        "policy decision with the example Rego policy",
        &with_rego,
        &ctx,
        &corpus,
        50,
    );

    let t = Instant::now();
    let _ = Guard::load_checked(None).unwrap();
    println!(
        "policy load incl. checking every rule example: {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
}
