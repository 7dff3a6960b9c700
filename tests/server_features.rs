//! MCP features beyond tools, through rmcp's client over stdio against the built binary:
//! completions for the prompts' and resource templates' arguments, the templates themselves,
//! the newest report per database by its template URI, and the output schemas of the tools
//! that return structured content (declared, valid, and matched by real results).

mod support;

use rmcp::model::ReadResourceRequestParams;
use serde_json::{Value, json};
use support::schema::{assert_valid, output_schema};
use support::{Workspace, call, spawn_stdio, text_of};

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

#[tokio::test]
async fn tools_with_structured_results_declare_output_schemas_their_results_match() {
    let (ws, _) = workspace();
    std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute('create table items(id integer primary key, name text, price real)'); \
             c.execute(\"insert into items values (1, 'a', 1.5), (2, null, 2)\"); c.commit()",
        ])
        .arg(ws.path().join("orders.db"))
        .status()
        .expect("python3 creates the SQLite database");
    let policy_with_path = ws
        .write(
            "policy.json",
            json!({"sql": {"databases": {
                "orders": {"url": format!("sqlite://{}", ws.path().join("orders.db").display())}
            }}})
            .to_string(),
        )
        .display()
        .to_string();
    let client = spawn_stdio(ws.path(), &["--policy", &policy_with_path])
        .await
        .unwrap();
    let tools = client.list_all_tools().await.unwrap();
    let declared = |name: &str| -> Option<Value> {
        tools
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.output_schema.as_ref())
            .map(|s| Value::Object((**s).clone()))
    };
    for name in ["sql", "cloudwatch", "ghost"] {
        let schema = declared(name).unwrap_or_else(|| panic!("{name} has an outputSchema"));
        assert_eq!(schema["type"], "object", "{name}: an object at the root");
        assert_eq!(
            schema,
            output_schema(name),
            "{name}: the schema of its Rust type"
        );
    }
    for name in ["read", "edit", "bash", "notify"] {
        assert!(declared(name).is_none(), "{name} answers in text only");
    }

    let r = call(
        &client,
        "sql",
        json!({"database": "orders", "query": "SELECT id, name, price FROM items ORDER BY id"}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let structured = r.structured_content.clone().expect("structured content");
    assert_valid("sql", &declared("sql").unwrap_or_default(), &structured);
    assert_eq!(structured["row_count"], 2);

    let r = call(&client, "ghost", json!({"database": "orders"})).await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let structured = r.structured_content.clone().expect("structured content");
    assert_valid("ghost", &declared("ghost").unwrap_or_default(), &structured);

    // A result that breaks the schema is caught: the check is not vacuous.
    let mut broken = structured.clone();
    broken["tables_profiled"] = json!("three");
    let caught = std::panic::catch_unwind(|| {
        assert_valid("ghost", &declared("ghost").unwrap_or_default(), &broken)
    });
    assert!(
        caught.is_err(),
        "a string where a count belongs fails validation"
    );
    client.cancel().await.unwrap();
}

/// Every shape of the `cloudwatch` result matches its schema (the integration tests against
/// LocalStack and moto check real results too, when those services run).
#[test]
fn every_cloudwatch_result_shape_matches_the_schema() {
    use chrono::{TimeZone, Utc};
    use pi_mcp::tools::cloudwatch::{
        Alarm, CloudWatchResult, LogEvent, MetricId, MetricQuery, MetricSeries, StatisticsPoint,
    };
    use std::collections::BTreeMap;
    let t = Utc
        .with_ymd_and_hms(2026, 1, 1, 12, 0, 0)
        .single()
        .expect("a valid time");
    let dims = BTreeMap::from([("Service".to_string(), "api".to_string())]);
    let query = MetricQuery {
        id: "q1".into(),
        namespace: "App".into(),
        metric_name: "Latency".into(),
        dimensions: vec![("Service".into(), "api".into())],
        stat: "p99".into(),
        period: 60,
    };
    let shapes = [
        CloudWatchResult::ListMetrics {
            metrics: vec![MetricId {
                namespace: "App".into(),
                metric_name: "Latency".into(),
                dimensions: dims.clone(),
            }],
            truncated: false,
        },
        CloudWatchResult::GetMetricData {
            start: t,
            end: t,
            queries: vec![query],
            series: vec![MetricSeries {
                id: "q1".into(),
                timestamps: vec![t],
                values: vec![1.5],
                status: "Complete".into(),
            }],
        },
        CloudWatchResult::GetMetricStatistics {
            start: t,
            end: t,
            namespace: "App".into(),
            metric_name: "Latency".into(),
            dimensions: dims,
            period: 300,
            datapoints: vec![StatisticsPoint {
                timestamp: t,
                values: BTreeMap::from([("Average".to_string(), 2.0)]),
                unit: None,
            }],
        },
        CloudWatchResult::FilterLogEvents {
            log_group: "/app".into(),
            pattern: None,
            start: t,
            end: t,
            events: vec![LogEvent {
                timestamp: t,
                log_stream: "s".into(),
                message: "ERROR boom".into(),
            }],
            limit_reached: false,
        },
        CloudWatchResult::DescribeAlarms {
            alarms: vec![Alarm {
                name: "high".into(),
                state: "ALARM".into(),
                reason: "threshold crossed".into(),
                namespace: Some("App".into()),
                metric_name: None,
                condition: None,
                updated: Some(t),
            }],
            truncated: true,
        },
    ];
    let schema = output_schema("cloudwatch");
    for shape in &shapes {
        let value = serde_json::to_value(shape).expect("serializes");
        assert_valid("cloudwatch", &schema, &value);
    }
    let mut wrong = serde_json::to_value(&shapes[0]).expect("serializes");
    wrong["action"] = json!("list_everything");
    let caught = std::panic::catch_unwind(|| assert_valid("cloudwatch", &schema, &wrong));
    assert!(caught.is_err(), "an unknown action fails validation");
}
