//! The policy's `cloudwatch` section: which metric namespaces and log groups the
//! `cloudwatch` tool may read (globs), and how much one call may ask for. Every action is
//! read-only; anything outside the scope is denied under the rule `cloudwatch-scope`.

use super::lazy::LazyGlobSet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Decision, Guard, PolicyError, Verdict};

/// Rule id of a denial for a namespace or log group outside the policy.
pub const SCOPE_RULE: &str = "cloudwatch-scope";
/// Rule id of a denial for a call that asks for more than the policy's limits.
pub const LIMITS_RULE: &str = "cloudwatch-limits";

/// The `cloudwatch` section of the policy file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchPolicy {
    /// Metric namespaces the tool may read (globs, e.g. `AWS/EC2`, `MyApp/*`, `*`).
    #[serde(default = "everything")]
    pub namespaces: Vec<String>,
    /// Log groups the tool may read (globs, e.g. `/aws/lambda/*`).
    #[serde(default = "everything")]
    pub log_groups: Vec<String>,
    /// Most metric queries one `get_metric_data` call may carry.
    #[serde(default = "default_max_queries")]
    pub max_queries: usize,
    /// Most log events one `filter_log_events` call may return.
    #[serde(default = "default_max_log_events")]
    pub max_log_events: usize,
}

fn everything() -> Vec<String> {
    vec!["*".to_string()]
}
fn default_max_queries() -> usize {
    500
}
fn default_max_log_events() -> usize {
    1000
}

impl Default for CloudWatchPolicy {
    fn default() -> Self {
        CloudWatchPolicy {
            namespaces: everything(),
            log_groups: everything(),
            max_queries: default_max_queries(),
            max_log_events: default_max_log_events(),
        }
    }
}

