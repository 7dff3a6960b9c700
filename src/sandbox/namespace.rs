//! Linux namespaces for a `bash` child: its own user, mount, PID and (in `allowlist` mode)
//! network namespace. In the mount namespace the hidden paths are covered and a fresh `/proc`
//! shows only the child's own processes, so no other process's `environ`, `cmdline`, `mem` or
//! `fd` can be read however the path is spelt; in the network namespace only loopback exists,
//! and the way out is pi-mcp's egress proxy ([`super::relay`]).
//!
//! All of it runs in the still single-threaded [`super::EXEC_SUBCOMMAND`] process, through
//! nix's safe wrappers of `unshare(2)` and `mount(2)`; bubblewrap would do the same from outside
//! but is not on a fresh machine, and the kernel's own calls need no extra binary.

use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::path::Path;

use nix::libc;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{Gid, Uid, getgid, getuid};

/// Which namespaces were entered, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entered {
    /// A new user namespace (unprivileged: the caller's uid and gid map to themselves).
    UserNamespace,
    /// Without a user namespace: the caller is root and holds the capabilities itself.
    AsRoot,
}

/// Enters new mount and PID namespaces, and a network namespace when `net`; in a new user
/// namespace when the kernel allows it, else (as root) without one. The PID namespace applies
/// to children forked after this call.
pub fn enter(net: bool) -> Result<Entered, String> {
    let (uid, gid) = (getuid(), getgid());
    let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID;
    if net {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let entered = match unshare(flags | CloneFlags::CLONE_NEWUSER) {
        Ok(()) => {
            map_ids(uid, gid)?;
            Entered::UserNamespace
        }
        Err(user_err) if uid.is_root() => {
            unshare(flags).map_err(|e| {
                format!("unshare failed (with a user namespace: {user_err}; as root: {e})")
            })?;
            Entered::AsRoot
        }
        Err(e) => return Err(format!("cannot create a user namespace: {e}")),
    };
    // Nothing mounted from here on may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("cannot make the mounts private: {e}"))?;
    if net {
        loopback_up().map_err(|e| format!("cannot bring up loopback: {e}"))?;
    }
    Ok(entered)
}

/// Maps the caller's uid and gid to themselves in the new user namespace.
fn map_ids(uid: Uid, gid: Gid) -> Result<(), String> {
    let write = |path: &str, text: String| {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("cannot write {path}: {e}"))
    };
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))
}

/// Sets `IFF_UP` on `lo` in the current network namespace (the kernel gives it 127.0.0.1/8
/// and ::1 then).
fn loopback_up() -> std::io::Result<()> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0")?;
    // SAFETY: `ifreq` is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the `ifreq` we own; the fd is open.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Mounts a `/proc` that shows the current PID namespace only. Call it in the namespace's
/// first process.
pub fn mount_proc() -> Result<(), String> {
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| format!("cannot mount a private /proc: {e}"))
}

/// Covers the file at `target` with `cover` (read-only); the caller sees `cover`'s contents and
/// permissions instead.
pub fn cover_file(cover: &Path, target: &Path) -> Result<(), String> {
    mount(
        Some(cover),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .and_then(|()| {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None::<&str>,
        )
    })
    .map_err(|e| format!("cannot cover {}: {e}", target.display()))
}

/// Covers the directory `target` with an empty, read-only directory that no one may open.
pub fn cover_dir(target: &Path) -> Result<(), String> {
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("size=4k,mode=000"),
    )
    .map_err(|e| format!("cannot cover {}: {e}", target.display()))
}

/// Gives up every capability for the program about to be exec'd: empties the bounding and
/// ambient sets, so that not even root keeps any across `execve` (it could otherwise undo the
/// mounts above). Capabilities held in a user namespace we created count too.
pub fn drop_capabilities() -> Result<(), String> {
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        for cap in 0..64 {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                let err = std::io::Error::last_os_error();
                // EINVAL: past the kernel's last capability.
                if err.raw_os_error() == Some(libc::EINVAL) {
                    break;
                }
                return Err(format!("cannot drop capability {cap}: {err}"));
            }
        }
    }
    Ok(())
}
