//! The `cloudwatch` tool through the built binary over stdio, against LocalStack (metrics,
//! alarms) and moto (CloudWatch Logs) as `scripts/test` starts them: data is put with the AWS
//! SDK under a unique namespace or log group per test, then read back through the tool. Also:
//! an unreachable endpoint, a namespace outside the policy (denied and audited), and the
//! batching the monitor relies on (1,000 queries in exactly 2 GetMetricData requests).

mod support;

use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudwatch::config::Credentials;
use aws_sdk_cloudwatch::primitives::DateTime as AwsTime;
use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricDatum, StateValue};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use chrono::Utc;
use pi_mcp::tools::cloudwatch::{CloudWatch, CloudWatchError, MetricQuery};
use serde_json::{Value, json};
use support::{Workspace, audit_entries, call, require_service, spawn_stdio_env, text_of};

/// A name no other test (or earlier run against the same stand-in) uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}{nanos}")
}

/// SDK configuration for a stand-in at `endpoint` with test credentials.
async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// The server's AWS environment: metrics at `metrics`, logs at `logs`.
fn aws_env<'a>(metrics: &'a str, logs: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("AWS_ENDPOINT_URL_CLOUDWATCH", metrics),
        ("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", logs),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ]
}

/// Puts `values` one minute apart (the last one a minute ago) as `metric` {Service=api}.
async fn put_metric(endpoint: &str, namespace: &str, metric: &str, values: &[f64]) {
    let client = aws_sdk_cloudwatch::Client::new(&sdk_config(endpoint).await);
    let now = Utc::now().timestamp();
    let n = values.len() as i64;
    let data: Vec<MetricDatum> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            MetricDatum::builder()
                .metric_name(metric)
                .dimensions(Dimension::builder().name("Service").value("api").build())
                .timestamp(AwsTime::from_secs(now - 60 * (n - i as i64)))
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

fn structured(r: &rmcp::model::CallToolResult) -> Value {
    let structured = r.structured_content.clone().expect("structured content");
    support::schema::assert_matches_output_schema("cloudwatch", &structured);
    structured
}

fn values_of(series: &Value) -> Vec<f64> {
    series["values"]
        .as_array()
        .expect("values")
        .iter()
        .filter_map(Value::as_f64)
        .collect()
}

#[tokio::test]
async fn metrics_are_listed_and_read_back_with_each_statistic() {
    let Some(localstack) = require_service("PI_MCP_TEST_LOCALSTACK_URL") else {
        return;
    };
    let namespace = unique("PiTest/m");
    let values = [10.0, 20.0, 30.0, 40.0, 50.0];
    put_metric(&localstack, &namespace, "Latency", &values).await;

    let ws = Workspace::new();
    let client = spawn_stdio_env(ws.path(), &aws_env(&localstack, "http://127.0.0.1:9"))
        .await
        .unwrap();

    let r = call(
        &client,
        "cloudwatch",
        json!({"action": "list_metrics", "namespace": namespace}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert!(
        text_of(&r).contains("Latency {Service=api}"),
        "{}",
        text_of(&r)
    );
    assert_eq!(structured(&r)["metrics"][0]["dimensions"]["Service"], "api");

    let query = |stat: &str| {
        json!({"id": stat.to_lowercase(), "namespace": namespace, "metric_name": "Latency",
               "dimensions": {"Service": "api"}, "stat": stat, "period": 60})
    };
    let r = call(
        &client,
        "cloudwatch",
        json!({"action": "get_metric_data", "start": "-30m", "end": "now",
               "queries": [query("Average"), query("Maximum"), query("Sum"), query("SampleCount")]}),
    )
    .await;
    let text = text_of(&r);
    assert_ne!(r.is_error, Some(true), "{text}");
    let s = structured(&r);
    let series = s["series"].as_array().expect("series");
    assert_eq!(series.len(), 4, "{s}");
    assert_eq!(series[0]["id"], "average");
    let max = values_of(&series[1]).into_iter().fold(f64::MIN, f64::max);
    assert_eq!(max, 50.0, "{s}");
    assert_eq!(values_of(&series[2]).iter().sum::<f64>(), 150.0, "{s}");
    assert_eq!(values_of(&series[3]).iter().sum::<f64>(), 5.0, "{s}");
    for avg in values_of(&series[0]) {
        assert!((10.0..=50.0).contains(&avg), "{s}");
    }
    assert!(
        text.contains("average: ") && text.contains("Latency Average period 60s {Service=api}"),
        "{text}"
    );
    assert!(text.contains("max 50"), "{text}");

    // An absolute ISO-8601 window works too, and a metric with no data says what to do.
    let start = (Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let r = call(
        &client,
        "cloudwatch",
        json!({"action": "get_metric_data", "start": start, "queries": [
            {"namespace": namespace, "metric_name": "NoSuchMetric", "stat": "Sum", "period": 60}]}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    assert!(
        text_of(&r).contains("q1: ") && text_of(&r).contains("list_metrics"),
        "{}",
        text_of(&r)
    );

    let r = call(
        &client,
        "cloudwatch",
        json!({"action": "get_metric_statistics", "namespace": namespace, "metric_name": "Latency",
               "dimensions": {"Service": "api"}, "statistics": ["Maximum", "Sum", "SampleCount"],
               "period": 60, "start": "-1h"}),
    )
    .await;
    let text = text_of(&r);
    assert_ne!(r.is_error, Some(true), "{text}");
    let points = structured(&r)["datapoints"]
        .as_array()
        .cloned()
        .expect("datapoints");
    let total = |stat: &str| {
        points
            .iter()
            .filter_map(|p| p["values"][stat].as_f64())
            .sum::<f64>()
    };
    assert_eq!(total("SampleCount"), 5.0, "{points:?}");
    assert_eq!(total("Sum"), 150.0, "{points:?}");
    assert!(text.contains("timestamp Maximum Sum SampleCount"), "{text}");

    // Bad arguments are the model's to fix, with the accepted forms named.
    let r = call(
        &client,
        "cloudwatch",
        json!({"action": "get_metric_statistics", "namespace": namespace, "metric_name": "Latency",
               "start": "yesterday"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("-30m"), "{}", text_of(&r));
    let r = call(
        &client,
        "cloudwatch",
        json!({"action": "get_metric_data", "queries": [
            {"namespace": namespace, "metric_name": "Latency", "period": 45}]}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("multiple of 60"), "{}", text_of(&r));
    let r = call(&client, "cloudwatch", json!({"action": "drop_metrics"})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("list_metrics"), "{}", text_of(&r));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn log_events_are_filtered_by_term_and_limited() {
    let Some(moto) = require_service("PI_MCP_TEST_MOTO_URL") else {
        return;
    };
    let group = unique("/pi-test/app-");
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk_config(&moto).await);
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name("web-1")
        .send()
        .await
        .unwrap();
    let now = Utc::now().timestamp_millis();
    let lines = [
        "INFO request ok",
        "ERROR db timeout after 5s",
        "INFO request ok",
        "ERROR disk full",
        "WARN slow request",
    ];
    let events: Vec<InputLogEvent> = lines
        .iter()
        .enumerate()
        .map(|(i, m)| {
            InputLogEvent::builder()
                .timestamp(now - 60_000 + i as i64 * 1000)
                .message(*m)
                .build()
                .unwrap()
        })
        .collect();
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name("web-1")
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();

    let ws = Workspace::new();
    // The generic AWS_ENDPOINT_URL reaches Logs when no per-service variable is set.
    let mut env = aws_env("http://127.0.0.1:9", &moto);
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS");
    env.push(("AWS_ENDPOINT_URL", &moto));
    let client = spawn_stdio_env(ws.path(), &env).await.unwrap();
    let r = call(
        &client,
        "cloudwatch",
        json!({"action": "filter_log_events", "log_group": group, "pattern": "ERROR", "start": "-10m"}),
    )
    .await;
    let text = text_of(&r);
    assert_ne!(r.is_error, Some(true), "{text}");
    assert!(text.starts_with("2 events in"), "{text}");
    assert!(
        text.contains("[web-1] ERROR db timeout after 5s") && text.contains("ERROR disk full"),
        "{text}"
    );
    assert!(!text.contains("INFO"), "{text}");
    assert_eq!(structured(&r)["events"].as_array().map(Vec::len), Some(2));

    let r = call(
        &client,
        "cloudwatch",
        json!({"action": "filter_log_events", "log_group": group, "pattern": "ERROR timeout", "start": "-10m"}),
    )
    .await;
    assert!(text_of(&r).starts_with("1 events in"), "{}", text_of(&r));

    let r = call(
        &client,
        "cloudwatch",
        json!({"action": "filter_log_events", "log_group": group, "start": "-10m", "limit": 2}),
    )
    .await;
    assert!(text_of(&r).contains("limit 2 reached"), "{}", text_of(&r));
    assert_eq!(structured(&r)["events"].as_array().map(Vec::len), Some(2));

    let r = call(
        &client,
        "cloudwatch",
        json!({"action": "filter_log_events", "log_group": format!("{group}-missing")}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("does not exist"), "{}", text_of(&r));

    // The policy's max_log_events (1000 by default) bounds one call.
    let r = call(
        &client,
        "cloudwatch",
        json!({"action": "filter_log_events", "log_group": group, "limit": 5000}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("cloudwatch-limits"), "{}", text_of(&r));
    client.cancel().await.unwrap();

    // The monitor's counting call reads every page.
    let cw = CloudWatch::from_sdk_config(&sdk_config(&moto).await).unwrap();
    let start = Utc::now() - chrono::Duration::minutes(10);
    let n = cw
        .count_log_events(&group, Some("ERROR"), None, start, Utc::now())
        .await
        .unwrap();
    assert_eq!(n, 2);
    let all = cw
        .count_log_events(&group, None, None, start, Utc::now())
        .await
        .unwrap();
    assert_eq!(all, 5);
}

#[tokio::test]
async fn alarms_are_described_and_filtered_by_state() {
    let Some(localstack) = require_service("PI_MCP_TEST_LOCALSTACK_URL") else {
        return;
    };
    let namespace = unique("PiTest/a");
    let name = unique("pi-test-alarm-");
    let metrics = aws_sdk_cloudwatch::Client::new(&sdk_config(&localstack).await);
    metrics
        .put_metric_alarm()
        .alarm_name(&name)
        .namespace(&namespace)
        .metric_name("Errors")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(5.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .unwrap();
    metrics
        .set_alarm_state()
        .alarm_name(&name)
        .state_value(StateValue::Alarm)
        .state_reason("test says so")
        .send()
        .await
        .unwrap();
    let ws = Workspace::new();
    let client = spawn_stdio_env(ws.path(), &aws_env(&localstack, "http://127.0.0.1:9"))
        .await
        .unwrap();
    let r = call(&client, "cloudwatch", json!({"action": "describe_alarms"})).await;
    let text = text_of(&r);
    assert_ne!(r.is_error, Some(true), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(&format!("{namespace} Errors (GreaterThanThreshold 5)")),
        "{line}"
    );
    // LocalStack re-evaluates alarms on its own clock, so the state may move between calls:
    // check that a state filter returns only alarms in that state.
    for state in ["ALARM", "OK", "INSUFFICIENT_DATA"] {
        let r = call(
            &client,
            "cloudwatch",
            json!({"action": "describe_alarms", "state": state}),
        )
        .await;
        assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
        for alarm in structured(&r)["alarms"].as_array().expect("alarms") {
            assert_eq!(alarm["state"], state, "{alarm}");
        }
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_clear_error_quickly() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let closed = format!("http://127.0.0.1:{port}");
    let ws = Workspace::new();
    let client = spawn_stdio_env(ws.path(), &aws_env(&closed, &closed))
        .await
        .unwrap();
    for args in [
        json!({"action": "get_metric_data", "queries": [
            {"namespace": "AWS/EC2", "metric_name": "CPUUtilization", "stat": "Average", "period": 300}]}),
        json!({"action": "filter_log_events", "log_group": "/app/web"}),
    ] {
        let started = Instant::now();
        let r = call(&client, "cloudwatch", args).await;
        assert_eq!(r.is_error, Some(true));
        assert!(
            text_of(&r).contains("cannot reach the CloudWatch endpoint"),
            "{}",
            text_of(&r)
        );
        assert!(text_of(&r).contains("AWS_ENDPOINT_URL"), "{}", text_of(&r));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_namespace_outside_the_policy_is_denied_and_audited() {
    let ws = Workspace::new();
    let policy = ws.write(
        "policy.json",
        json!({"cloudwatch": {"namespaces": ["MyApp/*"], "log_groups": ["/app/*"]}}).to_string(),
    );
    let policy = policy.to_string_lossy().into_owned();
    let mut env = aws_env("http://127.0.0.1:9", "http://127.0.0.1:9");
    env.push(("PI_MCP_POLICY", &policy));
    let client = spawn_stdio_env(ws.path(), &env).await.unwrap();
    let r = call(
        &client,
        "cloudwatch",
        json!({"action": "get_metric_data", "queries": [
            {"namespace": "MyApp/web", "metric_name": "Latency"},
            {"namespace": "Billing/Secret", "metric_name": "Cost"}]}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    let text = text_of(&r);
    assert!(
        text.contains("cloudwatch-scope") && text.contains("`Billing/Secret`"),
        "{text}"
    );
    let r = call(
        &client,
        "cloudwatch",
        json!({"action": "filter_log_events", "log_group": "/secure/audit"}),
    )
    .await;
    assert!(text_of(&r).contains("cloudwatch-scope"), "{}", text_of(&r));
    client.cancel().await.unwrap();

    let audit = audit_entries(ws.path(), &[("PI_MCP_POLICY", &policy)]);
    let denied: Vec<&Value> = audit
        .iter()
        .filter(|e| e["tool"] == "cloudwatch" && e["decision"] == "deny")
        .collect();
    assert_eq!(denied.len(), 2, "{audit:?}");
    assert!(
        denied[0]["reasons"]
            .to_string()
            .contains("cloudwatch-scope"),
        "{audit:?}"
    );
}

#[tokio::test]
async fn a_thousand_queries_take_two_get_metric_data_requests() {
    let Some(localstack) = require_service("PI_MCP_TEST_LOCALSTACK_URL") else {
        return;
    };
    let namespace = unique("PiTest/b");
    put_metric(&localstack, &namespace, "Load", &[1.0, 2.0, 3.0]).await;
    let cw = CloudWatch::from_sdk_config(&sdk_config(&localstack).await).unwrap();
    let queries: Vec<MetricQuery> = (0..1000)
        .map(|i| MetricQuery {
            id: format!("rule-{i}"),
            namespace: namespace.clone(),
            metric_name: "Load".into(),
            dimensions: vec![("Service".into(), "api".into())],
            stat: if i % 2 == 0 { "Maximum" } else { "Sum" }.into(),
            period: 60,
        })
        .collect();
    let end = Utc::now();
    let start = end - chrono::Duration::minutes(30);
    let started = Instant::now();
    let series = cw.get_metric_data(&queries, start, end).await.unwrap();
    eprintln!(
        "1000 queries: {} requests in {:?}",
        cw.api_calls(),
        started.elapsed()
    );
    assert_eq!(cw.api_calls(), 2);
    assert_eq!(cw.api_calls_by_operation().get("GetMetricData"), Some(&2));
    assert_eq!(series.len(), 1000);
    assert_eq!(series[999].id, "rule-999");
    assert_eq!(
        series[998].values.iter().copied().fold(f64::MIN, f64::max),
        3.0
    );
    assert_eq!(series[999].values.iter().sum::<f64>(), 6.0);
    // 500 fit one request, 501 need two.
    cw.get_metric_data(&queries[..500], start, end)
        .await
        .unwrap();
    assert_eq!(cw.api_calls(), 3);
    cw.get_metric_data(&queries[..501], start, end)
        .await
        .unwrap();
    assert_eq!(cw.api_calls(), 5);
}

#[tokio::test]
async fn a_configuration_without_a_region_is_refused() {
    let config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .build();
    let err = CloudWatch::from_sdk_config(&config).unwrap_err();
    assert!(matches!(err, CloudWatchError::NoRegion));
    assert!(err.to_string().contains("AWS_REGION"));
}

#[tokio::test]
async fn missing_credentials_are_named_before_any_request() {
    let config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let cw = CloudWatch::from_sdk_config(&config).unwrap();
    let err = cw.list_metrics(None, None, &[]).await.unwrap_err();
    assert!(
        matches!(err, CloudWatchError::NoCredentials { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
}