/// What a `cloudwatch` call reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudWatchTarget<'a> {
    /// A metric namespace.
    Namespace(&'a str),
    /// A CloudWatch Logs log group.
    LogGroup(&'a str),
    /// Nothing in particular (listing across namespaces, alarms): results are filtered.
    Account,
}

/// The section compiled: glob sets (`/` is an ordinary character, so `*` spans it).
#[derive(Debug, Clone)]
pub struct CloudWatchScope {
    namespaces: LazyGlobSet,
    log_groups: LazyGlobSet,
}

fn glob_set(patterns: &[String], field: &str, source: &str) -> Result<LazyGlobSet, PolicyError> {
    let mut set = Vec::new();
    for (i, p) in patterns.iter().enumerate() {
        let glob = globset::GlobBuilder::new(p)
            .literal_separator(false)
            .build()
            .map_err(|e| PolicyError::Rule {
                file: source.to_string(),
                rule: "-".into(),
                field: format!("cloudwatch.{field}[{i}]"),
                message: e.to_string(),
            })?;
        set.push(glob);
    }
    Ok(LazyGlobSet::allow_list(set))
}

impl CloudWatchScope {
    /// Builds both sets now: `(field, why)` for one that does not compile.
    pub(super) fn force(&self) -> Result<(), (String, String)> {
        self.namespaces
            .force()
            .map_err(|m| ("cloudwatch.namespaces".to_string(), m))?;
        self.log_groups
            .force()
            .map_err(|m| ("cloudwatch.log_groups".to_string(), m))
    }

    /// Compiles the section; a bad glob names its field (`cloudwatch.namespaces[2]`).
    pub fn compile(policy: &CloudWatchPolicy, source: &str) -> Result<Self, PolicyError> {
        Ok(CloudWatchScope {
            namespaces: glob_set(&policy.namespaces, "namespaces", source)?,
            log_groups: glob_set(&policy.log_groups, "log_groups", source)?,
        })
    }
}

impl Guard {
    /// The `cloudwatch` section in force.
    pub fn cloudwatch_policy(&self) -> &CloudWatchPolicy {
        &self.file.cloudwatch
    }

    /// Whether the policy lets the tool read metrics of `namespace`.
    pub fn cloudwatch_namespace_allowed(&self, namespace: &str) -> bool {
        self.cloudwatch.namespaces.is_match(namespace)
    }

    /// Judges a `cloudwatch` action on what it reaches: allow inside the policy's scope,
    /// deny (rule [`SCOPE_RULE`]) outside it. All actions only read.
    pub fn judge_cloudwatch(&self, action: &str, target: CloudWatchTarget<'_>) -> Verdict {
        let (kind, name, allowed, field) = match target {
            CloudWatchTarget::Account => return Verdict::allow(),
            CloudWatchTarget::Namespace(n) => (
                "namespace",
                n,
                self.cloudwatch.namespaces.is_match(n),
                "namespaces",
            ),
            CloudWatchTarget::LogGroup(g) => (
                "log group",
                g,
                self.cloudwatch.log_groups.is_match(g),
                "log_groups",
            ),
        };
        if allowed {
            return Verdict::allow();
        }
        let patterns = match target {
            CloudWatchTarget::LogGroup(_) => &self.file.cloudwatch.log_groups,
            _ => &self.file.cloudwatch.namespaces,
        };
        let mut v = Verdict::single(
            Decision::Deny,
            SCOPE_RULE,
            format!(
                "cloudwatch {action}: {kind} `{name}` is outside the policy's cloudwatch.{field} {patterns:?}"
            ),
        );
        if let Some(r) = v.reasons.first_mut() {
            r.source = Some(self.source.clone());
        }
        v
    }

    /// Judges the size of a call against the policy's limits (rule [`LIMITS_RULE`]).
    pub fn judge_cloudwatch_size(
        &self,
        action: &str,
        queries: usize,
        log_events: usize,
    ) -> Verdict {
        let policy = &self.file.cloudwatch;
        if queries > policy.max_queries {
            return Verdict::single(
                Decision::Deny,
                LIMITS_RULE,
                format!(
                    "cloudwatch {action}: {queries} queries is more than the policy's cloudwatch.max_queries ({}); split the call",
                    policy.max_queries
                ),
            );
        }
        if log_events > policy.max_log_events {
            return Verdict::single(
                Decision::Deny,
                LIMITS_RULE,
                format!(
                    "cloudwatch {action}: limit {log_events} is more than the policy's cloudwatch.max_log_events ({}); ask for fewer events or narrow the pattern or time range",
                    policy.max_log_events
                ),
            );
        }
        Verdict::allow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::PolicyFile;

    fn guard(section: &str) -> Guard {
        let text = format!("{{\"cloudwatch\": {section}}}");
        Guard::new(PolicyFile::parse(&text, "p.json").unwrap(), "p.json").unwrap()
    }

    #[test]
    fn the_default_section_allows_everything_within_the_limits() {
        let g = guard("{}");
        let v = g.judge_cloudwatch("get_metric_data", CloudWatchTarget::Namespace("AWS/EC2"));
        assert_eq!(v.decision, Decision::Allow);
        let v = g.judge_cloudwatch("filter_log_events", CloudWatchTarget::LogGroup("/aws/x"));
        assert_eq!(v.decision, Decision::Allow);
        assert_eq!(
            g.judge_cloudwatch_size("x", 500, 1000).decision,
            Decision::Allow
        );
        let v = g.judge_cloudwatch_size("x", 501, 0);
        assert_eq!(v.decision, Decision::Deny);
        assert!(v.summary().contains("max_queries (500)"), "{}", v.summary());
        let v = g.judge_cloudwatch_size("x", 0, 1001);
        assert!(
            v.summary().contains("max_log_events (1000)"),
            "{}",
            v.summary()
        );
    }

    #[test]
    fn outside_the_globs_is_denied_under_cloudwatch_scope() {
        let g = guard(r#"{"namespaces": ["MyApp/*", "AWS/EC2"], "log_groups": ["/app/*"]}"#);
        let ok = g.judge_cloudwatch("x", CloudWatchTarget::Namespace("MyApp/web/api"));
        assert_eq!(ok.decision, Decision::Allow);
        let no = g.judge_cloudwatch("get_metric_data", CloudWatchTarget::Namespace("AWS/RDS"));
        assert_eq!(no.decision, Decision::Deny);
        assert_eq!(no.reasons[0].rule, SCOPE_RULE);
        assert!(no.summary().contains("`AWS/RDS`"), "{}", no.summary());
        let logs = g.judge_cloudwatch("x", CloudWatchTarget::LogGroup("/secret/audit"));
        assert_eq!(logs.decision, Decision::Deny);
        assert!(g.cloudwatch_namespace_allowed("AWS/EC2"));
        assert!(!g.cloudwatch_namespace_allowed("AWS/EC2x"));
    }

    #[test]
    fn a_bad_glob_names_its_field() {
        let text = r#"{"cloudwatch": {"namespaces": ["ok", "[bad"]}}"#;
        let err = Guard::new(PolicyFile::parse(text, "p.json").unwrap(), "p.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cloudwatch.namespaces[1]"), "{err}");
    }
}
