//! The rule-based monitor: alert rules from `configs/alerts.json` ([`rules`], [`validate`]),
//! their values from CloudWatch metrics, logs and SQL ([`sources`]), the alert lifecycle
//! ([`transition`]) with its state kept in the store ([`state`]), and notifications through a
//! store-backed outbox ([`outbox`]). `pi-mcp monitor` ([`command`]) evaluates once; the
//! heartbeat daemon evaluates on an interval.

pub mod chart;
pub mod command;
pub mod evaluate;
pub mod health;
pub mod lease;
pub mod mcp;
pub mod outbox;
pub mod rules;
pub mod silence;
pub mod sources;
pub mod state;
pub mod transition;
pub mod validate;
pub mod wiring;

use std::time::Instant;

use crate::store::AuditEntry;

pub use evaluate::{Evaluation, Monitor, MonitorError, RuleReport};
pub use rules::Rule;
pub use validate::{LoadedRules, Problem};

/// Default rules file, relative to the workspace (the user's own; not shipped).
pub const DEFAULT_RULES_FILE: &str = "configs/alerts.json";
/// The shipped example rules (one of each type), the starting point of a rules file.
pub const EXAMPLE_RULES_FILE: &str = "configs/alerts.example.json";

/// An audit-log entry for a monitor action (evaluations and notifications are not guarded
/// tool calls, so they are recorded as allowed with risk 0).
pub fn audit_entry(
    tool: &str,
    arguments: serde_json::Value,
    outcome: &str,
    started: Instant,
    client: &str,
) -> AuditEntry {
    AuditEntry {
        id: 0,
        ts: crate::store::approvals::timestamp(chrono::Utc::now()),
        tool: tool.to_string(),
        arguments,
        decision: "allow".into(),
        risk: 0,
        reasons: serde_json::json!([]),
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        outcome: outcome.to_string(),
        client: client.to_string(),
        redactions: 0,
    }
}
