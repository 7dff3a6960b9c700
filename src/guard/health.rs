//! The guard's own health check for `pi-mcp doctor`: the policy in force loads, compiles and
//! passes its self-test (every rule's examples and counter-examples), and what it leaves open.

use std::path::Path;

use super::Guard;
use super::policy::SandboxMode;
use crate::health::Check;

/// Loads the policy at `path` (the built-in one when `None`) with every example checked. The
/// guard comes back with the check so that later checks can use the policy in force.
pub fn policy(path: Option<&Path>) -> (Check, Option<Guard>) {
    match Guard::load_checked(path) {
        Ok(g) => {
            let f = g.file();
            let examples: usize = f
                .block
                .iter()
                .chain(&f.risk)
                .map(|r| r.examples.len() + r.counter_examples.len())
                .sum();
            let rego = match f.rego.len() {
                0 => String::new(),
                n => format!(", {n} Rego file(s)"),
            };
            let check = Check::ok(
                "policy",
                format!(
                    "{}: {} block rules, {} risk rules{rego}; self-test passed ({examples} \
                     examples checked)",
                    g.source(),
                    f.block.len(),
                    f.risk.len()
                ),
            );
            (check, Some(g))
        }
        Err(e) => (
            Check::fail(
                "policy",
                e.to_string(),
                "fix the file at the position named (`pi-mcp policy validate FILE` re-checks it; \
                 `pi-mcp policy schema` prints the format), or unset PI_MCP_POLICY / --policy to \
                 use the built-in policy",
            ),
            None,
        ),
    }
}

/// What the policy says about confinement, beside what the machine enforces (the sandbox's
/// own checks): a policy that turns the sandbox off or opens the network is worth a warning.
pub fn posture(guard: &Guard) -> Vec<Check> {
    let f = guard.file();
    let mut out = Vec::new();
    let approvals = format!(
        "ask at risk {}, deny at risk {}; approvals wait {} s and expire after {} s",
        f.ask_at, f.deny_at, f.approval_wait_secs, f.approval_ttl_secs
    );
    out.push(Check::ok("thresholds", approvals));
    if f.sandbox == SandboxMode::Off {
        out.push(Check::warn(
            "sandbox mode",
            "the policy turns the OS sandbox off (\"sandbox\": \"off\"): bash runs unconfined",
            "set \"sandbox\": \"best_effort\" (or \"required\") in the policy",
        ));
    }
    out
}
