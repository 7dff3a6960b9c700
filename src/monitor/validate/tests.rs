//! Tests of the rules file validation: positions, limits and per-rule problems.

use super::*;

const GOOD: &str = r#"{"id": "ok1", "type": "db_query", "params": {"query": "select 1"},
    "condition": {"operator": "gt", "threshold": 0}, "channels": ["webhook"]}"#;

#[test]
fn a_bad_rule_is_skipped_and_located() {
    let text = format!(
        "{{\"rules\": [\n{GOOD},\n{{\"id\": \"bad\", \"type\": \"log_keyword\",\n \"params\": {{\"path\": \"x.log\",\n   \"pattern\": \"(\"}},\n \"condition\": {{\"operator\": \"gt\", \"threshold\": 1}}}}\n]}}"
    );
    let loaded = parse(&text, "alerts.json").unwrap();
    assert_eq!(loaded.rules.len(), 1);
    let p = &loaded.problems[0];
    assert_eq!(p.rule.as_deref(), Some("bad"));
    assert_eq!(p.field.as_deref(), Some("params.pattern"));
    assert_eq!((p.line, p.column), (6, 4), "{p}");
    assert!(
        p.to_string().starts_with("alerts.json:6:4: rule `bad`"),
        "{p}"
    );
}

#[test]
fn type_errors_name_the_field_and_position() {
    let text = "[\n {\"id\": \"r\", \"type\": \"metric\", \"params\": {\"namespace\": \"N\", \"metric_name\": \"M\", \"period\": \"x\"},\n  \"condition\": {\"operator\": \"gt\", \"threshold\": 1}}]";
    let p = &parse(text, "f").unwrap().problems[0];
    assert_eq!(p.field.as_deref(), Some("params.period"));
    assert_eq!(p.line, 2);
    let text = "[{\"id\": \"r\", \"type\": \"db_query\", \"params\": {\"query\": \"q\"},\n \"condition\": {\"operator\": \"bigger\", \"threshold\": 1}}]";
    let p = &parse(text, "f").unwrap().problems[0];
    assert_eq!(p.field.as_deref(), Some("condition.operator"));
    assert_eq!(p.line, 2);
    assert!(p.message.contains("bigger"), "{p}");
}

#[test]
fn garbage_fails_as_a_whole_and_duplicates_are_reported() {
    assert!(parse("not json", "f").is_err());
    let e = parse("{\"rules\": [", "f").unwrap_err();
    assert_eq!(e.line, 1);
    let loaded = parse(&format!("[{GOOD}, {GOOD}]"), "f").unwrap();
    assert_eq!(loaded.rules.len(), 1);
    assert!(loaded.problems[0].message.contains("duplicate"));
}

#[test]
fn limits_are_enforced() {
    let rule = |extra: &str| {
        format!(
            "[{{\"id\": \"r\", \"type\": \"db_query\", \"params\": {{\"query\": \"q\"{extra}}}, \"condition\": {{\"operator\": \"gt\", \"threshold\": 1}}, \"datapoints_to_alarm\": 2, \"evaluation_periods\": {}}}]",
            MAX_EVALUATION_PERIODS
        )
    };
    assert!(parse(&rule(""), "f").unwrap().problems.is_empty());
    let too_long = format!(", \"timeout_secs\": {}", MAX_QUERY_TIMEOUT_SECS + 1);
    assert_eq!(
        parse(&rule(&too_long), "f").unwrap().problems[0]
            .field
            .as_deref(),
        Some("params.timeout_secs")
    );
    let over = rule("").replace(
        &format!(": {MAX_EVALUATION_PERIODS}"),
        &format!(": {}", MAX_EVALUATION_PERIODS + 1),
    );
    assert!(!parse(&over, "f").unwrap().problems.is_empty());
    let dims: Vec<String> = (0..=MAX_DIMENSIONS)
        .map(|i| format!("\"d{i}\": \"v\""))
        .collect();
    let text = format!(
        "[{{\"id\": \"m\", \"type\": \"metric\", \"params\": {{\"namespace\": \"N\", \"metric_name\": \"M\", \"dimensions\": {{{}}}}}, \"condition\": {{\"operator\": \"gt\", \"threshold\": 1}}}}]",
        dims.join(",")
    );
    assert_eq!(
        parse(&text, "f").unwrap().problems[0].field.as_deref(),
        Some("params.dimensions")
    );
}

#[test]
fn an_oversized_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(MAX_RULES_FILE_BYTES + 1).unwrap();
    assert!(load(&path).unwrap_err().message.contains("limit"));
}

#[test]
fn investigation_budgets_are_bounded() {
    let rule = |on_fire: &str| {
        format!(
            "[{{\"id\": \"r\", \"type\": \"db_query\", \"params\": {{\"query\": \"q\"}}, \"condition\": {{\"operator\": \"gt\", \"threshold\": 1}}, \"on_fire\": {on_fire}}}]"
        )
    };
    let ok = rule(&format!(
        "{{\"investigate\": true, \"max_steps\": {MAX_INVESTIGATION_STEPS}, \"timeout_minutes\": {MAX_INVESTIGATION_MINUTES}}}"
    ));
    let loaded = parse(&ok, "f").unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert_eq!(
        loaded.rules[0].spec.on_fire.max_steps,
        Some(MAX_INVESTIGATION_STEPS)
    );
    for (on_fire, field) in [
        (
            format!("{{\"max_steps\": {}}}", MAX_INVESTIGATION_STEPS + 1),
            "on_fire.max_steps",
        ),
        ("{\"max_steps\": 0}".to_string(), "on_fire.max_steps"),
        (
            format!("{{\"timeout_minutes\": {}}}", MAX_INVESTIGATION_MINUTES + 1),
            "on_fire.timeout_minutes",
        ),
        (
            "{\"timeout_minutes\": 0}".to_string(),
            "on_fire.timeout_minutes",
        ),
    ] {
        let loaded = parse(&rule(&on_fire), "f").unwrap();
        assert_eq!(
            loaded.problems[0].field.as_deref(),
            Some(field),
            "{on_fire}"
        );
    }
}
