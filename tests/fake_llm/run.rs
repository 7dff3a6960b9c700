//! Running `pi-mcp agent` against a fake model, and reading its transcript.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use super::FakeLlm;

// The same file as `support::state`: test crates that include both compile it twice, which is
// harmless (no state), and the benches that include only this module need it too.
#[allow(clippy::duplicate_mod)]
#[path = "../support/state.rs"]
mod state;

/// Settings of the developer's shell that would change what the binary does.
const OUTER_SETTINGS: &[&str] = &[
    "PI_MCP_STATE_URL",
    "PI_MCP_POLICY",
    "PI_MCP_PROMPTS",
    "PI_MCP_REPORTS",
    "PI_PROVIDER",
    "PI_MODEL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
];

pub fn agent_command(
    ws: &Path,
    provider: &str,
    fake: &FakeLlm,
    args: &[&str],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pi-mcp"));
    for var in OUTER_SETTINGS {
        cmd.env_remove(var);
    }
    cmd.arg("--workspace")
        .arg(ws)
        .current_dir(ws)
        .envs(state::state_env(ws))
        .args(["agent", "--provider", provider, "--model", "test-model"])
        .args(args)
        .kill_on_drop(true);
    match provider {
        "anthropic" => cmd
            .env("ANTHROPIC_BASE_URL", &fake.base)
            .env("ANTHROPIC_API_KEY", "test-anthropic-key"),
        _ => cmd
            .env("OPENAI_BASE_URL", format!("{}/v1", fake.base))
            .env("OPENAI_API_KEY", "test-openai-key"),
    };
    cmd
}

pub async fn run_agent(ws: &Path, provider: &str, fake: &FakeLlm, args: &[&str]) -> Output {
    let out = agent_command(ws, provider, fake, args)
        .output()
        .await
        .expect("run pi-mcp agent");
    eprintln!(
        "[pi-mcp agent stderr]\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Starts a fake model serving `script` and runs `pi-mcp agent ARGS` against it to the end.
pub async fn scripted_run(
    ws: &Path,
    provider: &str,
    script: Vec<super::Reply>,
    args: &[&str],
) -> (FakeLlm, Output) {
    let fake = FakeLlm::start(script).await;
    let out = run_agent(ws, provider, &fake, args).await;
    (fake, out)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The transcript files of the (only) run in `ws`: (markdown, jsonl).
pub fn transcript_files(ws: &Path) -> (PathBuf, PathBuf) {
    let dir = ws.join("reports").join("agent");
    let mut md = None;
    let mut jsonl = None;
    for e in std::fs::read_dir(&dir).expect("reports/agent exists") {
        let p = e.unwrap().path();
        match p.extension().and_then(|x| x.to_str()) {
            Some("md") => md = Some(p),
            Some("jsonl") => jsonl = Some(p),
            _ => {}
        }
    }
    (
        md.expect("a .md transcript"),
        jsonl.expect("a .jsonl transcript"),
    )
}

pub fn events(ws: &Path) -> Vec<Value> {
    let (_, jsonl) = transcript_files(ws);
    std::fs::read_to_string(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each transcript line is JSON"))
        .collect()
}

pub fn events_of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}
