//! The OS sandbox under the policy. Every `bash` child runs with `no_new_privs` and a Landlock
//! ruleset that lets it read and execute everywhere but write only inside the workspace roots,
//! its temp directory (`<primary root>/.pi-mcp/tmp`, exported as `TMPDIR`, `TMP` and `TEMP`), a
//! few character devices (`/dev/null`, `/dev/tty`, ...) and the policy's `writable_paths`. With
//! `network: "deny"` a seccomp filter also makes `socket(2)` fail with `EACCES` for every family
//! but `AF_UNIX` and `AF_NETLINK`, and refuses `io_uring_setup(2)` (io_uring can open sockets
//! without the `socket` system call).
//!
//! Restricting the child between `fork` and `exec` of the multi-threaded server is not
//! async-signal-safe, so it happens in a fresh process: the bash tool starts this binary's hidden
//! `__sandbox-exec --spec <json> -- bash -c CMD` subcommand ([`bash_command`]), which restricts
//! itself and then execs bash ([`exec`]). Landlock domains, seccomp filters and `no_new_privs`
//! survive `exec` and are inherited by every descendant.
//!
//! Landlock can only add rights beneath a path, never take them back for a sub-path, so reads are
//! allowed everywhere: protected paths are enforced by the guard's path checks (`read` and `edit`
//! refuse them, literal `bash` arguments naming them need approval), not by Landlock. For the
//! same reason pi-mcp's own state (approvals, audit log, OSV database) lives outside every path
//! granted here, and the app refuses or warns at start when it does not ([`writable_by_bash`]). Pipes and sockets
//! are not files Landlock can label, so `> /dev/stdout` and `/dev/fd/N` keep working.
//!
//! `sandbox: "required"` refuses to serve without Landlock, and each call refuses to run when
//! Landlock is not enforced; `best_effort` serves anyway, says so at start, and keeps
//! `no_new_privs` and the network filter; `off` runs bash directly, unconfined.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, LandlockStatus, PathBeneath, PathFd, RestrictionStatus, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetError, RulesetStatus, make_bitflags,
    path_beneath_rules,
};
use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use serde::{Deserialize, Serialize};

use crate::tools::ToolContext;
use crate::guard::PolicyFile;
use crate::guard::policy::{NetworkMode, SandboxMode};

/// The hidden subcommand that applies a [`Spec`] to itself and execs the command.
pub const EXEC_SUBCOMMAND: &str = "__sandbox-exec";
/// Exit status of [`EXEC_SUBCOMMAND`] when the sandbox cannot be set up (nothing ran).
pub const SETUP_FAILED: u8 = 125;
/// The temp directory of `bash` children, relative to the primary root.
pub const TMP_DIR: &str = ".pi-mcp/tmp";
/// The Landlock ABI whose rights are requested; an older kernel enforces the subset it knows.
const ABI_WANTED: ABI = ABI::V5;
/// Devices every command may read, write and truncate. `/dev/stdout`, `/dev/stderr` and
/// `/dev/fd` lead to pipes, which Landlock never restricts; they are listed for the case where
/// they lead to a file. Entries that do not exist or cannot carry a rule are skipped.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/fd",
];
/// Socket families a command may still open when the network is denied.
const LOCAL_FAMILIES: [libc::c_int; 2] = [libc::AF_UNIX, libc::AF_NETLINK];
/// x86-64 kernels may also accept x32 system calls: the same numbers with this bit set.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: i64 = 0x4000_0000;

