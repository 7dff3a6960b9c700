//! Checks a tool's structured result against the `outputSchema` the server declares for it
//! (generated from the same Rust type), with a real JSON Schema 2020-12 validator, so a result
//! that drifts from its schema fails the test that produced it.
#![allow(dead_code)]

use serde_json::Value;

/// The `outputSchema` pi-mcp declares for `tool` (the same function `tools/list` uses).
pub fn output_schema(tool: &str) -> Value {
    let schema = pi_mcp::server::schemas::output(tool)
        .unwrap_or_else(|| panic!("`{tool}` declares no outputSchema"));
    Value::Object((*schema).clone())
}

/// Panics with every violation when `structured` does not match `schema`.
pub fn assert_valid(tool: &str, schema: &Value, structured: &Value) {
    jsonschema::meta::validate(schema)
        .unwrap_or_else(|e| panic!("the outputSchema of `{tool}` is not a valid schema: {e}"));
    let validator = jsonschema::draft202012::new(schema)
        .unwrap_or_else(|e| panic!("the outputSchema of `{tool}` does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(structured)
        .map(|e| format!("{} (at `{}`)", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the structured result of `{tool}` does not match its outputSchema:\n{}\nresult: {structured:#}",
        errors.join("\n")
    );
}

/// [`assert_valid`] against the schema pi-mcp declares for `tool`.
pub fn assert_matches_output_schema(tool: &str, structured: &Value) {
    assert_valid(tool, &output_schema(tool), structured);
}
