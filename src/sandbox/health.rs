//! The sandbox's own health check for `pi-mcp doctor`: each layer this machine really enforces
//! for a `bash` child under the policy in force (Landlock and its ABI, the seccomp filter,
//! namespaces, the network mode, hidden paths), and one real child started through the same
//! path a `bash` call takes, so that a layer that probes well but fails to apply shows here.

use std::time::Duration;

use crate::guard::PolicyFile;
use crate::guard::egress::NetworkMode;
use crate::guard::policy::SandboxMode;
use crate::health::Check;

use super::landlock::Support;
use super::{Sandbox, TMP_DIR};

/// Longest the trial child may take.
pub const TRIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// One check per layer, then the trial child.
pub async fn health(sandbox: &Sandbox, policy: &PolicyFile) -> Vec<Check> {
    if policy.sandbox == SandboxMode::Off {
        return vec![Check::warn(
            "sandbox",
            "off by policy: bash runs without Landlock, namespaces, no_new_privs or network \
             confinement",
            "set \"sandbox\": \"best_effort\" or \"required\" in the policy",
        )];
    }
    let required = policy.sandbox == SandboxMode::Required;
    let mut out = vec![landlock(sandbox, policy, required), seccomp()];
    let namespaces = sandbox.namespaces();
    out.push(match &namespaces {
        Ok(()) => Check::ok(
            "namespaces",
            "user (where allowed), mount, PID and network namespaces for every bash child",
        ),
        Err(why) => Check::warn(
            "namespaces",
            format!("unavailable: {why}; hidden paths and the egress proxy cannot be used"),
            "allow user namespaces (sysctl kernel.unprivileged_userns_clone=1, \
             user.max_user_namespaces > 0) or run where they are allowed",
        )
        .needed_if(policy.network_required && policy.network.mode == NetworkMode::Allowlist),
    });
    out.push(network(sandbox, policy, namespaces.is_ok()));
    out.push(match &namespaces {
        Ok(()) => Check::ok(
            "hidden paths",
            format!(
                "{} pattern(s) unreadable to bash, with pi-mcp's own state and other processes' \
                 /proc entries",
                policy.hidden_paths.len()
            ),
        ),
        Err(_) => Check::warn(
            "hidden paths",
            format!(
                "{} pattern(s) NOT enforced (no namespaces): bash can read them",
                policy.hidden_paths.len()
            ),
            "make namespaces available (see `namespaces`)",
        ),
    });
    out.push(trial(sandbox).await);
    out
}

fn landlock(sandbox: &Sandbox, policy: &PolicyFile, required: bool) -> Check {
    match sandbox.landlock() {
        Support::Landlock { enforced, kernel } => Check::ok(
            "landlock",
            format!(
                "ABI v{enforced} enforced (kernel ABI v{kernel}), no_new_privs; bash writes \
                 only to the workspace, {TMP_DIR} and {} listed path(s)",
                policy.writable_paths.len()
            ),
        ),
        Support::Missing(why) => Check::warn(
            "landlock",
            format!("missing ({why}): bash may write anywhere this user can"),
            "run on a kernel with Landlock (Linux 5.13+, `lsm=` including landlock)",
        )
        .needed_if(required),
    }
}

/// The seccomp network filter compiles for this architecture and the kernel can load filters.
fn seccomp() -> Check {
    let kernel = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Seccomp:")))
        .unwrap_or(false);
    match (super::seccomp::network_filter(), kernel) {
        (Ok(_), true) => Check::ok(
            "seccomp",
            "network filter available (used by network \"deny\" and as the fallback of \
             \"allowlist\")",
        ),
        (Ok(_), false) => Check::warn(
            "seccomp",
            "the kernel shows no seccomp support (/proc/self/status has no Seccomp line)",
            "use a kernel built with CONFIG_SECCOMP_FILTER",
        ),
        (Err(e), _) => Check::warn(
            "seccomp",
            format!("the network filter does not build here: {e}"),
            "report this architecture; meanwhile use network \"allowlist\" with namespaces",
        ),
    }
}

fn network(sandbox: &Sandbox, policy: &PolicyFile, namespaces: bool) -> Check {
    let words = sandbox.network_words();
    match (policy.network.mode, namespaces) {
        (NetworkMode::Open, _) => Check::warn(
            "network",
            format!("{words}: bash may connect anywhere"),
            "set \"network\": {\"mode\": \"allowlist\", \"allow\": [...]} in the policy",
        ),
        (NetworkMode::Allowlist, false) => Check::warn(
            "network",
            words,
            "make namespaces available, so that the listed destinations can be reached",
        )
        .needed_if(policy.network_required),
        _ => Check::ok("network", words),
    }
}

/// Starts `true` the way a `bash` call would (the sandbox's child, every layer applied).
async fn trial(sandbox: &Sandbox) -> Check {
    let name = "bash child";
    let prepared = match sandbox.prepare("true") {
        Ok(p) => p,
        Err(e) => {
            return Check::fail(
                name,
                format!("cannot be set up: {e}"),
                "fix what the message names; every bash call fails until then",
            );
        }
    };
    let mut command = prepared.command;
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let run = async { command.output().await };
    match tokio::time::timeout(TRIAL_TIMEOUT, run).await {
        Ok(Ok(out)) if out.status.success() => Check::ok(
            name,
            "a trial child started under every layer above and exited 0",
        ),
        Ok(Ok(out)) => Check::fail(
            name,
            format!(
                "a trial child failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "fix what the message names; every bash call fails until then",
        ),
        Ok(Err(e)) => Check::fail(
            name,
            format!("cannot start a trial child: {e}"),
            "check that the pi-mcp executable can be run again (it starts itself)",
        ),
        Err(_) => Check::fail(
            name,
            format!("a trial child did not finish within {TRIAL_TIMEOUT:?}"),
            "check the kernel's namespace and Landlock support",
        ),
    }
}
