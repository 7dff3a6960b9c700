//! The host side of the sandbox: the [`Sandbox`] service the app owns. It knows what this machine
//! enforces (probed once), holds the egress proxy and a private runtime directory (proxy
//! sockets, the blank file bound over hidden files, the hosts file of forwarded names), and turns
//! each `bash` call into the command that starts [`super::EXEC_SUBCOMMAND`] with the call's
//! [`Spec`], plus the proxy session that records the call's connections.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::guard::egress::NetworkMode;
use crate::guard::policy::SandboxMode;
use crate::guard::{Enforcement, PolicyFile};

use super::hidden::HiddenPaths;
use super::landlock::Support;
use super::proxy::{EgressProxy, Session};
use super::relay::{Forward, name_address};
use super::{EXEC_SUBCOMMAND, NetSpec, SandboxError, Spec, TMP_DIR, listed_writable};

/// What the running kernel gives every child, probed once per process.
static LANDLOCK: OnceLock<Support> = OnceLock::new();
static NAMESPACES: OnceLock<Result<(), String>> = OnceLock::new();

/// Landlock support on this kernel (probed once per process).
pub fn landlock_support() -> &'static Support {
    LANDLOCK.get_or_init(super::landlock::probe)
}

/// Whether this process can give a child its own namespaces (probed once per process, by
/// starting one).
pub fn namespace_support() -> Result<(), String> {
    NAMESPACES.get_or_init(probe_namespaces).clone()
}

/// The layers that bound a `bash` child on this machine under a policy's `sandbox` and
/// `network.mode` (the only fields they depend on): what the guard judges with (a program it
/// does not know is `allow` only when all three hold).
pub fn enforcement(sandbox: SandboxMode, network: NetworkMode) -> Enforcement {
    if sandbox == SandboxMode::Off {
        return Enforcement::NONE;
    }
    Enforcement {
        writes: matches!(landlock_support(), Support::Landlock { .. }),
        network: match network {
            NetworkMode::Open => false,
            // Where namespaces are missing, `allowlist` falls back to `deny`: bounded either way.
            NetworkMode::Deny | NetworkMode::Allowlist => true,
        },
        hidden: namespace_support().is_ok(),
    }
}

/// A prepared `bash` call: the command to spawn, and the proxy session when the child gets a
/// network namespace.
pub struct Prepared {
    pub command: tokio::process::Command,
    pub proxy: Option<Session>,
}

/// The sandbox service (see the module comment).
#[derive(Debug)]
pub struct Sandbox {
    mode: SandboxMode,
    network: NetworkMode,
    network_required: bool,
    writable: Vec<PathBuf>,
    roots: Vec<PathBuf>,
    home: PathBuf,
    hidden: HiddenPaths,
    forwards: Vec<Forward>,
    /// Names of forwarded hosts and their namespace loopback addresses.
    forward_names: Vec<(String, std::net::IpAddr)>,
    policy_network: crate::guard::egress::NetworkPolicy,
    runtime: OnceLock<Result<Runtime, String>>,
}

/// The private directory and what lives in it.
#[derive(Debug)]
struct Runtime {
    /// Held for its lifetime: dropping it removes the sockets, the blank file and the hosts file.
    _dir: tempfile::TempDir,
    proxy: EgressProxy,
    blank: PathBuf,
    hosts: Option<PathBuf>,
}

