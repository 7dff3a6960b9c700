//! The heartbeat's autonomous side through the real binary, a scripted fake model API
//! (tests/fake_llm) and a local webhook receiver: a rule that fires with
//! `on_fire.investigate` starts exactly one SRE run whose state-changing call becomes a pending
//! approval and whose summary reaches the rule's channel; the `HEARTBEAT.md` check delivers
//! nothing on `HEARTBEAT_OK` and its report otherwise; SIGTERM interrupts a running
//! investigation with a transcript that says so.

mod fake_llm;
mod support;

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_llm::run::{events_of, transcript_files};
use fake_llm::{FakeLlm, anthropic};
use serde_json::{Value, json};
use support::{HookReceiver, Workspace, cli, cli_ok, loopback_notify_policy};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The edit-like command the model proposes; `remediate: false` must keep it from running.
const PROPOSED_FIX: &str = "sed -i 's/workers = 1/workers = 4/' app.conf";

/// `pi-mcp heartbeat ARGS` in `ws` with the fake model and the receiver as its webhook.
fn heartbeat(
    ws: &Workspace,
    fake: &FakeLlm,
    hook: &HookReceiver,
    args: &[&str],
) -> tokio::process::Command {
    let policy = loopback_notify_policy(ws);
    let mut cmd = tokio::process::Command::new(support::bin());
    for var in [
        "PI_MCP_STATE_URL",
        "PI_MCP_PROMPTS",
        "PI_MCP_REPORTS",
        "PI_MODEL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "HEARTBEAT_CHANNELS",
        "PI_HEARTBEAT_MAX_INVESTIGATIONS",
        "PI_HEARTBEAT_CHECK_EVERY",
    ] {
        cmd.env_remove(var);
    }
    cmd.arg("--workspace")
        .arg(ws.path())
        .current_dir(ws.path())
        .envs(support::state_env(ws.path()))
        .args(["heartbeat", "--rules", "alerts.json"])
        .args(args)
        .env("PI_PROVIDER", "anthropic")
        .env("ANTHROPIC_BASE_URL", &fake.base)
        .env("ANTHROPIC_API_KEY", "test-anthropic-key")
        .env("PI_MCP_POLICY", policy)
        .env("PI_MCP_NOTIFY_RETRY_BASE_MS", "10")
        .env("ALERT_WEBHOOK_URL", hook.url("/hook"))
        .env("SLACK_WEBHOOK_URL", "")
        .env("SMTP_URL", "")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn once(ws: &Workspace, fake: &FakeLlm, hook: &HookReceiver) {
    let out = heartbeat(ws, fake, hook, &["--once"])
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("run pi-mcp heartbeat --once");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("[heartbeat --once]\n{stderr}");
    assert!(out.status.success(), "exit {:?}", out.status);
}

fn firing_rule(ws: &Workspace) {
    firing_rule_with(ws, json!({"investigate": true, "max_steps": 5}));
}

fn firing_rule_with(ws: &Workspace, on_fire: Value) {
    ws.write("app.conf", "workers = 1\n");
    ws.write("app.log", "ok\nERROR worker pool exhausted\n");
    let rule = json!({
        "id": "app-errors", "name": "App errors", "type": "log_keyword",
        "params": {"path": "app.log", "keyword": "ERROR", "window_minutes": 60},
        "condition": {"operator": "gt", "threshold": 0}, "channels": ["webhook"],
        "runbook": "https://runbooks.example.test/app-errors",
        "on_fire": on_fire
    });
    ws.write("alerts.json", json!({"rules": [rule]}).to_string());
}

fn bodies_of(hook: &HookReceiver, kind: &str) -> Vec<Value> {
    hook.bodies()
        .into_iter()
        .filter(|b| b["kind"] == kind)
        .collect()
}

fn audit_outcomes(ws: &Path, tool: &str) -> Vec<String> {
    support::audit_entries(ws, &[])
        .iter()
        .filter(|e| e["tool"] == tool)
        .map(|e| e["outcome"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_rule_is_investigated_once_without_changing_anything() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    firing_rule(&ws);
    let fake = FakeLlm::start(vec![
        anthropic::tools(
            "Observe: the log shows the pool is exhausted. Act: raise the workers.",
            &[("toolu_1", "bash", json!({"command": PROPOSED_FIX}))],
        ),
        anthropic::text(
            "The worker pool is exhausted (app.log).\nCould not fix: raising workers to 4 waits for approval.",
        ),
    ])
    .await;

    once(&ws, &fake, &hook).await;
    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "one conversation of two turns");
    let system = requests[0].body["system"].to_string();
    assert!(
        system.contains("app-errors") && system.contains("runbooks.example.test/app-errors"),
        "the alert is the incident: {system}"
    );
    assert!(system.contains("threshold 0") && system.contains("Recent values"));
    // The proposed change did not run: it waits as an approval.
    assert_eq!(ws.read("app.conf"), "workers = 1\n");
    let result = fake_llm::wire::anthropic_results(&requests[1]);
    assert!(result[0].2 && result[0].1.contains("NOT run"), "{result:?}");
    let listed: Vec<Value> =
        serde_json::from_str(&cli_ok(ws.path(), &["approvals", "list", "--json"], &[])).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["status"], "pending");
    assert_eq!(listed[0]["command"], PROPOSED_FIX);
    assert_eq!(
        listed[0]["requested_by"], "investigation of rule app-errors",
        "the approval names the run that asked"
    );
    // The alert itself and the investigation's summary both reached the rule's channel.
    assert_eq!(hook.bodies().len(), 2, "{:?}", hook.bodies());
    let summary = &bodies_of(&hook, "investigation")[0];
    assert!(
        summary["subject"]
            .as_str()
            .unwrap()
            .contains("Investigation of App errors"),
        "{summary}"
    );
    let text = summary["text"].as_str().unwrap();
    assert!(
        text.contains("Could not fix") && text.contains("Transcript: "),
        "{text}"
    );
    let (md, _) = transcript_files(ws.path());
    assert!(text.contains(&md.display().to_string()), "{text}");
    let audit = audit_outcomes(ws.path(), "heartbeat.investigate");
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert!(audit.iter().any(|o| o == "started"), "{audit:?}");
    assert!(
        audit
            .iter()
            .any(|o| o.starts_with("finished: final_answer")),
        "{audit:?}"
    );

    // Still firing on the next heartbeat: no second investigation, nothing new delivered.
    once(&ws, &fake, &hook).await;
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(hook.bodies().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remediate_false_investigation_observes_freely_and_asks_once_for_a_change() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    firing_rule(&ws);
    let restart = json!({"command": "systemctl restart app"});
    let fake = FakeLlm::start(vec![
        anthropic::tools(
            "Observe, and propose a restart (asked twice by mistake).",
            &[
                ("toolu_1", "bash", json!({"command": "df -h"})),
                ("toolu_2", "bash", restart.clone()),
                ("toolu_3", "bash", restart),
            ],
        ),
        anthropic::text("Disk is fine.\nCould not fix: the restart waits for approval."),
    ])
    .await;
    once(&ws, &fake, &hook).await;
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    let results = fake_llm::wire::anthropic_results(&requests[1]);
    assert_eq!(results.len(), 3, "{results:?}");
    // The observation ran without a human: df's own output came back.
    assert!(
        !results[0].2 && results[0].1.contains("Filesystem"),
        "{results:?}"
    );
    // The restart did not run: it waits as one approval, and its twin shares that answer.
    assert!(
        results[1].2 && results[1].1.contains("NOT run"),
        "{results:?}"
    );
    assert!(
        results[2].2
            && results[2]
                .1
                .contains("Identical to another call in this turn"),
        "{results:?}"
    );
    let listed: Vec<Value> =
        serde_json::from_str(&cli_ok(ws.path(), &["approvals", "list", "--json"], &[])).unwrap();
    assert_eq!(
        listed.len(),
        1,
        "one approval for two identical calls: {listed:?}"
    );
    assert_eq!(listed[0]["command"], "systemctl restart app");
    assert_eq!(
        listed[0]["requested_by"],
        "investigation of rule app-errors"
    );
    // Only df reached the server's bash tool (and its guard and audit).
    let ran: Vec<String> = support::audit_entries(ws.path(), &[])
        .iter()
        .filter(|e| e["tool"] == "bash")
        .map(|e| {
            e["arguments"]["command"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(ran, ["df -h"]);
    // The transcript records the shared answer, not an empty one.
    let (_, jsonl) = transcript_files(ws.path());
    let events: Vec<Value> = std::fs::read_to_string(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let twin = events_of(&events, "tool_result")
        .into_iter()
        .find(|e| e["id"] == "toolu_3")
        .expect("a result for the duplicate");
    assert!(twin["text"].as_str().unwrap().contains("NOT run"), "{twin}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remediate_true_investigation_makes_its_change_and_verifies_it() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    firing_rule_with(
        &ws,
        json!({"investigate": true, "remediate": true, "max_steps": 5}),
    );
    let fake = FakeLlm::start(vec![
        anthropic::tools(
            "Act: raise the workers.",
            &[("toolu_1", "bash", json!({"command": PROPOSED_FIX}))],
        ),
        anthropic::tools(
            "Verify.",
            &[(
                "toolu_2",
                "bash",
                json!({"command": "grep -c 'workers = 4' app.conf"}),
            )],
        ),
        anthropic::text("Raised workers to 4.\nVerification: grep finds `workers = 4` (1 match)."),
    ])
    .await;
    once(&ws, &fake, &hook).await;
    assert_eq!(ws.read("app.conf"), "workers = 4\n", "the change ran");
    assert_eq!(fake.requests().len(), 3, "verified: not asked again");
    let listed: Vec<Value> =
        serde_json::from_str(&cli_ok(ws.path(), &["approvals", "list", "--json"], &[])).unwrap();
    assert!(listed.is_empty(), "no approval was needed: {listed:?}");
    let summary = &bodies_of(&hook, "investigation")[0];
    assert!(
        summary["text"].as_str().unwrap().contains("Verification:"),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_md_ok_delivers_nothing_and_anything_else_is_delivered() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    ws.write("alerts.json", json!({"rules": []}).to_string());
    ws.write(
        "HEARTBEAT.md",
        "Check that the disk has room (df -h). Flag anything over 90%.\n",
    );
    let fake = FakeLlm::start(vec![
        anthropic::text("HEARTBEAT_OK"),
        anthropic::text("The disk /var is 97% full; rotate the logs."),
    ])
    .await;
    once(&ws, &fake, &hook).await;
    assert_eq!(fake.requests().len(), 1);
    let system = fake.requests()[0].body["system"].to_string();
    assert!(system.contains("Flag anything over 90%"), "{system}");
    assert!(hook.bodies().is_empty(), "{:?}", hook.bodies());

    once(&ws, &fake, &hook).await;
    assert_eq!(fake.requests().len(), 2);
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["kind"], "heartbeat_check");
    assert_eq!(bodies[0]["subject"], "Heartbeat check: needs attention");
    assert!(bodies[0]["text"].as_str().unwrap().contains("97% full"));
    let audit = audit_outcomes(ws.path(), "heartbeat.check");
    assert!(
        audit.iter().any(|o| o.starts_with("finished: all clear")),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|o| o.starts_with("finished: needs attention")),
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_interrupts_a_running_investigation() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    firing_rule(&ws);
    let fake = FakeLlm::start(vec![
        anthropic::text("never seen").delayed(Duration::from_secs(60)),
    ])
    .await;
    let mut child = heartbeat(&ws, &fake, &hook, &["--interval", "300ms"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pi-mcp heartbeat");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let sink = lines.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            eprintln!("[heartbeat] {line}");
            sink.lock().unwrap().push(line);
        }
    });
    let count = |needle: &str| {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while fake.requests().is_empty() || count("heartbeat: 1 rules") < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no investigation within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count("investigation of `app-errors` started"), 1);
    let pid = nix::unistd::Pid::from_raw(child.id().expect("pid") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("the daemon stops within 15 s")
        .unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(fake.requests().len(), 1, "one conversation while firing");
    let (_, jsonl) = transcript_files(ws.path());
    let events: Vec<Value> = std::fs::read_to_string(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let end = events_of(&events, "run_end");
    assert_eq!(end[0]["stop_reason"], "interrupted", "{events:?}");
    assert!(bodies_of(&hook, "investigation").is_empty());
    let audit = audit_outcomes(ws.path(), "heartbeat.investigate");
    assert!(
        audit.iter().any(|o| o.starts_with("finished: interrupted")),
        "{audit:?}"
    );
}

#[test]
fn the_investigation_cap_is_bounded() {
    let ws = Workspace::new();
    let out = cli(
        ws.path(),
        &["heartbeat", "--once", "--max-investigations", "65"],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("max-investigations"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn investigations_above_the_cap_wait_for_a_slot() {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    ws.write("app.log", "ERROR one\nFATAL two\n");
    let rule = |id: &str, keyword: &str| {
        json!({
            "id": id, "type": "log_keyword",
            "params": {"path": "app.log", "keyword": keyword, "window_minutes": 60},
            "condition": {"operator": "gt", "threshold": 0}, "channels": ["webhook"],
            "on_fire": {"investigate": true}
        })
    };
    ws.write(
        "alerts.json",
        json!({"rules": [rule("errors", "ERROR"), rule("fatals", "FATAL")]}).to_string(),
    );
    let answer = "Could not fix: nothing to change from here.";
    let fake = FakeLlm::start(vec![
        anthropic::text(answer).delayed(Duration::from_millis(1500)),
        anthropic::text(answer),
    ])
    .await;
    let out = heartbeat(&ws, &fake, &hook, &["--once", "--max-investigations", "1"])
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("run pi-mcp heartbeat --once");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("[heartbeat --once]\n{stderr}");
    assert!(out.status.success());
    let lines: Vec<&str> = stderr.lines().collect();
    let at = |needle: &str| -> Vec<usize> {
        lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains(needle))
            .map(|(i, _)| i)
            .collect()
    };
    let started = at("investigation of `");
    let started: Vec<usize> = started
        .into_iter()
        .filter(|&i| lines[i].contains("` started"))
        .collect();
    let ended: Vec<usize> = at("` ended (");
    assert_eq!((started.len(), ended.len()), (2, 2), "{stderr}");
    assert!(
        started[1] > ended[0],
        "the second run started only after the first ended:\n{stderr}"
    );
    assert_eq!(bodies_of(&hook, "investigation").len(), 2);
}