/// Why the sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "the kernel lacks Landlock ({0}) and the policy says `\"sandbox\": \"required\"`; \
         use a kernel with Landlock, or set `\"sandbox\": \"best_effort\"` to run bash \
         without the filesystem sandbox"
    )]
    Unsupported(String),
    #[error("Landlock is not enforced by this kernel and the policy requires it")]
    NotEnforced,
    #[error("cannot create the temp directory {}: {source}", path.display())]
    TempDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot find the pi-mcp executable to start the sandbox: {0}")]
    CurrentExe(#[source] std::io::Error),
    #[error("bad sandbox spec: {0}")]
    Spec(#[from] serde_json::Error),
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(#[source] nix::Error),
    #[error("Landlock: {0}")]
    Landlock(#[from] RulesetError),
    #[error("seccomp network filter: {0}")]
    Seccomp(#[from] seccompiler::Error),
    #[error("no command to run")]
    NoCommand,
    #[error("cannot run `{program}`: {source}")]
    Exec {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// What [`EXEC_SUBCOMMAND`] enforces before it execs; passed as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Directories (and files) the command may write, create and remove in.
    pub writable: Vec<PathBuf>,
    /// Fail every socket but Unix-domain and netlink ones.
    pub deny_network: bool,
    /// Refuse to run the command when Landlock is not enforced.
    pub required: bool,
}

/// The policy's `writable_paths`, made absolute: `~` is `home`, a relative path starts at
/// `primary`. Paths that do not exist are kept; [`exec`] skips them.
pub fn listed_writable(policy: &PolicyFile, primary: &Path, home: &Path) -> Vec<PathBuf> {
    let expand = |p: &String| match p.strip_prefix('~') {
        Some("") => home.to_path_buf(),
        Some(rest) if rest.starts_with('/') => home.join(rest.trim_start_matches('/')),
        _ => primary.join(p),
    };
    policy.writable_paths.iter().map(expand).collect()
}

/// Everything a sandboxed `bash` child may write: the workspace roots, its temp directory and
/// the policy's `writable_paths`.
pub fn writable_dirs(ctx: &ToolContext) -> Vec<PathBuf> {
    let primary = ctx.workspace.primary();
    let mut writable = ctx.workspace.roots().to_vec();
    writable.push(primary.join(TMP_DIR));
    writable.extend(listed_writable(ctx.guard.file(), primary, &ctx.home));
    writable
}

/// The entry of `writable` that lets a `bash` child write `path` (a file, or a directory it
/// could then fill or empty), comparing canonical paths; `None` when `path` is out of reach.
pub fn writable_by_bash(path: &Path, writable: &[PathBuf]) -> Option<PathBuf> {
    let target = crate::store::location::canonical(path);
    writable
        .iter()
        .find(|w| {
            let w = crate::store::location::canonical(w);
            target.starts_with(&w) || w.starts_with(&target)
        })
        .cloned()
}

/// The process that runs `bash -c command` for the bash tool: bash itself with `sandbox:
/// "off"`, otherwise [`EXEC_SUBCOMMAND`] of this very binary with the call's [`Spec`] and
/// `TMPDIR` (created here) in its environment.
pub fn bash_command(
    ctx: &ToolContext,
    command: &str,
) -> Result<tokio::process::Command, SandboxError> {
    let policy = ctx.guard.file();
    if policy.sandbox == SandboxMode::Off {
        let mut cmd = tokio::process::Command::new("bash");
        cmd.arg("-c").arg(command);
        return Ok(cmd);
    }
    let tmp = ctx.workspace.primary().join(TMP_DIR);
    std::fs::create_dir_all(&tmp).map_err(|source| SandboxError::TempDir {
        path: tmp.clone(),
        source,
    })?;
    let writable = writable_dirs(ctx);
    let spec = Spec {
        writable,
        deny_network: policy.network == NetworkMode::Deny,
        required: policy.sandbox == SandboxMode::Required,
    };
    // `/proc/self/exe` in the child is the server's own binary, even if the file on disk has
    // been replaced since the server started.
    let exe = Path::new("/proc/self/exe");
    let exe = if exe.exists() {
        exe.to_path_buf()
    } else {
        std::env::current_exe().map_err(SandboxError::CurrentExe)?
    };
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg(EXEC_SUBCOMMAND)
        .arg("--spec")
        .arg(serde_json::to_string(&spec)?)
        .args(["--", "bash", "-c", command]);
    for var in ["TMPDIR", "TMP", "TEMP"] {
        cmd.env(var, &tmp);
    }
    Ok(cmd)
}

/// The body of [`EXEC_SUBCOMMAND`]: applies the JSON `spec` to this process and execs `argv`.
/// Returns only on failure. Call it before any other thread exists: `no_new_privs`, Landlock
/// and seccomp restrict the calling thread, which is the one that execs.
pub fn exec(spec: &str, argv: &[OsString]) -> SandboxError {
    let Some((program, args)) = argv.split_first() else {
        return SandboxError::NoCommand;
    };
    if let Err(e) = apply(spec) {
        return e;
    }
    let source = std::process::Command::new(program).args(args).exec();
    SandboxError::Exec {
        program: program.to_string_lossy().into_owned(),
        source,
    }
}

fn apply(spec: &str) -> Result<(), SandboxError> {
    let spec: Spec = serde_json::from_str(spec)?;
    nix::sys::prctl::set_no_new_privs().map_err(SandboxError::NoNewPrivs)?;
    let status = restrict_fs(&spec.writable)?;
    if spec.required && status.ruleset == RulesetStatus::NotEnforced {
        return Err(SandboxError::NotEnforced);
    }
    if spec.deny_network {
        seccompiler::apply_filter(&network_filter()?)?;
    }
    Ok(())
}

/// Restricts the calling thread: read and execute everywhere, write only beneath `writable`
/// and on [`DEVICES`].
fn restrict_fs(writable: &[PathBuf]) -> Result<RestrictionStatus, RulesetError> {
    let device = make_bitflags!(AccessFs::{ReadFile | WriteFile | Truncate | IoctlDev});
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(ABI_WANTED))?
        .create()?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(ABI_WANTED)))?
        .add_rules(path_beneath_rules(writable, AccessFs::from_all(ABI_WANTED)))?;
    for path in DEVICES {
        // Missing, or a pipe Landlock cannot label (it needs no rule then).
        if let Ok(fd) = PathFd::new(path) {
            let _ = (&mut ruleset).add_rule(PathBeneath::new(fd, device));
        }
    }
    ruleset.restrict_self()
}

/// A filter that fails `socket(2)` with `EACCES` unless the family is in [`LOCAL_FAMILIES`],
/// and `io_uring_setup(2)` always.
fn network_filter() -> Result<BpfProgram, seccompiler::Error> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;
    let mut remote = Vec::new();
    for family in LOCAL_FAMILIES {
        // The family is an `int`: compare the low 32 bits only.
        remote.push(SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Ne,
            u64::from(family.unsigned_abs()),
        )?);
    }
    let socket = vec![SeccompRule::new(remote)?];
    let mut rules = BTreeMap::from([
        (libc::SYS_socket, socket.clone()),
        (libc::SYS_io_uring_setup, Vec::new()),
    ]);
    #[cfg(target_arch = "x86_64")]
    {
        rules.insert(libc::SYS_socket | X32_SYSCALL_BIT, socket);
        rules.insert(libc::SYS_io_uring_setup | X32_SYSCALL_BIT, Vec::new());
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EACCES.unsigned_abs()),
        arch,
    )?;
    Ok(filter.try_into()?)
}

