//! Symbolic links on the way to a file tool's path. Canonicalising a path tells *that* it ends
//! outside the workspace, or that it leads nowhere; these functions tell *which* link did it, so
//! the refusal can name the link, and so that `edit` never replaces a dangling link with a file
//! (a rename over the link's path would silently drop the link the user put there).
//! [`without_links`] is the common case's shortcut: a path with no link on its way is its own
//! canonical form, which the kernel confirms in one call.

use std::path::{Component, Path, PathBuf};

/// `path` itself when it is absolute, exists, and no component on its way (itself included) is
/// a symbolic link, nor `..`: then it is already canonical. One `openat2(RESOLVE_NO_SYMLINKS)`
/// (an `O_PATH` handle, opened and closed; nothing is read) instead of `realpath`'s `readlink`
/// of every component, each walked from `/` (issue 14). `None` (a link, `..`, a missing file,
/// a trailing `/`, a kernel without `openat2`): resolve the slow way, which also says why a
/// path is refused.
pub fn without_links(path: &Path) -> Option<PathBuf> {
    open_without_links(path, nix::fcntl::OFlag::O_PATH).ok()?;
    // `components` drops `.` and repeated slashes: the same file, written canonically.
    Some(path.components().collect())
}

/// `path` opened with `flags` (and `O_CLOEXEC`) by a walk that follows no symbolic link: it
/// succeeds only where [`without_links`] would take `path` as its own canonical form, so what
/// was judged by that name is what is opened. `ELOOP`: a link on the way; `EINVAL`: not an
/// absolute path, or with `..` or a trailing `/`; `ENOSYS` or `EPERM`: no `openat2` here.
pub fn open_without_links(path: &Path, flags: nix::fcntl::OFlag) -> nix::Result<std::fs::File> {
    use nix::fcntl::{AT_FDCWD, OFlag, OpenHow, ResolveFlag, openat2};
    if !path.is_absolute()
        || path.as_os_str().as_encoded_bytes().ends_with(b"/")
        || path.components().any(|c| c == Component::ParentDir)
    {
        return Err(nix::errno::Errno::EINVAL);
    }
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS);
    openat2(AT_FDCWD, path, how).map(std::fs::File::from)
}

/// A judged, canonical `path` opened as [`open_without_links`] opens it, or by name (with the
/// same flags) where this machine has no `openat2`: a kernel before 5.6 (`ENOSYS`) or a
/// seccomp filter refusing it (`EPERM`). `ELOOP`: a link appeared on the way since the path
/// was judged (the caller refuses; nothing was opened).
pub fn open_judged(path: &Path, flags: nix::fcntl::OFlag) -> nix::Result<std::fs::File> {
    use nix::errno::Errno;
    use nix::fcntl::OFlag;
    match open_without_links(path, flags) {
        Err(Errno::ENOSYS | Errno::EPERM) => nix::fcntl::open(
            path,
            flags | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map(std::fs::File::from),
        opened => opened,
    }
}

/// The first symbolic link on the way to `path` (itself included) whose target does not exist,
/// with what it points to. Walks from `path` up to the root: the nearest existing ancestor that
/// is a link and cannot be resolved is the one that leaves the path nowhere.
pub fn dangling(path: &Path) -> Option<(PathBuf, PathBuf)> {
    for candidate in path.ancestors() {
        let Ok(meta) = candidate.symlink_metadata() else {
            continue;
        };
        if !meta.file_type().is_symlink() {
            // A real file or directory: nothing above it can make the rest dangle (a link
            // above it resolves, or this entry could not be reached).
            return None;
        }
        return match candidate.canonicalize() {
            Ok(_) => None,
            Err(_) => Some((
                candidate.to_path_buf(),
                std::fs::read_link(candidate).unwrap_or_default(),
            )),
        };
    }
    None
}

/// The first symbolic link on the way to `path`, lying inside the workspace (`inside`), whose
/// resolved target is not inside it, with that target.
pub fn leaving(path: &Path, inside: impl Fn(&Path) -> bool) -> Option<(PathBuf, PathBuf)> {
    let mut prefix = PathBuf::new();
    for part in path.components() {
        prefix.push(part);
        let is_link = prefix
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink());
        if !is_link || !inside(&super::paths::lexical(&prefix)) {
            continue;
        }
        match prefix.canonicalize() {
            Ok(target) if !inside(&target) => return Some((prefix, target)),
            Ok(_) => {}
            Err(_) => {
                let target = std::fs::read_link(&prefix).unwrap_or_default();
                return Some((prefix, target));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn dangling_links_are_found_at_any_depth() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        symlink(root.join("nowhere"), root.join("link")).unwrap();
        let (link, target) = dangling(&root.join("link")).unwrap();
        assert_eq!(
            (link.clone(), target),
            (root.join("link"), root.join("nowhere"))
        );
        assert_eq!(dangling(&root.join("link/a/b")).map(|d| d.0), Some(link));
        std::fs::create_dir(root.join("real")).unwrap();
        assert_eq!(dangling(&root.join("real/missing.txt")), None);
        assert_eq!(dangling(&root.join("missing/deeper")), None);
    }

    #[test]
    fn links_leaving_the_workspace_are_named() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        symlink(outside.path(), root.join("out")).unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        symlink(root.join("sub"), root.join("in")).unwrap();
        let inside = |p: &Path| p.starts_with(&root);
        let (link, _) = leaving(&root.join("out/x.txt"), inside).unwrap();
        assert_eq!(link, root.join("out"));
        assert_eq!(leaving(&root.join("in/x.txt"), inside), None);
    }
}
