//! Paths and the workspace: the roots every file tool is confined to, the protected paths that
//! stay untouchable inside them, and the lexical path reasoning rules use for `bash` arguments.
//! A file tool's `~` means the server's home (never a directory named `~`), and a symbolic
//! link that leads outside the workspace or nowhere is refused by name ([`super::links`]).

use std::path::{Component, Path, PathBuf};

use globset::GlobBuilder;

use super::lazy::LazyGlobSet;
use super::path_prefilter::FirstParts;

/// The workspace roots, canonicalised once at start.
#[derive(Debug, Clone)]
pub struct Workspace {
    roots: Vec<PathBuf>,
    /// What a leading `~` in a file tool's path means; `None`: such paths are refused.
    home: Option<PathBuf>,
}

/// Why a path was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("`{0}` is outside the workspace ({1}); use a path inside it")]
    Outside(String, String),
    #[error("`{0}` is a protected path (policy pattern `{1}`); pi-mcp never reads or edits it")]
    Protected(String, String),
    #[error("`{0}` does not exist")]
    Missing(String),
    #[error(
        "`{path}`: `~` is the server's home ({home}), and {expanded} is outside the workspace \
         ({roots}); use a path inside the workspace"
    )]
    OutsideHome {
        path: String,
        home: String,
        expanded: String,
        roots: String,
    },
    #[error("`{0}`: {1}")]
    Tilde(String, String),
    #[error(
        "`{path}` goes through the symbolic link `{link}`, which points to `{target}`, outside \
         the workspace ({roots}); pi-mcp does not read or write through it (the link is left as \
         it is)"
    )]
    LinkOutside {
        path: String,
        link: String,
        target: String,
        roots: String,
    },
    #[error(
        "`{path}` goes through the symbolic link `{link}`, whose target `{target}` does not \
         exist (a dangling link); pi-mcp does not read, create or edit files through it (the \
         link is left as it is): create the target inside the workspace first, or remove the \
         link"
    )]
    Dangling {
        path: String,
        link: String,
        target: String,
    },
    #[error("cannot resolve `{0}`: {1}")]
    Io(String, String),
}

impl Workspace {
    /// Canonicalises the roots; each must be an existing directory.
    pub fn new(roots: &[PathBuf]) -> Result<Workspace, String> {
        let mut out = Vec::new();
        for r in roots {
            let c = r
                .canonicalize()
                .map_err(|e| format!("workspace root {}: {e}", r.display()))?;
            if !c.is_dir() {
                return Err(format!("workspace root {} is not a directory", r.display()));
            }
            out.push(c);
        }
        if out.is_empty() {
            return Err("no workspace root given".into());
        }
        Ok(Workspace {
            roots: out,
            home: None,
        })
    }

