//! The `bash` tool: the command is judged by the guard first; an allowed (or approved) command
//! runs under `bash -c` inside the OS sandbox ([`super::sandbox`]) in its own process group
//! inside the workspace, with a timeout that kills
//! the whole group, a scrubbed environment, merged output whose tail is returned and whose whole
//! is saved under `.pi-mcp/` when cut.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::approvals::Queued;
use super::output::{MAX_BYTES, MAX_LINES, tail};
use super::{Approval, ApprovalRequest, Approver, ToolContext, ToolError};
use crate::guard::{Decision, PathContext, Verdict};

/// Largest full output saved to a file when the reply is cut.
pub const MAX_SAVED_BYTES: u64 = 100 * 1024 * 1024;
/// How long to wait for background children to close the output after bash exits.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);

/// Parameters of `bash`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BashParams {
    /// The command line, run with `bash -c`. The guard judges it first.
    pub command: String,
    /// Seconds before the command and all its children are killed (default and maximum set by
    /// the policy, 120 and 600 by default).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Working directory, relative to the workspace root or absolute; must be inside the workspace.
    #[serde(default)]
    pub cwd: Option<String>,
}

/// What a finished (or timed-out) command produced.
#[derive(Debug, Clone)]
pub struct BashResult {
    /// The reply text: output tail plus status lines.
    pub text: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub saved_to: Option<PathBuf>,
    pub verdict: Verdict,
    /// The connections the command asked the egress proxy for (allow-list mode only).
    pub traffic: Option<crate::sandbox::proxy::Traffic>,
}

impl BashResult {
    pub fn is_error(&self) -> bool {
        self.timed_out || self.exit_code != Some(0)
    }
}

/// A call's checked arguments and the policy's verdict on its command.
pub struct Judged {
    pub cwd: PathBuf,
    pub timeout: u64,
    pub verdict: Verdict,
}

/// Checks a call's arguments and judges its command, without running anything (the first
/// step of [`run`]; the MCP face also asks it whether a call will wait for a human).
pub async fn judge(ctx: &ToolContext, p: &BashParams) -> Result<Judged, ToolError> {
    if p.command.trim().is_empty() {
        return Err(ToolError::new("command is empty"));
    }
    let cwd = ctx.workspace.resolve_dir(p.cwd.as_deref())?;
    let limits = ctx.guard.timeouts();
    let timeout = p.timeout_secs.unwrap_or(limits.default_secs);
    if timeout == 0 || timeout > limits.max_secs {
        return Err(ToolError::new(format!(
            "timeout_secs must be between 1 and {} (the policy's maximum)",
            limits.max_secs
        )));
    }
    let paths = PathContext {
        cwd: cwd.clone(),
        roots: ctx.workspace.roots().to_vec(),
        home: ctx.home.clone(),
    };
    // Judging may consult osv-scanner (a subprocess) for package installs: off the async thread.
    let verdict = {
        let (guard, command) = (ctx.guard.clone(), p.command.clone());
        tokio::task::spawn_blocking(move || guard.judge_command(&command, &paths))
            .await
            .map_err(|e| ToolError::new(format!("the policy check failed: {e}")))?
    };
    Ok(Judged {
        cwd,
        timeout,
        verdict,
    })
}

