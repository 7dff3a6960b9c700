//! The MCP Inspector's CLI (`PI_MCP_TEST_INSPECTOR`, run with `PI_MCP_TEST_NODE`) against
//! `serve --stdio`, in both protocol eras it speaks (`legacy`: 2025-11-25 `initialize`;
//! `modern`: 2026-07-28): `tools/list`, an allowed `tools/call`, and an `ask` from a client
//! that cannot elicit, which is queued and does not run.

mod support;

use std::process::Output;

use serde_json::Value;
use support::{Workspace, require_service};

/// Rated `ask` by the default policy (rule inline-code); harmless: it appends one line.
const ASKING: &str = "python3 -c 'open(\"runs.txt\", \"a\").write(\"ran\\n\")'";

struct Inspector {
    node: String,
    launcher: String,
}

impl Inspector {
    fn from_env() -> Option<Self> {
        Some(Inspector {
            node: require_service("PI_MCP_TEST_NODE")?,
            launcher: require_service("PI_MCP_TEST_INSPECTOR")?,
        })
    }

    async fn run(&self, ws: &Workspace, era: &str, method: &[&str]) -> Output {
        self.run_with(ws, &[], era, method).await
    }

    async fn run_with(&self, ws: &Workspace, flags: &[&str], era: &str, method: &[&str]) -> Output {
        let ws_path = ws.path().to_str().unwrap();
        let mut cmd = tokio::process::Command::new(&self.node);
        cmd.arg(&self.launcher)
            .args(["--cli", "--protocol-era", era])
            .args(flags)
            .arg(support::bin())
            .args(["--workspace", ws_path, "serve", "--stdio", "--method"])
            .args(method)
            .current_dir(ws.path())
            .env_remove("PI_MCP_POLICY")
            .env_remove("PI_MCP_STATE_URL")
            .envs(support::state_env(ws.path()));
        cmd.output().await.unwrap()
    }
}

fn json_of(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let start = stdout.find('{').unwrap_or(0);
    serde_json::from_str(&stdout[start..]).unwrap_or_else(|e| {
        panic!(
            "no JSON from the Inspector ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test]
async fn the_inspector_lists_and_calls_tools_in_both_eras() {
    let Some(inspector) = Inspector::from_env() else {
        return;
    };
    for era in ["legacy", "modern"] {
        let ws = Workspace::new();
        let out = inspector.run(&ws, era, &["tools/list"]).await;
        assert!(out.status.success(), "{era}: {out:?}");
        let tools = json_of(&out);
        let names: Vec<&str> = tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        for tool in ["read", "edit", "bash", "sql", "ghost"] {
            assert!(
                names.contains(&tool),
                "{era}: {tool} missing from {names:?}"
            );
        }

        let call = ["tools/call", "--tool-name", "bash", "--tool-arg"];
        let out = inspector
            .run(&ws, era, &[&call[..], &["command=echo inspected"]].concat())
            .await;
        assert!(out.status.success(), "{era}: {out:?}");
        let result = json_of(&out);
        assert_eq!(result["isError"], false, "{era}: {result}");
        assert!(
            result["content"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("inspected"),
            "{era}: {result}"
        );

        // The CLI declares no elicitation: an `ask` is queued (isError, exit 5), not run.
        let asking = format!("command={ASKING}");
        let out = inspector
            .run(&ws, era, &[&call[..], &[asking.as_str()]].concat())
            .await;
        assert_eq!(out.status.code(), Some(5), "{era}: {out:?}");
        let result = json_of(&out);
        assert_eq!(
            result["_meta"]["pi-mcp"]["decision"], "ask",
            "{era}: {result}"
        );
        assert_eq!(
            result["_meta"]["pi-mcp"]["approval"]["status"], "pending",
            "{era}: {result}"
        );
        assert!(!ws.path().join("runs.txt").exists(), "{era}: it ran");
    }
}

/// The Inspector's `--strict` schema-portability check: no errors, and every input schema is
/// portable (no boolean subschemas, no `type` arrays for optional arguments), so clients that
/// map tool schemas onto a narrower dialect take every tool as it is.
#[tokio::test]
async fn the_tool_schemas_pass_the_inspectors_strict_check() {
    let Some(inspector) = Inspector::from_env() else {
        return;
    };
    let ws = Workspace::new();
    let out = inspector
        .run_with(&ws, &["--strict"], "legacy", &["tools/list"])
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stderr.lines().any(|l| l.starts_with("0 errors")),
        "{stderr}"
    );
    assert!(!stderr.contains("Path: inputSchema"), "{stderr}");
}