    /// The same workspace, with `home` as what a leading `~` in a path means.
    pub fn with_home(mut self, home: PathBuf) -> Workspace {
        self.home = Some(home);
        self
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The first root: where relative paths start and where `.pi-mcp/` lives.
    pub fn primary(&self) -> &Path {
        &self.roots[0]
    }

    fn describe(&self) -> String {
        self.roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn contains(&self, p: &Path, allow_root: bool) -> bool {
        self.roots
            .iter()
            .any(|r| p.starts_with(r) && (allow_root || p != r))
    }

    /// Resolves `path` (relative to the primary root; a leading `~` is the home given with
    /// [`Workspace::with_home`]) to a canonical path inside the workspace, following symlinks.
    /// With `may_be_missing`, the file may not exist yet (its nearest existing ancestor is
    /// resolved instead), but never behind a dangling symbolic link.
    pub fn resolve(
        &self,
        path: &str,
        may_be_missing: bool,
        protected: &Protected,
    ) -> Result<PathBuf, PathError> {
        let joined = self.joined(path)?;
        let outside = || match (&self.home, path.starts_with('~')) {
            (Some(home), true) => PathError::OutsideHome {
                path: path.to_string(),
                home: home.display().to_string(),
                expanded: lexical(&joined).display().to_string(),
                roots: self.describe(),
            },
            _ => PathError::Outside(path.to_string(), self.describe()),
        };
        if let Some(pattern) = protected.matches(&lexical(&joined)) {
            return Err(PathError::Protected(path.to_string(), pattern));
        }
        let canonical = match super::links::without_links(&joined) {
            Some(path) => Ok(path),
            None => joined.canonicalize(),
        };
        let resolved = match canonical {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some((link, target)) = super::links::dangling(&joined) {
                    return Err(PathError::Dangling {
                        path: path.to_string(),
                        link: link.display().to_string(),
                        target: target.display().to_string(),
                    });
                }
                if !may_be_missing {
                    let lex = lexical(&joined);
                    if !self.contains(&lex, false) {
                        return Err(outside());
                    }
                    return Err(PathError::Missing(path.to_string()));
                }
                resolve_missing(&joined).map_err(|e| PathError::Io(path.to_string(), e))?
            }
            Err(e) => return Err(PathError::Io(path.to_string(), e.to_string())),
        };
        if !self.contains(&resolved, false) {
            let inside = |p: &Path| self.contains(p, false);
            if let Some((link, target)) = super::links::leaving(&joined, inside) {
                return Err(PathError::LinkOutside {
                    path: path.to_string(),
                    link: link.display().to_string(),
                    target: target.display().to_string(),
                    roots: self.describe(),
                });
            }
            return Err(outside());
        }
        if let Some(pattern) = protected.matches(&resolved) {
            return Err(PathError::Protected(path.to_string(), pattern));
        }
        Ok(resolved)
    }

    /// `path` with a leading `~` or `~/` replaced by the home, `None` when it has none; `~user`
    /// and a `~` without a known home are refused (never taken as a directory named `~`).
    fn expand_home(&self, path: &str) -> Result<Option<PathBuf>, PathError> {
        let Some(rest) = path.strip_prefix('~') else {
            return Ok(None);
        };
        let refuse = |why: &str| Err(PathError::Tilde(path.to_string(), why.to_string()));
        if !(rest.is_empty() || rest.starts_with('/')) {
            return refuse(
                "`~user` paths are not expanded; give the path inside the workspace (relative to \
                 its root, or absolute)",
            );
        }
        match &self.home {
            Some(home) => Ok(Some(home.join(rest.trim_start_matches('/')))),
            None => refuse(
                "`~` would mean the server's home, which is not known here; give the path inside \
                 the workspace (relative to its root, or absolute)",
            ),
        }
    }

    /// `path` made absolute (relative to the primary root, `~` expanded), not yet resolved.
    fn joined(&self, path: &str) -> Result<PathBuf, PathError> {
        Ok(match self.expand_home(path)? {
            Some(expanded) => expanded,
            None if Path::new(path).is_absolute() => PathBuf::from(path),
            None => self.primary().join(path),
        })
    }

    /// What [`Workspace::resolve`] answers for an existing `path` when no symbolic link is on
    /// its way, found without touching the file system: the absolute path, when it has no `..`
    /// and is inside the workspace and not protected. Its caller opens it with
    /// [`super::links::open_without_links`], whose success proves that it is canonical; on
    /// `None` or a failed open, [`Workspace::resolve`] is the answer (and says what is wrong).
    pub fn unlinked(&self, path: &str, protected: &Protected) -> Option<PathBuf> {
        // `a.txt/` and `a.txt/.` name a directory, which `resolve` refuses for a file.
        if path.ends_with('/') || path.ends_with("/.") {
            return None;
        }
        // The common case, `src/main.rs`: relative, without `.`, `..` or repeated slashes, it
        // is already in normal form under the (canonical) primary root, inside the workspace.
        // Told by its bytes: walking `Path` components twice cost more than the check itself.
        let normal_relative = !path.starts_with(['/', '~'])
            && path
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if normal_relative {
            let joined = self.primary().join(path);
            return protected.matches(&joined).is_none().then_some(joined);
        }
        // `components` drops `.` and repeated slashes.
        let joined: PathBuf = self.joined(path).ok()?.components().collect();
        let plain = joined.components().all(|c| c != Component::ParentDir);
        (plain && self.contains(&joined, false) && protected.matches(&joined).is_none())
            .then_some(joined)
    }

    /// Resolves a working directory for `bash`: an existing directory inside (or equal to) a root.
    pub fn resolve_dir(&self, path: Option<&str>) -> Result<PathBuf, PathError> {
        let Some(path) = path else {
            return Ok(self.primary().to_path_buf());
        };
        let given = Path::new(path);
        let joined = if given.is_absolute() {
            given.to_path_buf()
        } else {
            self.primary().join(given)
        };
        let c = joined
            .canonicalize()
            .map_err(|_| PathError::Missing(path.to_string()))?;
        if !self.contains(&c, true) {
            return Err(PathError::Outside(path.to_string(), self.describe()));
        }
        if !c.is_dir() {
            return Err(PathError::Io(path.to_string(), "not a directory".into()));
        }
        Ok(c)
    }
}

/// Canonicalises the nearest existing ancestor and appends the rest, refusing `..` in the rest.
fn resolve_missing(p: &Path) -> Result<PathBuf, String> {
    let mut rest = Vec::new();
    let mut cur = p.to_path_buf();
    loop {
        if let Ok(c) = cur.canonicalize() {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return Ok(out);
        }
        match (cur.file_name(), cur.parent()) {
            (Some(name), Some(parent)) => {
                if name == ".." {
                    return Err("`..` after a missing directory".into());
                }
                rest.push(name.to_os_string());
                cur = parent.to_path_buf();
            }
            _ => return Err("no existing ancestor".into()),
        }
    }
}

/// Normalises `.` and `..` without touching the file system.
pub fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The protected-path patterns, compiled.
#[derive(Debug, Clone)]
pub struct Protected {
    patterns: Vec<String>,
    set: LazyGlobSet,
    /// Concrete names the patterns' parts stand for (`.ssh`, `.env`, `x.pem`, `id_x`), which a
    /// glob in a command is tried against.
    samples: Vec<String>,
    /// What a path must contain for any pattern to match it, when that can be said simply.
    first_parts: Option<FirstParts>,
}

impl Protected {
    /// Builds the set now; why it does not compile.
    pub(super) fn force(&self) -> Result<(), String> {
        self.set.force()
    }

