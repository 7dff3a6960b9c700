//! The MCP conformance suite (`@modelcontextprotocol/conformance`, installed by
//! `scripts/test`) against `pi-mcp serve --http`, one fresh server per scenario.
//! Only scenarios that need no fixture tools/prompts/resources are run.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::{HttpServer, Workspace, require_service};

const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

async fn run_scenario(scenario: &str) {
    let Some(node) = require_service("PI_MCP_TEST_NODE") else {
        return;
    };
    let Some(suite) = require_service("PI_MCP_TEST_CONFORMANCE") else {
        return;
    };
    let ws = Workspace::new();
    let server = HttpServer::start(ws.path(), None)
        .await
        .unwrap_or_else(|e| panic!("start pi-mcp serve --http: {e:#}"));
    // The suite may write files in its working directory; keep them out of the repo.
    let scratch = tempfile::tempdir().expect("scratch dir");
    let mut cmd = tokio::process::Command::new(&node);
    cmd.arg(&suite)
        .args(["server", "--url", server.url(), "--scenario", scenario])
        .current_dir(scratch.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(SCENARIO_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "conformance scenario {scenario} timed out after {SCENARIO_TIMEOUT:?}\n\
                 --- pi-mcp output ---\n{}",
                server.output()
            )
        })
        .unwrap_or_else(|e| panic!("run {node} {suite}: {e}"));
    if !output.status.success() {
        panic!(
            "conformance scenario {scenario} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            output.status,
            strip_ansi(&String::from_utf8_lossy(&output.stdout)),
            strip_ansi(&String::from_utf8_lossy(&output.stderr)),
        );
    }
}

/// The suite colours its report regardless of NO_COLOR; drop CSI escape sequences.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

macro_rules! scenarios {
    ($($test:ident => $scenario:literal,)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                run_scenario($scenario).await;
            }
        )*
    };
}

scenarios! {
    server_initialize => "server-initialize",
    ping => "ping",
    logging_set_level => "logging-set-level",
    tools_list => "tools-list",
    prompts_list => "prompts-list",
    resources_list => "resources-list",
    server_sse_multiple_streams => "server-sse-multiple-streams",
    dns_rebinding_protection => "dns-rebinding-protection",
}
