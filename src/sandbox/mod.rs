//! The OS sandbox under the policy: what bounds the *effects* of a `bash` child, whatever its
//! command line hides. The guard judges the text; the sandbox enforces, in layers:
//!
//! - **writes** ([`landlock`]): `no_new_privs` and a Landlock ruleset that lets the child read
//!   and execute everywhere but write only in the workspace roots, its temp directory
//!   (`<primary root>/.pi-mcp/tmp`, exported as `TMPDIR`, `TMP` and `TEMP`), a few devices and
//!   the policy's `writable_paths`. Landlock also keeps the child from reading the memory,
//!   environment or file descriptors of any process outside its own domain.
//! - **network** ([`namespace`], [`relay`], [`proxy`]): in `allowlist` mode the child runs in
//!   its own network namespace with only loopback; its `HTTP(S)_PROXY` leads, through a relay
//!   in the namespace, to pi-mcp's egress proxy, which lets through only the policy's
//!   `network.allow` destinations and records every connection. `deny` (and `allowlist` where
//!   namespaces are missing) makes every socket but Unix ones fail ([`seccomp`]).
//! - **hidden paths and processes** ([`hidden`], [`namespace`]): in its own mount and PID
//!   namespaces the child sees the hidden paths covered and a `/proc` with only its own
//!   processes; it holds no capabilities, so it cannot undo either.
//!
//! Restricting the child between `fork` and `exec` of the multi-threaded server is not
//! async-signal-safe, so it happens in a fresh process: the bash tool starts this binary's hidden
//! `__sandbox-exec --spec <json> -- bash -c CMD` subcommand ([`launch`]), which restricts itself
//! and then execs bash ([`exec`], [`child`]).
//!
//! `sandbox: "required"` refuses to serve without Landlock; `best_effort` serves anyway and says
//! so at start; `off` runs bash directly, unconfined.

pub mod child;
pub mod handoff;
pub mod health;
pub mod hidden;
pub mod landlock;
pub mod launch;
pub mod namespace;
pub mod proxy;
pub mod relay;
pub mod report;
pub mod seccomp;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::guard::PolicyFile;

pub use launch::{Prepared, Sandbox, enforcement, landlock_support, namespace_support};
pub use report::{check_at_start, startup_report};

/// Why a `bash` child could connect to a service of this machine bound at `bound` (where the
/// HTTP faces serve: a child there could sign in to the console or answer its own approval
/// over `/mcp`), or `None` when the sandbox keeps it out. Port 0 counts as any port.
pub fn host_reachable(policy: &PolicyFile, bound: std::net::SocketAddr) -> Option<String> {
    use crate::guard::egress::NetworkMode;
    use crate::guard::policy::SandboxMode;
    if policy.sandbox == SandboxMode::Off {
        return Some("the policy turns the sandbox off (`\"sandbox\": \"off\"`)".into());
    }
    match policy.network.mode {
        NetworkMode::Open => Some("the policy's network mode is `open`".into()),
        NetworkMode::Deny => None,
        NetworkMode::Allowlist => policy
            .network
            .allow
            .iter()
            .find(|e| e.reaches_own(bound.ip(), bound.port()))
            .map(|e| format!("the policy's network.allow entry `{e}` reaches it")),
    }
}

/// The hidden subcommand that applies a [`Spec`] to itself and execs the command.
pub const EXEC_SUBCOMMAND: &str = "__sandbox-exec";
/// Exit status of [`EXEC_SUBCOMMAND`] when the sandbox cannot be set up (nothing ran).
pub const SETUP_FAILED: u8 = 125;
/// The temp directory of `bash` children, relative to the primary root.
pub const TMP_DIR: &str = ".pi-mcp/tmp";

