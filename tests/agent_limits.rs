//! `pi-mcp agent`'s limits and modes end to end against the fake model: the step limit's
//! summary, SRE verification, dry run, repeated calls, Ctrl-C, timeout, token budget and
//! external MCP servers.

mod fake_llm;
mod support;

use std::path::Path;
use std::time::Duration;

use fake_llm::run::{agent_command, events, events_of, run_agent, stdout};
use fake_llm::wire::{
    anthropic_results, assert_anthropic_format, assert_openai_format, last_message, openai_results,
};
use fake_llm::{FakeLlm, anthropic, openai};
use serde_json::{Value, json};
use support::Workspace;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_step_limit_asks_for_a_summary() {
    let ws = Workspace::new();
    ws.write("a.txt", "alpha\n");
    ws.write("b.txt", "beta\n");
    let fake = FakeLlm::start(vec![
        anthropic::tools("", &[("t1", "read", json!({"path": "a.txt"}))]),
        anthropic::tools("", &[("t2", "read", json!({"path": "b.txt"}))]),
        anthropic::text("Summary: read a.txt (alpha) and b.txt (beta); nothing else done."),
    ])
    .await;
    let out = run_agent(
        ws.path(),
        "anthropic",
        &fake,
        &["--max-steps", "2", "--json", "Read everything."],
    )
    .await;
    assert!(out.status.success());
    let v: Value = serde_json::from_str(&stdout(&out)).expect("--json prints JSON");
    assert_eq!(v["stop_reason"], "max_steps");
    assert_eq!(v["steps"], 2);
    assert!(v["final_answer"].as_str().unwrap().starts_with("Summary:"));
    assert!(Path::new(v["transcript"].as_str().unwrap()).is_file());
    assert!(Path::new(v["transcript_jsonl"].as_str().unwrap()).is_file());
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3);
    reqs.iter().for_each(assert_anthropic_format);
    let last = &reqs[2].body;
    assert_eq!(
        last["tool_choice"],
        json!({"type": "none"}),
        "the summary request allows no tools"
    );
    let note = last_message(&reqs[2])["content"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        note["text"].as_str().unwrap().contains("step limit"),
        "{note}"
    );
    assert_eq!(
        anthropic_results(&reqs[2])[0].0,
        "t2",
        "the last results still reach the model"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sre_run_that_finishes_without_verification_is_asked_again() {
    let ws = Workspace::new();
    ws.write("app.conf", "workers = 1\n");
    let fake = FakeLlm::start(vec![
        anthropic::tools(
            "Act: raising workers.",
            &[(
                "t1",
                "edit",
                json!({"path": "app.conf", "old_text": "workers = 1", "new_text": "workers = 4"}),
            )],
        ),
        anthropic::text("Fixed it."),
        anthropic::tools(
            "Verify.",
            &[(
                "t2",
                "bash",
                json!({"command": "grep -c 'workers = 4' app.conf"}),
            )],
        ),
        anthropic::text(
            "Raised workers to 4.\nVerification: grep finds `workers = 4` in app.conf (1 match).",
        ),
    ])
    .await;
    let out = run_agent(
        ws.path(),
        "anthropic",
        &fake,
        &[
            "--mode",
            "sre",
            "--json",
            "Checkout is slow: too few workers.",
        ],
    )
    .await;
    assert!(out.status.success());
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["verification_reported"], true);
    assert!(
        v["final_answer"]
            .as_str()
            .unwrap()
            .contains("Verification:")
    );
    assert!(v["transcript"].as_str().unwrap().ends_with("-sre.md"));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 4, "asked once more after the unverified answer");
    reqs.iter().for_each(assert_anthropic_format);
    let system = reqs[0].body["system"].as_str().unwrap();
    assert!(
        system.contains("on-call SRE") && system.contains("Checkout is slow"),
        "the sre prompt with the incident"
    );
    let nudge = last_message(&reqs[2]);
    assert_eq!(nudge["role"], "user");
    assert!(
        nudge["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("verification step"),
        "{nudge}"
    );
    let ev = events(ws.path());
    assert!(events_of(&ev, "note").iter().any(|n| {
        n["text"]
            .as_str()
            .unwrap()
            .contains("without a verification")
    }));
}

