//! What changed among the server's resources, for subscribers. One watcher per server process
//! looks at the store and the reports directory every [`POLL`] while anyone listens, and
//! broadcasts a [`Change`] per resource whose content moved: an alert rule's transition (its
//! state, problem, notification or cooldown; not each evaluation's value), the approvals list
//! (one created, decided, used or expired), a database's newest report, and the resource list
//! itself (a rule or a report appeared or went). The heartbeat and the CLI write to the store
//! from other processes, so the watcher polls rather than waits for an in-process event; with no
//! listener it does not run at all.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;

use super::PiServer;
use super::resources::{APPROVALS_SHOWN, APPROVALS_URI, LATEST_REPORT, REPORTS_URI};
use crate::monitor::mcp::ALERTS_URI;

/// How often the watcher looks. A heartbeat is at least a few seconds apart, so a subscriber
/// hears about a transition well within one heartbeat of it.
pub const POLL: Duration = Duration::from_secs(1);

/// Changes a slow subscriber may fall behind by before it misses some (it is then told that
/// the list changed, so it re-reads what it cares about).
const BACKLOG: usize = 256;

/// One change the watcher saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The resource at this URI reads differently now.
    Updated(String),
    /// Resources appeared or went (`notifications/resources/list_changed`).
    ListChanged,
}

/// The process-wide watcher; cheap to clone, shared by every session.
#[derive(Clone)]
pub struct LiveResources {
    inner: Arc<Inner>,
}

struct Inner {
    changes: broadcast::Sender<Change>,
    running: AtomicBool,
}

impl Default for LiveResources {
    fn default() -> Self {
        LiveResources {
            inner: Arc::new(Inner {
                changes: broadcast::channel(BACKLOG).0,
                running: AtomicBool::new(false),
            }),
        }
    }
}

impl LiveResources {
    /// A receiver of every change from now on; starts the watcher if it is not running.
    pub fn listen(&self, server: &PiServer) -> broadcast::Receiver<Change> {
        let receiver = self.inner.changes.subscribe();
        self.ensure_running(server);
        receiver
    }

    fn ensure_running(&self, server: &PiServer) {
        if self
            .inner
            .running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let inner = self.inner.clone();
            let server = server.clone();
            tokio::spawn(async move { watch(inner, server).await });
        }
    }
}

/// Polls until no receiver is left. A receiver that arrives while the loop is stopping finds
/// `running` still set; the loop checks again after clearing it, so no one is left unwatched.
async fn watch(inner: Arc<Inner>, server: PiServer) {
    let mut last = Snapshot::take(&server).await;
    loop {
        tokio::time::sleep(POLL).await;
        if inner.changes.receiver_count() == 0 {
            inner.running.store(false, Ordering::Release);
            let resumed = inner.changes.receiver_count() > 0
                && inner
                    .running
                    .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
            if !resumed {
                return;
            }
        }
        let now = Snapshot::take(&server).await;
        for change in last.changes_to(&now) {
            // No receiver left: the next turn notices and stops.
            let _ = inner.changes.send(change);
        }
        last = now;
    }
}

/// A fingerprint of every watched resource, and the set of listed URIs.
#[derive(Debug, Default, PartialEq)]
struct Snapshot {
    fingerprints: BTreeMap<String, u64>,
    listed: BTreeSet<String>,
}

fn fingerprint(value: impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

impl Snapshot {
    /// Reads what subscribers can watch. A source that cannot be read now (the rules file
    /// mid-edit, the store busy) keeps no fingerprint this turn, which reads as a change when
    /// it comes back: a subscriber re-reads once too often rather than missing a transition.
    async fn take(server: &PiServer) -> Snapshot {
        let mut fingerprints = BTreeMap::new();
        let root = server.tools.workspace.primary();
        let store = server.audit.store();
        if let Ok(keys) = crate::monitor::mcp::transition_keys(store, root).await {
            fingerprints.insert(ALERTS_URI.to_string(), fingerprint(&keys));
            for (id, key) in keys {
                fingerprints.insert(format!("{ALERTS_URI}/{id}"), fingerprint(key));
            }
        }
        if let Ok(approvals) = crate::store::approvals::list(store, APPROVALS_SHOWN).await {
            let states: Vec<(String, String)> =
                approvals.into_iter().map(|a| (a.id, a.status)).collect();
            fingerprints.insert(APPROVALS_URI.to_string(), fingerprint(states));
        }
        for database in super::resources::latest_report_databases(&server.reports_dir) {
            let path = server.reports_dir.join(&database).join(LATEST_REPORT);
            if let Ok(meta) = std::fs::metadata(&path) {
                let modified = meta.modified().ok();
                fingerprints.insert(
                    format!("{REPORTS_URI}{database}/latest"),
                    fingerprint((meta.len(), modified)),
                );
            }
        }
        let listed = super::resources::list(server)
            .into_iter()
            .map(|r| r.uri.clone())
            .collect();
        Snapshot {
            fingerprints,
            listed,
        }
    }

    /// What a subscriber should hear to go from `self` to `now`.
    fn changes_to(&self, now: &Snapshot) -> Vec<Change> {
        let mut out: Vec<Change> = now
            .fingerprints
            .iter()
            .filter(|(uri, print)| self.fingerprints.get(*uri) != Some(print))
            .map(|(uri, _)| Change::Updated(uri.clone()))
            .collect();
        // A resource that went away reads differently too (as not found).
        out.extend(
            self.fingerprints
                .keys()
                .filter(|uri| !now.fingerprints.contains_key(*uri))
                .map(|uri| Change::Updated(uri.clone())),
        );
        if self.listed != now.listed {
            out.push(Change::ListChanged);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(prints: &[(&str, u64)], listed: &[&str]) -> Snapshot {
        Snapshot {
            fingerprints: prints.iter().map(|(u, p)| (u.to_string(), *p)).collect(),
            listed: listed.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn changed_new_and_gone_resources_are_updates_and_a_new_listing_is_a_list_change() {
        let before = snap(&[("a", 1), ("b", 2), ("gone", 3)], &["a", "b"]);
        let after = snap(&[("a", 1), ("b", 5), ("new", 4)], &["a", "b", "new"]);
        let changes = before.changes_to(&after);
        assert_eq!(
            changes,
            vec![
                Change::Updated("b".into()),
                Change::Updated("new".into()),
                Change::Updated("gone".into()),
                Change::ListChanged,
            ]
        );
        assert!(after.changes_to(&after).is_empty());
    }
}
