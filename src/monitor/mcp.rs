//! What the MCP face shows of the monitor, as plain data (the server turns it into MCP
//! resources and prompt text): the rules with their current states (`pi-mcp://alerts`,
//! `pi-mcp://alerts/<id>`) and, for the `sre` prompt, one rule's alert context.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::state::{self, RuleState};
use super::validate;
use crate::store::Store;

/// The index resource; each rule is `pi-mcp://alerts/<id>`.
pub const ALERTS_URI: &str = "pi-mcp://alerts";

/// The rules file the server shows: `PI_MCP_ALERTS`, else `configs/alerts.json`, relative
/// paths taken from `root`.
pub fn rules_path(root: &Path) -> PathBuf {
    let p = std::env::var("PI_MCP_ALERTS")
        .ok()
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(super::DEFAULT_RULES_FILE));
    if p.is_absolute() { p } else { root.join(p) }
}

/// `(id, name)` of every valid rule (empty when there is no usable rules file).
pub fn rule_names(root: &Path) -> Vec<(String, String)> {
    validate::load(&rules_path(root))
        .map(|l| {
            l.rules
                .iter()
                .map(|r| (r.id().to_string(), r.display_name().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn state_json(s: Option<&RuleState>) -> Value {
    match s {
        None => json!({"state": "never evaluated"}),
        Some(s) => json!({
            "state": s.state.as_str(),
            "value": s.value,
            "since": crate::store::approvals::timestamp(s.since),
            "last_evaluated": s.last_evaluated.map(crate::store::approvals::timestamp),
            "last_notified": s.last_notified.map(crate::store::approvals::timestamp),
            "cooldown_until": s.cooldown_until.map(crate::store::approvals::timestamp),
            "problem": s.problem,
            "recent_values": s.recent.iter()
                .map(|(t, v)| json!([crate::store::approvals::timestamp(*t), v]))
                .collect::<Vec<_>>(),
        }),
    }
}

/// The JSON of `uri` (`pi-mcp://alerts` or `pi-mcp://alerts/<id>`); `Ok(None)`: no such rule.
pub async fn read(store: &Store, root: &Path, uri: &str) -> Result<Option<Value>, String> {
    let path = rules_path(root);
    let loaded = validate::load(&path).map_err(|e| e.to_string())?;
    let states = state::load_all(store).await.map_err(|e| e.to_string())?;
    let silences = super::silence::active(store, chrono::Utc::now())
        .await
        .map_err(|e| e.to_string())?;
    let entry = |r: &super::Rule| {
        let mut v = serde_json::to_value(&r.spec).unwrap_or_default();
        v["current"] = state_json(states.get(r.id()));
        // Evaluated as usual, but its notices are not sent while this is in force.
        v["silence"] = serde_json::to_value(silences.get(r.id())).unwrap_or_default();
        v
    };
    if uri == ALERTS_URI {
        return Ok(Some(json!({
            "file": path.display().to_string(),
            "rules": loaded.rules.iter().map(entry).collect::<Vec<_>>(),
            "problems": loaded.problems,
        })));
    }
    let id = uri
        .strip_prefix(ALERTS_URI)
        .and_then(|r| r.strip_prefix('/'));
    Ok(id.and_then(|id| loaded.rules.iter().find(|r| r.id() == id).map(entry)))
}

/// For subscribers: per rule id, a key that changes when the rule's definition, state, problem,
/// last notification or cooldown changes. The value and the evaluation time change at every
/// heartbeat and are left out, so a subscriber hears about transitions, not about every beat.
pub async fn transition_keys(store: &Store, root: &Path) -> Result<Vec<(String, String)>, String> {
    let loaded = validate::load(&rules_path(root)).map_err(|e| e.to_string())?;
    let states = state::load_all(store).await.map_err(|e| e.to_string())?;
    let stamp = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(crate::store::approvals::timestamp)
            .unwrap_or_default()
    };
    Ok(loaded
        .rules
        .iter()
        .map(|r| {
            let definition = serde_json::to_string(&r.spec).unwrap_or_default();
            let key = match states.get(r.id()) {
                None => format!("never evaluated|{definition}"),
                Some(s) => format!(
                    "{}|{}|{}|{}|{}|{definition}",
                    s.state.as_str(),
                    stamp(Some(s.since)),
                    s.problem.as_deref().unwrap_or_default(),
                    stamp(s.last_notified),
                    stamp(s.cooldown_until),
                ),
            };
            (r.id().to_string(), key)
        })
        .collect())
}

/// Markdown describing rule `id`'s definition, state and recent values, for the `sre` prompt.
pub async fn rule_context(store: &Store, root: &Path, id: &str) -> Result<String, String> {
    let loaded = validate::load(&rules_path(root)).map_err(|e| e.to_string())?;
    let rule = loaded.rules.iter().find(|r| r.id() == id).ok_or_else(|| {
        let ids: Vec<&str> = loaded.rules.iter().map(|r| r.id()).collect();
        format!("no alert rule `{id}`; rules: {}", ids.join(", "))
    })?;
    let s = state::load_one(store, id)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = format!(
        "Alert rule `{}` ({}), type {}, condition {}, severity {}.\n",
        rule.id(),
        rule.display_name(),
        rule.spec.kind.as_str(),
        rule.condition_text(),
        rule.spec.severity
    );
    out.push_str(&format!(
        "Parameters: {}\n",
        serde_json::to_string(&rule.spec.params).unwrap_or_default()
    ));
    match &s {
        None => out.push_str("It has not been evaluated yet.\n"),
        Some(s) => {
            let value = s.value.map_or_else(|| "none".into(), |v| v.to_string());
            out.push_str(&format!(
                "Current state: {} since {} (last value {value}).\n",
                s.state.as_str(),
                crate::store::approvals::timestamp(s.since)
            ));
            if let Some(p) = &s.problem {
                out.push_str(&format!("Last evaluation error: {p}\n"));
            }
            if !s.recent.is_empty() {
                out.push_str("Recent values (oldest first):\n");
                for (t, v) in &s.recent {
                    out.push_str(&format!(
                        "- {}: {v}\n",
                        crate::store::approvals::timestamp(*t)
                    ));
                }
            }
        }
    }
    if let Some(r) = &rule.spec.runbook {
        out.push_str(&format!("Runbook: {r}\n"));
    }
    Ok(out)
}
