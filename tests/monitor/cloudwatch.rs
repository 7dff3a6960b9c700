//! Metric rules against LocalStack (CloudWatch metrics) and log-group rules against moto
//! (CloudWatch Logs), as `scripts/test` starts them: data is put with the AWS SDK under a
//! unique namespace or log group per test, then `pi-mcp monitor --json` evaluates the rules
//! through the real SDK client, one process per heartbeat.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudwatch::config::Credentials;
use aws_sdk_cloudwatch::primitives::DateTime as AwsTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use chrono::Utc;
use serde_json::{Value, json};

use super::support::{HookReceiver, Workspace, loopback_notify_policy, require_service};
use super::{env_for, kinds_for, monitor_json, report_of, state_of, unique, with_aws, write_rules};

/// SDK configuration for a stand-in at `endpoint` with test credentials.
async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// Puts `(minutes ago, value)` datapoints of `metric` {Service=api} in `namespace`.
async fn put_points(endpoint: &str, namespace: &str, metric: &str, points: &[(i64, f64)]) {
    let client = aws_sdk_cloudwatch::Client::new(&sdk_config(endpoint).await);
    let now = Utc::now().timestamp();
    let data: Vec<MetricDatum> = points
        .iter()
        .map(|(ago, v)| {
            MetricDatum::builder()
                .metric_name(metric)
                .dimensions(Dimension::builder().name("Service").value("api").build())
                .timestamp(AwsTime::from_secs(now - 60 * ago))
                .value(*v)
                .build()
        })
        .collect();
    client
        .put_metric_data()
        .namespace(namespace)
        .set_metric_data(Some(data))
        .send()
        .await
        .expect("PutMetricData on LocalStack");
}