impl Sandbox {
    /// The sandbox for `policy` in a workspace with `roots` (the first is primary) and home
    /// `home`; `always_hidden` are pi-mcp's own state paths.
    pub fn new(
        policy: &PolicyFile,
        hidden: &crate::guard::hidden::HiddenPatterns,
        roots: &[PathBuf],
        home: &Path,
        always_hidden: &[PathBuf],
    ) -> Sandbox {
        let primary = roots.first().cloned().unwrap_or_else(|| PathBuf::from("."));
        let mut writable = roots.to_vec();
        writable.push(primary.join(TMP_DIR));
        writable.extend(listed_writable(policy, &primary, home));
        let hidden = HiddenPaths::new(hidden, home, always_hidden);
        let (mut forwards, mut forward_names) = (Vec::new(), Vec::new());
        for pattern in &policy.network.allow {
            let Some((host, port)) = pattern.forward() else {
                continue;
            };
            let ip = match host.parse::<std::net::IpAddr>() {
                Ok(ip) if ip.is_loopback() => ip,
                Ok(_) => continue, // other addresses are reached through the proxy only
                Err(_) => match forward_names.iter().find(|(n, _)| *n == host) {
                    Some((_, ip)) => *ip,
                    None => {
                        let ip = name_address(forward_names.len());
                        forward_names.push((host.clone(), ip));
                        ip
                    }
                },
            };
            let target = match ip {
                std::net::IpAddr::V6(_) if host.parse::<std::net::IpAddr>().is_ok() => {
                    format!("[{host}]:{port}")
                }
                _ => format!("{host}:{port}"),
            };
            forwards.push(Forward {
                listen: std::net::SocketAddr::new(ip, port),
                target,
            });
        }
        Sandbox {
            mode: policy.sandbox,
            network: policy.network.mode,
            network_required: policy.network_required,
            writable,
            roots: roots.to_vec(),
            home: home.to_path_buf(),
            hidden,
            forwards,
            forward_names,
            policy_network: policy.network.clone(),
            runtime: OnceLock::new(),
        }
    }

    /// Everything a child may write.
    pub fn writable(&self) -> &[PathBuf] {
        &self.writable
    }

    /// Landlock support on this kernel.
    pub fn landlock(&self) -> &'static Support {
        landlock_support()
    }

    /// Whether a child gets its own namespaces here.
    pub fn namespaces(&self) -> Result<(), String> {
        if self.mode == SandboxMode::Off {
            return Err("the sandbox is off".into());
        }
        namespace_support()
    }

    /// The network a child gets here, as words for the start-up line and `doctor`.
    pub fn network_words(&self) -> String {
        match (self.network, self.namespaces()) {
            (NetworkMode::Open, _) => "network open (not confined)".into(),
            (NetworkMode::Deny, _) => "network denied (seccomp)".into(),
            (NetworkMode::Allowlist, Ok(())) => format!(
                "network: own namespace, egress proxy allowing {} destination(s)",
                self.policy_network.allow.len()
            ),
            (NetworkMode::Allowlist, Err(why)) => {
                format!("network: no namespaces ({why}), so allowlist falls back to deny (seccomp)")
            }
        }
    }

    fn runtime(&self) -> Result<&Runtime, SandboxError> {
        let made = self.runtime.get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("pi-mcp-sandbox-")
                .tempdir()
                .map_err(|e| format!("cannot create the sandbox's runtime directory: {e}"))?;
            let blank = dir.path().join("hidden");
            std::fs::write(&blank, b"")
                .and_then(|()| {
                    use std::os::unix::fs::PermissionsExt as _;
                    std::fs::set_permissions(&blank, std::fs::Permissions::from_mode(0o000))
                })
                .map_err(|e| format!("cannot create {}: {e}", blank.display()))?;
            let hosts = if self.forward_names.is_empty() {
                None
            } else {
                // First, so that a listed name resolves to its forward even where the host's
                // file names it too (the first match wins).
                let mut text =
                    String::from("# pi-mcp: destinations forwarded inside the sandbox\n");
                for (name, ip) in &self.forward_names {
                    text.push_str(&format!("{ip} {name}\n"));
                }
                text.push_str(&std::fs::read_to_string("/etc/hosts").unwrap_or_default());
                let path = dir.path().join("hosts");
                std::fs::write(&path, text)
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Some(path)
            };
            let proxy = EgressProxy::new(self.policy_network.clone(), dir.path().to_path_buf());
            Ok(Runtime {
                _dir: dir,
                proxy,
                blank,
                hosts,
            })
        });
        made.as_ref()
            .map_err(|e| SandboxError::Proxy(std::io::Error::other(e.clone())))
    }

    /// The process that runs `bash -c command` in `cwd`'s workspace: bash itself with `sandbox:
    /// "off"`, otherwise [`EXEC_SUBCOMMAND`] of this very binary with the call's [`Spec`] and
    /// `TMPDIR` (created here) in its environment. Call it inside the tokio runtime; it may
    /// block briefly the first time (the namespace probe).
    pub fn prepare(&self, command: &str) -> Result<Prepared, SandboxError> {
        if self.mode == SandboxMode::Off {
            let mut cmd = tokio::process::Command::new("bash");
            cmd.arg("-c").arg(command);
            return Ok(Prepared {
                command: cmd,
                proxy: None,
            });
        }
        let primary = self.roots.first().cloned().unwrap_or_default();
        let tmp = primary.join(TMP_DIR);
        std::fs::create_dir_all(&tmp).map_err(|source| SandboxError::TempDir {
            path: tmp.clone(),
            source,
        })?;
        let namespaces = self.namespaces();
        let mut proxy = None;
        let network = match (self.network, &namespaces) {
            (NetworkMode::Open, _) => NetSpec::Open,
            (NetworkMode::Deny, _) => NetSpec::Deny,
            (NetworkMode::Allowlist, Ok(())) => {
                let runtime = self.runtime()?;
                let session = runtime.proxy.session().map_err(SandboxError::Proxy)?;
                let spec = NetSpec::Namespace {
                    proxy: session.socket().to_path_buf(),
                    forwards: self.forwards.clone(),
                    hosts: runtime.hosts.clone(),
                };
                proxy = Some(session);
                spec
            }
            (NetworkMode::Allowlist, Err(why)) if self.network_required => {
                return Err(SandboxError::NoNamespace(why.clone()));
            }
            (NetworkMode::Allowlist, Err(_)) => NetSpec::Deny,
        };
        let isolate = namespaces.is_ok();
        let (hidden, blank) = if isolate {
            let runtime = self.runtime()?;
            (
                self.hidden.existing(&self.roots, &self.home),
                Some(runtime.blank.clone()),
            )
        } else {
            (Vec::new(), None)
        };
        let spec = Spec {
            writable: self.writable.clone(),
            required: self.mode == SandboxMode::Required,
            network,
            isolate,
            hidden,
            blank,
        };
        let mut cmd = tokio::process::Command::new(own_exe()?);
        cmd.arg(EXEC_SUBCOMMAND)
            .arg("--spec")
            .arg(serde_json::to_string(&spec)?)
            .args(["--", "bash", "-c", command]);
        for var in ["TMPDIR", "TMP", "TEMP"] {
            cmd.env(var, &tmp);
        }
        Ok(Prepared {
            command: cmd,
            proxy,
        })
    }

    /// Creates the runtime directory and the proxy now, where a call would need them, so that a
    /// failure shows at start rather than at the first call.
    pub fn ready(&self) -> Result<(), SandboxError> {
        if self.mode != SandboxMode::Off && self.namespaces().is_ok() {
            self.runtime()?;
        }
        Ok(())
    }
}

