//! Policy patterns checked when the policy loads and compiled when first matched (issue 14).
//! Compiling every glob and regex of the policy into automata was a quarter of the server's
//! start-up, for patterns most sessions never try. The syntax is still checked at load
//! (`Glob::new` parses a glob; `regex_syntax` parses a regex as `regex` does), so a malformed
//! pattern is still reported at load with its file, rule and field. Only the automaton is
//! deferred: a glob that parsed always compiles; a regex that parsed can still exceed the
//! compiled-size limit, which [`LazyRegex`] reports at first use and then fails closed (the
//! criterion holds), and which `policy check` ([`super::Guard::load_checked`]) reports.
//! The built-in policy is compiled in and parsed whole by the test suite, so at start its
//! regexes and its rules' globs are not even parsed: that happens on first use too.

use std::sync::OnceLock;

use globset::{Glob, GlobMatcher, GlobSet, GlobSetBuilder};
use regex::Regex;

/// A glob whose matcher is built on first use; the glob itself is parsed at load, or (the
/// built-in policy's rules) on first use too.
#[derive(Debug, Clone)]
pub struct LazyGlob {
    glob: GlobSource,
    matcher: OnceLock<Option<GlobMatcher>>,
}

#[derive(Debug, Clone)]
enum GlobSource {
    Parsed(Glob),
    /// The pattern and how to parse it.
    Deferred {
        pattern: String,
        parse: fn(&str) -> Result<Glob, globset::Error>,
    },
}

impl LazyGlob {
    pub fn new(glob: Glob) -> LazyGlob {
        LazyGlob {
            glob: GlobSource::Parsed(glob),
            matcher: OnceLock::new(),
        }
    }

    /// `pattern`, parsed by `parse` on first use: for patterns known to be good (the built-in
    /// policy, whose every pattern the test suite parses with `policy check`'s loader).
    /// Parsing the rules' globs was a quarter of the policy's compile at start (issue 14).
    /// Should one not parse after all, it matches everything, as an unchecked regex does
    /// ([`LazyRegex::unchecked`]), and the log says so.
    pub fn deferred(pattern: &str, parse: fn(&str) -> Result<Glob, globset::Error>) -> LazyGlob {
        LazyGlob {
            glob: GlobSource::Deferred {
                pattern: pattern.to_string(),
                parse,
            },
            matcher: OnceLock::new(),
        }
    }

    /// The matcher; `None`: a deferred pattern that does not parse (it matches everything).
    fn matcher(&self) -> Option<&GlobMatcher> {
        self.matcher
            .get_or_init(|| match &self.glob {
                GlobSource::Parsed(glob) => Some(glob.compile_matcher()),
                GlobSource::Deferred { pattern, parse } => match parse(pattern) {
                    Ok(glob) => Some(glob.compile_matcher()),
                    Err(e) => {
                        tracing::error!(
                            "policy glob `{pattern}` does not parse ({e}); it matches everything"
                        );
                        None
                    }
                },
            })
            .as_ref()
    }

    pub fn is_match(&self, s: impl AsRef<std::path::Path>) -> bool {
        self.matcher().is_none_or(|m| m.is_match(s))
    }

    /// Builds the matcher now.
    pub fn force(&self) {
        self.matcher();
    }
}

/// Parsed globs whose set is built on first use. A set of globs that each parsed builds unless
/// it exceeds the regex size limit; [`LazyGlobSet::force`] reports that, and until then such a
/// set fails closed: a deny-list matches everything, an allow-list nothing.
#[derive(Debug, Clone, Default)]
pub struct LazyGlobSet {
    globs: Vec<Glob>,
    set: OnceLock<Result<GlobSet, String>>,
    /// What a set that does not compile answers: true for what is refused or hidden.
    deny_list: bool,
}

impl LazyGlobSet {
    /// Globs that refuse, protect or hide what they match.
    pub fn deny_list(globs: Vec<Glob>) -> LazyGlobSet {
        LazyGlobSet {
            globs,
            set: OnceLock::new(),
            deny_list: true,
        }
    }

