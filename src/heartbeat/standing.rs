//! The standing check: when the workspace has a `HEARTBEAT.md` and a model is configured, every
//! `--check-every` heartbeats an agent run in `heartbeat` mode follows those standing
//! instructions. An answer of just `HEARTBEAT_OK` delivers nothing; any other answer is
//! delivered on `HEARTBEAT_CHANNELS` (default: every channel with a destination configured).
//! The check may not change anything on its own: its state-changing calls become approvals.
//! A check still running when the next one is due is not doubled.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::runs::Runs;
use crate::agent::{self, Limits, Mode, RunRequest, StopReason};
use crate::severity::Severity;
use crate::tools::notify::Channel;
use crate::tools::notify::config::ChannelConfig;

/// The standing instructions' file name, in the first workspace root.
pub const STANDING_FILE: &str = "HEARTBEAT.md";
/// Largest `HEARTBEAT.md` read (it goes into every check's system prompt).
pub const MAX_STANDING_BYTES: u64 = 64 * 1024;
/// Model turns of one check.
pub const CHECK_MAX_STEPS: u32 = 20;
/// Wall-clock limit of one check.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Comma-separated channels a check's answer goes to.
pub const CHANNELS_VAR: &str = "HEARTBEAT_CHANNELS";

/// The whole answer of a check that found nothing to report.
pub const ALL_CLEAR: &str = "HEARTBEAT_OK";

/// Whether `answer` is just [`ALL_CLEAR`] (surrounding whitespace, backticks and a final
/// period allowed).
pub fn is_all_clear(answer: &str) -> bool {
    answer.trim().trim_end_matches('.').trim_matches('`').trim() == ALL_CLEAR
}

/// The task every check is given (the instructions themselves are the standing instructions).
const CHECK_TASK: &str = "Periodic heartbeat check. Follow the standing instructions below, using the tools \
to look. If nothing needs a human's attention, reply with exactly HEARTBEAT_OK and nothing else. Otherwise \
reply with a short report of what needs attention and the evidence.";

/// Decides when a check is due and starts it.
pub struct StandingCheck {
    path: PathBuf,
    every: u64,
    beats: u64,
    channels: Vec<Channel>,
    running: Arc<AtomicBool>,
    last_problem: Option<String>,
}

impl StandingCheck {
    /// `every`: run on the first heartbeat and then every this many (0 counts as 1).
    pub fn new(root: &std::path::Path, every: u64, channels: Vec<Channel>) -> StandingCheck {
        StandingCheck {
            path: root.join(STANDING_FILE),
            every: every.max(1),
            beats: 0,
            channels,
            running: Arc::default(),
            last_problem: None,
        }
    }

    /// Called once per heartbeat; starts a check when one is due. Returns whether it did.
    pub fn on_beat(&mut self, runs: &mut Runs) -> bool {
        if !self.tick() || !self.path.exists() {
            return false;
        }
        let instructions = match self.read() {
            Ok(t) => {
                self.last_problem = None;
                t
            }
            Err(e) => {
                if self.last_problem.as_deref() != Some(e.as_str()) {
                    tracing::error!("heartbeat: standing check skipped: {e}");
                    self.last_problem = Some(e);
                }
                return false;
            }
        };
        if self.running.swap(true, Ordering::SeqCst) {
            tracing::warn!(
                "heartbeat: the previous {STANDING_FILE} check is still running; not starting another"
            );
            return false;
        }
        let Some(ctx) = runs.context(&format!("the {STANDING_FILE} check")) else {
            self.running.store(false, Ordering::SeqCst);
            return false;
        };
        let running = Done(self.running.clone());
        let channels = self.channels.clone();
        runs.spawn(async move {
            let _running = running;
            let started = Instant::now();
            ctx.audit("heartbeat.check", json!({}), "started", started);
            let request = RunRequest {
                mode: Mode::Heartbeat,
                task: CHECK_TASK.to_string(),
                provider: ctx.provider.clone(),
                limits: Limits {
                    max_steps: CHECK_MAX_STEPS,
                    timeout: Some(CHECK_TIMEOUT),
                    ..Limits::default()
                },
                dry_run: false,
                read_only_asks: true,
                sequential: false,
                mcp_config: None,
                extra_instructions: Some(instructions),
                cancel: ctx.cancel.child_token(),
                requested_by: "the heartbeat's HEARTBEAT.md check".into(),
            };
            let outcome = match agent::run(&ctx.app, request).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::error!("heartbeat: {STANDING_FILE} check could not run: {e}");
                    ctx.audit("heartbeat.check", json!({}), &format!("failed: {e}"), started);
                    return;
                }
            };
            let transcript = outcome.transcript_markdown.display().to_string();
            let all_clear = outcome.stop_reason == StopReason::FinalAnswer
                && is_all_clear(&outcome.final_answer);
            let verdict = if all_clear {
                "all clear".to_string()
            } else {
                format!("needs attention ({})", outcome.stop_reason.as_str())
            };
            tracing::info!("heartbeat: {STANDING_FILE} check: {verdict}; transcript {transcript}");
            ctx.audit(
                "heartbeat.check",
                json!({}),
                &format!("finished: {verdict}; transcript {transcript}"),
                started,
            );
            if all_clear || outcome.stop_reason == StopReason::Interrupted {
                return;
            }
            if channels.is_empty() {
                tracing::warn!(
                    "heartbeat: the {STANDING_FILE} check needs attention but no channel is configured \
                     (set {CHANNELS_VAR} or a channel's destination)"
                );
                return;
            }
            let data = json!({
                "kind": "heartbeat_check",
                "status": outcome.headline.status,
                "headline": outcome.headline.text,
                "stop_reason": outcome.stop_reason.as_str(),
                "pending_approvals": outcome.facts.pending_approvals,
                "facts": outcome.facts,
                "transcript": transcript,
            });
            ctx.deliver(
                &channels,
                "Heartbeat check: needs attention",
                &super::report::run_text(&outcome),
                Severity::Warning,
                data,
            )
            .await;
        });
        true
    }

    /// Counts a heartbeat; true when a check is due on it.
    fn tick(&mut self) -> bool {
        let due = self.beats.is_multiple_of(self.every);
        self.beats += 1;
        due
    }

    fn read(&self) -> Result<String, String> {
        let shown = self.path.display();
        let meta = std::fs::metadata(&self.path).map_err(|e| format!("{shown}: {e}"))?;
        if meta.len() > MAX_STANDING_BYTES {
            return Err(format!(
                "{shown} has {} bytes; the limit is {MAX_STANDING_BYTES}: shorten it",
                meta.len()
            ));
        }
        let text = std::fs::read_to_string(&self.path).map_err(|e| format!("{shown}: {e}"))?;
        if text.trim().is_empty() {
            return Err(format!("{shown} is empty"));
        }
        Ok(text)
    }
}

