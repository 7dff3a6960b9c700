//! Keeps the daemon's rules in step with the rules file: a changed file is validated and, if
//! usable, replaces the rules; a bad edit (garbage, unreadable, deleted) keeps the last good
//! rules. Each problem is reported once, when it appears, not on every heartbeat.

use std::path::PathBuf;
use std::sync::Arc;

use crate::monitor::Rule;
use crate::monitor::validate;

/// The rules in force and how the file last looked.
pub struct RulesWatcher {
    path: PathBuf,
    last_text: Option<String>,
    last_error: Option<String>,
    rules: Arc<Vec<Rule>>,
    /// Rules skipped for problems in the file in force.
    pub invalid: usize,
}

impl RulesWatcher {
    pub fn new(path: PathBuf) -> RulesWatcher {
        RulesWatcher {
            path,
            last_text: None,
            last_error: None,
            rules: Arc::new(Vec::new()),
            invalid: 0,
        }
    }

    /// The last problem that kept the previous rules (none when the file in force is good).
    pub fn error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Re-reads the file if it changed and returns the rules in force.
    pub fn refresh(&mut self) -> Arc<Vec<Rule>> {
        let file = self.path.display().to_string();
        let text = match std::fs::metadata(&self.path) {
            Ok(m) if m.len() > validate::MAX_RULES_FILE_BYTES => Err(format!(
                "{file}: the file has {} bytes; the limit is {}",
                m.len(),
                validate::MAX_RULES_FILE_BYTES
            )),
            _ => std::fs::read_to_string(&self.path)
                .map_err(|e| format!("{file}: {}", validate::read_error(&e))),
        };
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                self.fail(e);
                return self.rules.clone();
            }
        };
        if self.last_text.as_deref() == Some(text.as_str()) {
            return self.rules.clone();
        }
        let first = self.last_text.is_none();
        match validate::parse(&text, &file) {
            Err(p) => {
                self.last_text = Some(text);
                self.fail(p.to_string());
            }
            Ok(loaded) => {
                self.last_text = Some(text);
                self.last_error = None;
                for p in &loaded.problems {
                    tracing::error!("skipping a rule: {p}");
                }
                self.invalid = loaded.problems.len();
                tracing::info!(
                    "{} rules from {file}: {} in force, {} skipped",
                    if first { "loaded" } else { "reloaded" },
                    loaded.rules.len(),
                    loaded.problems.len()
                );
                self.rules = Arc::new(loaded.rules);
            }
        }
        self.rules.clone()
    }

    fn fail(&mut self, message: String) {
        if self.last_error.as_deref() != Some(message.as_str()) {
            tracing::error!(
                "rules file unusable: {message}; keeping the last good rules ({} rules)",
                self.rules.len()
            );
            self.last_error = Some(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = r#"[{"id": "a", "type": "db_query", "params": {"query": "q"},
        "condition": {"operator": "gt", "threshold": 1}}]"#;

    #[test]
    fn a_bad_edit_keeps_the_last_good_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.json");
        let mut w = RulesWatcher::new(path.clone());
        assert!(w.refresh().is_empty() && w.error().is_some());
        std::fs::write(&path, RULE).unwrap();
        assert_eq!(w.refresh().len(), 1);
        assert!(w.error().is_none());
        std::fs::write(&path, "garbage{").unwrap();
        assert_eq!(w.refresh().len(), 1);
        assert!(w.error().is_some_and(|e| e.contains("alerts.json")));
        std::fs::write(&path, RULE.replace("\"a\"", "\"b\"")).unwrap();
        assert_eq!(w.refresh()[0].id(), "b");
    }
}
