//! Where pi-mcp keeps what it must trust: the state store (approvals, audit log, alert state)
//! and the default OSV database. They live outside the workspace, because every `bash` child
//! may write anywhere in the workspace (the OS sandbox cannot carve a subdirectory out of a
//! tree it grants), and an agent that can write the store can forge its own approvals.
//!
//! The directory is `$PI_MCP_STATE_DIR` when set, else `$XDG_STATE_HOME/pi-mcp/<slug>`, else
//! `$HOME/.local/state/pi-mcp/<slug>`, where the slug names the primary workspace root in a
//! readable and unique way: its last path component and a short hash of its canonical path.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The state store's file name inside the state directory.
pub const STATE_DB: &str = "state.db";
/// The default OSV database's directory name inside the state directory.
pub const OSV_DIR: &str = "osv";
/// Where the state store used to live, relative to the primary root (before it moved out).
pub const OLD_STATE_DB: &str = ".pi-mcp/state.db";
/// Most characters of the workspace's name kept in its slug.
const SLUG_NAME_CHARS: usize = 40;
/// Hex digits of the workspace path's SHA-256 kept in its slug.
const SLUG_HASH_CHARS: usize = 12;

/// Why the state directory could not be found.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot place the state directory: neither PI_MCP_STATE_DIR, XDG_STATE_HOME (absolute) nor \
     HOME is set; set PI_MCP_STATE_DIR (or --state-dir) to a directory outside the workspace"
)]
pub struct NoStateDir;

/// The state directory for the workspace whose primary root is `primary`. `explicit` is
/// `--state-dir`/`$PI_MCP_STATE_DIR`; `env` reads the environment (`XDG_STATE_HOME`, `HOME`).
pub fn state_dir(
    explicit: Option<&Path>,
    primary: &Path,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, NoStateDir> {
    if let Some(dir) = explicit.filter(|d| !d.as_os_str().is_empty()) {
        return Ok(std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()));
    }
    let absolute = |var: &str| {
        env(var).map(PathBuf::from).filter(|p| p.is_absolute()) // the XDG spec says to ignore relative values
    };
    let base = match absolute("XDG_STATE_HOME") {
        Some(state) => state,
        None => absolute("HOME").ok_or(NoStateDir)?.join(".local/state"),
    };
    Ok(base.join("pi-mcp").join(slug(primary)))
}

/// `<last component>-<hash>`: readable, and unique per canonical primary root.
pub fn slug(primary: &Path) -> String {
    let name: String = primary
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_else(|| "root".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(SLUG_NAME_CHARS)
        .collect();
    let name = name.trim_start_matches('.');
    let name = if name.is_empty() { "root" } else { name };
    let digest = Sha256::digest(primary.as_os_str().as_encoded_bytes());
    let hash: String = hex::encode(digest).chars().take(SLUG_HASH_CHARS).collect();
    format!("{name}-{hash}")
}

/// The file of a `sqlite:` state URL, made absolute; `None` for PostgreSQL, in-memory
/// databases and URLs that do not parse (opening them reports the problem).
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    if !url.starts_with("sqlite:") || url.contains("mode=memory") {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let file = options.get_filename();
    let text = file.to_string_lossy();
    if text.is_empty() || text.starts_with("file:sqlx-in-memory") || text == ":memory:" {
        return None;
    }
    Some(std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf()))
}

/// The canonical form of `path`, which may not exist yet: its nearest existing ancestor is
/// canonicalised and the rest appended (symbolic links decide what the sandbox grants).
pub fn canonical(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut cur = crate::guard::paths::lexical(path);
    loop {
        if let Ok(found) = cur.canonicalize() {
            return rest.iter().rev().fold(found, |acc, part| acc.join(part));
        }
        match (cur.file_name().map(|n| n.to_os_string()), cur.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                cur = parent.to_path_buf();
            }
            _ => return crate::guard::paths::lexical(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn the_state_dir_is_explicit_else_xdg_else_home() {
        let ws = Path::new("/srv/app");
        let s = slug(ws);
        let got = state_dir(Some(Path::new("/var/lib/pi")), ws, env(&[])).unwrap();
        assert_eq!(got, PathBuf::from("/var/lib/pi"));
        let got = state_dir(None, ws, env(&[("XDG_STATE_HOME", "/x"), ("HOME", "/h")])).unwrap();
        assert_eq!(got, Path::new("/x/pi-mcp").join(&s));
        // A relative XDG_STATE_HOME is ignored, as the XDG spec asks.
        let got = state_dir(None, ws, env(&[("XDG_STATE_HOME", "rel"), ("HOME", "/h")])).unwrap();
        assert_eq!(got, Path::new("/h/.local/state/pi-mcp").join(&s));
        assert!(state_dir(None, ws, env(&[])).is_err());
    }

    #[test]
    fn slugs_are_readable_and_unique_per_path() {
        let a = slug(Path::new("/srv/app"));
        let b = slug(Path::new("/home/me/app"));
        assert!(a.starts_with("app-") && b.starts_with("app-"), "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(a, slug(Path::new("/srv/app")));
        assert_eq!(a.len(), "app-".len() + SLUG_HASH_CHARS);
        assert!(slug(Path::new("/")).starts_with("root-"));
        let odd = slug(Path::new("/w/my project ünï/../.hidden"));
        assert!(
            odd.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "{odd}"
        );
        assert!(!odd.starts_with('.'), "{odd}");
    }

    #[test]
    fn sqlite_files_are_found_in_state_urls() {
        assert_eq!(
            sqlite_file("sqlite:///var/pi/state.db?mode=rwc"),
            Some(PathBuf::from("/var/pi/state.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:/var/pi/s.db"),
            Some(PathBuf::from("/var/pi/s.db"))
        );
        assert!(sqlite_file("sqlite::memory:").is_none());
        assert!(sqlite_file("postgres://u@h/db").is_none());
        let relative = sqlite_file("sqlite://rel.db").unwrap();
        assert!(relative.is_absolute() && relative.ends_with("rel.db"));
    }

    #[test]
    fn canonical_resolves_the_existing_part() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        let missing = dir.path().join("a/../b/state.db");
        assert_eq!(canonical(&missing), real.join("b/state.db"));
    }
}
