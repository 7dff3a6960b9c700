//! `pi-mcp agent` end to end: the real binary, its in-process MCP server and real tools, driven
//! by a scripted fake model API per wire format (tests/fake_llm) that records what it was sent:
//! the main flows of both wire formats and the request formats.

mod fake_llm;
mod support;

use fake_llm::run::{events, events_of, run_agent, stdout, transcript_files};
use fake_llm::wire::{
    anthropic_results, assert_anthropic_format, assert_openai_format, openai_results,
};
use fake_llm::{FakeLlm, Reply, anthropic, openai};
use serde_json::json;
use support::Workspace;

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
