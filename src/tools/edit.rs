//! The `edit` tool: exact, unique text replacement (one or several edits, all or nothing),
//! keeping the file's BOM, line endings and permissions, written atomically (temp file and
//! rename), answered with a unified diff.

use std::io::Write;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ToolContext, ToolError};

/// One replacement.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Replacement {
    /// Exact text to replace; must occur exactly once in the file.
    pub old_text: String,
    /// Text to put in its place.
    pub new_text: String,
}

/// Parameters of `edit`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditParams {
    /// Path of the file, relative to the workspace root or absolute (must be inside the workspace).
    pub path: String,
    /// Exact text to replace; it must occur exactly once (include surrounding lines to make it
    /// unique). Empty together with a path that does not exist creates the file with `new_text`.
    #[serde(default)]
    pub old_text: Option<String>,
    /// Replacement for `old_text`.
    #[serde(default)]
    pub new_text: Option<String>,
    /// Several replacements applied together, all or nothing (instead of, or after, old_text/new_text).
    #[serde(default)]
    pub edits: Option<Vec<Replacement>>,
}

const BOM: &str = "\u{feff}";

pub async fn edit(ctx: &ToolContext, p: EditParams) -> Result<String, ToolError> {
    let mut edits: Vec<Replacement> = Vec::new();
    match (p.old_text, p.new_text) {
        (Some(old_text), Some(new_text)) => edits.push(Replacement { old_text, new_text }),
        (None, None) => {}
        (Some(_), None) => {
            return Err(ToolError::new(
                "new_text is missing: give both old_text and new_text",
            ));
        }
        (None, Some(_)) => {
            return Err(ToolError::new(
                "old_text is missing: give both old_text and new_text (old_text \"\" creates a new file)",
            ));
        }
    }
    edits.extend(p.edits.unwrap_or_default());
    if edits.is_empty() {
        return Err(ToolError::new(
            "nothing to do: give old_text and new_text, or edits: [{old_text, new_text}, ...]",
        ));
    }
    let path = ctx
        .workspace
        .resolve(&p.path, true, ctx.guard.protected())?;
    ctx.check_access("edit", &path)?;
    let shown = p.path;
    tokio::task::spawn_blocking(move || apply(&path, &shown, &edits))
        .await
        .map_err(|e| ToolError::new(format!("edit failed: {e}")))?
}

fn apply(path: &Path, shown: &str, edits: &[Replacement]) -> Result<String, ToolError> {
    if !path.exists() {
        if edits.len() == 1 && edits[0].old_text.is_empty() {
            return create(path, shown, &edits[0].new_text);
        }
        return Err(ToolError::new(format!(
            "`{shown}` does not exist; to create it, call edit with old_text \"\" and the whole content as new_text"
        )));
    }
    if path.is_dir() {
        return Err(ToolError::new(format!(
            "`{shown}` is a directory, not a file"
        )));
    }
    let bytes = read_unlinked(path, shown)?;
    let raw = String::from_utf8(bytes).map_err(|_| {
        ToolError::new(format!(
            "`{shown}` is not UTF-8 text; edit only changes text files"
        ))
    })?;
    let (bom, body) = match raw.strip_prefix(BOM) {
        Some(rest) => (BOM, rest),
        None => ("", raw.as_str()),
    };
    let crlf = body.contains("\r\n");
    let original = if crlf {
        body.replace("\r\n", "\n")
    } else {
        body.to_string()
    };
    // Find every edit's unique span in the original, then apply them all at once.
    let mut spans: Vec<(usize, usize, String)> = Vec::new();
    for (i, e) in edits.iter().enumerate() {
        let label = if edits.len() > 1 {
            format!("edits[{i}]: ")
        } else {
            String::new()
        };
        let old = e.old_text.replace("\r\n", "\n");
        if old.is_empty() {
            return Err(ToolError::new(format!(
                "{label}old_text is empty; give the exact text to replace (an empty old_text only creates a file that does not exist yet)"
            )));
        }
        let count = original.matches(&old).count();
        match count {
            0 => {
                return Err(ToolError::new(format!(
                    "{label}old_text was not found in `{shown}`. It must match the file exactly, including whitespace and indentation; read the file again and copy the text{}",
                    if edits.len() > 1 {
                        ". No edit was applied."
                    } else {
                        "."
                    }
                )));
            }
            1 => {}
            n => {
                return Err(ToolError::new(format!(
                    "{label}old_text matches {n} places in `{shown}`; it must match exactly one. Include more surrounding lines in old_text to make it unique{}",
                    if edits.len() > 1 {
                        ". No edit was applied."
                    } else {
                        "."
                    }
                )));
            }
        }
        let start = original.find(&old).unwrap_or(0);
        spans.push((start, start + old.len(), e.new_text.replace("\r\n", "\n")));
    }
    spans.sort_by_key(|s| s.0);
    for w in spans.windows(2) {
        if w[0].1 > w[1].0 {
            return Err(ToolError::new(
                "two edits overlap; merge them into one edit. No edit was applied.",
            ));
        }
    }
    let mut updated = String::with_capacity(original.len());
    let mut at = 0;
    for (start, end, new) in &spans {
        updated.push_str(&original[at..*start]);
        updated.push_str(new);
        at = *end;
    }
    updated.push_str(&original[at..]);
    if updated == original {
        return Err(ToolError::new(
            "old_text and new_text are identical; nothing would change",
        ));
    }
    let on_disk = if crlf {
        updated.replace('\n', "\r\n")
    } else {
        updated.clone()
    };
    write_atomic(path, &format!("{bom}{on_disk}"), shown)?;
    let diff = similar::TextDiff::from_lines(&original, &updated)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{shown}"), &format!("b/{shown}"))
        .to_string();
    Ok(format!(
        "Edited `{shown}`: {} replacement{}.\n\n{diff}",
        spans.len(),
        if spans.len() == 1 { "" } else { "s" }
    ))
}

