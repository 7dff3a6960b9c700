//! Which existing paths a `bash` child must not read: the policy's `hidden_paths` made concrete
//! for this call (`~/...` under the home directory, absolute paths as they are, bare file-name
//! globs such as `.env*` or `*.pem` searched in the workspace roots and the home directory),
//! plus pi-mcp's own state. The child's mount namespace then covers each one
//! ([`super::namespace::cover_file`], [`super::namespace::cover_dir`]).

use std::path::{Path, PathBuf};

use crate::guard::lazy::LazyGlobSet;

use crate::guard::hidden::HiddenPatterns;

/// Directory levels searched below a workspace root for file-name globs.
pub const MAX_DEPTH: usize = 8;
/// Entries looked at per search; a larger workspace is searched up to here (the README says so).
pub const MAX_ENTRIES: usize = 20_000;
/// Directories not searched for file-name globs: version-control internals and dependency or
/// build trees that are not the operator's own files.
const SKIPPED_DIRS: &[&str] = &[".git", "node_modules", "target", ".venv", "__pycache__"];

/// The policy's hidden paths for one workspace and home, compiled once.
#[derive(Debug, Clone, Default)]
pub struct HiddenPaths {
    /// Absolute paths (home already expanded), pi-mcp's own state included.
    exact: Vec<PathBuf>,
    /// File-name globs.
    names: Option<LazyGlobSet>,
}

impl HiddenPaths {
    /// The policy's `patterns` with `~` as `home`, plus `always` (pi-mcp's own state).
    pub fn new(patterns: &HiddenPatterns, home: &Path, always: &[PathBuf]) -> HiddenPaths {
        let mut exact = always.to_vec();
        exact.extend(patterns.listed(home));
        HiddenPaths {
            exact,
            names: patterns.names().cloned(),
        }
    }

    /// The existing paths to cover for a call in `roots`, home `home`: each listed path that
    /// exists, and each file or directory whose name matches a glob (searched in the roots, at
    /// most [`MAX_DEPTH`] levels and [`MAX_ENTRIES`] entries, and in the home directory's top
    /// level). A path below another covered path is left out (covering the parent hides it).
    pub fn existing(&self, roots: &[PathBuf], home: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = self
            .exact
            .iter()
            .filter(|p| p.symlink_metadata().is_ok())
            .cloned()
            .collect();
        if let Some(names) = &self.names {
            let mut budget = MAX_ENTRIES;
            for root in roots {
                search(root, names, MAX_DEPTH, &mut budget, &mut found);
            }
            search(home, names, 0, &mut budget, &mut found);
        }
        found.sort();
        found.dedup();
        let mut kept: Vec<PathBuf> = Vec::with_capacity(found.len());
        for p in found {
            if !kept.iter().any(|k| p.starts_with(k)) {
                kept.push(p);
            }
        }
        kept
    }
}

fn search(
    dir: &Path,
    names: &LazyGlobSet,
    depth: usize,
    budget: &mut usize,
    out: &mut Vec<PathBuf>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let name = entry.file_name();
        let path = entry.path();
        if names.is_match(Path::new(&name)) {
            out.push(path);
            continue;
        }
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && depth > 0 && !SKIPPED_DIRS.iter().any(|s| name == *s) {
            search(&path, names, depth - 1, budget, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_become_existing_paths() {
        let dir = tempfile::tempdir().unwrap();
        let (home, ws) = (dir.path().join("home"), dir.path().join("ws"));
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::write(home.join(".ssh/id_rsa"), "k").unwrap();
        std::fs::write(home.join("cert.pem"), "c").unwrap();
        std::fs::create_dir_all(ws.join("app/node_modules/x")).unwrap();
        std::fs::write(ws.join("app/.env.local"), "s").unwrap();
        std::fs::write(ws.join("app/node_modules/x/.env"), "s").unwrap();
        std::fs::write(ws.join("main.rs"), "").unwrap();
        let state = dir.path().join("state");
        let patterns: Vec<String> = ["~/.ssh", "~/.netrc", ".env*", "*.pem", "id_*"]
            .map(String::from)
            .to_vec();
        let patterns = HiddenPatterns::new(&patterns).unwrap();
        let hidden = HiddenPaths::new(&patterns, &home, std::slice::from_ref(&state));
        let got = hidden.existing(std::slice::from_ref(&ws), &home);
        assert_eq!(
            got,
            vec![
                home.join(".ssh"),
                home.join("cert.pem"),
                ws.join("app/.env.local")
            ]
        );
    }
}
