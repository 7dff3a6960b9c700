//! The policy's `hidden_paths`: which paths no `bash` child may read. Parsed and checked when
//! the policy loads (so a bad pattern is reported with the policy's name and the field); the
//! sandbox finds the existing paths for each call and covers them.

use std::path::{Path, PathBuf};

use globset::Glob;

use super::lazy::LazyGlobSet;

/// The hidden-path patterns, compiled.
#[derive(Debug, Clone, Default)]
pub struct HiddenPatterns {
    /// `~/...` entries (relative to the home directory) and absolute ones.
    listed: Vec<Listed>,
    /// File-name globs (`.env*`, `*.pem`).
    names: Option<LazyGlobSet>,
}

#[derive(Debug, Clone)]
enum Listed {
    Home(PathBuf),
    Absolute(PathBuf),
}

impl HiddenPatterns {
    /// Builds the name set now; why it does not compile.
    pub(super) fn force(&self) -> Result<(), String> {
        self.names.as_ref().map_or(Ok(()), LazyGlobSet::force)
    }

    /// Compiles `patterns`; the error names the entry and says what is accepted.
    pub fn new(patterns: &[String]) -> Result<HiddenPatterns, (usize, String)> {
        let mut listed = Vec::new();
        let mut names = Vec::new();
        let mut any_name = false;
        for (i, p) in patterns.iter().enumerate() {
            if p == "~" || p == "~/" || p == "/" {
                return Err((
                    i,
                    format!("`{p}` would hide a whole tree: name what to hide"),
                ));
            } else if let Some(rest) = p.strip_prefix("~/") {
                listed.push(Listed::Home(PathBuf::from(rest)));
            } else if p.starts_with('/') {
                listed.push(Listed::Absolute(PathBuf::from(p)));
            } else if !p.contains('/') && !p.is_empty() {
                names.push(Glob::new(p).map_err(|e| (i, format!("`{p}`: {e}")))?);
                any_name = true;
            } else {
                return Err((
                    i,
                    format!(
                        "`{p}`: write `~/...`, an absolute path, or a file-name glob without `/`"
                    ),
                ));
            }
        }
        let names = match any_name {
            true => Some(LazyGlobSet::deny_list(names)),
            false => None,
        };
        Ok(HiddenPatterns { listed, names })
    }

    /// The listed paths, with `~` as `home`.
    pub fn listed(&self, home: &Path) -> Vec<PathBuf> {
        self.listed
            .iter()
            .map(|l| match l {
                Listed::Home(rest) => home.join(rest),
                Listed::Absolute(p) => p.clone(),
            })
            .collect()
    }

    /// The file-name globs, if any.
    pub fn names(&self) -> Option<&LazyGlobSet> {
        self.names.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_or_say_why() {
        let p =
            HiddenPatterns::new(&["~/.ssh".into(), "/etc/shadow".into(), ".env*".into()]).unwrap();
        assert_eq!(
            p.listed(Path::new("/home/a")),
            vec![PathBuf::from("/home/a/.ssh"), PathBuf::from("/etc/shadow")]
        );
        assert!(p.names().unwrap().is_match(".env.local"));
        for bad in ["~", "a/b", "", "[x"] {
            assert!(HiddenPatterns::new(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