fn create(path: &Path, shown: &str, content: &str) -> Result<String, ToolError> {
    if let Some(parent) = path.parent() {
        create_dirs_unlinked(parent, shown)?;
    }
    write_atomic(path, content, shown)?;
    let diff = similar::TextDiff::from_lines("", content)
        .unified_diff()
        .header("/dev/null", &format!("b/{shown}"))
        .to_string();
    Ok(format!(
        "Created `{shown}` ({} bytes).\n\n{diff}",
        content.len()
    ))
}

/// The refusal when a symbolic link appeared on the way to a judged path.
fn swapped(shown: &str) -> ToolError {
    ToolError::new(format!(
        "`{shown}` changed while it was being edited (a symbolic link appeared on its way); \
         nothing was changed: try again"
    ))
}

/// The judged, canonical `path` opened with `flags` by a walk that follows no symbolic link
/// ([`open_judged`](crate::guard::links::open_judged)): a link on the way is [`swapped`], any
/// other failure says it could not `doing` (`read`, `write`, ...) `shown`.
fn open_unlinked(
    path: &Path,
    flags: nix::fcntl::OFlag,
    shown: &str,
    doing: &str,
) -> Result<std::fs::File, ToolError> {
    match crate::guard::links::open_judged(path, flags) {
        Ok(file) => Ok(file),
        Err(nix::errno::Errno::ELOOP) => Err(swapped(shown)),
        Err(e) => Err(ToolError::new(format!(
            "cannot {doing} `{shown}`: {}",
            std::io::Error::from(e)
        ))),
    }
}

