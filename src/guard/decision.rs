//! The verdict the gatekeeper reaches about a call, ordered so that the strictest of several
//! checks is simply their maximum.

use serde::{Deserialize, Serialize};

/// What happens to a call: run it, ask a human first, or refuse it.
///
/// The order matters: `Allow < Ask < Deny`, and combining checks takes `.max()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Ask,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Ask => "ask",
            Decision::Deny => "deny",
        }
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason that contributed to a verdict: which rule (or built-in check) said what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Rule id from the policy, or a built-in check such as `parse-error`.
    pub rule: String,
    /// What this reason alone would decide.
    pub decision: Decision,
    /// Risk points this reason adds (0 for block rules and built-ins that decide directly).
    pub risk: u32,
    /// Human-readable explanation naming the command it is about.
    pub message: String,
    /// The file the rule comes from (the policy file, a Rego file); absent for built-in checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.rule, self.message)
    }
}

/// The gatekeeper's full answer for one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub decision: Decision,
    /// 0..=100: the highest risk of any single command in the call.
    pub risk: u32,
    pub reasons: Vec<Reason>,
    /// Every simple command the call would run, as argv (words as written, quotes removed).
    pub commands: Vec<Vec<String>>,
}

impl Verdict {
    pub fn allow() -> Self {
        Verdict {
            decision: Decision::Allow,
            risk: 0,
            reasons: Vec::new(),
            commands: Vec::new(),
        }
    }

    /// A verdict with a single reason.
    pub fn single(decision: Decision, rule: &str, message: impl Into<String>) -> Self {
        Verdict {
            decision,
            risk: if decision == Decision::Deny { 100 } else { 0 },
            reasons: vec![Reason {
                rule: rule.to_string(),
                decision,
                risk: 0,
                message: message.into(),
                source: None,
            }],
            commands: Vec::new(),
        }
    }

    /// Combines two verdicts: the strictest decision and the highest risk win; reasons add up.
    pub fn merge(mut self, other: Verdict) -> Verdict {
        self.decision = self.decision.max(other.decision);
        self.risk = self.risk.max(other.risk);
        self.reasons.extend(other.reasons);
        self.commands.extend(other.commands);
        self
    }

    /// The reasons that made the decision what it is (those at the final decision's level).
    pub fn deciding_reasons(&self) -> impl Iterator<Item = &Reason> {
        self.reasons
            .iter()
            .filter(move |r| r.decision == self.decision)
    }

    /// A one-line summary: `deny (risk 100): [rm-root] ...; [...] ...`.
    pub fn summary(&self) -> String {
        let reasons: Vec<String> = self.deciding_reasons().map(|r| r.to_string()).collect();
        if reasons.is_empty() {
            format!("{} (risk {})", self.decision, self.risk)
        } else {
            format!(
                "{} (risk {}): {}",
                self.decision,
                self.risk,
                reasons.join("; ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictest_wins() {
        assert!(Decision::Allow < Decision::Ask && Decision::Ask < Decision::Deny);
        assert_eq!(
            [Decision::Ask, Decision::Deny, Decision::Allow]
                .into_iter()
                .max(),
            Some(Decision::Deny)
        );
        let v = Verdict::single(Decision::Ask, "a", "x").merge(Verdict::allow());
        assert_eq!(v.decision, Decision::Ask);
    }
}
