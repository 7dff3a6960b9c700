//! Judges the package installs of one simple command against OSV advisories: a pinned version
//! with known vulnerabilities is refused with the advisory ids and the first fixed version; an
//! unpinned install resolves to a latest version unknown here, so it needs approval unless the
//! policy allows unpinned installs; with no advisory source at all, every install needs
//! approval.

use std::path::Path;

use super::{Install, Origin, installs};
use crate::guard::decision::Decision;
use crate::guard::osv::{Advisories, Finding};
use crate::guard::shell::Command;
use crate::guard::versions::Version;

/// A pinned version with known vulnerabilities (or a package every version of which is).
pub const RULE_VULNERABLE: &str = "osv-vulnerable";
/// An install whose version is not pinned.
pub const RULE_UNPINNED: &str = "osv-unpinned";
/// An install from a URL or repository, which OSV cannot check.
pub const RULE_UNCHECKED: &str = "osv-unchecked";
/// No advisory source is configured.
pub const RULE_NO_DATABASE: &str = "osv-no-database";
/// The command's packages cannot be read without running it.
pub const RULE_UNRESOLVED: &str = "osv-unresolved";
/// The advisory lookup failed.
pub const RULE_ERROR: &str = "osv-error";

/// One reason the install check gives, for the guard to merge into its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallReason {
    pub decision: Decision,
    pub rule: &'static str,
    pub message: String,
}

/// Checks every package `cmd` installs. `advisories` is `None` when no OSV database or
/// scanner is available; `allow_unpinned` is the policy's permission for unpinned installs
/// (and installs from URLs). Commands that install nothing give no reasons.
pub fn judge_installs(
    cmd: &Command,
    cwd: &Path,
    advisories: Option<&dyn Advisories>,
    allow_unpinned: bool,
) -> Vec<InstallReason> {
    let list = installs(cmd, cwd);
    if list.is_empty() {
        return Vec::new();
    }
    let shown = cmd.display();
    let mut out = Vec::new();
    let mut push = |decision, rule, message| {
        out.push(InstallReason {
            decision,
            rule,
            message,
        })
    };
    let (mut unpinned, mut unchecked, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
    for i in &list {
        match (&i.origin, advisories, &i.version) {
            (Origin::Local, ..) => {}
            (Origin::Unresolved(why), ..) => push(
                Decision::Ask,
                RULE_UNRESOLVED,
                format!(
                    "cannot tell which {} package `{}` installs ({why}): `{shown}`",
                    i.ecosystem, i.spec
                ),
            ),
            (Origin::Remote, ..) => unchecked.push(i),
            (Origin::Registry, None, _) => unknown.push(i),
            (Origin::Registry, Some(db), Some(v)) => match db.check(i.ecosystem, &i.name, v) {
                Ok(f) if f.is_empty() => {}
                Ok(f) => push(
                    Decision::Deny,
                    RULE_VULNERABLE,
                    vulnerable(i, v, &f, &shown),
                ),
                Err(e) => push(
                    Decision::Ask,
                    RULE_ERROR,
                    format!(
                        "cannot check {} {v} ({}) against OSV advisories: {e}: `{shown}`",
                        i.name, i.ecosystem
                    ),
                ),
            },
            (Origin::Registry, Some(db), None) => {
                let f = db.unfixed(i.ecosystem, &i.name);
                if !f.is_empty() {
                    let msg = format!(
                        "`{shown}` installs {} ({}), every version of which is affected by {}",
                        i.name,
                        i.ecosystem,
                        list_findings(&f)
                    );
                    push(Decision::Deny, RULE_VULNERABLE, msg);
                } else {
                    unpinned.push(i);
                }
            }
        }
    }
    if !unknown.is_empty() {
        push(
            Decision::Ask,
            RULE_NO_DATABASE,
            format!(
                "no OSV advisory database is loaded, so {} cannot be checked for known \
                 vulnerabilities (`pi-mcp osv update` downloads one): `{shown}`",
                names(&unknown)
            ),
        );
    }
    if let Some(first) = unpinned.first().filter(|_| !allow_unpinned) {
        push(
            Decision::Ask,
            RULE_UNPINNED,
            format!(
                "{} {} not pinned to an exact version: the version installed would be the \
                 latest, which is unknown here and cannot be checked against OSV advisories \
                 (pin one, e.g. {}): `{shown}`",
                names(&unpinned),
                verb(&unpinned),
                pin_example(first),
            ),
        );
    }
    if !unchecked.is_empty() && !allow_unpinned {
        push(
            Decision::Ask,
            RULE_UNCHECKED,
            format!(
                "{} {} installed from a URL or repository, which OSV advisories cannot \
                 check: `{shown}`",
                names(&unchecked),
                verb(&unchecked),
            ),
        );
    }
    out
}

fn verb(list: &[&Install]) -> &'static str {
    if list.len() == 1 { "is" } else { "are" }
}

/// `jinja2 (PyPI), lodash@^4 (npm, from requirements.txt:3)`.
fn names(list: &[&Install]) -> String {
    let shown: Vec<String> = list
        .iter()
        .map(|i| {
            if i.source == super::COMMAND_LINE {
                format!("`{}` ({})", i.spec, i.ecosystem)
            } else {
                format!("`{}` ({}, from {})", i.spec, i.ecosystem, i.source)
            }
        })
        .collect();
    shown.join(", ")
}

fn pin_example(i: &Install) -> String {
    use crate::guard::osv::Ecosystem::*;
    match i.ecosystem {
        PyPI => format!("{}==X.Y.Z", i.name),
        Npm | CratesIo => format!("{}@X.Y.Z", i.name),
        Go => format!("{}@vX.Y.Z", i.name),
        RubyGems => format!("{} -v X.Y.Z", i.name),
    }
}

/// `GHSA-a (CVE-1, fixed in 3.1.3): summary; GHSA-b (no fixed version): summary`.
fn list_findings(f: &[Finding]) -> String {
    let items: Vec<String> = f
        .iter()
        .map(|f| {
            let mut tags: Vec<String> = f.aliases.iter().take(3).cloned().collect();
            tags.push(match &f.fixed {
                Some(v) => format!("fixed in {v}"),
                None => "no fixed version".to_string(),
            });
            format!("{} ({}): {}", f.id, tags.join(", "), f.summary)
        })
        .collect();
    items.join("; ")
}

fn vulnerable(i: &Install, version: &str, f: &[Finding], shown: &str) -> String {
    let from = if i.source == super::COMMAND_LINE {
        String::new()
    } else {
        format!(" (from {})", i.source)
    };
    // the first version free of all of them: the highest of the first fixed versions
    let fixes: Option<Vec<&str>> = f.iter().map(|f| f.fixed.as_deref()).collect();
    let first_fixed = fixes.and_then(|v| {
        v.into_iter()
            .filter_map(|s| Version::parse(i.ecosystem, s).map(|p| (p, s)))
            .reduce(|a, b| match a.0.compare(&b.0) {
                Some(std::cmp::Ordering::Less) => b,
                _ => a,
            })
            .map(|(_, s)| s.to_string())
    });
    let advice = match first_fixed {
        Some(v) => format!("first fixed version: {v}"),
        None => "no fixed version for all of them".to_string(),
    };
    format!(
        "`{shown}` installs {} {version} ({}){from}, which has known vulnerabilities: {}; {advice}",
        i.name,
        i.ecosystem,
        list_findings(f)
    )
}