/// Judges and runs one call; `requested_by` names the caller on an approval it has to queue.
pub async fn run(
    ctx: &ToolContext,
    p: BashParams,
    approver: &dyn Approver,
    requested_by: &str,
) -> Result<BashResult, ToolError> {
    let Judged {
        cwd,
        timeout,
        verdict,
    } = judge(ctx, &p).await?;
    match verdict.decision {
        Decision::Deny => {
            // A human may have approved it under an earlier policy: the policy in force wins,
            // and the approval is voided so the queue says what the audit log says.
            let voided = match ctx.approvals.as_deref() {
                Some(q) => {
                    q.void_approved("bash", &p.command, &cwd.display().to_string(), &verdict)
                        .await
                }
                None => None,
            };
            let error = match voided {
                Some(a) => ToolError::denied(
                    format!(
                        "Approval `{}` was given for this command, but the policy in force now denies it, so it was \
                         NOT run and the approval is void.\n{}\nTake another approach that does not need this command.",
                        a.id,
                        reasons_text(&verdict)
                    ),
                    verdict,
                )
                .with_approval(a),
                None => ToolError::denied(
                    format!(
                        "Command denied by policy and NOT run.\n{}\nTake another approach that does not need this command.",
                        reasons_text(&verdict)
                    ),
                    verdict,
                ),
            };
            return Err(error);
        }
        Decision::Ask => {
            let request = ApprovalRequest {
                tool: "bash".into(),
                command: p.command.clone(),
                cwd: cwd.clone(),
                verdict: verdict.clone(),
            };
            let cwd_text = cwd.display().to_string();
            let queue = ctx.approvals.as_deref();
            let earlier = match queue {
                Some(q) => q.approved_before("bash", &p.command, &cwd_text).await,
                None => None,
            };
            let answer = match earlier {
                Some(id) => {
                    tracing::info!("running `{}` with approval {id}", p.command);
                    Approval::Approved
                }
                None => {
                    let answer = approver.approve(&request).await;
                    let on_the_spot = match &answer {
                        Approval::Approved => Some((true, "")),
                        Approval::Declined(why) => Some((false, why.as_str())),
                        Approval::Unavailable(_) | Approval::Deferred(_) => None,
                    };
                    let on_the_spot = on_the_spot.filter(|_| !approver.audits_answers());
                    if let (Some(q), Some((accepted, why))) = (queue, on_the_spot) {
                        let id = q.answered_on_the_spot(&p.command, &verdict, accepted, why);
                        tracing::info!(
                            "approval {id}: answered on the spot (accepted: {accepted})"
                        );
                    }
                    answer
                }
            };
            match answer {
                Approval::Approved => {}
                Approval::Unavailable(why) => {
                    let Some(q) = queue else {
                        return Err(ToolError::denied(
                            format!(
                                "This command needs human approval and was NOT run: {why}.\n{}\nUse a safer command, or ask the user to run it.",
                                reasons_text(&verdict)
                            ),
                            verdict,
                        ));
                    };
                    match q
                        .request(requested_by, "bash", &p.command, &cwd_text, &verdict)
                        .await
                    {
                        Ok(Queued::Approved(id)) => {
                            tracing::info!("running `{}` with approval {id}", p.command)
                        }
                        Ok(Queued::Denied(a)) => {
                            let by = match a.decided_by.as_deref() {
                                Some(crate::store::approvals::POLICY) => "The policy in force",
                                _ => "A human",
                            };
                            return Err(ToolError::denied(
                                format!(
                                    "{by} denied approval `{}`; the command was NOT run{}.\n{}\nTake another approach.",
                                    a.id,
                                    a.note
                                        .as_deref()
                                        .map(|n| format!(" ({n})"))
                                        .unwrap_or_default(),
                                    reasons_text(&verdict)
                                ),
                                verdict,
                            )
                            .with_approval(a));
                        }
                        Ok(Queued::Pending(a)) => {
                            return Err(ToolError::denied(
                                format!(
                                    "This command needs human approval and was NOT run. It is pending as approval `{}` (expires {}). \
                                     Ask the user to run `pi-mcp approvals approve {}`; once approved, call bash again with exactly the same \
                                     command and cwd and it will run once.\n{}",
                                    a.id,
                                    a.expires_at,
                                    a.id,
                                    reasons_text(&verdict)
                                ),
                                verdict,
                            )
                            .with_approval(a));
                        }
                        Err(e) => {
                            return Err(ToolError::denied(
                                format!(
                                    "This command needs human approval and was NOT run: {e}.\n{}",
                                    reasons_text(&verdict)
                                ),
                                verdict,
                            ));
                        }
                    }
                }
                Approval::Declined(why) => {
                    return Err(ToolError::denied(
                        format!(
                            "A human declined this command; it was NOT run ({why}).\n{}\nTake another approach.",
                            reasons_text(&verdict)
                        ),
                        verdict,
                    ));
                }
                Approval::Deferred(why) => {
                    return Err(ToolError::denied(
                        format!(
                            "This command needs human approval and was NOT run: {why}.\n{}",
                            reasons_text(&verdict)
                        ),
                        verdict,
                    ));
                }
            }
        }
        Decision::Allow => {}
    }
    execute(ctx, &p.command, &cwd, Duration::from_secs(timeout), verdict).await
}