/// What the running kernel offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// Landlock is enforced with the rights of ABI `enforced` (the kernel has `kernel`).
    Landlock { enforced: ABI, kernel: ABI },
    /// No Landlock, and why.
    Missing(String),
}

/// Probes Landlock once. Landlock and `no_new_privs` restrict only the calling thread, so a
/// throwaway thread restricts itself with an empty ruleset and reports what the kernel did.
pub fn probe() -> Support {
    let attempt = std::thread::spawn(|| {
        Ruleset::default()
            .handle_access(AccessFs::from_all(ABI_WANTED))?
            .create()?
            .restrict_self()
    })
    .join();
    match attempt {
        Ok(Ok(status)) => match (status.landlock, status.ruleset) {
            (LandlockStatus::NotImplemented, _) => {
                Support::Missing("not built into the kernel".into())
            }
            (LandlockStatus::NotEnabled, _) => {
                Support::Missing("built in but not enabled at boot (see `lsm=`)".into())
            }
            (LandlockStatus::Available { .. }, RulesetStatus::NotEnforced) => {
                Support::Missing("the kernel did not enforce a ruleset".into())
            }
            (LandlockStatus::Available { effective_abi, .. }, _) => Support::Landlock {
                enforced: effective_abi.min(ABI_WANTED),
                kernel: effective_abi,
            },
        },
        Ok(Err(e)) => Support::Missing(e.to_string()),
        Err(_) => Support::Missing("the probe thread panicked".into()),
    }
}

/// The start-up line for `policy` on a kernel with `support` (`true` when it is a warning), or
/// the refusal to serve.
pub fn startup_report(
    policy: &PolicyFile,
    support: &Support,
) -> Result<(bool, String), SandboxError> {
    let network = match policy.network {
        NetworkMode::Allow => "network allowed",
        NetworkMode::Deny => "network denied (seccomp)",
    };
    match (policy.sandbox, support) {
        (SandboxMode::Off, _) => Ok((
            true,
            "sandbox: off by policy; bash runs without Landlock, no_new_privs or network filter"
                .into(),
        )),
        (_, Support::Landlock { enforced, kernel }) => Ok((
            false,
            format!(
                "sandbox: Landlock ABI v{enforced} enforced (kernel ABI v{kernel}), no_new_privs, \
                 {network}; bash writes only to the workspace, {TMP_DIR} and {} listed path(s)",
                policy.writable_paths.len()
            ),
        )),
        (SandboxMode::Required, Support::Missing(why)) => {
            Err(SandboxError::Unsupported(why.clone()))
        }
        (SandboxMode::BestEffort, Support::Missing(why)) => Ok((
            true,
            format!(
                "sandbox: the kernel lacks Landlock ({why}); the filesystem sandbox is OFF \
                 (policy best_effort); bash runs with no_new_privs, {network}"
            ),
        )),
    }
}

