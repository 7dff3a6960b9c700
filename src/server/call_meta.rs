//! What a tool call's result says about itself besides its text, in the result's `_meta`
//! under `pi-mcp`: the guard's decision and its deciding rules, whether the tool did its work,
//! a command's exit status, and the approval a held command waits as. The built-in agent
//! reads it to report what really ran, what was refused and what waits for a human, without
//! parsing the prose meant for the model; other MCP clients may ignore it.

use rmcp::model::{CallToolResult, MetaObject};
use serde::{Deserialize, Serialize};

use crate::guard::{Decision, Verdict};
use crate::store::approvals::Approval;

/// The `_meta` key this lives under.
pub const META_KEY: &str = "pi-mcp";

/// The facts of one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallMeta {
    /// The guard's decision on the call (`allow` for calls it had nothing to say about).
    pub decision: Decision,
    /// Whether the tool did its work: a `bash` command started, an edit was written, a query
    /// ran. `false` when it was refused, held for approval or failed before doing anything.
    pub ran: bool,
    /// A `bash` command's exit code (absent when it did not run or was killed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub timed_out: bool,
    /// The rules that made the decision what it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// The approval the call waits as (or that was denied or voided).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRef>,
}

/// An approval, as far as a result needs to name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRef {
    pub id: String,
    /// `pending`, `denied`, ... as in the store.
    pub status: String,
    pub expires_at: String,
}

impl From<&Approval> for ApprovalRef {
    fn from(a: &Approval) -> Self {
        ApprovalRef {
            id: a.id.clone(),
            status: a.status.clone(),
            expires_at: a.expires_at.clone(),
        }
    }
}

impl CallMeta {
    /// The facts of a call the guard judged `verdict`; `ran` as above.
    pub fn new(verdict: &Verdict, ran: bool) -> CallMeta {
        CallMeta {
            decision: verdict.decision,
            ran,
            exit_code: None,
            timed_out: false,
            rules: verdict.deciding_reasons().map(|r| r.rule.clone()).collect(),
            approval: None,
        }
    }
}

/// Puts `meta` into the result's `_meta`.
pub fn attach(result: &mut CallToolResult, meta: &CallMeta) {
    let Ok(value) = serde_json::to_value(meta) else {
        return;
    };
    result
        .meta
        .get_or_insert_with(|| MetaObject(serde_json::Map::new()))
        .0
        .insert(META_KEY.to_string(), value);
}

/// The facts a result carries, if it carries them (results of pi-mcp's own server do).
pub fn read(result: &CallToolResult) -> Option<CallMeta> {
    let value = result.meta.as_ref()?.0.get(META_KEY)?;
    serde_json::from_value(value.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_facts_survive_the_round_trip_through_a_result() {
        let mut result = CallToolResult::success(vec![]);
        assert_eq!(read(&result), None);
        let verdict = Verdict::single(Decision::Deny, "rm-root-or-home", "no");
        let mut meta = CallMeta::new(&verdict, false);
        meta.approval = Some(ApprovalRef {
            id: "abc".into(),
            status: "denied".into(),
            expires_at: "2030-01-01T00:00:00.000Z".into(),
        });
        attach(&mut result, &meta);
        let wire = serde_json::to_value(&result).unwrap();
        assert_eq!(wire["_meta"]["pi-mcp"]["decision"], "deny");
        assert_eq!(wire["_meta"]["pi-mcp"]["rules"][0], "rm-root-or-home");
        assert_eq!(read(&result), Some(meta));
    }
}
