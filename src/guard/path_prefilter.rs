//! A quick, exact "cannot match" for the protected-path patterns (issue 14). Every file a tool
//! opens is checked against them, and most paths match none; the glob set answered that in
//! about 3,300 instructions per path (its regexes and literal searches run over the whole
//! path), a tenth of a pipelined `read`'s own work; this filter answers in about 500.
//!
//! A protected pattern matches whole path components (`*` never crosses a `/`), so a path a
//! relative pattern matches has a component matching the pattern's first part: `.ssh` in
//! `a/.ssh/id`, `.env*` in `x/.env.local`. An absolute pattern (`/etc/shadow`, `/proc/*/environ`,
//! the state store's files) matches only paths that begin with its text up to its first
//! wildcard. When every relative pattern's first part is a literal, a `prefix*` or a
//! `*suffix`, a path that fits none of these cannot match: that is decided here by comparing
//! bytes. Anything else (a first part with `?`, `[...]`, `{...}`, `\` or `**`, or a `*`
//! elsewhere) turns the filter off, and every path goes to the glob set as before. The glob
//! set stays the tool for matching; this only skips asking it where the answer is certain, a
//! job too small and too specific for a crate.

/// The first parts of the protected patterns, when all of them are simple enough.
#[derive(Debug, Clone)]
pub struct FirstParts {
    exact: Vec<Vec<u8>>,
    prefixes: Vec<Vec<u8>>,
    suffixes: Vec<Vec<u8>>,
    /// Absolute patterns: the text before their first wildcard, which a match begins with.
    absolute: Vec<Vec<u8>>,
    /// The first bytes of `exact` and `prefixes`, and the last bytes of `suffixes`.
    first_bytes: [bool; 256],
    last_bytes: [bool; 256],
}

/// Characters that make a glob more than its text.
const SPECIAL: [char; 7] = ['*', '?', '[', ']', '{', '}', '\\'];

impl FirstParts {
    /// The filter for `patterns` (as written in the policy: `name`, `dir/`, `a/b`, `/abs`), or
    /// `None` when some first part is not a literal, `prefix*` or `*suffix`.
    pub fn of(patterns: &[String]) -> Option<FirstParts> {
        let mut parts = FirstParts {
            exact: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            absolute: Vec::new(),
            first_bytes: [false; 256],
            last_bytes: [false; 256],
        };
        for p in patterns {
            let special = |s: &str| s.contains(SPECIAL);
            if p.starts_with('/') {
                let literal = p.split(SPECIAL).next().unwrap_or_default();
                let literal = if literal.len() == p.len() {
                    p.trim_end_matches('/')
                } else {
                    literal
                };
                parts.absolute.push(literal.as_bytes().to_vec());
                continue;
            }
            let first = p.split('/').next()?;
            if first.is_empty() {
                return None;
            } else if !special(first) {
                parts.exact.push(first.as_bytes().to_vec());
            } else if let Some(prefix) = first.strip_suffix('*').filter(|s| !special(s)) {
                parts.prefixes.push(prefix.as_bytes().to_vec());
            } else if let Some(suffix) = first.strip_prefix('*').filter(|s| !special(s)) {
                parts.suffixes.push(suffix.as_bytes().to_vec());
            } else {
                return None;
            }
        }
        // An empty prefix or suffix fits every component: no filter.
        if parts
            .prefixes
            .iter()
            .chain(&parts.suffixes)
            .any(Vec::is_empty)
        {
            return None;
        }
        for start in parts.exact.iter().chain(&parts.prefixes) {
            parts.first_bytes[usize::from(start[0])] = true;
        }
        for end in &parts.suffixes {
            parts.last_bytes[usize::from(end[end.len() - 1])] = true;
        }
        Some(parts)
    }

    /// Whether `path` begins as an absolute pattern does, or some component of it (its bytes
    /// between slashes, as the glob set sees them) fits a relative pattern's first part.
    /// False means no pattern can match `path`.
    pub fn may_match(&self, path: &[u8]) -> bool {
        self.absolute.iter().any(|a| path.starts_with(a))
            || path.split(|&b| b == b'/').any(|c| {
                // Most components are told apart by their first and last bytes alone.
                let starts = c.first().is_some_and(|&b| self.first_bytes[usize::from(b)]);
                let ends = c.last().is_some_and(|&b| self.last_bytes[usize::from(b)]);
                (starts
                    && (self.exact.iter().any(|e| e == c)
                        || self.prefixes.iter().any(|p| c.starts_with(p))))
                    || (ends && self.suffixes.iter().any(|s| c.ends_with(s)))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(patterns: &[&str]) -> Option<FirstParts> {
        FirstParts::of(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn simple_first_parts_filter_and_anything_else_turns_the_filter_off() {
        let f = parts(&[
            ".env*",
            ".ssh/",
            ".aws/credentials",
            "*.pem",
            "/etc/shadow",
            "/home/u/.local/state/pi-mcp/state.db*",
            "/proc/*/environ",
        ])
        .unwrap();
        for maybe in [
            "/w/.env.local",
            "/h/.ssh/id",
            "/h/.aws/config",
            "/w/k.pem",
            "/etc/shadow.bak",
            "/home/u/.local/state/pi-mcp/state.db-wal",
            "/proc/1/environ",
            ".env",
        ] {
            assert!(f.may_match(maybe.as_bytes()), "{maybe}");
        }
        for never in [
            "/w/a.txt",
            "/w/env/x",
            "/w/pem",
            "/w/.ss/h",
            "/w/x.pem.txt",
            "/etc/passwd",
            "/home/u/project/a.txt",
            "/proc",
            "etc/shadow",
        ] {
            assert!(!f.may_match(never.as_bytes()), "{never}");
        }
        for off in [
            &["a?c"][..],
            &["[ab]x"],
            &["{a,b}"],
            &["**/x"],
            &["a*b"],
            &["*"],
        ] {
            let f = parts(off);
            assert!(f.is_none() || f.unwrap().may_match(b"/anything"), "{off:?}");
        }
    }
}
