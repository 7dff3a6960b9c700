//! What a computed word can name as a path, for the protected-path check: the expansions bash
//! would make that can be known before anything runs (`~`, `$HOME`, `${PWD}`, variables
//! assigned earlier on the same line, brace expansion), globs expanded against the file system
//! from the command's directory (bounded in entries and time; over the bound the word counts as
//! reaching everything), and, for a part that cannot be known (`$X`, `$(cmd)`), the literal
//! rest of the word, which may still point into a protected place (`$X/.ssh/id_rsa`).
//!
//! This is the one place where the guard reads the file system (directory listings only).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use globset::GlobBuilder;

use super::paths::PathContext;
use super::words::Word;

/// Most directory entries one command's globs may visit.
pub const MAX_GLOB_ENTRIES: usize = 10_000;
/// Longest time one command's globs may take.
pub const MAX_GLOB_TIME: Duration = Duration::from_millis(50);
/// Most words one brace expansion may produce.
pub const MAX_BRACE_WORDS: usize = 64;
/// What an unknown part of a word is replaced by before its path is judged.
pub const UNKNOWN: &str = "__computed__";

/// The paths a word may stand for.
#[derive(Debug, Default)]
pub struct Reach {
    /// Concrete texts to judge as paths (expanded, glob matches, and the pattern as written).
    pub texts: Vec<String>,
    /// Glob patterns (absolute) whose file names may match names not on disk yet.
    pub patterns: Vec<String>,
    /// Some part of the word could not be known; its texts hold [`UNKNOWN`] there.
    pub unknown: bool,
    /// The glob walk hit [`MAX_GLOB_ENTRIES`] or [`MAX_GLOB_TIME`].
    pub over_budget: bool,
}

/// A budget of entries and time shared by the globs of one command.
#[derive(Debug)]
pub struct Budget {
    entries: usize,
    until: Instant,
}

impl Budget {
    pub fn new() -> Budget {
        Budget {
            entries: MAX_GLOB_ENTRIES,
            until: Instant::now() + MAX_GLOB_TIME,
        }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new()
    }
}

/// What the computed word `w` may name, given the line's variables and the path context.
pub fn reach(w: &Word, vars: &[(String, Word)], paths: &PathContext, budget: &mut Budget) -> Reach {
    let mut out = Reach::default();
    let (text, unknown) = substitute(&w.text, vars, paths);
    out.unknown = unknown;
    for t in braces(&text) {
        let t = tilde(&t, paths);
        out.texts.push(t.clone());
        if !has_glob(&t) {
            continue;
        }
        let abs = paths.absolute(&t).to_string_lossy().into_owned();
        out.patterns.push(abs.clone());
        if unknown {
            continue;
        }
        match glob(Path::new(&abs), budget) {
            Some(found) => out
                .texts
                .extend(found.into_iter().map(|p| p.to_string_lossy().into_owned())),
            None => out.over_budget = true,
        }
    }
    out
}

/// True when a glob pattern's file-name parts could match a name that `is_protected` accepts:
/// each part with a wildcard and some literal text (`.ss?`, `id_*`, `*.pem`) is tried against
/// `names` (protected names made concrete, e.g. `.ssh`, `id_x`, `x.pem`) in place. A bare `*`
/// is left to the file-system walk, or every `cat *` would ask.
pub fn pattern_may_match(
    pattern: &str,
    names: &[String],
    is_protected: impl Fn(&Path) -> bool,
) -> bool {
    let parts: Vec<&str> = pattern.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if !has_glob(part) || part.chars().all(|c| matches!(c, '*' | '?')) {
            continue;
        }
        let Some(m) = component_matcher(part) else {
            continue;
        };
        for name in names
            .iter()
            .filter(|n| dot_ok(part, n) && m.is_match(n.as_str()))
        {
            let mut candidate = parts[..i].join("/");
            candidate.push('/');
            candidate.push_str(name);
            for rest in &parts[i + 1..] {
                candidate.push('/');
                candidate.push_str(rest);
            }
            if is_protected(Path::new(&candidate)) {
                return true;
            }
        }
    }
    false
}

/// Replaces `$NAME` / `${NAME}` whose value is known; other expansions become [`UNKNOWN`].
fn substitute(text: &str, vars: &[(String, Word)], paths: &PathContext) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    let mut unknown = false;
    let mut rest = text;
    while let Some(i) = rest.find(['$', '`']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let (len, value) = expansion_at(tail, vars, paths);
        match value {
            Some(v) => out.push_str(&v),
            None => {
                unknown = true;
                out.push_str(UNKNOWN);
            }
        }
        rest = &tail[len.max(1).min(tail.len())..];
    }
    out.push_str(rest);
    (out, unknown)
}

/// The length of the expansion at the start of `s` and its value when known.
fn expansion_at(s: &str, vars: &[(String, Word)], paths: &PathContext) -> (usize, Option<String>) {
    if let Some(body) = s.strip_prefix('`') {
        return (body.find('`').map_or(s.len(), |j| j + 2), None);
    }
    let after = &s[1..];
    if after.starts_with('(') || after.starts_with('{') {
        let open = after.as_bytes()[0];
        let close = if open == b'(' { b')' } else { b'}' };
        let mut depth = 0usize;
        for (j, b) in after.bytes().enumerate() {
            if b == open {
                depth += 1;
            } else if b == close {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    let inner = &after[1..j];
                    let value = (open == b'{').then(|| lookup(inner, vars, paths)).flatten();
                    return (j + 2, value);
                }
            }
        }
        return (s.len(), None);
    }
    let name_len = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after.len());
    if name_len == 0 {
        // `$?`, `$1`, `$@`, a lone `$`.
        return (2.min(s.len()), (after.is_empty()).then(|| "$".to_string()));
    }
    (name_len + 1, lookup(&after[..name_len], vars, paths))
}

