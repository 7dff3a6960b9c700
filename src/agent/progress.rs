//! Progress the agent's tools report while they run: the agent's MCP client handler logs each
//! `notifications/progress` on stderr as it arrives and keeps it under its request's progress
//! token, so the call that owns the token can put it in the run's transcript.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    ClientCapabilities, ClientConfig, Implementation, ProgressNotificationParam, ProgressToken,
};
use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, RoleClient};
use serde::Serialize;

/// Progress notifications kept per call (later ones are logged but not kept).
pub const MAX_PROGRESS_PER_CALL: usize = 1_000;
/// Longest wait after a call's result for progress notifications still being handled (the
/// client handles notifications in tasks of their own, so the last may trail the result).
pub const PROGRESS_SETTLE: Duration = Duration::from_millis(200);
/// Calls whose progress is kept at once; a server sending progress for tokens no call claims
/// cannot grow the inbox past this.
const MAX_TRACKED_CALLS: usize = 256;

/// One progress notification.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProgressUpdate {
    pub progress: f64,
    pub total: Option<f64>,
    pub message: Option<String>,
}

impl ProgressUpdate {
    /// True when this update says the work is complete.
    fn is_final(&self) -> bool {
        self.total.is_some_and(|t| self.progress >= t)
    }
}

#[derive(Default)]
struct Tracked {
    tool: Option<String>,
    updates: Vec<ProgressUpdate>,
}

/// Progress received, by request token.
#[derive(Clone, Default)]
pub struct ProgressInbox(Arc<Mutex<HashMap<ProgressToken, Tracked>>>);

impl ProgressInbox {
    /// Names the tool a call with `token` runs (for the stderr lines).
    pub fn claim(&self, token: &ProgressToken, tool: &str) {
        if let Ok(mut map) = self.0.lock()
            && (map.contains_key(token) || map.len() < MAX_TRACKED_CALLS)
        {
            map.entry(token.clone()).or_default().tool = Some(tool.to_string());
        }
    }

    /// Logs `update` on stderr and keeps it under `token`.
    fn receive(&self, token: ProgressToken, update: ProgressUpdate) {
        let Ok(mut map) = self.0.lock() else {
            return;
        };
        if !map.contains_key(&token) && map.len() >= MAX_TRACKED_CALLS {
            return;
        }
        let tracked = map.entry(token).or_default();
        let tool = tracked.tool.as_deref().unwrap_or("a tool");
        let of_total = update.total.map(|t| format!("/{t}")).unwrap_or_default();
        tracing::info!(
            "agent: `{tool}` progress {}{of_total}{}",
            update.progress,
            update
                .message
                .as_deref()
                .filter(|m| !m.is_empty())
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
        if tracked.updates.len() < MAX_PROGRESS_PER_CALL {
            tracked.updates.push(update);
        }
    }

    /// Takes what arrived for `token`, waiting up to [`PROGRESS_SETTLE`] for a final update
    /// when some progress came but not the last.
    pub async fn take(&self, token: &ProgressToken) -> Vec<ProgressUpdate> {
        tokio::task::yield_now().await;
        let started = Instant::now();
        loop {
            let complete = self.0.lock().ok().is_none_or(|map| {
                map.get(token)
                    .is_none_or(|t| t.updates.is_empty() || t.updates.iter().any(|u| u.is_final()))
            });
            if complete || started.elapsed() >= PROGRESS_SETTLE {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut updates = self
            .0
            .lock()
            .ok()
            .and_then(|mut map| map.remove(token))
            .map(|t| t.updates)
            .unwrap_or_default();
        // rmcp handles each notification in a task of its own, so they can arrive out of
        // order; progress only increases (MCP), so sorting by it restores the order they were sent.
        updates.sort_by(|a, b| a.progress.total_cmp(&b.progress));
        updates
    }
}

/// The agent's MCP client: identifies itself and collects progress.
#[derive(Clone, Default)]
pub struct AgentClient {
    pub inbox: ProgressInbox,
}

impl ClientHandler for AgentClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("pi-mcp-agent", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.inbox.receive(
            params.progress_token,
            ProgressUpdate {
                progress: params.progress,
                total: params.total,
                message: params.message,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::NumberOrString;

    fn update(progress: f64) -> ProgressUpdate {
        ProgressUpdate {
            progress,
            total: Some(2.0),
            message: None,
        }
    }

    #[tokio::test]
    async fn updates_are_kept_per_token_up_to_the_limit() {
        let inbox = ProgressInbox::default();
        let a = ProgressToken(NumberOrString::Number(1));
        let b = ProgressToken(NumberOrString::Number(2));
        inbox.claim(&a, "ghost");
        for _ in 0..MAX_PROGRESS_PER_CALL + 5 {
            inbox.receive(a.clone(), update(1.0));
        }
        inbox.receive(a.clone(), update(2.0));
        inbox.receive(b.clone(), update(2.0));
        assert_eq!(inbox.take(&a).await.len(), MAX_PROGRESS_PER_CALL);
        assert_eq!(inbox.take(&b).await, [update(2.0)]);
        assert!(inbox.take(&a).await.is_empty(), "taken once");
    }

    #[tokio::test]
    async fn unclaimed_tokens_cannot_grow_the_inbox_without_bound() {
        let inbox = ProgressInbox::default();
        for n in 0..(MAX_TRACKED_CALLS as i64 + 10) {
            inbox.receive(ProgressToken(NumberOrString::Number(n)), update(2.0));
        }
        assert_eq!(inbox.0.lock().unwrap().len(), MAX_TRACKED_CALLS);
    }

    #[tokio::test]
    async fn take_waits_briefly_for_a_trailing_final_update() {
        let inbox = ProgressInbox::default();
        let t = ProgressToken(NumberOrString::Number(7));
        inbox.receive(t.clone(), update(1.0));
        let late = inbox.clone();
        let token = t.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            late.receive(token, update(2.0));
        });
        assert_eq!(inbox.take(&t).await, [update(1.0), update(2.0)]);
    }

    #[tokio::test]
    async fn updates_handled_out_of_order_come_back_in_the_order_sent() {
        let inbox = ProgressInbox::default();
        let t = ProgressToken(NumberOrString::Number(3));
        inbox.receive(t.clone(), update(2.0));
        inbox.receive(t.clone(), update(0.5));
        inbox.receive(t.clone(), update(1.0));
        assert_eq!(
            inbox.take(&t).await,
            [update(0.5), update(1.0), update(2.0)]
        );
    }
}
