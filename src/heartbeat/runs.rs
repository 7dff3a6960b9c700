//! The heartbeat's background agent runs (alert investigations and the `HEARTBEAT.md` check):
//! they run as tasks beside the beat so a long run never delays the next heartbeat, share one
//! cancellation token so SIGTERM ends them cleanly (their transcripts say `interrupted`), and
//! report through `tools::notify` and the audit log.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::agent::ProviderConfig;
use crate::app::App;
use crate::severity::Severity;
use crate::tools::notify::{Channel, Message, Notifier};

/// Client name of the heartbeat's entries in the audit log.
pub const AUDIT_CLIENT: &str = "heartbeat";

/// What every background run needs, cheap to clone into a task.
#[derive(Clone)]
pub struct RunContext {
    pub app: App,
    pub provider: ProviderConfig,
    /// Cancelled when the daemon stops.
    pub cancel: CancellationToken,
    pub notifier: Arc<Notifier>,
}

impl RunContext {
    /// Records a heartbeat action (`heartbeat.investigate`, `heartbeat.check`) in the audit log.
    pub fn audit(&self, tool: &str, arguments: Value, outcome: &str, started: Instant) {
        self.app.audit.record(crate::monitor::audit_entry(
            tool,
            arguments,
            outcome,
            started,
            AUDIT_CLIENT,
        ));
    }

    /// Sends `text` on each of `channels` (each failure logged, none fatal); returns how many
    /// arrived.
    pub async fn deliver(
        &self,
        channels: &[Channel],
        subject: &str,
        text: &str,
        severity: Severity,
        data: Value,
    ) -> usize {
        let mut delivered = 0;
        for &channel in channels {
            let msg = Message {
                channel,
                subject: Some(subject.to_string()),
                text: text.to_string(),
                severity: Some(severity),
                attachments: Vec::new(),
                data: Some(data.clone()),
            };
            match self.notifier.send(&msg).await {
                Ok(d) => {
                    delivered += 1;
                    tracing::info!("heartbeat: `{subject}`: {d}");
                }
                Err(e) => tracing::error!("heartbeat: `{subject}` not delivered on {channel}: {e}"),
            }
        }
        delivered
    }
}

/// The background runs of one daemon.
pub struct Runs {
    app: App,
    provider: Result<ProviderConfig, String>,
    cancel: CancellationToken,
    notifier: Arc<Notifier>,
    tasks: JoinSet<()>,
    missing_provider_reported: bool,
}

impl Runs {
    /// `provider`: the model settings, or why there are none (reported once, when a run is due).
    pub fn new(app: App, provider: Result<ProviderConfig, String>) -> Runs {
        let notifier = Arc::new(Notifier::from_env(app.guard().clone()));
        Runs {
            app,
            provider,
            cancel: CancellationToken::new(),
            notifier,
            tasks: JoinSet::new(),
            missing_provider_reported: false,
        }
    }

    /// The context for a run of `what`, or `None` (reported once) when no model is configured.
    pub fn context(&mut self, what: &str) -> Option<RunContext> {
        match &self.provider {
            Ok(provider) => Some(RunContext {
                app: self.app.clone(),
                provider: provider.clone(),
                cancel: self.cancel.clone(),
                notifier: self.notifier.clone(),
            }),
            Err(why) => {
                if !self.missing_provider_reported {
                    self.missing_provider_reported = true;
                    tracing::error!("heartbeat: cannot start {what}: {why}");
                }
                None
            }
        }
    }

    /// Starts `run` in the background (finished runs are reaped first).
    pub fn spawn(&mut self, run: impl Future<Output = ()> + Send + 'static) {
        while let Some(done) = self.tasks.try_join_next() {
            log_join(done);
        }
        self.tasks.spawn(run);
    }

    /// Waits for every run to end on its own (`--once`).
    pub async fn finish(&mut self) {
        while let Some(done) = self.tasks.join_next().await {
            log_join(done);
        }
    }

    /// Cancels every run and waits until each has finished its transcript.
    pub async fn stop(&mut self) {
        if !self.tasks.is_empty() {
            tracing::info!("heartbeat: interrupting {} agent run(s)", self.tasks.len());
        }
        self.cancel.cancel();
        self.finish().await;
    }
}

fn log_join(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && !e.is_cancelled()
    {
        tracing::error!("heartbeat: an agent run task failed: {e}");
    }
}