/// A change through `bash` is not its own check, and "did not fix" in passing is not an
/// explicit could-not-fix: the run is asked again and ends unverified, in both wire formats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_then_a_claim_is_not_verification() {
    // Appending to a file stands in for `systemctl restart`: a change made through bash.
    let restart = r#"{"command": "echo restarted >> restarts.log"}"#;
    let claim = "Restarted the app.\nVerification: restarted.";
    let passing = "The first restart did not fix it, the second did. All good.";
    for provider in ["anthropic", "openai"] {
        let ws = Workspace::new();
        let script = match provider {
            "anthropic" => vec![
                anthropic::tools(
                    "",
                    &[("t1", "bash", serde_json::from_str(restart).unwrap())],
                ),
                anthropic::text(claim),
                anthropic::text(passing),
            ],
            _ => vec![
                openai::tools(&[("c1", "bash", restart)]),
                openai::text(claim),
                openai::text(passing),
            ],
        };
        let fake = FakeLlm::start(script).await;
        let out = run_agent(
            ws.path(),
            provider,
            &fake,
            &["--mode", "sre", "--json", "The app is down."],
        )
        .await;
        assert!(out.status.success(), "{provider}");
        assert_eq!(
            ws.read("restarts.log"),
            "restarted\n",
            "the change ran once"
        );
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(v["verification_reported"], false, "{provider}: {v}");
        assert_eq!(v["final_answer"], passing);
        let reqs = fake.requests();
        assert_eq!(reqs.len(), 3, "{provider}: asked once more after the claim");
        let nudge = match provider {
            "anthropic" => {
                reqs.iter().for_each(assert_anthropic_format);
                last_message(&reqs[2])["content"][0]["text"].clone()
            }
            _ => {
                reqs.iter().for_each(assert_openai_format);
                last_message(&reqs[2])["content"].clone()
            }
        };
        assert!(
            nudge.as_str().unwrap().contains("verification step"),
            "{provider}: {nudge}"
        );
    }
}

/// Only checks are answered from an earlier identical call, and only while nothing changed
/// state since; identical calls in one turn share one result, in the transcript too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_calls_run_again_unless_they_are_unchanged_checks() {
    let ws = Workspace::new();
    let tick = r#"{"command": "echo tick >> ticks.txt"}"#;
    let tock = r#"{"command": "echo tock >> ticks.txt"}"#;
    let look = r#"{"command": "cat ticks.txt"}"#;
    let fake = FakeLlm::start(vec![
        openai::tools(&[("c1", "bash", tick)]),
        openai::tools(&[("c2", "bash", tick)]),
        openai::tools(&[("c3", "bash", look)]),
        openai::tools(&[("c4", "bash", tock)]),
        openai::tools(&[("c5a", "bash", look), ("c5b", "bash", look)]),
        openai::tools(&[("c6", "bash", look)]),
        openai::text("Two ticks and a tock."),
    ])
    .await;
    let out = run_agent(ws.path(), "openai", &fake, &["Count the ticks."]).await;
    assert!(out.status.success());
    assert_eq!(
        ws.read("ticks.txt"),
        "tick\ntick\ntock\n",
        "a repeated change runs again"
    );
    let reqs = fake.requests();
    reqs.iter().for_each(assert_openai_format);
    let result = |i: usize| openai_results(&reqs[i]);
    assert!(!result(2)[0].1.contains("identical"), "{:?}", result(2));
    assert!(result(3)[0].1.contains("tick\ntick"), "{:?}", result(3));
    // After the tock, the same probe runs again and sees it.
    let r5 = result(5);
    assert!(
        r5[0].1.contains("tock") && !r5[0].1.contains("identical to one made"),
        "{r5:?}"
    );
    assert!(
        r5[1].1.contains("Identical to another call in this turn") && r5[1].1.contains("tock"),
        "{r5:?}"
    );
    // Nothing changed since: the check is answered from step 5.
    let r6 = result(6);
    assert!(
        r6[0].1.contains("identical to one made at step 5") && r6[0].1.contains("tock"),
        "{r6:?}"
    );
    // The transcript holds the shared result of the duplicate, not an empty one.
    let ev = events(ws.path());
    let twin = events_of(&ev, "tool_result")
        .into_iter()
        .find(|e| e["id"] == "c5b")
        .expect("the duplicate's result");
    assert!(twin["text"].as_str().unwrap().contains("tock"), "{twin}");
    let bash_runs = support::audit_entries(ws.path(), &[])
        .iter()
        .filter(|e| e["tool"] == "bash")
        .count();
    assert_eq!(bash_runs, 5, "tick, tick, cat, tock, cat");
}