/// The value of a variable the guard can know: assigned earlier on the line, or given to every
/// `bash` child (`HOME`, `PWD`).
fn lookup(name: &str, vars: &[(String, Word)], paths: &PathContext) -> Option<String> {
    if let Some((_, w)) = vars.iter().rev().find(|(n, _)| n == name) {
        return (!w.dynamic).then(|| w.text.clone());
    }
    match name {
        "HOME" => Some(paths.home.to_string_lossy().into_owned()),
        "PWD" => Some(paths.cwd.to_string_lossy().into_owned()),
        _ => None,
    }
}

fn tilde(t: &str, paths: &PathContext) -> String {
    if t == "~" || t.starts_with("~/") {
        format!("{}{}", paths.home.display(), &t[1..])
    } else {
        t.to_string()
    }
}

fn has_glob(t: &str) -> bool {
    t.contains(['*', '?']) || t.find('[').is_some_and(|i| t[i + 1..].contains(']'))
}

/// bash's rule: a name starting with `.` matches only a pattern starting with `.`.
fn dot_ok(pattern: &str, name: &str) -> bool {
    !name.starts_with('.') || pattern.starts_with('.')
}

fn component_matcher(part: &str) -> Option<globset::GlobMatcher> {
    GlobBuilder::new(part)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .ok()
        .map(|g| g.compile_matcher())
}

/// Brace expansion (`{a,b}`, one group after another), capped at [`MAX_BRACE_WORDS`].
fn braces(t: &str) -> Vec<String> {
    let mut out = vec![t.to_string()];
    let mut done = Vec::new();
    while let Some(w) = out.pop() {
        let Some((open, close)) = brace_group(&w) else {
            done.push(w);
            continue;
        };
        if done.len() + out.len() >= MAX_BRACE_WORDS {
            done.push(w);
            continue;
        }
        for alt in split_top(&w[open + 1..close]) {
            out.push(format!("{}{}{}", &w[..open], alt, &w[close + 1..]));
        }
    }
    done
}

/// The first `{...}` holding a top-level comma.
fn brace_group(w: &str) -> Option<(usize, usize)> {
    let open = w.find('{')?;
    let mut depth = 0;
    for (j, c) in w[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    let inner = &w[open + 1..open + j];
                    return (split_top(inner).len() > 1).then_some((open, open + j));
                }
            }
            _ => {}
        }
    }
    None
}

fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The existing paths an absolute glob matches, or `None` when the budget ran out.
fn glob(pattern: &Path, budget: &mut Budget) -> Option<Vec<PathBuf>> {
    let mut current = vec![PathBuf::from("/")];
    for part in pattern.iter().skip(1) {
        let part = part.to_string_lossy();
        if !has_glob(&part) {
            for p in &mut current {
                p.push(part.as_ref());
            }
            continue;
        }
        let m = component_matcher(&part)?;
        let mut next = Vec::new();
        for dir in &current {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                if budget.entries == 0 || Instant::now() > budget.until {
                    return None;
                }
                budget.entries -= 1;
                let name = e.file_name();
                let name = name.to_string_lossy();
                if dot_ok(&part, &name) && m.is_match(name.as_ref()) {
                    next.push(dir.join(name.as_ref()));
                }
            }
        }
        current = next;
        if current.is_empty() {
            break;
        }
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(cwd: &Path) -> PathContext {
        PathContext {
            cwd: cwd.to_path_buf(),
            roots: vec![cwd.to_path_buf()],
            home: PathBuf::from("/home/agent"),
        }
    }

    #[test]
    fn known_variables_tilde_and_braces_expand() {
        let c = ctx(Path::new("/w"));
        let w = |t: &str| Word {
            text: t.to_string(),
            dynamic: true,
        };
        let r = reach(&w("$HOME/.ssh/id_rsa"), &[], &c, &mut Budget::new());
        assert_eq!(r.texts, ["/home/agent/.ssh/id_rsa"]);
        assert!(!r.unknown);
        let vars = vec![("D".to_string(), Word::literal("/etc"))];
        let r = reach(&w("${D}/passwd"), &vars, &c, &mut Budget::new());
        assert_eq!(r.texts, ["/etc/passwd"]);
        let r = reach(&w("$X/.env"), &[], &c, &mut Budget::new());
        assert!(r.unknown && r.texts[0].contains(UNKNOWN));
        let r = reach(&w("~/{a,b}"), &[], &c, &mut Budget::new());
        assert_eq!(r.texts.len(), 2);
    }

    #[test]
    fn globs_expand_against_the_file_system_within_a_budget() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "x").unwrap();
        std::fs::write(dir.path().join("a.rs"), "x").unwrap();
        let c = ctx(dir.path());
        let w = Word {
            text: ".en?".into(),
            dynamic: true,
        };
        let r = reach(&w, &[], &c, &mut Budget::new());
        assert!(
            r.texts.iter().any(|t| t.ends_with("/.env")),
            "{:?}",
            r.texts
        );
        let star = Word {
            text: "*".into(),
            dynamic: true,
        };
        let r = reach(&star, &[], &c, &mut Budget::new());
        assert!(
            !r.texts.iter().any(|t| t.ends_with("/.env")),
            "{:?}",
            r.texts
        );
        let mut empty = Budget::new();
        empty.entries = 0;
        assert!(reach(&w, &[], &c, &mut empty).over_budget);
    }
}
