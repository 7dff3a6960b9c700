//! Policy as code, the second way: Rego files evaluated in-process (regorus) after the JSON
//! policy. Each file's package `pimcp` may define `decision` ("allow" | "ask" | "deny") and
//! `reasons` (strings) for an input `{command, commands, cwd, tool, risk}`. Rego can only add
//! or tighten: the strictest of JSON and Rego wins, and a Rego error fails closed (`ask`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use regorus::{Engine, Value};

use super::decision::{Decision, Reason, Verdict};
use super::policy::PolicyError;

/// The package every pi-mcp Rego file declares.
pub const PACKAGE: &str = "pimcp";

/// One loaded Rego file.
struct RegoFile {
    path: String,
    engine: Mutex<Engine>,
}

/// Every Rego file the policy names, loaded and compiled.
pub struct RegoPolicies {
    files: Vec<RegoFile>,
}

impl std::fmt::Debug for RegoPolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let paths: Vec<&str> = self.files.iter().map(|r| r.path.as_str()).collect();
        f.debug_struct("RegoPolicies")
            .field("files", &paths)
            .finish()
    }
}

impl RegoPolicies {
    /// Loads `paths` (relative ones against `base`, the policy file's directory).
    pub fn load(
        paths: &[String],
        base: &Path,
        policy_file: &str,
    ) -> Result<RegoPolicies, PolicyError> {
        let mut files = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            let path: PathBuf = if Path::new(p).is_absolute() {
                PathBuf::from(p)
            } else {
                base.join(p)
            };
            let shown = path.display().to_string();
            let err = |message: String| PolicyError::Rule {
                file: policy_file.to_string(),
                rule: "-".into(),
                field: format!("rego[{i}]"),
                message,
            };
            let text = std::fs::read_to_string(&path)
                .map_err(|e| err(format!("cannot read {shown}: {e}")))?;
            let mut engine = Engine::new();
            let package = engine
                .add_policy(shown.clone(), text)
                .map_err(|e| err(format!("{shown}: {e}")))?;
            if package != format!("data.{PACKAGE}") {
                return Err(err(format!(
                    "{shown}: declares `{package}`; pi-mcp Rego files use `package {PACKAGE}`"
                )));
            }
            files.push(RegoFile {
                path: shown,
                engine: Mutex::new(engine),
            });
        }
        Ok(RegoPolicies { files })
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Judges one input; each file contributes its decision and reasons.
    pub fn judge(&self, input: &serde_json::Value) -> Verdict {
        let mut verdict = Verdict::allow();
        for file in &self.files {
            verdict = verdict.merge(file.judge(input));
        }
        verdict
    }
}

impl RegoFile {
    fn judge(&self, input: &serde_json::Value) -> Verdict {
        let fail = |message: String| {
            Verdict::single(
                Decision::Ask,
                "rego-error",
                format!("{}: {message}", self.path),
            )
        };
        let Ok(mut engine) = self.engine.lock() else {
            return fail("the Rego engine is unavailable after an earlier failure".into());
        };
        let value = match Value::from_json_str(&input.to_string()) {
            Ok(v) => v,
            Err(e) => return fail(format!("bad input: {e}")),
        };
        engine.set_input(value);
        let decision = match engine.eval_rule(format!("data.{PACKAGE}.decision")) {
            Ok(Value::Undefined) => Decision::Allow,
            Ok(v) => match serde_json::to_value(&v)
                .ok()
                .and_then(|j| j.as_str().map(str::to_owned))
                .as_deref()
            {
                Some("allow") => Decision::Allow,
                Some("ask") => Decision::Ask,
                Some("deny") => Decision::Deny,
                _ => {
                    return fail(format!(
                        "`decision` must be \"allow\", \"ask\" or \"deny\", got {v}"
                    ));
                }
            },
            // A file that does not define `decision` at all adds nothing.
            Err(e) if e.to_string().contains("not a valid rule path") => Decision::Allow,
            Err(e) => return fail(format!("evaluating `decision`: {e}")),
        };
        let reasons: Vec<String> = match engine.eval_rule(format!("data.{PACKAGE}.reasons")) {
            Ok(v) => match serde_json::to_value(&v) {
                Ok(serde_json::Value::Array(items)) => items
                    .into_iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect(),
                _ => Vec::new(),
            },
            Err(_) => Vec::new(),
        };
        if decision == Decision::Allow && reasons.is_empty() {
            return Verdict::allow();
        }
        let messages = if reasons.is_empty() {
            vec![format!("decided by {}", self.path)]
        } else {
            reasons
        };
        Verdict {
            decision,
            risk: if decision == Decision::Deny { 100 } else { 0 },
            reasons: messages
                .into_iter()
                .map(|m| Reason {
                    rule: format!("rego:{}", self.path),
                    decision,
                    risk: 0,
                    message: m,
                    source: Some(self.path.clone()),
                })
                .collect(),
            commands: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policies(text: &str) -> Result<RegoPolicies, PolicyError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.rego"), text).unwrap();
        RegoPolicies::load(&["p.rego".into()], dir.path(), "security.json")
    }

    #[test]
    fn rego_decides_and_explains() {
        let p = policies(
            "package pimcp\n\
             decision := \"deny\" if { some c in input.commands; c[0] == \"curl\"; contains(input.command, \"prod\") }\n\
             reasons contains \"no curl to prod\" if { decision == \"deny\" }\n",
        )
        .unwrap();
        let v = p.judge(&serde_json::json!({"command": "curl https://prod.example.com", "commands": [["curl", "https://prod.example.com"]], "cwd": "/w", "tool": "bash", "risk": 0}));
        assert_eq!(v.decision, Decision::Deny);
        assert!(
            v.reasons[0].rule.starts_with("rego:") && v.reasons[0].message == "no curl to prod"
        );
        let v = p.judge(&serde_json::json!({"command": "ls", "commands": [["ls"]], "cwd": "/w", "tool": "bash", "risk": 0}));
        assert_eq!(v.decision, Decision::Allow);
        assert!(v.reasons.is_empty());
    }

    #[test]
    fn bad_rego_is_a_load_error_and_bad_output_fails_closed() {
        assert!(policies("package pimcp\ndecision := \n").is_err());
        assert!(
            policies("package other\ndecision := \"deny\"\n")
                .unwrap_err()
                .to_string()
                .contains("package pimcp")
        );
        let p = policies("package pimcp\ndecision := 42\n").unwrap();
        assert_eq!(p.judge(&serde_json::json!({})).decision, Decision::Ask);
    }
}
