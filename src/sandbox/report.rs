//! What the server says at start about how `bash` children are bounded on this machine, and the
//! refusals to serve where the policy requires a layer the machine cannot give.

use crate::guard::PolicyFile;
use crate::guard::egress::NetworkMode;
use crate::guard::policy::SandboxMode;

use super::landlock::Support;
use super::{Sandbox, SandboxError, TMP_DIR};

/// The start-up line for `policy` under `sandbox` (`true` when it is a warning), or the refusal
/// to serve.
pub fn startup_report(
    sandbox: &Sandbox,
    policy: &PolicyFile,
) -> Result<(bool, String), SandboxError> {
    if policy.sandbox == SandboxMode::Off {
        return Ok((
            true,
            "sandbox: off by policy; bash runs without Landlock, namespaces, no_new_privs or \
             network confinement"
                .into(),
        ));
    }
    let namespaces = sandbox.namespaces();
    if let Err(why) = &namespaces
        && policy.network.mode == NetworkMode::Allowlist
        && policy.network_required
    {
        return Err(SandboxError::NoNamespace(why.clone()));
    }
    sandbox.ready()?;
    let network = sandbox.network_words();
    let hidden = match &namespaces {
        Ok(()) => format!(
            "{} hidden path pattern(s) and other processes' /proc entries unreadable",
            policy.hidden_paths.len()
        ),
        Err(why) => format!("hidden paths NOT enforced (no namespaces: {why})"),
    };
    let weak = namespaces.is_err() || policy.network.mode == NetworkMode::Open;
    match (policy.sandbox, sandbox.landlock()) {
        (_, Support::Landlock { enforced, kernel }) => Ok((
            weak,
            format!(
                "sandbox: Landlock ABI v{enforced} enforced (kernel ABI v{kernel}), no_new_privs; \
                 bash writes only to the workspace, {TMP_DIR} and {} listed path(s); {network}; \
                 {hidden}",
                policy.writable_paths.len()
            ),
        )),
        (SandboxMode::Required, Support::Missing(why)) => {
            Err(SandboxError::Unsupported(why.clone()))
        }
        (_, Support::Missing(why)) => Ok((
            true,
            format!(
                "sandbox: the kernel lacks Landlock ({why}); the filesystem sandbox is OFF \
                 (policy best_effort); bash runs with no_new_privs; {network}; {hidden}"
            ),
        )),
    }
}

/// Probes the kernel and logs one line on how `bash` will be confined; refuses where the
/// policy requires a layer this machine lacks.
pub fn check_at_start(sandbox: &Sandbox, policy: &PolicyFile) -> Result<(), SandboxError> {
    match startup_report(sandbox, policy)? {
        (true, line) => tracing::warn!("{line}"),
        (false, line) => tracing::info!("{line}"),
    }
    Ok(())
}
