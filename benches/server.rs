//! Benchmarks whose numbers the README reports (run: `cargo bench --bench server`, or
//! `scripts/bench-server`, which first installs the peer servers it compares against).
//! For pi-mcp and each installed peer, in one run: spawn to the `initialize` answer, idle RSS
//! after `initialize`, a small `read` called sequentially (latency and the server's CPU per
//! call from `/proc`), small calls pipelined (calls/s) and a 100-row SQLite SELECT (queries/s,
//! CPU per query), printed with the peer / pi-mcp ratios. Then pi-mcp alone: one `read` of a
//! 1 MiB file, the guard's decision time over every command of its corpus (median and p99,
//! Rego off and on) and the policy load. Not a test: it asserts nothing about speed.

#[path = "server/peers.rs"]
mod peers;
#[path = "server/report.rs"]
mod report;
#[path = "server/wire.rs"]
mod wire;

use std::time::{Duration, Instant};

use pi_mcp::guard::{Guard, PathContext};
use serde_json::json;

use peers::{Fixture, Subject};
use report::Measured;
use wire::Server;

const BIN: &str = env!("CARGO_BIN_EXE_pi-mcp");
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
        .map(wire::median)
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

/// Rows in the benchmark's SQLite table (the query reads 100 of them by primary key).
const SQL_TABLE_ROWS: i64 = 10_000;

fn make_db(path: &std::path::Path) {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Connection};
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL, price REAL NOT NULL)")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
             INSERT INTO items SELECT i, 'item number ' || i, i % 97, i * 0.25 FROM n",
        )
        .bind(SQL_TABLE_ROWS)
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
    });
}

/// Start-ups (each to the `initialize` answer, then idle RSS) and the call rows of one subject.
fn measure(s: &Subject, starts: usize) -> Measured {
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..starts {
        let server = Server::start(peers::again(&s.command));
        times.push(server.started_in);
        // Idle: whatever the server does right after the handshake is over.
        std::thread::sleep(Duration::from_millis(500));
        rss.push(server.rss_kib());
        server.stop();
    }
    rss.sort();
    let mut m = Measured {
        name: s.name,
        start: wire::median(times),
        rss_kib: rss[rss.len() / 2],
        read: None,
        pipelined: None,
        sql: None,
    };
    let mut server = Server::start(peers::again(&s.command));
    if let Some((tool, args)) = &s.read {
        server.sequential(tool, args, 300);
        m.read = Some(server.sequential(tool, args, 3_000));
    }
    if let Some((tool, args)) = &s.small {
        server.pipelined(tool, args, 1_000);
        m.pipelined = Some(server.pipelined(tool, args, 10_000));
    }
    if let Some((tool, args)) = &s.sql {
        let first = server.call(tool, args);
        if let Some(rows) = first["structuredContent"]["rows"].as_array() {
            assert_eq!(
                rows.len(),
                100,
                "the SQL row should return 100 rows: {first}"
            );
        }
        server.sequential(tool, args, 50);
        m.sql = Some(server.sequential(tool, args, 1_000));
    }
    server.stop();
    m
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
    let data = tempfile::tempdir().unwrap();
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
    let db = data.path().join("bench.db");
    make_db(&db);
    let fixture = Fixture {
        ws: ws.path(),
        state: state.path(),
        db: &db,
    };

    // 1. pi-mcp and every installed peer, the same rows in the same run.
    report::machine();
    let mut measured = vec![measure(&peers::pi_mcp(BIN, &fixture), 20)];
    for peer in peers::installed(&fixture) {
        measured.push(measure(&peer, 10));
    }
    report::table(&measured);
    report::ratios(&measured);

    // 2. One read of a 1 MiB file (the first 2,000 lines / 50 KiB come back).
    let mut server = Server::start(peers::again(&peers::pi_mcp(BIN, &fixture).command));
    let big_read = server.sequential("read", &json!({"path": "big.txt"}), 20);
    server.stop();
    println!(
        "\nread of a 1 MiB file (first 2000 lines / 50 KiB returned): median {:.2} ms, {:.0} us server CPU",
        big_read.median.as_secs_f64() * 1e3,
        big_read.cpu_per_call.as_secs_f64() * 1e6
    );

    // 3. The guard's decision per command, over the whole corpus. The shell parser panics on
    // a few corpus commands and the guard catches that (it fails closed); as in the binary,
    // those panics are not printed.
    std::panic::set_hook(Box::new(|_| {}));
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