/// Marks the check as no longer running when its task ends, however it ends.
struct Done(Arc<AtomicBool>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// The check's channels: `HEARTBEAT_CHANNELS` (`slack,email,webhook`) when set, else every
/// channel whose destination is configured.
pub fn channels_from_env() -> Result<Vec<Channel>, String> {
    match std::env::var(CHANNELS_VAR) {
        Ok(v) if !v.trim().is_empty() => parse_channels(&v),
        _ => Ok(configured_channels(&ChannelConfig::from_env())),
    }
}

/// `slack, webhook` → the channels, each named once.
pub fn parse_channels(list: &str) -> Result<Vec<Channel>, String> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let channel: Channel = name.parse().map_err(|e| format!("{CHANNELS_VAR}: {e}"))?;
        if !out.contains(&channel) {
            out.push(channel);
        }
    }
    Ok(out)
}

/// The channels `config` has a destination for.
pub fn configured_channels(config: &ChannelConfig) -> Vec<Channel> {
    let mut out = Vec::new();
    if config.slack_webhook_url.is_some() {
        out.push(Channel::Slack);
    }
    if config.smtp_url.is_some() && !config.email_to.is_empty() {
        out.push(Channel::Email);
    }
    if config.webhook_url.is_some() {
        out.push(Channel::Webhook);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bare_heartbeat_ok_is_all_clear() {
        assert!(is_all_clear("HEARTBEAT_OK"));
        assert!(is_all_clear("  `HEARTBEAT_OK`.\n"));
        assert!(!is_all_clear("HEARTBEAT_OK, but the disk is 95% full"));
        assert!(!is_all_clear("heartbeat ok"));
    }

    #[test]
    fn channels_parse_and_default_to_the_configured_ones() {
        assert_eq!(
            parse_channels("slack, webhook,slack"),
            Ok(vec![Channel::Slack, Channel::Webhook])
        );
        assert!(parse_channels("pager").unwrap_err().contains(CHANNELS_VAR));
        let config = ChannelConfig {
            webhook_url: Some("http://127.0.0.1/hook".into()),
            smtp_url: Some("smtp://localhost".into()),
            ..ChannelConfig::default()
        };
        assert_eq!(configured_channels(&config), vec![Channel::Webhook]);
    }

    #[test]
    fn a_check_is_due_on_the_first_beat_and_then_every_n() {
        let dir = tempfile::tempdir().unwrap();
        let mut check = StandingCheck::new(dir.path(), 3, Vec::new());
        let due: Vec<bool> = (0..6).map(|_| check.tick()).collect();
        assert_eq!(due, [true, false, false, true, false, false]);
    }

    #[test]
    fn an_oversized_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let check = StandingCheck::new(dir.path(), 1, Vec::new());
        std::fs::write(
            dir.path().join(STANDING_FILE),
            "x".repeat(MAX_STANDING_BYTES as usize + 1),
        )
        .unwrap();
        assert!(check.read().unwrap_err().contains("limit"));
        std::fs::write(dir.path().join(STANDING_FILE), "Check the disk.").unwrap();
        assert_eq!(check.read().unwrap(), "Check the disk.");
    }
}
