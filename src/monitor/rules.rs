//! The alert rule format of `configs/alerts.json`: what a rule watches (`type` + `params`),
//! when it breaches (`condition`), whom it tells (`channels`) and how it behaves over time
//! (cooldown, pending duration, missing data, repeats). The serde types double as the JSON
//! Schema that `pi-mcp monitor schema` prints; [`super::validate`] turns a file into [`Rule`]s.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::severity::Severity;

/// The notify tool's channels (slack, email, webhook).
pub use crate::tools::notify::Channel;

/// The rules file: `{"rules": [...]}` (a bare array of rules is accepted too).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// Optional pointer to the schema (`pi-mcp monitor schema > alerts.schema.json`).
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub rules: Vec<RuleSpec>,
}

/// One rule as written in the file. `params` depends on `type` (see [`MetricParams`],
/// [`LogKeywordParams`], [`DbQueryParams`]).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique, stable id: the state store keys the rule's state by it.
    pub id: String,
    /// Human-readable name used in notifications (default: the id).
    #[serde(default)]
    pub name: String,
    /// What the rule watches.
    #[serde(rename = "type")]
    pub kind: RuleType,
    /// Disabled rules are validated but not evaluated.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Parameters of the rule's type.
    pub params: serde_json::Value,
    /// When the rule's value breaches.
    pub condition: Condition,
    /// Where firing and resolved notices go.
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// After a firing notice, further firing notices of this rule wait this long.
    #[serde(default)]
    pub cooldown_minutes: u64,
    /// Fire only when the condition has held continuously this long (state `pending` until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_minutes: Option<u64>,
    /// Fire when this many of the last `evaluation_periods` evaluations breached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datapoints_to_alarm: Option<u32>,
    /// How many recent evaluations `datapoints_to_alarm` counts over (default: equal to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_periods: Option<u32>,
    /// What an evaluation without data means.
    #[serde(default)]
    pub no_data: MissingPolicy,
    /// What a failed evaluation (unreachable source, bad query) means.
    #[serde(default)]
    pub on_error: MissingPolicy,
    #[serde(default = "warning")]
    pub severity: Severity,
    /// Free-form labels copied into every notification.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// A link or path to the runbook, included in notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
    /// Send a notice when a firing rule resolves.
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// While still firing, remind every this many minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_minutes: Option<u64>,
    /// What the heartbeat does when the rule fires.
    #[serde(default)]
    pub on_fire: OnFire,
}

fn yes() -> bool {
    true
}

fn warning() -> Severity {
    Severity::Warning
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleType {
    /// A CloudWatch metric statistic over a window.
    Metric,
    /// Matches of a keyword or regex in CloudWatch Logs or a local log file.
    LogKeyword,
    /// A read-only SQL query returning one number.
    DbQuery,
}

impl RuleType {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleType::Metric => "metric",
            RuleType::LogKeyword => "log_keyword",
            RuleType::DbQuery => "db_query",
        }
    }
}

/// `value <operator> threshold`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub operator: Operator,
    pub threshold: f64,
    /// Which number the rule compares: for `metric` one of avg, min, max, sum, count, last
    /// (default avg); for `log_keyword` count; for `db_query` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<Field>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Operator {
    Gt,
    Lt,
    Gte,
    Lte,
    Eq,
}

impl Operator {
    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Operator::Gt => value > threshold,
            Operator::Lt => value < threshold,
            Operator::Gte => value >= threshold,
            Operator::Lte => value <= threshold,
            Operator::Eq => (value - threshold).abs() <= f64::EPSILON * threshold.abs().max(1.0),
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Operator::Gt => ">",
            Operator::Lt => "<",
            Operator::Gte => ">=",
            Operator::Lte => "<=",
            Operator::Eq => "==",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Last,
    Value,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Avg => "avg",
            Field::Min => "min",
            Field::Max => "max",
            Field::Sum => "sum",
            Field::Count => "count",
            Field::Last => "last",
            Field::Value => "value",
        }
    }
}

/// What an evaluation without a value (no data, or an error) counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MissingPolicy {
    /// Not breaching: a firing rule resolves; the state shows `no_data` / `error`.
    Ok,
    /// Breaching: the rule goes pending / firing as if the condition held.
    Alerting,
    /// A pending or firing rule stays as it is; otherwise the state shows `no_data` / `error`.
    #[default]
    Keep,
}

/// Heartbeat actions on firing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OnFire {
    /// Start an SRE investigation run with the alert as its incident.
    #[serde(default)]
    pub investigate: bool,
    /// Let that run change things (false: its non-read-only calls need approval).
    #[serde(default)]
    pub remediate: bool,
    /// Model turns of that run before it must summarise (default: the heartbeat's, 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u32>,
    /// Wall-clock limit of that run in minutes (default: the heartbeat's, 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_minutes: Option<u64>,
}

/// `params` of a `metric` rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricParams {
    /// e.g. `AWS/EC2`.
    pub namespace: String,
    /// e.g. `CPUUtilization`.
    pub metric_name: String,
    /// Dimension name → value.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// Shorthand for one dimension (with `dimension_value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension_value: Option<String>,
    /// Datapoint period in seconds (a multiple of 60, or 1, 5, 10, 30).
    #[serde(default = "default_period")]
    pub period: u32,
    /// How far back each evaluation looks.
    #[serde(default = "default_window")]
    pub window_minutes: u32,
}

fn default_period() -> u32 {
    60
}

fn default_window() -> u32 {
    5
}