#[test]
fn heartbeat_mode_is_not_offered_on_the_command_line() {
    let ws = Workspace::new();
    let out = support::cli(
        ws.path(),
        &["agent", "--mode", "heartbeat", "--provider", "openai", "x"],
        &[("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")],
    );
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("heartbeat") && err.contains("sre"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_refuses_changes_and_a_repeated_call_is_answered_from_the_first() {
    let ws = Workspace::new();
    ws.write("app.conf", "workers = 1\n");
    let fake = FakeLlm::start(vec![
        openai::tools(&[("c1", "read", "{\"path\": \"app.conf\"}")]),
        openai::tools(&[("c2", "read", "{\"path\": \"app.conf\"}")]),
        openai::tools(&[("c3", "edit", "{\"path\": \"app.conf\", \"old_text\": \"workers = 1\", \"new_text\": \"workers = 9\"}")]),
        openai::text("Plan: set workers to 9 in app.conf."),
    ])
    .await;
    let out = run_agent(
        ws.path(),
        "openai",
        &fake,
        &["--dry-run", "Plan a worker increase."],
    )
    .await;
    assert!(out.status.success());
    assert_eq!(ws.read("app.conf"), "workers = 1\n", "nothing changed");
    let reqs = fake.requests();
    assert!(
        reqs[0].body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("DRY RUN")
    );
    let r = openai_results(&reqs[2]);
    assert!(
        r[0].1.contains("identical to one made at step 1") && r[0].1.contains("workers = 1"),
        "{r:?}"
    );
    let r = openai_results(&reqs[3]);
    assert!(r[0].1.starts_with("DRY RUN"), "{r:?}");
    let audit = support::audit_entries(ws.path(), &[]);
    let tools: Vec<&str> = audit.iter().map(|e| e["tool"].as_str().unwrap()).collect();
    assert_eq!(
        tools,
        ["read"],
        "the repeated read and the edit never reached the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_ends_the_run_cleanly_with_a_transcript() {
    let ws = Workspace::new();
    let fake = FakeLlm::start(vec![
        anthropic::text("too late").delayed(Duration::from_secs(60)),
    ])
    .await;
    let mut child = agent_command(ws.path(), "anthropic", &fake, &["A slow question."])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the request is at the model, then interrupt.
    for _ in 0..200 {
        if !fake.requests().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fake.requests().len(), 1);
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits soon after Ctrl-C")
        .unwrap();
    assert_eq!(status.code(), Some(130));
    let ev = events(ws.path());
    let end = events_of(&ev, "run_end");
    assert_eq!(end.len(), 1);
    assert_eq!(end[0]["stop_reason"], "interrupted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wall_clock_timeout_and_token_budget_stop_the_run() {
    let ws = Workspace::new();
    let fake = FakeLlm::start(vec![
        anthropic::text("late").delayed(Duration::from_secs(30)),
    ])
    .await;
    let started = std::time::Instant::now();
    let out = run_agent(
        ws.path(),
        "anthropic",
        &fake,
        &["--timeout", "1s", "--json", "Anything."],
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["stop_reason"], "timeout");

    let ws = Workspace::new();
    ws.write("a.txt", "a\n");
    let fake = FakeLlm::start(vec![
        anthropic::tools("", &[("t1", "read", json!({"path": "a.txt"}))]),
        anthropic::text("never asked"),
    ])
    .await;
    let out = run_agent(
        ws.path(),
        "anthropic",
        &fake,
        &["--token-budget", "100", "--json", "Anything."],
    )
    .await;
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["stop_reason"], "token_budget");
    assert_eq!(v["usage"]["input_tokens"], 100);
    assert_eq!(
        fake.requests().len(),
        1,
        "no request after the budget is spent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_mcp_servers_attach_with_namespaced_tools() {
    let ws = Workspace::new();
    let other = Workspace::new();
    other.write("remote.txt", "from the other server\n");
    let config = json!({"mcpServers": {"other": {
        "command": support::bin(),
        "args": ["--workspace", other.path(), "serve", "--stdio"],
        "env": {"RUST_LOG": "warn"}
    }}});
    ws.write("mcp.json", config.to_string());
    let fake = FakeLlm::start(vec![
        anthropic::tools("", &[("t1", "other__read", json!({"path": "remote.txt"}))]),
        anthropic::text("It says: from the other server."),
    ])
    .await;
    let out = run_agent(
        ws.path(),
        "anthropic",
        &fake,
        &["--mcp-config", "mcp.json", "Read remote.txt over there."],
    )
    .await;
    assert!(out.status.success());
    let reqs = fake.requests();
    let names: Vec<&str> = reqs[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"read") && names.contains(&"other__read") && names.contains(&"other__bash"),
        "{names:?}"
    );
    let r = anthropic_results(&reqs[1]);
    assert!(r[0].1.contains("from the other server"), "{r:?}");

    // A config error names the file and the field.
    ws.write("bad.json", r#"{"mcpServers": {"x": {"args": []}}}"#);
    let fake = FakeLlm::start(vec![]).await;
    let out = run_agent(
        ws.path(),
        "anthropic",
        &fake,
        &["--mcp-config", "bad.json", "x"],
    )
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json") && err.contains("command"), "{err}");
}
