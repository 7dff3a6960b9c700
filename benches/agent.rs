//! Benchmarks of the Pi agent loop whose numbers the README reports (run:
//! `cargo bench --bench agent`; `cargo bench --profile dev --bench agent` for a quick upper
//! bound). The model is the scripted fake from tests/fake_llm answering at once, so what is
//! measured is the loop itself: building and parsing requests, the in-process MCP round trip,
//! the guard, the audit log and the transcript. Not a test: it asserts nothing.

#[path = "../tests/fake_llm/mod.rs"]
mod fake_llm;

use std::time::{Duration, Instant};

use fake_llm::{FakeLlm, Reply, anthropic};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_pi-mcp");
/// Steps of the long run (the default `--max-steps`).
const STEPS: u32 = 40;
/// How long the fake holds the last reply, so the peak RSS can be read while the run is alive.
const HOLD_LAST: Duration = Duration::from_millis(400);
const ROUNDS: usize = 5;

/// One run with `tool_steps` turns of one `read` each, then a final answer; returns the wall
/// time, the time spent in tools and in model requests (from the transcript), and the peak RSS
/// in KiB.
async fn run(tool_steps: u32) -> (Duration, Duration, Duration, u64) {
    let ws = tempfile::tempdir().unwrap();
    // pi-mcp's own state, outside the workspace and away from the real home.
    let state = tempfile::tempdir().unwrap();
    let lines: String = (0..200)
        .map(|i| format!("line {i}: some log text\n"))
        .collect();
    std::fs::write(ws.path().join("app.log"), lines).unwrap();
    let mut script: Vec<Reply> = (0..tool_steps)
        .map(|i| {
            anthropic::tools(
                "Looking further.",
                &[(
                    &format!("t{i}"),
                    "read",
                    json!({"path": "app.log", "offset": i + 1, "limit": 5}),
                )],
            )
        })
        .collect();
    script.push(anthropic::text("Done.").delayed(HOLD_LAST));
    let fake = FakeLlm::start(script).await;
    let max_steps = (tool_steps + 1).to_string();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(BIN)
        .arg("--workspace")
        .arg(ws.path())
        .args([
            "agent",
            "--provider",
            "anthropic",
            "--model",
            "m",
            "--max-steps",
            &max_steps,
            "Read the log.",
        ])
        .env("ANTHROPIC_BASE_URL", &fake.base)
        .env("ANTHROPIC_API_KEY", "k")
        .env("PI_MCP_STATE_DIR", state.path())
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    while fake.requests().len() < tool_steps as usize + 1 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(HOLD_LAST / 2).await;
    let peak_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    child.wait().await.unwrap();
    let elapsed = started.elapsed() - HOLD_LAST;
    let events: Vec<serde_json::Value> = std::fs::read_dir(ws.path().join("reports/agent"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    let time_of = |kind: &str| {
        let ms: f64 = events
            .iter()
            .filter(|e| e["event"] == kind)
            .filter_map(|e| e["elapsed_ms"].as_f64())
            .sum();
        Duration::from_secs_f64(ms / 1000.0)
    };
    let overhead = events
        .iter()
        .find(|e| e["event"] == "run_end")
        .and_then(|e| e["loop_overhead_ms"].as_f64())
        .unwrap_or(0.0);
    (
        elapsed,
        time_of("tool_result"),
        Duration::from_secs_f64(overhead / 1000.0),
        peak_kib,
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmarks run with `cargo bench --bench agent`; nothing to do under cargo test");
        return;
    }
    let mut short = Vec::new();
    let mut long = Vec::new();
    let mut tools = Vec::new();
    let mut loop_only = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..ROUNDS {
        short.push(run(0).await.0);
        let (t, tool_time, overhead, peak) = run(STEPS).await;
        long.push(t);
        tools.push(tool_time / STEPS);
        // The run's own measure: its time less model API waits and tool calls (41 requests).
        loop_only.push(overhead / (STEPS + 1));
        peaks.push(peak);
    }
    let (short, long) = (median(short), median(long));
    let per_step = long.saturating_sub(short) / STEPS;
    peaks.sort();
    println!("agent run with 0 tool steps (start, connect, 1 model call, exit): {short:?}");
    println!("agent run with {STEPS} tool steps: {long:?}");
    println!("per step, all in (instant model, one `read` through MCP): {per_step:?}");
    println!(
        "  of which the `read` call (in-process MCP + guard + tool): {:?}",
        median(tools)
    );
    println!(
        "loop overhead per step, excluding model requests and tool calls: {:?}",
        median(loop_only)
    );
    println!(
        "peak RSS of a {STEPS}-step run: {} KiB (median of {ROUNDS})",
        peaks[peaks.len() / 2]
    );
}
