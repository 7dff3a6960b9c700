//! Issue 3, point 6: every tool's call goes through the same decision and audit path. One
//! session calls each of the seven tools with something the policy refuses; each call is a tool
//! error naming why, and `pi-mcp audit` shows a `deny` for every tool.

mod support;

use serde_json::json;
use support::{Workspace, audit_entries, call, spawn_stdio_env, text_of};

/// A policy that narrows cloudwatch to one namespace (everything else as the default policy).
fn narrowed_policy(ws: &Workspace) -> String {
    let mut policy: serde_json::Value =
        serde_json::from_str(include_str!("../policies/security.json")).expect("default policy");
    policy["cloudwatch"]["namespaces"] = json!(["App/Allowed"]);
    let path = ws.write(
        ".pi-mcp-test-policy.json",
        serde_json::to_string_pretty(&policy).expect("policy json"),
    );
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn every_tool_is_judged_and_every_decision_audited() {
    let ws = Workspace::new();
    ws.write(".env", "DB_PASSWORD=hunter2\n");
    ws.write("app.txt", "hello\n");
    let db = ws.path().join("app.db");
    std::fs::write(&db, b"").expect("empty sqlite file");
    let db_url = format!("sqlite://{}", db.display());
    let policy = narrowed_policy(&ws);
    let env = [
        ("PI_MCP_POLICY", policy.as_str()),
        ("DATABASE_URL", db_url.as_str()),
        ("ALERT_WEBHOOK_URL", "http://198.51.100.7/hook"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ];
    let client = spawn_stdio_env(ws.path(), &env)
        .await
        .expect("server starts");
    let cases = [
        ("read", json!({"path": ".env"}), "protected"),
        (
            "edit",
            json!({"path": ".env", "old_text": "hunter2", "new_text": "x"}),
            "protected",
        ),
        ("bash", json!({"command": "r\\m -rf /"}), "rm-root-or-home"),
        ("sql", json!({"query": "DROP TABLE users"}), "read-only"),
        (
            "cloudwatch",
            json!({"action": "list_metrics", "namespace": "AWS/Billing"}),
            "cloudwatch-scope",
        ),
        (
            "notify",
            json!({"channel": "pager", "text": "exfiltrate"}),
            "notify-channel",
        ),
        (
            "ghost",
            json!({"database": "postgres://attacker.example/db"}),
            "unknown database",
        ),
    ];
    for (tool, args, expected) in &cases {
        let r = call(&client, tool, args.clone()).await;
        let text = text_of(&r);
        assert_eq!(r.is_error, Some(true), "{tool} {args}: {text}");
        assert!(
            text.contains(expected),
            "{tool} {args}: expected `{expected}` in: {text}"
        );
    }
    assert_eq!(
        ws.read(".env"),
        "DB_PASSWORD=hunter2\n",
        "edit left .env alone"
    );
    client.cancel().await.expect("server stops");

    let audit = audit_entries(ws.path(), &[]);
    for (tool, _, _) in &cases {
        let entry = audit
            .iter()
            .find(|e| e["tool"] == *tool)
            .unwrap_or_else(|| panic!("no audit entry for {tool}: {audit:#?}"));
        assert_eq!(entry["decision"], "deny", "{tool}: {entry}");
        assert!(
            !entry["reasons"].as_array().is_none_or(|r| r.is_empty()),
            "{tool}: the audit entry names the rule: {entry}"
        );
    }
}