/// Probes the kernel and logs one line on how `bash` will be confined; with `sandbox:
/// "required"` and no Landlock, refuses.
pub fn check_at_start(policy: &PolicyFile) -> Result<(), SandboxError> {
    let support = match policy.sandbox {
        SandboxMode::Off => Support::Missing("not probed".into()),
        _ => probe(),
    };
    match startup_report(policy, &support)? {
        (true, line) => tracing::warn!("{line}"),
        (false, line) => tracing::info!("{line}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> PolicyFile {
        PolicyFile::parse(json, "test").unwrap()
    }

    #[test]
    fn policy_fields_default_and_parse() {
        let p = policy("{}");
        assert_eq!(p.sandbox, SandboxMode::BestEffort);
        assert_eq!(p.network, NetworkMode::Allow);
        assert!(p.writable_paths.is_empty());
        let p = policy(r#"{"sandbox": "required", "network": "deny", "writable_paths": ["/x"]}"#);
        assert_eq!(p.sandbox, SandboxMode::Required);
        assert_eq!(p.network, NetworkMode::Deny);
        assert!(PolicyFile::parse(r#"{"sandbox": "strict"}"#, "t").is_err());
    }

    #[test]
    fn writable_paths_expand_home_and_relative() {
        let p = policy(r#"{"writable_paths": ["~", "~/.cache", "/var/tmp", "build"]}"#);
        let got = listed_writable(&p, Path::new("/ws"), Path::new("/home/a"));
        let want = ["/home/a", "/home/a/.cache", "/var/tmp", "/ws/build"];
        assert_eq!(got, want.map(PathBuf::from));
    }

    #[test]
    fn required_refuses_without_landlock_and_best_effort_warns() {
        let missing = Support::Missing("not built into the kernel".into());
        let err = startup_report(&policy(r#"{"sandbox": "required"}"#), &missing).unwrap_err();
        assert!(err.to_string().contains("lacks Landlock"), "{err}");
        let (warn, line) = startup_report(&policy("{}"), &missing).unwrap();
        assert!(warn && line.contains("OFF"), "{line}");
        let (warn, line) = startup_report(&policy(r#"{"sandbox": "off"}"#), &missing).unwrap();
        assert!(warn && line.contains("off by policy"), "{line}");
    }

    #[test]
    fn this_kernel_has_landlock() {
        let support = probe();
        assert!(matches!(support, Support::Landlock { .. }), "{support:?}");
        let (warn, line) = startup_report(&policy(r#"{"sandbox": "required"}"#), &support).unwrap();
        assert!(!warn && line.contains("Landlock ABI v5 enforced"), "{line}");
    }

    #[test]
    fn writable_by_bash_compares_in_both_directions() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        let state = dir.path().join("state");
        std::fs::create_dir_all(&ws).unwrap();
        let writable = vec![ws.clone()];
        // Inside a writable tree (even before it exists), or holding one: within reach.
        assert_eq!(
            writable_by_bash(&ws.join("x/state.db"), &writable),
            Some(ws.clone())
        );
        assert_eq!(writable_by_bash(dir.path(), &writable), Some(ws.clone()));
        assert_eq!(writable_by_bash(&state.join("state.db"), &writable), None);
        // A symbolic link into the workspace does not hide it.
        std::os::unix::fs::symlink(&ws, dir.path().join("link")).unwrap();
        let through_link = dir.path().join("link/state.db");
        assert_eq!(writable_by_bash(&through_link, &writable), Some(ws));
    }

    #[test]
    fn network_filter_compiles() {
        assert!(!network_filter().unwrap().is_empty());
    }

    #[test]
    fn spec_round_trips() {
        let spec = Spec {
            writable: vec![PathBuf::from("/ws")],
            deny_network: true,
            required: false,
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<Spec>(&json).unwrap(), spec);
    }
}