/// `/proc/self/exe`: in the child it is the server's own binary, even if the file on disk has
/// been replaced since the server started.
fn own_exe() -> Result<PathBuf, SandboxError> {
    let exe = Path::new("/proc/self/exe");
    if exe.exists() {
        Ok(exe.to_path_buf())
    } else {
        std::env::current_exe().map_err(SandboxError::CurrentExe)
    }
}

/// Starts `true` in every namespace a child would get (user where allowed, mount, PID,
/// network, a private `/proc`) and reports why not when that fails.
fn probe_namespaces() -> Result<(), String> {
    // A unit-test binary is not pi-mcp: it has no sandbox subcommand to start.
    if cfg!(test) {
        return Err("not probed in unit tests".into());
    }
    let spec = Spec {
        writable: Vec::new(),
        required: false,
        network: NetSpec::Namespace {
            proxy: PathBuf::from("/nonexistent"),
            forwards: Vec::new(),
            hosts: None,
        },
        isolate: true,
        hidden: Vec::new(),
        blank: None,
    };
    let spec = serde_json::to_string(&spec).map_err(|e| e.to_string())?;
    let exe = own_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .args([EXEC_SUBCOMMAND, "--spec", &spec, "--", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot start the probe: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let why = String::from_utf8_lossy(&out.stderr);
        let why = why.trim().trim_start_matches("pi-mcp: sandbox: ");
        Err(if why.is_empty() {
            format!("the probe ended with {}", out.status)
        } else {
            why.to_string()
        })
    }
}