/// Why the sandbox could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "the kernel lacks Landlock ({0}) and the policy says `\"sandbox\": \"required\"`; \
         use a kernel with Landlock, or set `\"sandbox\": \"best_effort\"` to run bash \
         without the filesystem sandbox"
    )]
    Unsupported(String),
    #[error(
        "network namespaces are unavailable here ({0}) and the policy says \
         `\"network_required\": true`; allow user namespaces (sysctl \
         kernel.unprivileged_userns_clone=1 / user.max_user_namespaces), run where they are \
         allowed, or set `network_required` to false to fall back to no network at all"
    )]
    NoNamespace(String),
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
    #[error("cannot start the egress proxy for this call: {0}")]
    Proxy(#[source] std::io::Error),
    #[error("bad sandbox spec: {0}")]
    Spec(#[from] serde_json::Error),
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(#[source] nix::Error),
    #[error("Landlock: {0}")]
    Landlock(#[from] ::landlock::RulesetError),
    #[error("seccomp network filter: {0}")]
    Seccomp(#[from] seccompiler::Error),
    #[error("namespaces: {0}")]
    Namespace(String),
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
    /// Refuse to run the command when Landlock is not enforced.
    pub required: bool,
    /// How the command reaches the network.
    pub network: NetSpec,
    /// New user (where allowed), mount and PID namespaces: a private `/proc`, the hidden paths
    /// covered, no capabilities.
    pub isolate: bool,
    /// Existing paths to cover (with `isolate`).
    pub hidden: Vec<PathBuf>,
    /// An empty file no one may read, bound over hidden files.
    pub blank: Option<PathBuf>,
}

/// The network a child gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum NetSpec {
    /// The host's network, unconfined.
    Open,
    /// No sockets but Unix and netlink ones.
    Deny,
    /// Its own network namespace; out only through the egress proxy at `proxy`.
    Namespace {
        proxy: PathBuf,
        forwards: Vec<relay::Forward>,
        /// A hosts file naming the forwarded hosts, bound over `/etc/hosts`.
        hosts: Option<PathBuf>,
    },
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

/// The body of [`EXEC_SUBCOMMAND`]: applies the JSON `spec` to this process and execs `argv`.
/// Returns only on failure. Call it before any other thread exists: `unshare`, `fork`,
/// `no_new_privs`, Landlock and seccomp need (or restrict only) the calling thread.
pub fn exec(spec: &str, argv: &[OsString]) -> SandboxError {
    let spec: Spec = match serde_json::from_str(spec) {
        Ok(s) => s,
        Err(e) => return e.into(),
    };
    if argv.is_empty() {
        return SandboxError::NoCommand;
    }
    if spec.isolate {
        return child::run_isolated(&spec, argv);
    }
    if let Err(e) = child::confine(&spec) {
        return e;
    }
    child::exec_program(argv, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::egress::NetworkMode;
    use crate::guard::policy::SandboxMode;

    fn policy(json: &str) -> PolicyFile {
        PolicyFile::parse(json, "test").unwrap()
    }

    #[test]
    fn policy_fields_default_and_parse() {
        let p = policy("{}");
        assert_eq!(p.sandbox, SandboxMode::BestEffort);
        assert_eq!(p.network.mode, NetworkMode::Allowlist);
        assert!(p.writable_paths.is_empty() && !p.network_required);
        let p = policy(r#"{"sandbox": "required", "network": "deny", "writable_paths": ["/x"]}"#);
        assert_eq!(p.sandbox, SandboxMode::Required);
        assert_eq!(p.network.mode, NetworkMode::Deny);
        assert_eq!(
            policy(r#"{"network": "allow"}"#).network.mode,
            NetworkMode::Open
        );
        assert!(PolicyFile::parse(r#"{"sandbox": "strict"}"#, "t").is_err());
        assert!(PolicyFile::parse(r#"{"network": "sometimes"}"#, "t").is_err());
    }

    #[test]
    fn writable_paths_expand_home_and_relative() {
        let p = policy(r#"{"writable_paths": ["~", "~/.cache", "/var/tmp", "build"]}"#);
        let got = listed_writable(&p, Path::new("/ws"), Path::new("/home/a"));
        let want = ["/home/a", "/home/a/.cache", "/var/tmp", "/ws/build"];
        assert_eq!(got, want.map(PathBuf::from));
    }

    #[test]
    fn this_kernel_has_landlock() {
        let support = landlock::probe();
        assert!(
            matches!(support, landlock::Support::Landlock { .. }),
            "{support:?}"
        );
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
    fn spec_round_trips() {
        let spec = Spec {
            writable: vec![PathBuf::from("/ws")],
            required: false,
            network: NetSpec::Namespace {
                proxy: PathBuf::from("/run/p.sock"),
                forwards: vec![relay::Forward {
                    listen: "127.0.0.2:5432".parse().unwrap(),
                    target: "db.internal:5432".into(),
                }],
                hosts: None,
            },
            isolate: true,
            hidden: vec![PathBuf::from("/home/a/.ssh")],
            blank: Some(PathBuf::from("/run/blank")),
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<Spec>(&json).unwrap(), spec);
    }
}