/// The content of the judged, canonical `path`, read from a handle opened by a walk that
/// follows no symbolic link: a link swapped in after the judgement (the agent's own `bash`
/// could swap one in and out) fails the open instead of being followed.
fn read_unlinked(path: &Path, shown: &str) -> Result<Vec<u8>, ToolError> {
    use nix::fcntl::OFlag;
    use std::io::Read;
    let fail = |e: std::io::Error| ToolError::new(format!("cannot read `{shown}`: {e}"));
    let mut file = open_unlinked(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK, shown, "read")?;
    if !file.metadata().map_err(fail)?.is_file() {
        return Err(ToolError::new(format!(
            "`{shown}` is not a regular file; edit only changes text files"
        )));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(fail)?;
    Ok(bytes)
}

/// Creates the missing directories of the judged, canonical `dir`, each one inside its parent
/// opened by a walk that follows no symbolic link: a link swapped in for a component after the
/// judgement (the agent's own `bash` could) fails the walk instead of having directories made
/// wherever it points. No crate creates directories this way (`create_dir_all` follows links).
fn create_dirs_unlinked(dir: &Path, shown: &str) -> Result<(), ToolError> {
    use nix::errno::Errno;
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::{Mode, mkdirat};
    let fail = |e: Errno| {
        ToolError::new(format!(
            "cannot create the directory for `{shown}`: {}",
            std::io::Error::from(e)
        ))
    };
    let mut existing = dir;
    let mut missing = Vec::new();
    while std::fs::symlink_metadata(existing).is_err() {
        let (Some(name), Some(parent)) = (existing.file_name(), existing.parent()) else {
            break;
        };
        missing.push(name);
        existing = parent;
    }
    if missing.is_empty() {
        return Ok(());
    }
    let walk = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    let mut parent = open_unlinked(existing, walk, shown, "create the directory for")?;
    for name in missing.into_iter().rev() {
        match mkdirat(&parent, name, Mode::from_bits_truncate(0o777)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(fail(e)),
        }
        parent = match openat(
            &parent,
            name,
            walk | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => std::fs::File::from(fd),
            Err(Errno::ELOOP | Errno::ENOTDIR) => return Err(swapped(shown)),
            Err(e) => return Err(fail(e)),
        };
    }
    Ok(())
}

/// Where to write in the directory of the judged, canonical `path`: that directory opened by a
/// walk that follows no symbolic link, named through `/proc/self/fd`, so the temp file and the
/// rename land in the directory that was opened even if a link is swapped in for it afterwards.
/// The handle is kept open as long as the name is used. Without `/proc`, the directory's path
/// as resolved.
fn directory_of(path: &Path, shown: &str) -> Result<(Option<std::fs::File>, PathBuf), ToolError> {
    use nix::fcntl::OFlag;
    use std::os::fd::AsRawFd;
    let dir = path.parent().unwrap_or(Path::new("/"));
    if !Path::new("/proc/self/fd").is_dir() {
        return Ok((None, dir.to_path_buf()));
    }
    let handle = open_unlinked(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY, shown, "write")?;
    let named = PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd()));
    Ok((Some(handle), named))
}

/// Writes through a temp file in the same directory and renames it over the target, keeping the
/// target's permissions.
fn write_atomic(path: &Path, content: &str, shown: &str) -> Result<(), ToolError> {
    let fail = |e: std::io::Error| ToolError::new(format!("cannot write `{shown}`: {e}"));
    let name = path
        .file_name()
        .ok_or_else(|| ToolError::new(format!("cannot write `{shown}`: it names no file")))?;
    let (_handle, dir) = directory_of(path, shown)?;
    let target = dir.join(name);
    let mut tmp = tempfile::Builder::new()
        .prefix(".pi-mcp-edit-")
        .tempfile_in(&dir)
        .map_err(fail)?;
    tmp.write_all(content.as_bytes()).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    // The target itself, not what a link there would point to (the rename replaces a link).
    if let Ok(meta) = std::fs::symlink_metadata(&target)
        && meta.is_file()
    {
        std::fs::set_permissions(tmp.path(), meta.permissions()).map_err(fail)?;
    }
    tmp.persist(&target).map_err(|e| fail(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directories_are_made_without_following_a_link() {
        let tmp = tempfile::tempdir().unwrap();
        let made = ["ws", "outside"].map(|name| {
            std::fs::create_dir(tmp.path().join(name)).unwrap();
            tmp.path().join(name).canonicalize().unwrap()
        });
        let [ws, outside] = made;
        create_dirs_unlinked(&ws.join("a/b/c"), "a/b/c/f.txt").expect("made");
        assert!(ws.join("a/b/c").is_dir());
        // A link where a directory was judged to be missing: nothing is made where it points.
        std::os::unix::fs::symlink(&outside, ws.join("swapped")).unwrap();
        let err = create_dirs_unlinked(&ws.join("swapped/x/y"), "swapped/x/y/f.txt")
            .expect_err("refused");
        assert!(err.to_string().contains("changed while"), "{err}");
        assert!(!outside.join("x").exists(), "nothing made outside");
    }
}