    /// Compiles patterns: `name` matches that name anywhere, `dir/` a directory anywhere,
    /// `a/b` a path suffix, a leading `/` an absolute path.
    pub fn new(patterns: &[String]) -> Result<Protected, (usize, String)> {
        let mut b = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            let globs = if p.starts_with('/') {
                vec![
                    p.trim_end_matches('/').to_string(),
                    format!("{}/**", p.trim_end_matches('/')),
                ]
            } else if let Some(dir) = p.strip_suffix('/') {
                vec![format!("**/{dir}"), format!("**/{dir}/**")]
            } else {
                vec![format!("**/{p}"), format!("**/{p}/**")]
            };
            for g in globs {
                let glob = GlobBuilder::new(&g)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| (i, e.to_string()))?;
                b.push(glob);
            }
        }
        let set = LazyGlobSet::deny_list(b);
        let mut samples: Vec<String> = patterns
            .iter()
            .flat_map(|p| p.split('/'))
            .filter(|part| !part.is_empty())
            .flat_map(|part| {
                [
                    part.replace('*', "").replace('?', "x"),
                    part.replace(['*', '?'], "x"),
                ]
            })
            .filter(|s| !s.is_empty())
            .collect();
        samples.sort();
        samples.dedup();
        Ok(Protected {
            patterns: patterns.to_vec(),
            set,
            samples,
            first_parts: FirstParts::of(patterns),
        })
    }

    /// Concrete names the patterns' parts stand for, to try globs against.
    pub fn samples(&self) -> &[String] {
        &self.samples
    }

    /// The pattern that protects `path`, if any.
    pub fn matches(&self, path: &Path) -> Option<String> {
        // Most paths match nothing: most are told so by their components' bytes alone (a set
        // that does not compile still refuses everything), the rest by the yes/no search,
        // which allocates no list of matches.
        if let Some(parts) = &self.first_parts
            && self.set.compiles()
            && !parts.may_match(path.as_os_str().as_encoded_bytes())
        {
            return None;
        }
        if !self.set.is_match(path) {
            return None;
        }
        self.set
            .matches(path)
            .first()
            .map(|&i| self.patterns[i / 2].clone())
    }
}

/// What rules need to reason about paths in a `bash` command: where it runs, the roots, home.
#[derive(Debug, Clone)]
pub struct PathContext {
    pub cwd: PathBuf,
    pub roots: Vec<PathBuf>,
    pub home: PathBuf,
}

impl PathContext {
    /// The context after the `cd`s before a command. `None` when a target is only known at run
    /// time (`cd "$DIR"`, `cd -`), so relative paths cannot be placed.
    pub fn after_cd(&self, targets: &[super::words::Word]) -> Option<PathContext> {
        let mut ctx = self.clone();
        for t in targets {
            if t.dynamic {
                return None;
            }
            ctx.cwd = ctx.absolute(&t.text);
        }
        Some(ctx)
    }

    /// The absolute, lexically normalised form of a path argument (`~` is home).
    pub fn absolute(&self, arg: &str) -> PathBuf {
        let p = if arg == "~" {
            self.home.clone()
        } else if let Some(rest) = arg.strip_prefix("~/") {
            self.home.join(rest)
        } else if let Some(user) = arg.strip_prefix('~') {
            Path::new("/home").join(user)
        } else {
            self.cwd.join(arg)
        };
        lexical(&p)
    }

