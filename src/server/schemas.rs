//! Tool schemas as clients can use them. Input and output schemas are generated with schemars
//! from the very Rust types the arguments are parsed into and the structured results are
//! serialized from, then made portable: MCP clients map them onto narrower dialects (the
//! Inspector's `--strict` check, the OpenAPI subset of some model providers), which reject a
//! bare boolean where a schema is expected and a `type` array for an optional field.

use rmcp::model::JsonObject;
use serde_json::Value;

/// The `inputSchema` of a tool taking `T`. An optional argument is described by its own type
/// only (`"integer"`, not `["integer", "null"]`): leaving it out is how a caller says "none",
/// and an explicit `null` is still accepted when the arguments are parsed.
pub fn input<T: schemars::JsonSchema + std::any::Any>() -> std::sync::Arc<JsonObject> {
    let mut schema = rmcp::handler::server::common::schema_for_type::<T>();
    let object = std::sync::Arc::make_mut(&mut schema);
    non_null_optionals(object);
    for value in object.values_mut() {
        portable_subschemas(value);
    }
    schema
}

/// Drops `"null"` from the `type` of every property that is not required, here and in the
/// definitions the schema refers to.
fn non_null_optionals(object: &mut JsonObject) {
    let required: Vec<String> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let Some(Value::Object(properties)) = object.get_mut("properties") {
        for (name, property) in properties.iter_mut() {
            if required.contains(name) {
                continue;
            }
            if let Some(Value::Array(types)) = property.get("type") {
                let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                if kept.len() == 1 && kept.len() < types.len() {
                    property["type"] = kept[0].clone();
                }
            }
        }
    }
    for key in ["$defs", "definitions"] {
        if let Some(Value::Object(defs)) = object.get_mut(key) {
            for def in defs.values_mut() {
                if let Value::Object(def) = def {
                    non_null_optionals(def);
                }
            }
        }
    }
}

/// The `outputSchema` of a tool that returns structured content, generated (schemars, as
/// serialized) from the very type its structured content is serialized from; `None` for
/// tools that answer in text only.
pub fn output(tool: &str) -> Option<std::sync::Arc<JsonObject>> {
    use rmcp::handler::server::common::schema_for_output;
    let mut schema = match tool {
        "sql" => schema_for_output::<crate::tools::sql::SqlResult>(),
        "cloudwatch" => schema_for_output::<crate::tools::cloudwatch::tool::CloudWatchResult>(),
        "ghost" => schema_for_output::<crate::ghost::GhostRun>(),
        _ => return None,
    };
    // MCP wants an object at the root (rmcp drops other output schemas for older clients);
    // an enum tagged by `action` is a `oneOf` of objects, so say so.
    let object = std::sync::Arc::make_mut(&mut schema);
    if object.get("type").is_none() {
        object.insert("type".into(), "object".into());
    }
    for value in object.values_mut() {
        portable_subschemas(value);
    }
    Some(schema)
}

/// Replaces boolean subschemas (`true`: any value, which schemars writes for a
/// `serde_json::Value` cell) with the equivalent `{}`: clients that check schema portability
/// (the Inspector's `--strict`) reject bare booleans where a schema object is expected.
fn portable_subschemas(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                // Keywords whose boolean value is not a schema.
                if matches!(key.as_str(), "const" | "default" | "enum" | "examples") {
                    continue;
                }
                if *child == Value::Bool(true) {
                    *child = Value::Object(Default::default());
                } else {
                    portable_subschemas(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(portable_subschemas),
        _ => {}
    }
}
