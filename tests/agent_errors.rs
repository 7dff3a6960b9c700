//! `pi-mcp agent` when the model API or the model misbehaves, end to end against the fake
//! model: an overloaded API (529), a reply cut at `max_tokens`, empty replies, an HTTP 4xx, a
//! `tool_use` whose input is not an object, a run that cannot start under `--json`; and how
//! tool calls run and come back: `--sequential` against parallel, per-result truncation as the
//! model receives it, and the OpenAI step-limit summary; a server that reports no token usage.

mod fake_llm;
mod support;

use std::path::Path;

use fake_llm::run::{events, events_of, scripted_run, stdout};
use fake_llm::wire::{
    anthropic_results, assert_anthropic_format, assert_openai_format, last_message, openai_results,
};
use fake_llm::{Reply, anthropic, openai};
use serde_json::{Value, json};
use support::Workspace;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_api_is_retried() {
    let ws = Workspace::new();
    let overloaded =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let (fake, out) = scripted_run(
        ws.path(),
        "anthropic",
        vec![
            Reply::error(529, overloaded),
            anthropic::text("Here after one retry."),
        ],
        &["Hello?"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "Here after one retry.");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    reqs.iter().for_each(assert_anthropic_format);
    assert_eq!(reqs[0].body, reqs[1].body, "the same request is sent again");
    let ev = events(ws.path());
    assert!(
        events_of(&ev, "note")
            .iter()
            .any(|n| n["text"].as_str().unwrap().contains("529")),
        "the retry is in the transcript"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_cut_at_max_tokens_is_continued_in_both_wire_formats() {
    for provider in ["anthropic", "openai"] {
        let ws = Workspace::new();
        let script = match provider {
            "anthropic" => vec![
                anthropic::stopped("The cause is the conf", "max_tokens"),
                anthropic::text("ig: workers = 1."),
            ],
            _ => vec![
                openai::stopped("The cause is the conf", "length"),
                openai::text("ig: workers = 1."),
            ],
        };
        let (fake, out) = scripted_run(ws.path(), provider, script, &["Why slow?"]).await;
        assert!(out.status.success(), "{provider}: {}", stderr(&out));
        assert_eq!(stdout(&out).trim(), "ig: workers = 1.");
        let reqs = fake.requests();
        assert_eq!(reqs.len(), 2, "{provider}");
        let told = match provider {
            "anthropic" => {
                reqs.iter().for_each(assert_anthropic_format);
                let m = &reqs[1].body["messages"];
                assert_eq!(m[1]["content"][0]["text"], "The cause is the conf");
                last_message(&reqs[1])["content"][0]["text"].clone()
            }
            _ => {
                reqs.iter().for_each(assert_openai_format);
                last_message(&reqs[1])["content"].clone()
            }
        };
        assert!(
            told.as_str()
                .unwrap()
                .contains("cut off at the max_tokens limit"),
            "{provider}: the model is told: {told}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_replies_are_nudged_once_then_end_the_run_with_a_clear_error() {
    let ws = Workspace::new();
    let (fake, out) = scripted_run(
        ws.path(),
        "anthropic",
        vec![
            anthropic::stopped("", "end_turn"),
            anthropic::text("Now an answer."),
        ],
        &["Anything?"],
    )
    .await;
    assert!(out.status.success());
    assert_eq!(stdout(&out).trim(), "Now an answer.");
    let reqs = fake.requests();
    reqs.iter().for_each(assert_anthropic_format);
    let nudge = last_message(&reqs[1])["content"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        nudge
            .iter()
            .any(|b| b["text"].as_str().unwrap_or_default().contains("was empty")),
        "{nudge:?}"
    );

    let ws = Workspace::new();
    let (fake, out) = scripted_run(
        ws.path(),
        "openai",
        vec![openai::text(""), openai::stopped("", "stop")],
        &["--json", "Anything?"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["stop_reason"], "empty_answer");
    let err = stderr(&out);
    assert!(
        err.contains("error: the model sent only empty replies"),
        "{err}"
    );
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_4xx_ends_the_run_at_once_with_a_clear_message() {
    let ws = Workspace::new();
    let refused = json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}});
    let (fake, out) = scripted_run(
        ws.path(),
        "anthropic",
        vec![Reply::error(401, refused)],
        &["Hello?"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(fake.requests().len(), 1, "a 4xx is not retried");
    let err = stderr(&out);
    assert!(
        err.contains("HTTP 401") && err.contains("invalid x-api-key") && err.contains("API key"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let ev = events(ws.path());
    assert_eq!(events_of(&ev, "run_end")[0]["stop_reason"], "model_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_use_whose_input_is_not_an_object_is_explained_to_the_model() {
    let ws = Workspace::new();
    ws.write("app.conf", "workers = 1\n");
    let (fake, out) = scripted_run(
        ws.path(),
        "anthropic",
        vec![
            anthropic::tools("", &[("t1", "read", json!("app.conf"))]),
            anthropic::tools("", &[("t2", "read", json!({"path": "app.conf"}))]),
            anthropic::text("workers = 1"),
        ],
        &["Read app.conf."],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let reqs = fake.requests();
    reqs.iter().for_each(assert_anthropic_format);
    let r = anthropic_results(&reqs[1]);
    assert!(
        r[0].2 && r[0].1.contains("must be a JSON object") && r[0].1.contains("input schema"),
        "{r:?}"
    );
    assert!(anthropic_results(&reqs[2])[0].1.contains("workers = 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_reports_a_run_that_cannot_start() {
    let ws = Workspace::new();
    ws.write("bad.json", r#"{"mcpServers": {"x": {"args": []}}}"#);
    let (_fake, out) = scripted_run(
        ws.path(),
        "anthropic",
        vec![],
        &["--json", "--mcp-config", "bad.json", "x"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON on stdout");
    assert_eq!(v["stop_reason"], "not_started");
    assert!(v["error"].as_str().unwrap().contains("bad.json"), "{v}");
}

/// Two calls in one turn: the first sleeps before it writes, the second writes at once. Run
/// one after another, the file says A then B; in parallel, B then A. (Order, not durations:
/// robust on a loaded machine.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_runs_calls_in_order_and_parallel_does_not_wait() {
    for sequential in [true, false] {
        let ws = Workspace::new();
        let script = vec![
            openai::tools(&[
                (
                    "a",
                    "bash",
                    r#"{"command": "sleep 2; echo A >> order.txt"}"#,
                ),
                ("b", "bash", r#"{"command": "echo B >> order.txt"}"#),
            ]),
            openai::text("done"),
        ];
        let mut args = vec!["Write A and B."];
        if sequential {
            args.insert(0, "--sequential");
        }
        let (fake, out) = scripted_run(ws.path(), "openai", script, &args).await;
        assert!(out.status.success());
        let expected = if sequential { "A\nB\n" } else { "B\nA\n" };
        assert_eq!(ws.read("order.txt"), expected, "sequential: {sequential}");
        let r = openai_results(&fake.requests()[1]);
        let ids: Vec<&str> = r.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(ids, ["a", "b"], "results come back in the order asked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_result_reaches_the_model_cut_to_its_budget_with_a_note() {
    let ws = Workspace::new();
    let body: String = std::iter::repeat_n("0123456789", 300).collect();
    ws.write("big.txt", format!("HEAD{body}TAIL\n"));
    let (fake, out) = scripted_run(
        ws.path(),
        "anthropic",
        vec![
            anthropic::tools("", &[("t1", "bash", json!({"command": "cat big.txt"}))]),
            anthropic::text("It is long."),
        ],
        &["--max-result-chars", "400", "How long is big.txt?"],
    )
    .await;
    assert!(out.status.success());
    let r = anthropic_results(&fake.requests()[1]);
    let text = &r[0].1;
    assert!(text.contains("HEAD"), "the head is kept: {text}");
    assert!(
        text.contains("characters left out") && text.contains("400-character budget"),
        "{text}"
    );
    let kept = text.chars().count();
    assert!(kept < 400 + 400, "{kept} characters reached the model");
    let ev = events(ws.path());
    assert_eq!(events_of(&ev, "tool_result")[0]["truncated"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_step_limit_asks_for_a_summary_without_tools() {
    let ws = Workspace::new();
    ws.write("a.txt", "alpha\n");
    let (fake, out) = scripted_run(
        ws.path(),
        "openai",
        vec![
            openai::tools(&[("c1", "read", r#"{"path": "a.txt"}"#)]),
            openai::text("Summary: a.txt says alpha."),
        ],
        &["--max-steps", "1", "--json", "Read a.txt."],
    )
    .await;
    assert!(out.status.success());
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["stop_reason"], "max_steps");
    assert!(Path::new(v["transcript"].as_str().unwrap()).is_file());
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    reqs.iter().for_each(assert_openai_format);
    assert_eq!(reqs[1].body["tool_choice"], "none");
    assert_eq!(
        openai_results(&reqs[1]).len(),
        0,
        "the note follows the results"
    );
    let msgs = reqs[1].body["messages"].as_array().unwrap();
    let tool_at = msgs.iter().position(|m| m["role"] == "tool").unwrap();
    assert!(msgs[tool_at]["content"].as_str().unwrap().contains("alpha"));
    assert!(
        last_message(&reqs[1])["content"]
            .as_str()
            .unwrap()
            .contains("step limit")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_reported_usage_the_token_budget_uses_an_estimate() {
    let ws = Workspace::new();
    ws.write("a.txt", "alpha\n");
    // A local server (llama.cpp, some proxies) that sends no `usage`.
    let no_usage = |message: Value, finish: &str| {
        Reply::ok(json!({
            "id": "chatcmpl-local", "object": "chat.completion", "created": 1, "model": "local",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}]
        }))
    };
    let call = json!({"id": "c1", "type": "function",
        "function": {"name": "read", "arguments": "{\"path\": \"a.txt\"}"}});
    let (fake, out) = scripted_run(
        ws.path(),
        "openai",
        vec![
            no_usage(
                json!({"role": "assistant", "content": null, "tool_calls": [call]}),
                "tool_calls",
            ),
            no_usage(
                json!({"role": "assistant", "content": "never asked"}),
                "stop",
            ),
        ],
        &["--token-budget", "500", "--json", "Read a.txt."],
    )
    .await;
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["stop_reason"], "token_budget", "{v}");
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() >= 500, "{v}");
    assert_eq!(fake.requests().len(), 1);
    let ev = events(ws.path());
    assert!(
        events_of(&ev, "note").iter().any(|n| n["text"]
            .as_str()
            .unwrap()
            .contains("estimated from characters")),
        "the transcript says the usage is estimated"
    );
}
