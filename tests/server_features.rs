//! MCP features beyond tools, through rmcp's client over stdio against the built binary:
//! completions for the prompts' and resource templates' arguments, the templates themselves,
//! and the newest report per database by its template URI.

mod support;

use rmcp::model::ReadResourceRequestParams;
use serde_json::json;
use support::{Workspace, spawn_stdio};

/// A workspace with three alert rules, a policy naming two databases and two reports.
fn workspace() -> (Workspace, String) {
    let ws = Workspace::new();
    let rule = |id: &str| {
        json!({"id": id, "type": "log_keyword",
               "params": {"path": "app.log", "keyword": "error", "window_minutes": 5},
               "condition": {"operator": "gt", "threshold": 0}, "channels": ["webhook"]})
    };
    ws.write(
        "configs/alerts.json",
        json!({"rules": [rule("checkout-5xx"), rule("checkout-latency"), rule("disk-full")]})
            .to_string(),
    );
    let policy = ws
        .write(
            "policy.json",
            json!({"sql": {"databases": {
                "orders": {"url": "sqlite://orders.db"},
                "analytics": {"url": "sqlite://analytics.db"}
            }}})
            .to_string(),
        )
        .display()
        .to_string();
    ws.write("reports/orders/latest.md", "# Data Ghost report: orders\n");
    ws.write("reports/orders/20260101T000000.000Z/report.md", "# old\n");
    ws.write(
        "reports/agent/20260101T000000.000Z-sre.md",
        "# not a database\n",
    );
    ws.write(
        "reports/analytics/latest.md",
        "# Data Ghost report: analytics\n",
    );
    (ws, policy)
}

#[tokio::test]
async fn prompts_and_templates_complete_their_arguments() {
    let (ws, policy) = workspace();
    let client = spawn_stdio(ws.path(), &["--policy", &policy])
        .await
        .unwrap();
    let caps = &client.peer_info().unwrap().capabilities;
    assert!(
        caps.completions.is_some(),
        "completions advertised: {caps:?}"
    );

    let rules = client
        .complete_prompt_argument("sre", "rule", "check", None)
        .await
        .unwrap();
    assert_eq!(rules.values, ["checkout-5xx", "checkout-latency"]);
    assert_eq!(rules.has_more, Some(false));
    let all = client
        .complete_prompt_argument("sre", "rule", "", None)
        .await
        .unwrap();
    assert_eq!(all.values.len(), 3);
    // A free-text argument has nothing to offer.
    let incident = client
        .complete_prompt_argument("sre", "incident", "5", None)
        .await
        .unwrap();
    assert!(incident.values.is_empty());

    let dbs = client
        .complete_prompt_argument("data_ghost", "database", "", None)
        .await
        .unwrap();
    assert_eq!(dbs.values, ["analytics", "default", "orders"]);
    let dbs = client
        .complete_prompt_argument("data_ghost", "database", "OR", None)
        .await
        .unwrap();
    assert_eq!(dbs.values, ["orders"]);

    let templates = client.list_all_resource_templates().await.unwrap();
    let uris: Vec<&str> = templates.iter().map(|t| t.uri_template.as_str()).collect();
    assert_eq!(
        uris,
        [
            "pi-mcp://alerts/{rule}",
            "pi-mcp://reports/{database}/latest"
        ]
    );
    let rules = client
        .complete_resource_argument("pi-mcp://alerts/{rule}", "rule", "d", None)
        .await
        .unwrap();
    assert_eq!(rules.values, ["disk-full"]);
    let reports = client
        .complete_resource_argument("pi-mcp://reports/{database}/latest", "database", "", None)
        .await
        .unwrap();
    assert_eq!(
        reports.values,
        ["analytics", "orders"],
        "only databases with a latest.md"
    );

    // Each completed value works where it is used.
    let read = client
        .read_resource(ReadResourceRequestParams::new(
            "pi-mcp://reports/orders/latest",
        ))
        .await
        .unwrap();
    assert!(
        serde_json::to_string(&read)
            .unwrap()
            .contains("Data Ghost report: orders")
    );
    let read = client
        .read_resource(ReadResourceRequestParams::new("pi-mcp://alerts/disk-full"))
        .await
        .unwrap();
    assert!(
        serde_json::to_string(&read)
            .unwrap()
            .contains("never evaluated")
    );

    client.cancel().await.unwrap();
}

#[tokio::test]
async fn completion_errors_say_what_exists() {
    let (ws, policy) = workspace();
    let client = spawn_stdio(ws.path(), &["--policy", &policy])
        .await
        .unwrap();
    let e = client
        .complete_prompt_argument("nope", "x", "", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown prompt `nope`") && e.contains("data_ghost"),
        "{e}"
    );
    let e = client
        .complete_prompt_argument("sre", "rules", "", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("incident"), "{e}");
    let e = client
        .complete_resource_argument("pi-mcp://nope/{x}", "x", "", None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("pi-mcp://alerts/{rule}"), "{e}");
    for uri in [
        "pi-mcp://reports/../../etc/latest",
        "pi-mcp://reports/agent/latest",
        "pi-mcp://reports/missing/latest",
    ] {
        let e = client
            .read_resource(ReadResourceRequestParams::new(uri))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("analytics, orders"), "{uri}: {e}");
    }
    client.cancel().await.unwrap();
}