    /// Globs that allow what they match.
    pub fn allow_list(globs: Vec<Glob>) -> LazyGlobSet {
        LazyGlobSet {
            globs,
            set: OnceLock::new(),
            deny_list: false,
        }
    }

    fn built(&self) -> &Result<GlobSet, String> {
        self.set.get_or_init(|| {
            let mut b = GlobSetBuilder::new();
            for g in &self.globs {
                b.add(g.clone());
            }
            b.build().map_err(|e| {
                let message = e.to_string();
                tracing::error!("policy glob set does not compile ({message}); it fails closed");
                message
            })
        })
    }

    /// Builds the set now; the error says why it does not compile.
    pub fn force(&self) -> Result<(), String> {
        self.built().as_ref().map(|_| ()).map_err(Clone::clone)
    }

    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    /// Whether some glob matches (failing closed when the set does not compile).
    pub fn is_match(&self, s: impl AsRef<std::path::Path>) -> bool {
        match self.built() {
            Ok(set) => set.is_match(s),
            Err(_) => self.deny_list,
        }
    }

    /// Whether the set compiles (building it now if it is not built yet).
    pub fn compiles(&self) -> bool {
        self.built().is_ok()
    }

    /// The indices of the globs that match (failing closed: every one, or none).
    pub fn matches(&self, s: impl AsRef<std::path::Path>) -> Vec<usize> {
        match self.built() {
            Ok(set) => set.matches(s),
            Err(_) if self.deny_list => (0..self.globs.len()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// A regex whose syntax was checked at load and whose automaton is built on first use.
#[derive(Debug, Clone)]
pub struct LazyRegex {
    source: String,
    re: OnceLock<Result<Regex, String>>,
}

impl LazyRegex {
    /// Checks `source`'s syntax as `regex` will (the same parser, the same message).
    pub fn parse(source: &str) -> Result<LazyRegex, String> {
        regex_syntax::ParserBuilder::new()
            .build()
            .parse(source)
            .map_err(|e| regex::Error::Syntax(e.to_string()).to_string())?;
        Ok(LazyRegex {
            source: source.to_string(),
            re: OnceLock::new(),
        })
    }

    /// A regex whose syntax is known to be good (the built-in policy, which the test suite
    /// compiles whole); should it not compile after all, it fails closed.
    pub fn unchecked(source: &str) -> LazyRegex {
        LazyRegex {
            source: source.to_string(),
            re: OnceLock::new(),
        }
    }

    fn built(&self) -> &Result<Regex, String> {
        self.re.get_or_init(|| {
            Regex::new(&self.source).map_err(|e| {
                let message = e.to_string();
                tracing::error!(
                    "policy regex `{}` does not compile ({message}); it matches everything",
                    self.source
                );
                message
            })
        })
    }

    /// Builds the automaton now; the error says why it does not compile.
    pub fn force(&self) -> Result<(), String> {
        self.built().as_ref().map(|_| ()).map_err(Clone::clone)
    }

    /// Whether the regex matches; one that does not compile matches everything (fails closed).
    pub fn is_match(&self, s: &str) -> bool {
        match self.built() {
            Ok(re) => re.is_match(s),
            Err(_) => true,
        }
    }
}

impl super::Guard {
    /// Builds every matcher of the policy now, as loading did before issue 14, reporting a
    /// pattern that parsed but does not compile (over the size limit) with its rule and field.
    /// `policy check` and the health check use this ([`super::Guard::load_checked`]).
    pub(super) fn force_all(&self) -> Result<(), super::PolicyError> {
        let err = |rule: &str, field: String, message: String| super::PolicyError::Rule {
            file: self.source.clone(),
            rule: rule.to_string(),
            field,
            message,
        };
        for (kind, rules) in [
            ("block", &self.block),
            ("risk", &self.risk),
            ("code_loaders", &self.bounds.loaders),
            ("file_writers", &self.bounds.writers),
        ] {
            for (i, r) in rules.iter().enumerate() {
                r.force()
                    .map_err(|e| err(&r.id, format!("{kind}[{i}].{}", e.field), e.message))?;
            }
        }
        self.env_deny
            .force()
            .map_err(|m| err("-", "env_deny".into(), m))?;
        self.protected
            .force()
            .map_err(|m| err("-", "protected_paths".into(), m))?;
        self.hidden
            .force()
            .map_err(|m| err("-", "hidden_paths".into(), m))?;
        self.notify.force().map_err(|(f, m)| err("-", f, m))?;
        self.cloudwatch.force().map_err(|(f, m)| err("-", f, m))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Guard, PolicyFile};
    use super::*;

    fn load(text: &str) -> Result<Guard, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, text).unwrap();
        Guard::load(Some(&path)).map_err(|e| e.to_string())
    }

    #[test]
    fn a_malformed_pattern_is_still_reported_when_the_policy_loads() {
        let err =
            load(r#"{"block": [{"id": "r", "match": {"program": ["x"], "args_regex": "(open"}}]}"#)
                .expect_err("refused");
        let bad = String::from("(open");
        let regex_says = regex::Regex::new(&bad).unwrap_err().to_string();
        assert!(err.contains("rule `r`"), "{err}");
        assert!(err.contains("block[0].match.args_regex"), "{err}");
        assert!(err.contains(&regex_says), "{err}\nregex: {regex_says}");
        // A rule's glob that does not parse is taken literally (as before); a list's is refused.
        let err = load(r#"{"known_programs": ["x[b"]}"#).expect_err("refused");
        assert!(err.contains("known_programs[0]"), "{err}");
        let err = load(r#"{"env_deny": ["A[B"]}"#).expect_err("refused");
        assert!(err.contains("env_deny[0]"), "{err}");
        let err = load(r#"{"protected_paths": ["a[b"]}"#).expect_err("refused");
        assert!(err.contains("protected_paths[0]"), "{err}");
    }

    #[test]
    fn patterns_compile_on_first_use_and_match_as_before() {
        let re = LazyRegex::parse(r"(?i)drop\s+table").unwrap();
        assert!(re.re.get().is_none(), "not compiled at load");
        assert!(re.is_match("x DROP  table y") && !re.is_match("drop"));
        let g = LazyGlob::new(Glob::new("*.pem").unwrap());
        assert!(g.is_match("k.pem") && !g.is_match("k.txt"));
        let deny = LazyGlobSet::deny_list(vec![Glob::new("AWS_*").unwrap()]);
        assert!(deny.is_match("AWS_SECRET") && !deny.is_match("HOME"));
        assert_eq!(deny.matches("AWS_X"), vec![0]);
        // Deferred: not even parsed until first used; one that does not parse matches all.
        static PARSES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        fn counted(p: &str) -> Result<Glob, globset::Error> {
            PARSES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Glob::new(p)
        }
        let g = LazyGlob::deferred("*.pem", counted);
        assert_eq!(PARSES.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(g.is_match("k.pem") && !g.is_match("k.txt"));
        assert_eq!(
            PARSES.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "parsed once"
        );
        let bad = LazyGlob::deferred("a\\", Glob::new);
        assert!(
            bad.is_match("anything") && bad.is_match(""),
            "matches everything"
        );
    }

    #[test]
    fn a_regex_over_the_size_limit_fails_closed_and_policy_check_names_it() {
        let big = r"\w{1000}\w{1000}\w{1000}";
        let re = LazyRegex::parse(big).expect("the syntax is fine");
        assert!(re.force().is_err());
        assert!(re.is_match(""), "fails closed: the criterion holds");
        let text = format!(
            r#"{{"block": [{{"id": "big", "match": {{"program": ["x"], "args_regex": "{}"}}}}]}}"#,
            big.replace('\\', "\\\\")
        );
        let file = PolicyFile::parse(&text, "p.json").unwrap();
        let guard = Guard::new(file, "p.json").expect("loads");
        let err = guard.force_all().expect_err("named").to_string();
        assert!(
            err.contains("rule `big`") && err.contains("block[0].match.args_regex"),
            "{err}"
        );
    }
}