    /// True when the argument names the filesystem root, a workspace root itself, an ancestor
    /// of one, or anything outside every root.
    pub fn outside(&self, arg: &str) -> bool {
        let p = self.absolute(arg);
        !self.roots.iter().any(|r| p.starts_with(r) && &p != r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_patterns_match_anywhere() {
        let p = Protected::new(&[
            ".env*".into(),
            ".ssh/".into(),
            ".aws/credentials".into(),
            "*.pem".into(),
        ])
        .unwrap();
        for path in [
            "/w/.env",
            "/w/app/.env.local",
            "/h/.ssh/config",
            "/h/.aws/credentials",
            "/w/k.pem",
        ] {
            assert!(p.matches(Path::new(path)).is_some(), "{path}");
        }
        for path in ["/w/src/env.rs", "/w/.aws/config", "/w/README.md"] {
            assert!(p.matches(Path::new(path)).is_none(), "{path}");
        }
    }

    #[test]
    fn the_component_filter_never_changes_an_answer() {
        let policy: serde_json::Value =
            serde_json::from_str(super::super::policy::DEFAULT_POLICY).unwrap();
        let mut patterns: Vec<String> =
            serde_json::from_value(policy["protected_paths"].clone()).unwrap();
        patterns.extend(["a/b*", "/x/*", "notes", "/w/.pi-mcp/state.db*"].map(String::from));
        let p = Protected::new(&patterns).unwrap();
        assert!(
            p.first_parts.is_some(),
            "the shipped patterns are all filtered"
        );
        let parts = [
            "",
            ".",
            "..",
            ".env",
            ".env.local",
            "env",
            ".ssh",
            "id_rsa",
            "id",
            "x.pem",
            "pem",
            ".aws",
            "credentials",
            "config",
            "etc",
            "shadow",
            "proc",
            "1",
            "environ",
            ".pi-mcp",
            "state.db",
            "state.db-wal",
            "a.txt",
            ".config",
            "gh",
            "hosts.yml",
            "a",
            "b1",
            "x",
            "notes",
            "sudoers.d",
        ];
        let (mut checked, mut filtered) = (0, 0);
        for start in ["/", "", "/w/"] {
            for a in parts {
                for b in parts {
                    for c in ["", "k.key", ".docker/config.json", "x/y"] {
                        let path = format!("{start}{a}/{b}/{c}");
                        let path = Path::new(path.trim_end_matches('/'));
                        let by_set = p.set.matches(path).first().map(|&i| &p.patterns[i / 2]);
                        assert_eq!(p.matches(path).as_ref(), by_set, "{path:?}");
                        checked += 1;
                        let parts = p.first_parts.as_ref().unwrap();
                        filtered +=
                            usize::from(!parts.may_match(path.as_os_str().as_encoded_bytes()));
                    }
                }
            }
        }
        assert!(checked > 10_000);
        assert!(
            filtered > 2_000,
            "the filter answers only {filtered} of {checked}"
        );
        let odd = Protected::new(&["[ab]c".into(), ".ssh".into()]).unwrap();
        assert!(odd.first_parts.is_none(), "a class turns the filter off");
        assert!(odd.matches(Path::new("/w/ac")).is_some());
    }

    #[test]
    fn an_unlinked_path_is_what_resolve_finds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        for f in ["a.txt", "src/main.rs", ".env"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        let ws = Workspace::new(&[dir.path().to_path_buf()]).unwrap();
        let protected = Protected::new(&[".env*".into()]).unwrap();
        let root = ws.primary().display().to_string();
        let inside = format!("{root}/src/main.rs");
        for path in [
            "a.txt",
            "src/main.rs",
            "./a.txt",
            "src//main.rs",
            "src/./main.rs",
            &inside,
            "src/../a.txt",
            ".env",
            "a.txt/",
            "",
            "/etc/hostname",
        ] {
            let quick = ws.unlinked(path, &protected);
            let resolved = ws.resolve(path, false, &protected).ok();
            if let Some(q) = &quick {
                assert_eq!(Some(q), resolved.as_ref(), "{path:?}");
            }
            let expect_quick = ["a.txt", "src/main.rs", "./a.txt", "src//main.rs"];
            if expect_quick.contains(&path) || path == inside {
                assert!(quick.is_some(), "{path:?}");
            }
        }
    }

    #[test]
    fn lexical_paths_decide_outside() {
        let c = PathContext {
            cwd: "/w/sub".into(),
            roots: vec!["/w".into()],
            home: "/root".into(),
        };
        assert!(c.outside("/"));
        assert!(c.outside("~"));
        assert!(c.outside("../.."));
        assert!(c.outside(".."));
        assert!(!c.outside("build"));
        assert!(!c.outside("../other"));
        assert!(c.outside("/tmp/x"));
    }
}
