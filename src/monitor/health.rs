//! The monitor's own health check for `pi-mcp doctor`: the rules file loads and validates (the
//! same loader the monitor and the heartbeat use), how many rules of each type it holds, and
//! what the enabled rules depend on (channels, databases, CloudWatch), so that the checks of
//! those parts can fail when a rule needs something missing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::rules::{Params, RuleType};
use super::validate;
use crate::health::Check;
use crate::tools::notify::Channel;

/// What the rules file says, for `doctor`.
#[derive(Debug, Default)]
pub struct RulesHealth {
    pub checks: Vec<Check>,
    /// Channel → ids of the enabled rules that send on it.
    pub channels: HashMap<Channel, Vec<String>>,
    /// Database name (`default` for `DATABASE_URL`) → ids of the enabled `db_query` rules.
    pub databases: HashMap<String, Vec<String>>,
    /// Ids of the enabled rules that read CloudWatch (metrics, log groups).
    pub cloudwatch: Vec<String>,
}

/// Checks the rules file at `path`. `explicit`: the operator named it (`--rules`,
/// `PI_MCP_ALERTS`), so a missing file fails; the default file may be absent (a warning).
pub fn health(path: &Path, explicit: bool) -> RulesHealth {
    let mut out = RulesHealth::default();
    let loaded = match validate::load(path) {
        Ok(l) => l,
        Err(problem) => {
            let missing = !path.exists();
            let check = if missing && !explicit {
                Check::warn(
                    "rules file",
                    format!(
                        "{} does not exist: the monitor and heartbeat have no rules",
                        path.display()
                    ),
                    format!(
                        "cp {} {} in the workspace and edit it, then `pi-mcp monitor validate`",
                        super::EXAMPLE_RULES_FILE,
                        super::DEFAULT_RULES_FILE
                    ),
                )
            } else if missing {
                Check::fail(
                    "rules file",
                    format!("{} does not exist", path.display()),
                    "correct --rules / PI_MCP_ALERTS, or create the file (`pi-mcp monitor schema` \
                     prints the format)",
                )
            } else {
                Check::fail(
                    "rules file",
                    problem.to_string(),
                    "fix the file at the position named (`pi-mcp monitor validate` re-checks it)",
                )
            };
            out.checks.push(check);
            return out;
        }
    };
    let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
    for rule in &loaded.rules {
        *by_type.entry(rule.spec.kind.as_str()).or_default() += 1;
        if !rule.spec.enabled {
            continue;
        }
        let id = rule.id().to_string();
        for c in &rule.spec.channels {
            out.channels.entry(*c).or_default().push(id.clone());
        }
        match &rule.params {
            Params::Metric(_) => out.cloudwatch.push(id),
            Params::LogKeyword(l) if l.log_group.is_some() => out.cloudwatch.push(id),
            Params::LogKeyword(_) => {}
            Params::DbQuery(d) => {
                let name = d
                    .database
                    .clone()
                    .unwrap_or_else(|| crate::tools::sql::DEFAULT_DATABASE.into());
                out.databases.entry(name).or_default().push(id);
            }
        }
    }
    let counts: Vec<String> = [RuleType::Metric, RuleType::LogKeyword, RuleType::DbQuery]
        .iter()
        .map(|t| {
            format!(
                "{} {}",
                by_type.get(t.as_str()).copied().unwrap_or(0),
                t.as_str()
            )
        })
        .collect();
    let enabled = loaded.rules.iter().filter(|r| r.spec.enabled).count();
    out.checks.push(Check::ok(
        "rules file",
        format!(
            "{}: {} valid rules ({enabled} enabled): {}",
            path.display(),
            loaded.rules.len(),
            counts.join(", ")
        ),
    ));
    for p in &loaded.problems {
        out.checks.push(Check::fail(
            "rule",
            p.to_string(),
            "fix the rule (it is skipped until then); `pi-mcp monitor validate` re-checks",
        ));
    }
    out
}
