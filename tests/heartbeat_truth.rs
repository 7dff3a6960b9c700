//! Investigation reports that tell the truth, through the real binary, the scripted fake model
//! (both wire formats) and a local webhook receiver: a `remediate: false` run whose model
//! claims a fix is delivered as "Not fixed" with its pending approval ids first and the facts
//! as webhook fields; a command the policy denies is refused and never queued; the queued
//! change carries the policy's own risk and reasons; approving it once the policy denies it
//! is refused plainly and audited as not run; the transcript records tool-call arguments as
//! JSON objects whatever the provider.

mod fake_llm;
mod support;

use std::process::Stdio;

use fake_llm::run::transcript_files;
use fake_llm::{FakeLlm, Reply, anthropic, openai};
use serde_json::{Value, json};
use support::{HookReceiver, Workspace, cli, cli_ok, loopback_notify_policy};

/// The edit the model proposes; `remediate: false` must keep it from running.
const PROPOSED_FIX: &str = "sed -i 's/workers = 1/workers = 4/' app.conf";
/// A command the default policy denies (rule `rm-root-or-home`).
const DENIED: &str = "rm -rf /";
/// The model's answer: a claimed, "verified" fix that never happened.
const CLAIM: &str = "Fixed: raised the workers to 4.\nVerification: the app is healthy again.";

