//! What `pi-mcp doctor` prints: the checks grouped by the part that answered them, one line
//! each (`ok` / `warn` / `fail`, what, what was found) with the fix on the line below, the
//! client snippets, and a summary; or all of it as one JSON object. The exit code follows the
//! worst status ([`EXIT_FAILED`] when anything failed).

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::clients::Clients;
use crate::health::{Check, Status};

/// Exit code when every check is `ok` or `warn`.
pub const EXIT_OK: u8 = 0;
/// Exit code when at least one check is `fail`.
pub const EXIT_FAILED: u8 = 1;

/// Width of the check-name column in the text report.
const NAME_WIDTH: usize = 22;

/// The checks one part answered.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub title: &'static str,
    pub checks: Vec<Check>,
}

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub warn: usize,
    pub fail: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: &'static str,
    pub workspace: PathBuf,
    pub sections: Vec<Section>,
    pub clients: Option<Clients>,
    pub summary: Summary,
    pub exit_code: u8,
}

impl Report {
    pub fn new(workspace: PathBuf) -> Report {
        Report {
            version: env!("CARGO_PKG_VERSION"),
            workspace,
            sections: Vec::new(),
            clients: None,
            summary: Summary::default(),
            exit_code: EXIT_OK,
        }
    }

    /// Adds a section and counts its checks.
    pub fn push(&mut self, title: &'static str, checks: Vec<Check>) {
        for c in &checks {
            match c.status {
                Status::Ok => self.summary.ok += 1,
                Status::Warn => self.summary.warn += 1,
                Status::Fail => self.summary.fail += 1,
            }
        }
        if self.summary.fail > 0 {
            self.exit_code = EXIT_FAILED;
        }
        self.sections.push(Section { title, checks });
    }

    /// The text report.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "pi-mcp doctor {} — workspace {}",
            self.version,
            self.workspace.display()
        );
        for s in &self.sections {
            let _ = writeln!(out, "\n{}", s.title);
            for c in &s.checks {
                let _ = writeln!(
                    out,
                    "  {:<5} {:<NAME_WIDTH$} {}",
                    c.status.as_str(),
                    c.name,
                    one_line(&c.detail)
                );
                if let Some(fix) = c.fix.as_ref().filter(|_| c.status != Status::Ok) {
                    let _ = writeln!(
                        out,
                        "  {:<5} {:<NAME_WIDTH$} fix: {}",
                        "",
                        "",
                        one_line(fix)
                    );
                }
            }
        }
        if let Some(clients) = &self.clients {
            let desktop = serde_json::to_string_pretty(&clients.claude_desktop)
                .unwrap_or_else(|e| format!("(cannot render: {e})"));
            let _ = writeln!(
                out,
                "\nClaude Desktop (claude_desktop_config.json; on macOS in ~/Library/Application \
                 Support/Claude/):\n{desktop}\n\nClaude Code:\n{}",
                clients.claude_code
            );
        }
        let s = self.summary;
        let _ = writeln!(
            out,
            "\n{} ok, {} warn, {} fail{}",
            s.ok,
            s.warn,
            s.fail,
            if s.fail > 0 {
                " (exit 1: fix the `fail` lines first)"
            } else {
                ""
            }
        );
        out
    }
}

/// `text` on one line: a receiver's multi-line answer must not break the report's columns.
fn one_line(text: &str) -> String {
    if !text.contains(['\n', '\r']) {
        return text.to_string();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_sets_the_exit_code_and_fixes_follow_their_line() {
        let mut r = Report::new(PathBuf::from("/ws"));
        r.push("build", vec![Check::ok("version", "pi-mcp 0")]);
        assert_eq!(r.exit_code, EXIT_OK);
        r.push(
            "databases",
            vec![
                Check::warn("database a", "writable", "drop allow_writes"),
                Check::fail("database b", "refused", "start it"),
            ],
        );
        assert_eq!(r.exit_code, EXIT_FAILED);
        assert_eq!(
            r.summary,
            Summary {
                ok: 1,
                warn: 1,
                fail: 1
            }
        );
        let text = r.text();
        let lines: Vec<&str> = text.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("  fail  database b"))
            .expect("the fail line");
        assert!(
            lines[at + 1].trim_start().starts_with("fix: start it"),
            "{text}"
        );
        assert!(text.ends_with("1 ok, 1 warn, 1 fail (exit 1: fix the `fail` lines first)\n"));
        assert_eq!(
            one_line("HTTP 500:\n<html>\n  <p>x</p>"),
            "HTTP 500: <html> <p>x</p>"
        );
    }
}