impl MetricParams {
    /// All dimensions, the shorthand included, sorted by name.
    pub fn all_dimensions(&self) -> Vec<(String, String)> {
        let mut dims = self.dimensions.clone();
        if let (Some(n), Some(v)) = (&self.dimension_name, &self.dimension_value) {
            dims.insert(n.clone(), v.clone());
        }
        dims.into_iter().collect()
    }
}

/// `params` of a `log_keyword` rule: one of `log_group` / `path`, one of `keyword` / `pattern`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogKeywordParams {
    /// CloudWatch Logs group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
    /// Local log file or glob (relative to the workspace), read incrementally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Plain text to count, case-sensitive (give this or `pattern`). With `path`: lines that
    /// contain it; with `log_group`: events matching it as a quoted CloudWatch filter phrase
    /// (counted by CloudWatch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    /// A regex (Rust `regex` syntax) to count (give this or `keyword`). With `path`: lines
    /// that match; with `log_group`: events of the window whose message matches, fetched
    /// without a filter and matched by pi-mcp (not a CloudWatch filter pattern).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The value is the number of matches in this window.
    #[serde(default = "default_window")]
    pub window_minutes: u32,
}

/// `params` of a `db_query` rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DbQueryParams {
    /// Database name from the sql tool's configuration (default: its default database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// A read-only query returning one number (first column of the first row).
    pub query: String,
    /// Query timeout in seconds.
    #[serde(default = "default_query_timeout")]
    pub timeout_secs: u64,
}

fn default_query_timeout() -> u64 {
    10
}

/// Typed parameters of a validated rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Params {
    Metric(MetricParams),
    LogKeyword(LogKeywordParams),
    DbQuery(DbQueryParams),
}

/// A validated rule: the spec plus its typed parameters and resolved condition field.
#[derive(Debug, Clone)]
pub struct Rule {
    pub spec: RuleSpec,
    pub params: Params,
    pub field: Field,
}

impl Rule {
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// The name for people (the id when none is given).
    pub fn display_name(&self) -> &str {
        if self.spec.name.is_empty() {
            &self.spec.id
        } else {
            &self.spec.name
        }
    }

    /// `avg > 80` style text.
    pub fn condition_text(&self) -> String {
        format!(
            "{} {} {}",
            self.field.as_str(),
            self.spec.condition.operator.symbol(),
            self.spec.condition.threshold
        )
    }

    pub fn breaches(&self, value: f64) -> bool {
        self.spec
            .condition
            .operator
            .breaches(value, self.spec.condition.threshold)
    }
}

/// The JSON Schema of the rules file, with `params` tied to `type`.
pub fn schema() -> serde_json::Value {
    let mut root = serde_json::to_value(schemars::schema_for!(RulesFile))
        .unwrap_or_else(|_| serde_json::json!({}));
    let typed = [
        ("metric", schemars::schema_for!(MetricParams)),
        ("log_keyword", schemars::schema_for!(LogKeywordParams)),
        ("db_query", schemars::schema_for!(DbQueryParams)),
    ];
    let mut all_of = Vec::new();
    for (kind, params) in typed {
        let mut params = serde_json::to_value(params).unwrap_or_default();
        if let Some(obj) = params.as_object_mut() {
            obj.remove("$schema");
        }
        all_of.push(serde_json::json!({
            "if": {"properties": {"type": {"const": kind}}},
            "then": {"properties": {"params": params}}
        }));
    }
    if let Some(spec) = root
        .pointer_mut("/$defs/RuleSpec")
        .and_then(|s| s.as_object_mut())
    {
        spec.insert("allOf".into(), serde_json::Value::Array(all_of));
    }
    accept_bare_array(root)
}

/// The file may also be a bare array of rules (as the validator accepts): the object form
/// moves to `$defs/RulesFile` and the root is either one.
fn accept_bare_array(mut root: serde_json::Value) -> serde_json::Value {
    let Some(obj) = root.as_object_mut() else {
        return root;
    };
    let mut file = serde_json::Map::new();
    for key in [
        "type",
        "properties",
        "required",
        "additionalProperties",
        "description",
    ] {
        if let Some(v) = obj.remove(key) {
            file.insert(key.into(), v);
        }
    }
    if let Some(defs) = obj.get_mut("$defs").and_then(|d| d.as_object_mut()) {
        defs.insert("RulesFile".into(), serde_json::Value::Object(file));
    }
    obj.insert(
        "description".into(),
        "Alert rules for pi-mcp: {\"rules\": [...]} or a bare array of rules.".into(),
    );
    obj.insert(
        "anyOf".into(),
        serde_json::json!([
            {"$ref": "#/$defs/RulesFile"},
            {"type": "array", "items": {"$ref": "#/$defs/RuleSpec"}}
        ]),
    );
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_compare() {
        assert!(Operator::Gt.breaches(2.0, 1.0) && !Operator::Gt.breaches(1.0, 1.0));
        assert!(Operator::Gte.breaches(1.0, 1.0) && Operator::Lte.breaches(1.0, 1.0));
        assert!(Operator::Lt.breaches(0.5, 1.0) && Operator::Eq.breaches(3.0, 3.0));
        assert!(!Operator::Eq.breaches(3.0, 3.1));
    }

    #[test]
    fn schema_ties_params_to_type() {
        let s = schema().to_string();
        assert!(s.contains("metric_name") && s.contains("log_group") && s.contains("query"));
        assert!(s.contains("\"const\":\"log_keyword\""));
    }

    #[test]
    fn schema_accepts_the_object_and_the_bare_array() {
        let s = schema();
        assert_eq!(s["anyOf"][0]["$ref"], "#/$defs/RulesFile");
        assert_eq!(s["anyOf"][1]["items"]["$ref"], "#/$defs/RuleSpec");
        assert_eq!(s["$defs"]["RulesFile"]["required"][0], "rules");
    }
}