/// `pi-mcp heartbeat --once` in `ws` with the fake model (`provider`) and the receiver.
async fn heartbeat_once(ws: &Workspace, provider: &str, fake: &FakeLlm, hook: &HookReceiver) {
    let policy = loopback_notify_policy(ws);
    let mut cmd = tokio::process::Command::new(support::bin());
    for var in [
        "PI_MCP_STATE_URL",
        "PI_MCP_PROMPTS",
        "PI_MCP_REPORTS",
        "PI_MODEL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "HEARTBEAT_CHANNELS",
        "PI_HEARTBEAT_MAX_INVESTIGATIONS",
    ] {
        cmd.env_remove(var);
    }
    cmd.arg("--workspace")
        .arg(ws.path())
        .current_dir(ws.path())
        .envs(support::state_env(ws.path()))
        .args(["heartbeat", "--rules", "alerts.json", "--once"])
        .env("PI_PROVIDER", provider)
        .env("PI_MODEL", "test-model")
        .env("PI_MCP_POLICY", policy)
        .env("PI_MCP_NOTIFY_RETRY_BASE_MS", "10")
        .env("ALERT_WEBHOOK_URL", hook.url("/hook"))
        .env("SLACK_WEBHOOK_URL", "")
        .env("SMTP_URL", "")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match provider {
        "anthropic" => cmd
            .env("ANTHROPIC_BASE_URL", &fake.base)
            .env("ANTHROPIC_API_KEY", "test-anthropic-key"),
        _ => cmd
            .env("OPENAI_BASE_URL", format!("{}/v1", fake.base))
            .env("OPENAI_API_KEY", "test-openai-key"),
    };
    let out = cmd.output().await.expect("run pi-mcp heartbeat --once");
    eprintln!(
        "[heartbeat --once]\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "exit {:?}", out.status);
}

fn firing_rule(ws: &Workspace) {
    ws.write("app.conf", "workers = 1\n");
    ws.write("app.log", "ok\nERROR worker pool exhausted\n");
    let rule = json!({
        "id": "app-errors", "name": "App errors", "type": "log_keyword",
        "params": {"path": "app.log", "keyword": "ERROR", "window_minutes": 60},
        "condition": {"operator": "gt", "threshold": 0}, "channels": ["webhook"],
        "on_fire": {"investigate": true, "remediate": false, "max_steps": 5}
    });
    ws.write("alerts.json", json!({"rules": [rule]}).to_string());
}

/// The scripted conversation in `provider`'s wire format: one turn that observes, proposes
/// the fix and asks for a denied command, then a claimed fix.
fn script(provider: &str) -> Vec<Reply> {
    let calls = [
        ("call_1", json!({"command": "df -h"})),
        ("call_2", json!({"command": PROPOSED_FIX})),
        ("call_3", json!({"command": DENIED})),
    ];
    match provider {
        "anthropic" => {
            let calls: Vec<(&str, &str, Value)> = calls
                .iter()
                .map(|(id, args)| (*id, "bash", args.clone()))
                .collect();
            vec![
                anthropic::tools("Observe and act.", &calls),
                anthropic::text(CLAIM),
            ]
        }
        _ => {
            let args: Vec<String> = calls.iter().map(|(_, a)| a.to_string()).collect();
            let calls: Vec<(&str, &str, &str)> = calls
                .iter()
                .zip(&args)
                .map(|((id, _), a)| (*id, "bash", a.as_str()))
                .collect();
            vec![openai::tools(&calls), openai::text(CLAIM)]
        }
    }
}

/// Runs the claimed-fix investigation in `provider`'s format; returns the approval id.
async fn a_claimed_fix_is_reported_as_not_fixed(provider: &str) -> (Workspace, String) {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    firing_rule(&ws);
    let fake = FakeLlm::start(script(provider)).await;
    heartbeat_once(&ws, provider, &fake, &hook).await;
    assert_eq!(
        fake.requests().len(),
        2,
        "{provider}: one two-turn conversation"
    );
    assert_eq!(ws.read("app.conf"), "workers = 1\n", "the fix did not run");

    // Only the fix is queued; the denied command is refused, not queued.
    let listed: Vec<Value> =
        serde_json::from_str(&cli_ok(ws.path(), &["approvals", "list", "--json"], &[])).unwrap();
    assert_eq!(listed.len(), 1, "{provider}: {listed:?}");
    let approval = &listed[0];
    let id = approval["id"].as_str().unwrap().to_string();
    assert_eq!(approval["command"], PROPOSED_FIX);
    assert_eq!(approval["status"], "pending");
    // It carries the policy's own risk and reasons beside the mode's reason.
    let policy = loopback_notify_policy(&ws);
    let verdict: Value = serde_json::from_str(&support::cli_decided(
        ws.path(),
        &["policy", "check", "--json", "--", PROPOSED_FIX],
        &[("PI_MCP_POLICY", policy.to_str().unwrap())],
    ))
    .unwrap();
    assert_eq!(approval["risk"], verdict["risk"], "{approval} vs {verdict}");
    let rules: Vec<&str> = approval["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["rule"].as_str())
        .collect();
    assert!(rules.contains(&"agent-remediate-false"), "{rules:?}");
    for r in verdict["reasons"].as_array().unwrap() {
        assert!(
            rules.contains(&r["rule"].as_str().unwrap()),
            "{r} in {rules:?}"
        );
    }

    // The denied command reached the server's guard, was refused there and audited so.
    let audit = support::audit_entries(ws.path(), &[]);
    let bash: Vec<&Value> = audit.iter().filter(|e| e["tool"] == "bash").collect();
    assert!(
        bash.iter()
            .any(|e| e["arguments"]["command"] == DENIED && e["outcome"] == "denied"),
        "{bash:?}"
    );
    assert!(
        !bash
            .iter()
            .any(|e| e["arguments"]["command"] == PROPOSED_FIX),
        "the fix never reached bash: {bash:?}"
    );

    // The summary: facts first, the claimed fix labelled in the first line, then the answer.
    let bodies: Vec<Value> = hook
        .bodies()
        .into_iter()
        .filter(|b| b["kind"] == "investigation")
        .collect();
    assert_eq!(bodies.len(), 1, "{:?}", hook.bodies());
    let body = &bodies[0];
    let text = body["text"].as_str().unwrap();
    eprintln!("[{provider} summary]\n{text}");
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("Not fixed: 1 change awaits approval ({id})")),
        "{provider}: {text}"
    );
    assert!(first.contains("claims a fix"), "{first}");
    assert!(
        text.contains(&format!("approve with `pi-mcp approvals approve {id}`")),
        "{text}"
    );
    assert!(text.contains("Read-only calls: 1 (bash: df -h)"), "{text}");
    assert!(text.contains("Changes that ran: none"), "{text}");
    assert!(
        text.contains("`rm -rf /` (bash): refused by the policy"),
        "{text}"
    );
    let answer_at = text
        .find("> Fixed: raised the workers")
        .expect("the answer, quoted");
    assert!(
        answer_at > text.find("Waiting for approval").unwrap(),
        "{text}"
    );
    assert!(
        body["subject"]
            .as_str()
            .unwrap()
            .contains("Investigation of App errors: not fixed"),
        "{body}"
    );
    // The same facts as webhook fields.
    assert_eq!(body["status"], "not_fixed", "{body}");
    assert_eq!(body["pending_approvals"][0]["id"], id.as_str());
    assert_eq!(body["pending_approvals"][0]["command"], PROPOSED_FIX);
    assert_eq!(
        body["pending_approvals"][0]["approve"],
        format!("pi-mcp approvals approve {id}")
    );
    assert_eq!(body["read_only_calls"], 1);
    assert_eq!(body["changes"], json!([]));
    assert_eq!(body["refused"][0]["what"], DENIED);
    assert_eq!(body["refused"][0]["by"], "policy");
    assert_eq!(body["refused"][0]["rules"][0], "rm-root-or-home");
    assert_eq!(body["verification"]["status"], "no_change");
    assert_eq!(body["alert"]["rule"], "app-errors");
    assert_eq!(body["model_answer"], CLAIM);

    // The transcript: the same facts, and arguments as objects whatever the provider.
    let (md, jsonl) = transcript_files(ws.path());
    let events: Vec<Value> = std::fs::read_to_string(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let calls: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "tool_call")
        .collect();
    assert_eq!(calls.len(), 3);
    for c in &calls {
        assert!(c["arguments"].is_object(), "{provider}: {c}");
        assert!(c["arguments"]["command"].is_string(), "{c}");
    }
    let reply = events
        .iter()
        .find(|e| e["event"] == "model_reply" && !e["tool_calls"].as_array().unwrap().is_empty())
        .unwrap();
    assert!(reply["tool_calls"][0]["arguments"].is_object(), "{reply}");
    let end = events.iter().find(|e| e["event"] == "run_end").unwrap();
    assert_eq!(end["headline"]["status"], "not_fixed");
    assert_eq!(end["facts"]["pending_approvals"][0]["id"], id.as_str());
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("## What pi-mcp saw"), "{md}");
    assert!(
        md.contains("```json\n{\n  \"command\": \"df -h\"\n}\n```"),
        "{provider}: {md}"
    );
    (ws, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_a_claimed_fix_with_pending_changes_is_not_fixed() {
    a_claimed_fix_is_reported_as_not_fixed("anthropic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_a_claimed_fix_with_pending_changes_is_not_fixed_and_a_now_denied_approval_is_refused()
 {
    let (ws, id) = a_claimed_fix_is_reported_as_not_fixed("openai").await;
    // The policy changes: `sed` is now blocked. Approving the queued fix is refused plainly.
    let mut policy: Value =
        serde_json::from_str(&std::fs::read_to_string(loopback_notify_policy(&ws)).unwrap())
            .unwrap();
    policy["block"].as_array_mut().unwrap().push(json!({
        "id": "no-sed", "description": "sed may not edit files here",
        "match": {"program": ["sed"]}
    }));
    let strict = ws.write("policy/strict.json", policy.to_string());
    let env = [("PI_MCP_POLICY", strict.to_str().unwrap())];
    let out = cli(ws.path(), &["approvals", "approve", &id], &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("approval `{id}` NOT approved"))
            && stderr.contains("policy in force now denies")
            && stderr.contains("no-sed")
            && stderr.contains("will not run"),
        "{stderr}"
    );
    let shown: Value =
        serde_json::from_str(&cli_ok(ws.path(), &["approvals", "show", &id], &[])).unwrap();
    assert_eq!(shown["status"], "denied", "{shown}");
    assert_eq!(shown["decided_by"], "policy", "{shown}");
    let steps: Vec<Value> = support::audit_entries(ws.path(), &[])
        .into_iter()
        .filter(|e| e["tool"] == "approval" && e["arguments"]["id"] == id.as_str())
        .collect();
    assert!(
        steps.iter().any(|e| e["decision"] == "deny"
            && e["outcome"]
                .as_str()
                .unwrap()
                .contains("the command was NOT run and will not be")),
        "{steps:?}"
    );
    assert!(
        !steps
            .iter()
            .any(|e| e["outcome"].as_str().unwrap().contains("runs now")),
        "{steps:?}"
    );
    // A refused approval stays refused, whatever policy the next approver runs under.
    let out = cli(ws.path(), &["approvals", "approve", &id], &[]);
    assert!(!out.status.success(), "a denied approval stays denied");
}
