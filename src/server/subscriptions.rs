//! Resource subscriptions in both protocol revisions, fed by the one watcher in `live`:
//! - 2025-11-25: `resources/subscribe` / `resources/unsubscribe` keep a set of URIs per session;
//!   the session's first subscription starts a forwarder that sends
//!   `notifications/resources/updated` for those URIs and `notifications/resources/list_changed`
//!   until the session ends.
//! - 2026-07-28: `subscriptions/listen` opens a stream that rmcp acknowledges; [`listen`] sends
//!   the changes its accepted filter names until the client cancels it.
//!
//! Any URI may be subscribed to, including one that does not exist yet (a database's first
//! report): it is heard about when it appears.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rmcp::model::{ResourceUpdatedNotificationParam, SubscriptionFilter};
use rmcp::service::{Peer, SubscriptionContext};
use rmcp::{ErrorData, RoleServer};
use tokio::sync::broadcast::error::RecvError;

use super::PiServer;
use super::live::Change;

/// One session's `resources/subscribe` state (2025-11-25).
#[derive(Clone, Default)]
pub struct SessionSubscriptions {
    inner: Arc<Mutex<SessionState>>,
}

#[derive(Default)]
struct SessionState {
    uris: HashSet<String>,
    forwarding: bool,
}

impl SessionSubscriptions {
    fn wants(&self, uri: &str) -> bool {
        self.inner.lock().is_ok_and(|s| s.uris.contains(uri))
    }

    /// Adds `uri`; starts this session's forwarder on its first subscription.
    pub fn subscribe(&self, server: &PiServer, peer: Peer<RoleServer>, uri: String) {
        let start = {
            let Ok(mut state) = self.inner.lock() else {
                return;
            };
            state.uris.insert(uri);
            !std::mem::replace(&mut state.forwarding, true)
        };
        if start {
            let changes = server.live.listen(server);
            let session = self.clone();
            tokio::spawn(forward(session, peer, changes));
        }
    }

    pub fn unsubscribe(&self, uri: &str) {
        if let Ok(mut state) = self.inner.lock() {
            state.uris.remove(uri);
        }
    }
}

/// Sends a session the changes it subscribed to, until the session ends.
async fn forward(
    session: SessionSubscriptions,
    peer: Peer<RoleServer>,
    mut changes: tokio::sync::broadcast::Receiver<Change>,
) {
    loop {
        let sent = match changes.recv().await {
            Ok(Change::Updated(uri)) if session.wants(&uri) => {
                peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                    .await
            }
            Ok(Change::Updated(_)) => Ok(()),
            // Fell behind: some updates were dropped; a list change makes the client re-read.
            Ok(Change::ListChanged) | Err(RecvError::Lagged(_)) => {
                peer.notify_resource_list_changed().await
            }
            Err(RecvError::Closed) => return,
        };
        if sent.is_err() || peer.is_transport_closed() {
            tracing::debug!("resource subscriptions: the session ended; forwarder stops");
            return;
        }
    }
}

/// What a `subscriptions/listen` request may have: updates for any URI it names and resource
/// list changes. Tools and prompts never change while the server runs.
pub fn accepted_filter(requested: &SubscriptionFilter) -> SubscriptionFilter {
    let mut accepted = SubscriptionFilter::new();
    accepted.resources_list_changed = requested.resources_list_changed.filter(|on| *on);
    accepted.resource_subscriptions = requested.resource_subscriptions.clone();
    accepted
}

/// Serves one `subscriptions/listen` stream (2026-07-28) until the client cancels it or the
/// session ends; returning `Ok` lets rmcp close the stream with its final result.
pub async fn listen(server: &PiServer, context: SubscriptionContext) -> Result<(), ErrorData> {
    let mut changes = server.live.listen(server);
    let sink = context.sink().clone();
    let wants_list = sink.accepted().resources_list_changed == Some(true);
    let wants = |uri: &str| {
        sink.accepted()
            .resource_subscriptions
            .as_ref()
            .is_some_and(|uris| uris.iter().any(|u| u == uri))
    };
    loop {
        let change = tokio::select! {
            _ = context.cancelled() => return Ok(()),
            change = changes.recv() => change,
        };
        let sent = match change {
            Ok(Change::Updated(uri)) if wants(&uri) => sink.notify_resource_updated(uri).await,
            Ok(Change::ListChanged) | Err(RecvError::Lagged(_)) if wants_list => {
                sink.notify_resource_list_changed().await
            }
            Ok(_) | Err(RecvError::Lagged(_)) => Ok(()),
            Err(RecvError::Closed) => return Ok(()),
        };
        if let Err(e) = sent {
            tracing::debug!("subscriptions/listen: the stream ended ({e})");
            return Ok(());
        }
    }
}
