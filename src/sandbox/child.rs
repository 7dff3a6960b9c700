//! The child side of [`super::EXEC_SUBCOMMAND`]: the steps a fresh, single-threaded process
//! takes on itself before it execs the command. Without isolation it confines itself and execs.
//! With isolation it enters new namespaces, binds the egress relay's listeners, and forks: the
//! fork (the first process of the new PID namespace) mounts a private `/proc`, covers the hidden
//! paths, drops every capability, confines itself and execs the command; this process stays
//! behind as the relay and exits with the command's status. When the command ends, the kernel
//! ends everything else in its PID namespace, background processes included.

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::Path;

use nix::libc;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

use super::{NetSpec, SETUP_FAILED, SandboxError, Spec, landlock, namespace, relay, seccomp};

/// `no_new_privs`, Landlock, and the socket filter for [`NetSpec::Deny`].
pub fn confine(spec: &Spec) -> Result<(), SandboxError> {
    nix::sys::prctl::set_no_new_privs().map_err(SandboxError::NoNewPrivs)?;
    let status = landlock::restrict_fs(&spec.writable)?;
    if spec.required && status.ruleset == ::landlock::RulesetStatus::NotEnforced {
        return Err(SandboxError::NotEnforced);
    }
    if spec.network == NetSpec::Deny {
        seccompiler::apply_filter(&seccomp::network_filter()?)?;
    }
    Ok(())
}

/// Execs `argv` with `env` added; returns only on failure.
pub fn exec_program(argv: &[OsString], env: &[(String, String)]) -> SandboxError {
    let Some((program, args)) = argv.split_first() else {
        return SandboxError::NoCommand;
    };
    let source = std::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .exec();
    SandboxError::Exec {
        program: program.to_string_lossy().into_owned(),
        source,
    }
}

/// The isolated path (see the module comment). Returns only on failure before the fork.
pub fn run_isolated(spec: &Spec, argv: &[OsString]) -> SandboxError {
    let net = matches!(spec.network, NetSpec::Namespace { .. });
    if let Err(e) = namespace::enter(net) {
        return SandboxError::Namespace(e);
    }
    let (listeners, env) = match &spec.network {
        NetSpec::Namespace { forwards, .. } => match relay::Listeners::bind(forwards) {
            Ok(l) => {
                let env = proxy_env(l.proxy_port());
                (Some(l), env)
            }
            Err(e) => return SandboxError::Namespace(format!("cannot bind the relay: {e}")),
        },
        _ => (None, Vec::new()),
    };
    // SAFETY: this process has a single thread (the subcommand runs before any other starts),
    // so the child may run arbitrary code after the fork.
    match unsafe { fork() } {
        Err(e) => SandboxError::Namespace(format!("fork: {e}")),
        Ok(ForkResult::Child) => {
            drop(listeners);
            let e = match prepare_first_process(spec) {
                Ok(()) => exec_program(argv, &env),
                Err(e) => e,
            };
            eprintln!("pi-mcp: sandbox: {e}");
            // SAFETY: ends this forked process without running the parent's exit handlers.
            unsafe { libc::_exit(i32::from(SETUP_FAILED)) }
        }
        Ok(ForkResult::Parent { child }) => match (listeners, &spec.network) {
            // No threads here: a process that unshared its PID namespace cannot start any.
            (Some(l), NetSpec::Namespace { proxy, .. }) => match l.serve(proxy.clone(), child) {
                Ok(status) => end_like(status),
                Err(e) => SandboxError::Namespace(format!("the relay failed: {e}")),
            },
            _ => wait_and_end(child),
        },
    }
}

/// The variables that point a child's HTTP clients at the relay's proxy listener. Loopback
/// stays direct: inside the namespace it is the namespace's own, where the forwards listen.
fn proxy_env(port: u16) -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{port}");
    let mut env = Vec::new();
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        env.push((name.to_string(), url.clone()));
        env.push((name.to_ascii_lowercase(), url.clone()));
    }
    let direct = "localhost,127.0.0.0/8,::1".to_string();
    env.push(("NO_PROXY".into(), direct.clone()));
    env.push(("no_proxy".into(), direct));
    env
}

/// In the first process of the new PID namespace: a private `/proc`, the hosts file, the
/// hidden paths covered, no capabilities, then the usual confinement.
fn prepare_first_process(spec: &Spec) -> Result<(), SandboxError> {
    namespace::mount_proc().map_err(SandboxError::Namespace)?;
    if let NetSpec::Namespace {
        hosts: Some(hosts), ..
    } = &spec.network
    {
        namespace::cover_file(hosts, Path::new("/etc/hosts")).map_err(SandboxError::Namespace)?;
    }
    for path in &spec.hidden {
        let Ok(meta) = std::fs::metadata(path) else {
            continue; // gone since the call was prepared, or below a covered directory
        };
        let covered = if meta.is_dir() {
            namespace::cover_dir(path)
        } else {
            match &spec.blank {
                Some(blank) => namespace::cover_file(blank, path),
                None => Err(format!("no blank file to cover {}", path.display())),
            }
        };
        covered.map_err(SandboxError::Namespace)?;
    }
    namespace::drop_capabilities().map_err(SandboxError::Namespace)?;
    confine(spec)
}

/// Waits for the command and ends this process the way it ended.
fn wait_and_end(child: nix::unistd::Pid) -> ! {
    loop {
        match waitpid(child, None) {
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => end_like(status),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => std::process::exit(i32::from(SETUP_FAILED)),
        }
    }
}

/// Ends this process with the command's exit code, or by the signal that ended it.
pub fn end_like(status: WaitStatus) -> ! {
    match status {
        WaitStatus::Exited(_, code) => std::process::exit(code),
        WaitStatus::Signaled(_, signal, _) => {
            // SAFETY: restoring the default action and raising the same signal on ourselves;
            // plain libc calls with valid arguments.
            unsafe {
                libc::signal(signal as libc::c_int, libc::SIG_DFL);
                libc::raise(signal as libc::c_int);
            }
            std::process::exit(128 + signal as i32)
        }
        _ => std::process::exit(i32::from(SETUP_FAILED)),
    }
}
