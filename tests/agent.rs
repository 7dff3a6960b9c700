//! `pi-mcp agent` end to end: the real binary, its in-process MCP server and real tools, driven
//! by a scripted fake model API per wire format (tests/fake_llm) that records what it was sent.

mod fake_llm;
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use fake_llm::{FakeLlm, Recorded, Reply, anthropic, openai};
use serde_json::{Value, json};
use support::Workspace;

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

fn agent_command(
    ws: &Path,
    provider: &str,
    fake: &FakeLlm,
    args: &[&str],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(support::bin());
    for var in OUTER_SETTINGS {
        cmd.env_remove(var);
    }
    cmd.arg("--workspace")
        .arg(ws)
        .current_dir(ws)
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

async fn run_agent(ws: &Path, provider: &str, fake: &FakeLlm, args: &[&str]) -> Output {
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

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The transcript files of the (only) run in `ws`: (markdown, jsonl).
fn transcript_files(ws: &Path) -> (PathBuf, PathBuf) {
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

fn events(ws: &Path) -> Vec<Value> {
    let (_, jsonl) = transcript_files(ws);
    std::fs::read_to_string(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each transcript line is JSON"))
        .collect()
}

fn events_of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

/// The last message of an Anthropic request.
fn last_message(r: &Recorded) -> &Value {
    r.body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .expect("messages")
}

/// Tool results of the last user message of an Anthropic request: (tool_use_id, content, is_error).
fn anthropic_results(r: &Recorded) -> Vec<(String, String, bool)> {
    let last = last_message(r);
    assert_eq!(last["role"], "user");
    last["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| {
            (
                b["tool_use_id"].as_str().unwrap().to_string(),
                b["content"].as_str().unwrap().to_string(),
                b["is_error"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The trailing `role: tool` messages of an OpenAI request: (tool_call_id, content).
fn openai_results(r: &Recorded) -> Vec<(String, String)> {
    let msgs = r.body["messages"].as_array().unwrap();
    let mut out: Vec<(String, String)> = msgs
        .iter()
        .rev()
        .take_while(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.reverse();
    out
}

/// Checks one recorded request against Anthropic's documented Messages API format.
fn assert_anthropic_format(r: &Recorded) {
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some("test-anthropic-key"));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    let b = &r.body;
    assert_eq!(b["model"], "test-model");
    assert!(
        b["max_tokens"].as_u64().is_some_and(|n| n > 0),
        "max_tokens: {b}"
    );
    assert!(
        b["system"].as_str().is_some_and(|s| !s.is_empty()),
        "system is a string"
    );
    for tool in b["tools"].as_array().expect("tools array") {
        let keys: Vec<&str> = tool
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys.len(),
            3,
            "a tool has exactly name, description, input_schema: {tool}"
        );
        assert!(tool["name"].as_str().is_some_and(|n| {
            !n.is_empty()
                && n.len() <= 64
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }));
        assert!(tool["description"].is_string());
        assert_eq!(tool["input_schema"]["type"], "object", "{tool}");
    }
    let messages = b["messages"].as_array().expect("messages array");
    assert_eq!(
        messages[0]["role"], "user",
        "the conversation starts with the user"
    );
    let mut previous = "";
    for m in messages {
        let role = m["role"].as_str().expect("role");
        assert!(role == "user" || role == "assistant", "{m}");
        assert_ne!(role, previous, "roles alternate: {m}");
        previous = role;
        for block in m["content"].as_array().expect("content blocks") {
            match block["type"].as_str().unwrap() {
                "text" => assert!(block["text"].as_str().is_some_and(|t| !t.trim().is_empty())),
                "tool_use" => {
                    assert_eq!(role, "assistant");
                    assert!(block["id"].is_string() && block["name"].is_string());
                    assert!(block["input"].is_object());
                }
                "tool_result" => {
                    assert_eq!(role, "user");
                    assert!(block["tool_use_id"].is_string());
                    assert!(block["content"].is_string());
                    assert!(block["is_error"].is_boolean());
                }
                other => panic!("unexpected block type {other}"),
            }
        }
    }
}

/// Checks one recorded request against OpenAI's documented Chat Completions format.
fn assert_openai_format(r: &Recorded) {
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some("Bearer test-openai-key"));
    let b = &r.body;
    assert_eq!(b["model"], "test-model");
    for tool in b["tools"].as_array().expect("tools array") {
        assert_eq!(tool["type"], "function");
        let f = &tool["function"];
        assert!(
            f["name"]
                .as_str()
                .is_some_and(|n| !n.is_empty() && n.len() <= 64)
        );
        assert!(f["description"].is_string());
        assert_eq!(f["parameters"]["type"], "object", "{tool}");
    }
    let messages = b["messages"].as_array().expect("messages");
    assert_eq!(messages[0]["role"], "system");
    let mut open_calls: Vec<String> = Vec::new();
    for m in messages {
        match m["role"].as_str().unwrap() {
            "system" | "user" => {
                assert!(
                    open_calls.is_empty(),
                    "every tool call is answered before the next user message"
                );
                assert!(m["content"].is_string());
            }
            "assistant" => {
                assert!(open_calls.is_empty());
                for c in m["tool_calls"].as_array().into_iter().flatten() {
                    assert_eq!(c["type"], "function");
                    let args = c["function"]["arguments"]
                        .as_str()
                        .expect("arguments is a JSON string");
                    assert!(
                        serde_json::from_str::<Value>(args).is_ok_and(|v| v.is_object()),
                        "{args}"
                    );
                    open_calls.push(c["id"].as_str().unwrap().to_string());
                }
            }
            "tool" => {
                let id = m["tool_call_id"].as_str().expect("tool_call_id");
                assert!(open_calls.contains(&id.to_string()), "answers a call: {id}");
                open_calls.retain(|c| c != id);
                assert!(m["content"].is_string());
            }
            other => panic!("unexpected role {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_run_reads_edits_runs_bash_and_recovers_from_a_denial() {
    let ws = Workspace::new();
    ws.write("app.conf", "workers = 1\n");
    let fake = FakeLlm::start(vec![
        Reply::rate_limited(),
        anthropic::tools(
            "Observe first.",
            &[("toolu_1", "read", json!({"path": "app.conf"}))],
        ),
        anthropic::tools(
            "",
            &[(
                "toolu_2",
                "edit",
                json!({"path": "app.conf", "old_text": "workers = 1", "new_text": "workers = 4"}),
            )],
        ),
        anthropic::tools("", &[("toolu_3", "bash", json!({"command": "rm -rf /"}))]),
        anthropic::tools(
            "That was refused; checking the file instead.",
            &[
                ("toolu_4a", "bash", json!({"command": "cat app.conf"})),
                ("toolu_4b", "read", json!({"path": "app.conf"})),
            ],
        ),
        anthropic::text("Done: workers = 4."),
    ])
    .await;
    let out = run_agent(
        ws.path(),
        "anthropic",
        &fake,
        &["--mode", "ask", "Raise the workers to 4."],
    )
    .await;
    assert!(out.status.success(), "exit {:?}", out.status);
    assert_eq!(stdout(&out).trim(), "Done: workers = 4.");
    assert_eq!(ws.read("app.conf"), "workers = 4\n");
    assert_eq!(fake.remaining(), 0);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 6, "the 429 was retried");
    reqs.iter().for_each(assert_anthropic_format);

    // The tool list reaches the model with schemas.
    let tools = reqs[1].body["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"read") && names.contains(&"edit") && names.contains(&"bash"),
        "{names:?}"
    );
    let read = tools.iter().find(|t| t["name"] == "read").unwrap();
    assert!(
        read["input_schema"]["properties"]["path"].is_object(),
        "{read}"
    );

    // read → edit → bash, each result back as a tool_result in one user message.
    let r = anthropic_results(&reqs[2]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0, "toolu_1");
    assert!(r[0].1.contains("workers = 1") && !r[0].2, "{r:?}");
    let r = anthropic_results(&reqs[3]);
    assert_eq!(r[0].0, "toolu_2");
    assert!(r[0].1.contains("+workers = 4") && !r[0].2, "{r:?}");
    let r = anthropic_results(&reqs[4]);
    assert_eq!(r[0].0, "toolu_3");
    assert!(r[0].2, "the denied command is an error result: {r:?}");
    assert!(
        r[0].1.contains("rm-root-or-home"),
        "the error names the rule: {}",
        r[0].1
    );
    // Both calls of one turn come back together, in the order asked.
    let r = anthropic_results(&reqs[5]);
    let ids: Vec<&str> = r.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(ids, ["toolu_4a", "toolu_4b"]);
    assert!(
        r.iter().all(|x| x.1.contains("workers = 4") && !x.2),
        "{r:?}"
    );

    // The transcript has every step, call and result, the retry and the usage.
    let ev = events(ws.path());
    let steps: Vec<u64> = events_of(&ev, "model_reply")
        .iter()
        .map(|e| e["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [1, 2, 3, 4, 5]);
    assert_eq!(events_of(&ev, "tool_call").len(), 5);
    assert_eq!(events_of(&ev, "tool_result").len(), 5);
    assert!(
        events_of(&ev, "note")
            .iter()
            .any(|n| n["text"].as_str().unwrap().contains("429"))
    );
    let end = events_of(&ev, "run_end")[0];
    assert_eq!(end["stop_reason"], "final_answer");
    assert_eq!(end["usage"]["input_tokens"], 500);
    assert_eq!(end["usage"]["output_tokens"], 100);
    let (md, _) = transcript_files(ws.path());
    assert!(
        md.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with("-ask.md")
    );
    let md = std::fs::read_to_string(md).unwrap();
    for step in 1..=5 {
        assert!(
            md.contains(&format!("## Step {step}")),
            "step {step} in the Markdown"
        );
    }
    assert!(md.contains("Done: workers = 4."));

    // Every call went through the server's guard and audit, as the agent's MCP client.
    let audit = support::audit_entries(ws.path(), &[]);
    let tools: Vec<&str> = audit.iter().map(|e| e["tool"].as_str().unwrap()).collect();
    assert_eq!(tools.len(), 5, "{tools:?}");
    assert!(audit.iter().all(|e| e["client"] == "pi-mcp-agent"));
    assert!(
        audit
            .iter()
            .any(|e| e["tool"] == "bash" && e["decision"] == "deny")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_run_survives_malformed_calls_and_sends_one_tool_message_per_call() {
    let ws = Workspace::new();
    ws.write("app.conf", "workers = 1\n");
    let fake = FakeLlm::start(vec![
        Reply::rate_limited(),
        openai::tools(&[("call_1", "read", "{\"path\": ")]),
        openai::tools(&[("call_2", "reed", "{\"path\": \"app.conf\"}")]),
        openai::tools(&[("call_3", "read", "{\"path\": \"app.conf\"}")]),
        openai::tools(&[(
            "call_4",
            "edit",
            "{\"path\": \"app.conf\", \"old_text\": \"workers = 1\", \"new_text\": \"workers = 4\"}",
        )]),
        openai::tools(&[("call_5", "bash", "{\"command\": \"rm -rf /\"}")]),
        openai::tools(&[
            ("call_6a", "bash", "{\"command\": \"grep workers app.conf\"}"),
            ("call_6b", "bash", "{\"command\": \"wc -l app.conf\"}"),
        ]),
        openai::text("workers is now 4."),
    ])
    .await;
    let out = run_agent(ws.path(), "openai", &fake, &["Raise the workers to 4."]).await;
    assert!(out.status.success());
    assert_eq!(stdout(&out).trim(), "workers is now 4.");
    assert_eq!(ws.read("app.conf"), "workers = 4\n");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 8);
    reqs.iter().for_each(assert_openai_format);
    let names: Vec<&str> = reqs[1].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"read") && names.contains(&"bash"),
        "{names:?}"
    );

    let r = openai_results(&reqs[2]);
    assert_eq!(r[0].0, "call_1");
    assert!(
        r[0].1.contains("not valid JSON") && r[0].1.contains("input schema"),
        "{r:?}"
    );
    let r = openai_results(&reqs[3]);
    assert!(
        r[0].1.contains("no tool named `reed`") && r[0].1.contains("read"),
        "{r:?}"
    );
    let r = openai_results(&reqs[4]);
    assert!(r[0].1.contains("workers = 1"), "{r:?}");
    let r = openai_results(&reqs[5]);
    assert!(r[0].1.contains("+workers = 4"), "{r:?}");
    let r = openai_results(&reqs[6]);
    assert_eq!(r[0].0, "call_5");
    assert!(r[0].1.contains("rm-root-or-home"), "{r:?}");
    let r = openai_results(&reqs[7]);
    let ids: Vec<&str> = r.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(
        ids,
        ["call_6a", "call_6b"],
        "one role:tool message per call, in order"
    );
    assert!(
        r[0].1.contains("workers = 4") && r[1].1.contains("1 app.conf"),
        "{r:?}"
    );

    let ev = events(ws.path());
    let decisions: Vec<&str> = events_of(&ev, "tool_call")
        .iter()
        .map(|e| e["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions,
        [
            "invalid",
            "unknown_tool",
            "executed",
            "executed",
            "executed",
            "executed",
            "executed"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_match_the_providers_documented_formats() {
    for provider in ["anthropic", "openai"] {
        let ws = Workspace::new();
        ws.write("notes.txt", "hello\n");
        let script = match provider {
            "anthropic" => vec![
                anthropic::tools("", &[("toolu_1", "read", json!({"path": "notes.txt"}))]),
                anthropic::text("It says hello."),
            ],
            _ => vec![
                openai::tools(&[("call_1", "read", "{\"path\":\"notes.txt\"}")]),
                openai::text("It says hello."),
            ],
        };
        let fake = FakeLlm::start(script).await;
        let out = run_agent(
            ws.path(),
            provider,
            &fake,
            &[
                "--max-tokens",
                "321",
                "--temperature",
                "0.2",
                "What does notes.txt say?",
            ],
        )
        .await;
        assert!(out.status.success(), "{provider}");
        let reqs = fake.requests();
        assert_eq!(reqs.len(), 2);
        for r in &reqs {
            assert_eq!(r.body["max_tokens"], 321, "{provider}");
            assert!((r.body["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6);
            match provider {
                "anthropic" => {
                    assert_anthropic_format(r);
                    let keys: Vec<&str> = r
                        .body
                        .as_object()
                        .unwrap()
                        .keys()
                        .map(String::as_str)
                        .collect();
                    for k in &keys {
                        assert!(
                            [
                                "model",
                                "max_tokens",
                                "system",
                                "messages",
                                "tools",
                                "temperature",
                                "tool_choice"
                            ]
                            .contains(k),
                            "undocumented field {k}"
                        );
                    }
                }
                _ => {
                    assert_openai_format(r);
                    let keys: Vec<&str> = r
                        .body
                        .as_object()
                        .unwrap()
                        .keys()
                        .map(String::as_str)
                        .collect();
                    for k in &keys {
                        assert!(
                            [
                                "model",
                                "messages",
                                "tools",
                                "max_tokens",
                                "temperature",
                                "tool_choice"
                            ]
                            .contains(k),
                            "undocumented field {k}"
                        );
                    }
                }
            }
        }
        // The first user message is the task; the second request echoes the call and its result.
        match provider {
            "anthropic" => {
                assert_eq!(
                    reqs[0].body["messages"][0]["content"][0]["text"],
                    "What does notes.txt say?"
                );
                let m = &reqs[1].body["messages"];
                assert_eq!(m[1]["content"][0]["type"], "tool_use");
                assert_eq!(m[1]["content"][0]["input"], json!({"path": "notes.txt"}));
                assert_eq!(m[2]["content"][0]["tool_use_id"], "toolu_1");
            }
            _ => {
                assert_eq!(
                    reqs[0].body["messages"][1]["content"],
                    "What does notes.txt say?"
                );
                let m = &reqs[1].body["messages"];
                assert_eq!(
                    m[2]["tool_calls"][0]["function"]["arguments"],
                    "{\"path\":\"notes.txt\"}"
                );
                assert_eq!(m[3]["role"], "tool");
                assert_eq!(m[3]["tool_call_id"], "call_1");
            }
        }
    }
}

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
