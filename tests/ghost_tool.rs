//! The `ghost` MCP tool through the built binary over stdio: a run on a policy-named SQLite
//! database with per-table progress notifications, the summary and the report file, an
//! unknown database name, and the audit record; and a data_ghost agent run (scripted fake
//! model) whose `ghost` call leaves progress events in the transcript and lines on stderr.

mod fake_llm;
mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};

use fake_llm::run::{events, events_of, run_agent};
use fake_llm::{FakeLlm, anthropic};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ProgressNotificationParam};
use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};
use support::shop::{policy, shop_db};
use support::{Workspace, audit_entries, call, spawn_stdio_with, text_of};

/// A client that keeps every progress notification it receives.
#[derive(Clone, Default)]
struct Watching {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Watching {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("progress-test-client", "1.0.0"),
        )
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ghost_run_reports_progress_per_table_and_writes_the_report() {
    let ws = Workspace::new();
    let url = shop_db(&ws).await;
    let policy = policy(&ws, &url);
    let handler = Watching::default();
    let seen = handler.progress.clone();
    let client = spawn_stdio_with(ws.path(), &["--policy", &policy], handler)
        .await
        .expect("start pi-mcp");

    let tools = client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "ghost"), "ghost is listed");

    let r = call(&client, "ghost", json!({ "database": "shop" })).await;
    let text = text_of(&r);
    assert_ne!(r.is_error, Some(true), "{text}");
    assert!(
        text.contains("3 table(s) profiled, 0 failed"),
        "summary counts: {text}"
    );
    let run = r.structured_content.clone().expect("the run as JSON");
    support::schema::assert_matches_output_schema("ghost", &run);
    assert_eq!(run["tables_profiled"], 3);
    assert_eq!(run["database"], "shop");
    let report = run["report_path"].as_str().unwrap();
    assert!(text.contains(report), "the summary names the report");
    assert!(Path::new(report).is_file(), "{report} exists");
    assert!(report.starts_with(&ws.path().join("reports").display().to_string()));
    assert!(run["deliveries"].as_array().unwrap().is_empty());

    // The notifications were sent before the result; give the client's handler tasks a moment.
    let mut progress = Vec::new();
    for _ in 0..50 {
        progress = seen.lock().unwrap().clone();
        if progress.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(progress.len(), 3, "one per table: {progress:?}");
    // rmcp's client handles each notification in its own task, so the handler may see them
    // out of the (increasing) order they were sent in.
    progress.sort_by(|a, b| a.progress.total_cmp(&b.progress));
    let done: Vec<f64> = progress.iter().map(|p| p.progress).collect();
    assert_eq!(done, [1.0, 2.0, 3.0], "tables done, one each");
    assert!(progress.iter().all(|p| p.total == Some(3.0)));
    let mut tables: Vec<String> = progress
        .iter()
        .map(|p| p.message.clone().unwrap_or_default())
        .collect();
    tables.sort();
    assert_eq!(tables, ["customers", "orders", "products"]);
    let token = &progress[0].progress_token;
    assert!(progress.iter().all(|p| &p.progress_token == token));

    // A second run compares with the first.
    let again = call(&client, "ghost", json!({ "database": "shop" })).await;
    let again = again.structured_content.expect("the run as JSON");
    support::schema::assert_matches_output_schema("ghost", &again);
    assert_eq!(again["first_run"], false);

    client.cancel().await.unwrap();
    let entries = audit_entries(ws.path(), &[]);
    let ghost: Vec<&Value> = entries.iter().filter(|e| e["tool"] == "ghost").collect();
    assert_eq!(ghost.len(), 2, "{entries:?}");
    assert_eq!(ghost[0]["decision"], "allow");
    assert_eq!(ghost[0]["arguments"]["database"], "shop");
    assert!(
        ghost[0]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("ok: 3 table(s)"),
        "{:?}",
        ghost[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_database_is_a_tool_error_naming_the_configured_ones() {
    let ws = Workspace::new();
    let url = shop_db(&ws).await;
    let policy = policy(&ws, &url);
    let client = spawn_stdio_with(ws.path(), &["--policy", &policy], Watching::default())
        .await
        .expect("start pi-mcp");
    let r = call(&client, "ghost", json!({ "database": "postgres://evil/x" })).await;
    assert_eq!(r.is_error, Some(true));
    let text = text_of(&r);
    assert!(
        text.contains("unknown database `postgres://evil/x`") && text.contains("shop"),
        "{text}"
    );
    let bad = call(
        &client,
        "ghost",
        json!({ "database": "shop", "deep": true }),
    )
    .await;
    assert_eq!(bad.is_error, Some(true));
    assert!(text_of(&bad).contains("deep"), "{}", text_of(&bad));
    client.cancel().await.unwrap();
    assert!(
        !ws.path().join("reports").join("x").exists(),
        "nothing was written for the refused call"
    );
    let entries = audit_entries(ws.path(), &[]);
    let ghost: Vec<&Value> = entries.iter().filter(|e| e["tool"] == "ghost").collect();
    assert_eq!(ghost.len(), 2, "{entries:?}");
    assert_eq!(ghost[0]["decision"], "deny", "{:?}", ghost[0]);
    assert_eq!(ghost[0]["reasons"][0]["rule"], "ghost-database");
    assert!(
        ghost[0]["reasons"][0]["message"]
            .as_str()
            .unwrap()
            .contains("configured databases:"),
        "{:?}",
        ghost[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_ghost_agent_run_records_the_ghost_progress() {
    let ws = Workspace::new();
    let url = shop_db(&ws).await;
    let policy = policy(&ws, &url);
    let fake = FakeLlm::start(vec![
        anthropic::tools("", &[("g1", "ghost", json!({"database": "shop"}))]),
        anthropic::text("The first run is the baseline: 3 tables, nothing alarming."),
    ])
    .await;
    let out = run_agent(
        ws.path(),
        "anthropic",
        &fake,
        &[
            "--mode",
            "data_ghost",
            "--policy",
            &policy,
            "Run the Data Ghost on shop.",
        ],
    )
    .await;
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("`ghost` progress").count(),
        3,
        "one stderr line per table: {stderr}"
    );
    assert!(stderr.contains("`ghost` progress 3/3"), "{stderr}");

    let all = events(ws.path());
    let progress = events_of(&all, "progress");
    assert_eq!(progress.len(), 3, "{all:?}");
    assert!(
        progress
            .iter()
            .all(|e| e["tool"] == "ghost" && e["id"] == "g1")
    );
    assert!(progress.iter().all(|e| e["total"] == 3.0));
    let done: Vec<f64> = progress
        .iter()
        .map(|e| e["progress"].as_f64().unwrap())
        .collect();
    assert_eq!(done, [1.0, 2.0, 3.0]);
    // Progress comes before the call's result in the transcript.
    let kinds: Vec<&str> = all.iter().map(|e| e["event"].as_str().unwrap()).collect();
    let last_progress = kinds.iter().rposition(|k| *k == "progress").unwrap();
    let result = kinds.iter().position(|k| *k == "tool_result").unwrap();
    assert!(last_progress < result, "{kinds:?}");
    let result = events_of(&all, "tool_result")[0];
    assert_eq!(result["is_error"], false, "{result}");
    assert!(
        result["text"]
            .as_str()
            .unwrap()
            .contains("3 table(s) profiled"),
        "{result}"
    );
}