/// A metric rule on `namespace`/`metric` {Service=api} over the last 15 minutes.
fn metric_rule(id: &str, namespace: &str, metric: &str, condition: Value, extra: Value) -> Value {
    let mut rule = json!({
        "id": id, "type": "metric",
        "params": {"namespace": namespace, "metric_name": metric,
                   "dimension_name": "Service", "dimension_value": "api",
                   "period": 60, "window_minutes": 15},
        "condition": condition,
        "channels": ["webhook"],
    });
    if let (Some(r), Some(e)) = (rule.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    rule
}

/// A workspace, a webhook receiver, and the environment pointing CloudWatch at `localstack`.
async fn metric_workspace(localstack: &str) -> (Workspace, HookReceiver, Vec<(String, String)>) {
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    let env = with_aws(
        env_for(&loopback_notify_policy(&ws), &hook.url("/hook")),
        localstack,
        "http://127.0.0.1:9",
    );
    (ws, hook, env)
}

fn value_of(v: &Value, rule: &str) -> Option<f64> {
    report_of(v, rule)["value"].as_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_rules_on_avg_max_sum_go_pending_firing_resolved_in_one_call() {
    let Some(localstack) = require_service("PI_MCP_TEST_LOCALSTACK_URL") else {
        return;
    };
    let ns = unique("PiMonitor/lifecycle");
    put_points(
        &localstack,
        &ns,
        "Latency",
        &[(3, 10.0), (2, 20.0), (1, 60.0)],
    )
    .await;
    let (ws, hook, env) = metric_workspace(&localstack).await;
    write_rules(
        &ws,
        &[
            metric_rule(
                "avg-high",
                &ns,
                "Latency",
                json!({"operator": "gt", "threshold": 25, "field": "avg"}),
                json!({"datapoints_to_alarm": 2, "evaluation_periods": 2}),
            ),
            metric_rule(
                "max-high",
                &ns,
                "Latency",
                json!({"operator": "gte", "threshold": 60, "field": "max"}),
                json!({}),
            ),
            metric_rule(
                "sum-high",
                &ns,
                "Latency",
                json!({"operator": "gt", "threshold": 100, "field": "sum"}),
                json!({}),
            ),
        ],
    );
    // Heartbeat 1: avg 30 breaches once (pending, 2 of 2 needed), max 60 fires, sum 90 is ok.
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(
        v["metric_calls"], 1,
        "three rules, one GetMetricData call: {v}"
    );
    assert_eq!(
        (
            value_of(&v, "avg-high"),
            value_of(&v, "max-high"),
            value_of(&v, "sum-high")
        ),
        (Some(30.0), Some(60.0), Some(90.0)),
        "{v}"
    );
    assert_eq!(state_of(&v, "avg-high"), "pending", "{v}");
    assert_eq!(state_of(&v, "max-high"), "firing", "{v}");
    assert_eq!(state_of(&v, "sum-high"), "ok", "{v}");
    // Heartbeat 2, one more datapoint: avg still 30 (second breach: firing), sum 120 fires.
    put_points(&localstack, &ns, "Latency", &[(4, 30.0)]).await;
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(value_of(&v, "sum-high"), Some(120.0), "{v}");
    assert_eq!(state_of(&v, "avg-high"), "firing", "{v}");
    assert_eq!(state_of(&v, "sum-high"), "firing", "{v}");
    assert_eq!(state_of(&v, "max-high"), "firing", "{v}");
    // Heartbeat 3, five zero datapoints: avg 120/9 resolves; max and sum stay firing, silent.
    put_points(
        &localstack,
        &ns,
        "Latency",
        &[(5, 0.0), (6, 0.0), (7, 0.0), (8, 0.0), (9, 0.0)],
    )
    .await;
    let v = monitor_json(&ws, &env, &[]);
    // (The average of per-period averages: 120/9 when each point has its own period;
    // LocalStack's periods are not aligned, so two points may share one.)
    let avg = value_of(&v, "avg-high").unwrap_or_default();
    assert!(avg > 10.0 && avg < 25.0, "{v}");
    assert_eq!(state_of(&v, "avg-high"), "ok", "{v}");
    assert_eq!(kinds_for(&hook, "avg-high"), ["firing", "resolved"]);
    assert_eq!(kinds_for(&hook, "max-high"), ["firing"]);
    assert_eq!(kinds_for(&hook, "sum-high"), ["firing"]);
    let first = hook
        .bodies()
        .into_iter()
        .find(|b| b["rule_id"] == "max-high")
        .unwrap_or_default();
    assert_eq!(first["value"], 60.0, "{first}");
    assert_eq!(first["condition"], "max >= 60", "{first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_with_different_windows_share_one_call_and_each_sees_its_window() {
    let Some(localstack) = require_service("PI_MCP_TEST_LOCALSTACK_URL") else {
        return;
    };
    let ns = unique("PiMonitor/windows");
    put_points(
        &localstack,
        &ns,
        "Errors",
        &[(2, 1.0), (8, 10.0), (25, 100.0)],
    )
    .await;
    let (ws, _hook, env) = metric_workspace(&localstack).await;
    let sum_over = |id: &str, window: u32| {
        let mut r = metric_rule(
            id,
            &ns,
            "Errors",
            json!({"operator": "gt", "threshold": 1000, "field": "sum"}),
            json!({}),
        );
        r["params"]["window_minutes"] = json!(window);
        r
    };
    write_rules(
        &ws,
        &[
            sum_over("last-5m", 5),
            sum_over("last-15m", 15),
            sum_over("last-hour", 60),
        ],
    );
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(v["metric_calls"], 1, "three windows, one call: {v}");
    assert_eq!(
        (
            value_of(&v, "last-5m"),
            value_of(&v, "last-15m"),
            value_of(&v, "last-hour")
        ),
        (Some(1.0), Some(11.0), Some(111.0)),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_rules_without_data_follow_their_no_data_choice() {
    let Some(localstack) = require_service("PI_MCP_TEST_LOCALSTACK_URL") else {
        return;
    };
    let ns = unique("PiMonitor/nodata");
    put_points(&localstack, &ns, "Errors", &[(2, 5.0), (1, 7.0)]).await;
    let (ws, hook, env) = metric_workspace(&localstack).await;
    let rules = |metric_of_firing: &str| {
        let gt = |t: f64| json!({"operator": "gt", "threshold": t, "field": "max"});
        vec![
            metric_rule(
                "never-ok",
                &ns,
                "Missing",
                gt(1.0),
                json!({"no_data": "ok"}),
            ),
            metric_rule(
                "never-alerting",
                &ns,
                "Missing",
                gt(1.0),
                json!({"no_data": "alerting"}),
            ),
            metric_rule(
                "never-keep",
                &ns,
                "Missing",
                gt(1.0),
                json!({"no_data": "keep"}),
            ),
            // Firing on data, then their metric goes quiet (the rule now names a missing one).
            metric_rule(
                "gone-ok",
                &ns,
                metric_of_firing,
                gt(1.0),
                json!({"no_data": "ok"}),
            ),
            metric_rule(
                "gone-keep",
                &ns,
                metric_of_firing,
                gt(1.0),
                json!({"no_data": "keep"}),
            ),
            metric_rule(
                "gone-alerting",
                &ns,
                metric_of_firing,
                gt(1.0),
                json!({"no_data": "alerting"}),
            ),
        ]
    };
    write_rules(&ws, &rules("Errors"));
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(state_of(&v, "never-ok"), "no_data", "{v}");
    assert_eq!(state_of(&v, "never-alerting"), "firing", "{v}");
    assert_eq!(state_of(&v, "never-keep"), "no_data", "{v}");
    for id in ["gone-ok", "gone-keep", "gone-alerting"] {
        assert_eq!(state_of(&v, id), "firing", "{id}: {v}");
        assert_eq!(value_of(&v, id), Some(7.0), "{id}: {v}");
    }
    write_rules(&ws, &rules("StoppedReporting"));
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(state_of(&v, "gone-ok"), "no_data", "{v}");
    assert_eq!(state_of(&v, "gone-keep"), "firing", "{v}");
    assert_eq!(state_of(&v, "gone-alerting"), "firing", "{v}");
    assert_eq!(report_of(&v, "gone-keep")["value"], Value::Null, "{v}");
    assert_eq!(kinds_for(&hook, "never-ok"), Vec::<String>::new());
    assert_eq!(kinds_for(&hook, "never-alerting"), ["firing"]);
    assert_eq!(kinds_for(&hook, "never-keep"), Vec::<String>::new());
    assert_eq!(kinds_for(&hook, "gone-ok"), ["firing", "resolved"]);
    assert_eq!(kinds_for(&hook, "gone-keep"), ["firing"]);
    assert_eq!(kinds_for(&hook, "gone-alerting"), ["firing"]);
}

/// Creates `group` with one stream holding `lines`, a second apart, ending a minute ago.
async fn put_log_lines(moto: &str, group: &str, lines: &[&str]) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk_config(moto).await);
    logs.create_log_group()
        .log_group_name(group)
        .send()
        .await
        .expect("CreateLogGroup on moto");
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name("web-1")
        .send()
        .await
        .expect("CreateLogStream on moto");
    let end = Utc::now().timestamp_millis() - 60_000;
    let n = lines.len() as i64;
    let events: Vec<InputLogEvent> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            InputLogEvent::builder()
                .timestamp(end - (n - i as i64) * 1000)
                .message(*m)
                .build()
                .ok()
        })
        .collect();
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name("web-1")
        .set_log_events(Some(events))
        .send()
        .await
        .expect("PutLogEvents on moto");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_group_rules_count_matching_events_on_moto() {
    let Some(moto) = require_service("PI_MCP_TEST_MOTO_URL") else {
        return;
    };
    let group = unique("/pi-monitor/app-");
    put_log_lines(
        &moto,
        &group,
        &[
            "INFO request ok",
            "ERROR db timeout after 5s",
            "INFO request ok",
            "ERROR disk full",
            "WARN slow request",
            "ERROR db timeout after 7s",
        ],
    )
    .await;
    let ws = Workspace::new();
    let hook = HookReceiver::start().await;
    let env = with_aws(
        env_for(&loopback_notify_policy(&ws), &hook.url("/hook")),
        "http://127.0.0.1:9",
        &moto,
    );
    let log_rule = |id: &str, params: Value, threshold: f64| {
        let mut p = json!({"log_group": group, "window_minutes": 10});
        if let (Some(p), Some(extra)) = (p.as_object_mut(), params.as_object()) {
            p.extend(extra.clone());
        }
        json!({"id": id, "type": "log_keyword", "params": p,
               "condition": {"operator": "gte", "threshold": threshold},
               "channels": ["webhook"]})
    };
    write_rules(
        &ws,
        &[
            log_rule("errors", json!({"keyword": "ERROR"}), 3.0),
            // A regex, as for local files (as a CloudWatch filter pattern it would match
            // nothing): matched by pi-mcp on every event of the window.
            log_rule(
                "db-timeouts",
                json!({"pattern": r"^ERROR db timeout after \d+s$"}),
                3.0,
            ),
            log_rule("db-or-disk", json!({"pattern": "ERROR (db|disk)"}), 3.0),
            log_rule("disk-full", json!({"keyword": "disk full"}), 1.0),
        ],
    );
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(value_of(&v, "errors"), Some(3.0), "{v}");
    assert_eq!(value_of(&v, "db-timeouts"), Some(2.0), "{v}");
    assert_eq!(value_of(&v, "disk-full"), Some(1.0), "{v}");
    assert_eq!(value_of(&v, "db-or-disk"), Some(3.0), "{v}");
    assert_eq!(state_of(&v, "errors"), "firing", "{v}");
    assert_eq!(state_of(&v, "db-timeouts"), "ok", "{v}");
    assert_eq!(state_of(&v, "disk-full"), "firing", "{v}");
    assert_eq!(v["metric_calls"], 0, "{v}");
    // A second heartbeat: still firing, not announced again.
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(state_of(&v, "errors"), "firing", "{v}");
    assert_eq!(kinds_for(&hook, "errors"), ["firing"]);
    assert_eq!(kinds_for(&hook, "disk-full"), ["firing"]);
    // A group that does not exist is an error naming it, not a crash of the heartbeat.
    write_rules(
        &ws,
        &[log_rule(
            "no-group",
            json!({"log_group": "/pi-monitor/none", "keyword": "x"}),
            1.0,
        )],
    );
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(state_of(&v, "no-group"), "error", "{v}");
    let problem = report_of(&v, "no-group")["problem"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(problem.contains("/pi-monitor/none"), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_rules_stay_within_the_policys_namespaces() {
    let ws = Workspace::new();
    let policy = loopback_notify_policy(&ws);
    let mut p: Value = serde_json::from_str(&std::fs::read_to_string(&policy).unwrap()).unwrap();
    p["cloudwatch"]["namespaces"] = json!(["MyApp/*"]);
    std::fs::write(&policy, p.to_string()).unwrap();
    // No stand-in needed: the refusal comes before any call.
    let env = with_aws(
        env_for(&policy, "http://127.0.0.1:9/hook"),
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
    );
    write_rules(
        &ws,
        &[metric_rule(
            "billing",
            "AWS/Billing",
            "EstimatedCharges",
            json!({"operator": "gt", "threshold": 100}),
            json!({}),
        )],
    );
    let v = monitor_json(&ws, &env, &[]);
    assert_eq!(state_of(&v, "billing"), "error", "{v}");
    assert_eq!(v["metric_calls"], 0, "{v}");
    let problem = report_of(&v, "billing")["problem"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        problem.contains("refused by policy") && problem.contains("AWS/Billing"),
        "{problem}"
    );
}

#[test]
fn a_missing_default_rules_file_says_how_to_start() {
    let ws = Workspace::new();
    let out = super::support::cli(ws.path(), &["monitor"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cp configs/alerts.example.json configs/alerts.json"),
        "{err}"
    );
}