fn reasons_text(v: &Verdict) -> String {
    let lines: Vec<String> = v
        .deciding_reasons()
        .map(|r| format!("- rule `{}`: {}", r.rule, r.message))
        .collect();
    format!(
        "Decision: {} (risk {}).\n{}",
        v.decision,
        v.risk,
        lines.join("\n")
    )
}

/// Kills the whole process group when dropped (also when the call is cancelled).
struct GroupKiller(Option<Pid>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = killpg(pid, Signal::SIGKILL);
        }
    }
}

async fn execute(
    ctx: &ToolContext,
    command: &str,
    cwd: &std::path::Path,
    timeout: Duration,
    verdict: Verdict,
) -> Result<BashResult, ToolError> {
    let fail = |what: &str, e: std::io::Error| ToolError::new(format!("could not {what}: {e}"));
    let (reader, writer) = std::io::pipe().map_err(|e| fail("create a pipe", e))?;
    let writer2 = writer.try_clone().map_err(|e| fail("create a pipe", e))?;
    // `bash -c command`, under the OS sandbox unless the policy turns it off.
    let prepared = {
        let sandbox = ctx.sandbox.clone();
        let command = command.to_string();
        // The first call may probe for namespaces (a short subprocess): off the async thread.
        tokio::task::spawn_blocking(move || {
            // The proxy session's accept loop needs the runtime: enter it on this thread.
            sandbox.prepare(&command)
        })
    };
    let crate::sandbox::Prepared {
        command: mut cmd,
        proxy,
    } = prepared
        .await
        .map_err(|e| ToolError::new(format!("could not start bash: {e}")))?
        .map_err(|e| ToolError::new(format!("could not start bash: {e}")))?;
    cmd.current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(OwnedFd::from(writer)))
        .stderr(Stdio::from(OwnedFd::from(writer2)))
        .process_group(0)
        .kill_on_drop(true);
    for (name, _) in std::env::vars_os() {
        if let Some(n) = name.to_str()
            && (ctx.guard.env_denied(n) || crate::secrets::is_server_secret(n))
        {
            cmd.env_remove(n);
        }
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| fail("start bash", e))?;
    // The parent's copies of the write end were moved into `cmd`; drop it so EOF can arrive.
    drop(cmd);
    let mut killer = GroupKiller(child.id().map(|id| Pid::from_raw(id as i32)));
    let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader))
        .map_err(|e| fail("read output", e))?;

    let mut collected: Vec<u8> = Vec::new();
    let mut spill: Option<(PathBuf, std::fs::File)> = None;
    let mut total: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + timeout;
    let mut status = None;
    let mut timed_out = false;
    let mut exited_at: Option<tokio::time::Instant> = None;
    let mut output_closed = false;
    // Runs until bash has exited and the output is closed (or background children kept it
    // open past the drain time), or the timeout.
    while !(output_closed && status.is_some()) {
        let drain_deadline = exited_at.map(|t| t + DRAIN_AFTER_EXIT).unwrap_or(deadline);
        tokio::select! {
            n = pipe.read(&mut buf), if !output_closed => {
                let n: usize = n.unwrap_or_default();
                if n == 0 {
                    output_closed = true;
                    continue;
                }
                total += n as u64;
                let chunk = &buf[..n];
                if let Some((_, f)) = spill.as_mut()
                    && total <= MAX_SAVED_BYTES {
                        let _ = f.write_all(chunk);
                    }
                collected.extend_from_slice(chunk);
                // Keep memory bounded: once the reply will surely be cut, stream to a file.
                if spill.is_none() && collected.len() > 4 * MAX_BYTES {
                    let (path, mut f) = open_spill(ctx)?;
                    let _ = f.write_all(&collected);
                    spill = Some((path, f));
                }
                if spill.is_some() && collected.len() > 8 * MAX_BYTES {
                    let cut = collected.len() - 2 * MAX_BYTES;
                    collected.drain(..cut);
                }
            }
            s = child.wait(), if status.is_none() => {
                status = s.ok();
                exited_at = Some(tokio::time::Instant::now());
            }
            _ = tokio::time::sleep_until(drain_deadline) => {
                if exited_at.is_none() {
                    timed_out = true;
                }
                break;
            }
        }
    }
    // Whatever is left in the group (timeout, or background children holding the pipe) dies.
    if let Some(pid) = killer.0.take() {
        let _ = killpg(pid, Signal::SIGKILL);
    }
    if status.is_none() {
        status = child.wait().await.ok();
    }
    let elapsed = started.elapsed();
    let already_spilled = spill.is_some();
    let text_all = String::from_utf8_lossy(&collected).into_owned();
    let (kept, dropped) = tail(&text_all);
    let was_cut = dropped > 0 || already_spilled || kept.len() < text_all.len();
    let saved_to = if was_cut {
        let (path, mut f) = match spill.take() {
            Some(s) => s,
            None => open_spill(ctx)?,
        };
        if !already_spilled {
            let _ = f.write_all(&collected);
        }
        Some(path)
    } else {
        None
    };
    let mut text = kept;
    if text.is_empty() {
        text.push_str("(no output)\n");
    } else if !text.ends_with('\n') {
        text.push('\n');
    }
    if let Some(path) = &saved_to {
        let shown = path.strip_prefix(ctx.workspace.primary()).unwrap_or(path);
        text = format!(
            "[Output cut: showing the last {} lines / {} KiB of {total} bytes. The full output is saved in {} (read it with the read tool).]\n{text}",
            MAX_LINES,
            MAX_BYTES / 1024,
            shown.display()
        );
    }
    let exit_code = status.and_then(|s| s.code());
    if timed_out {
        text.push_str(&format!(
            "\n[Timed out after {} s: the command and all its child processes were killed.]",
            timeout.as_secs()
        ));
    } else {
        match (exit_code, status) {
            (Some(0), _) => {
                text.push_str(&format!("\n[exit code 0, {:.1} s]", elapsed.as_secs_f64()))
            }
            (Some(c), _) => text.push_str(&format!(
                "\n[exit code {c}, {:.1} s]",
                elapsed.as_secs_f64()
            )),
            (None, Some(s)) => text.push_str(&format!("\n[killed by a signal: {s}]")),
            (None, None) => text.push_str("\n[exit status unknown]"),
        }
    }
    let traffic = match proxy {
        Some(session) => Some(session.finish().await),
        None => None,
    };
    if let Some(refused) = traffic
        .as_ref()
        .map(|t| t.refused())
        .filter(|r| !r.is_empty())
    {
        text.push_str(&format!(
            "\n[network: pi-mcp's egress proxy refused {}: not in the policy's network.allow list. \
             Do not work around it; if the destination is needed, ask the operator to add it to \
             network.allow in the policy file.]",
            refused.join(", ")
        ));
    }
    Ok(BashResult {
        text,
        exit_code,
        timed_out,
        saved_to,
        verdict,
        traffic,
    })
}

fn open_spill(ctx: &ToolContext) -> Result<(PathBuf, std::fs::File), ToolError> {
    let dir = ctx
        .scratch_dir()
        .map(|d| d.join("bash-output"))
        .map_err(|e| ToolError::new(format!("could not create .pi-mcp/: {e}")))?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| ToolError::new(format!("could not create {}: {e}", dir.display())))?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("{stamp}-{}-{seq}.log", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| {
            ToolError::new(format!(
                "could not save the output to {}: {e}",
                path.display()
            ))
        })?;
    Ok((path, file))
}
