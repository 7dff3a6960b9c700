//! Connects the monitor's narrow traits to the real tools (`tools::cloudwatch`, `tools::sql`,
//! `tools::notify`), so the monitor owns no second copy of AWS, database or channel code.

use std::sync::Arc;

use std::time::Duration;

use crate::app::App;
use crate::tools::ToolContext;
use crate::tools::notify::{Message, Notifier};

use super::evaluate::{DEFAULT_CONCURRENCY, Monitor};
use super::outbox::{Notice, NoticeSender, SendError};
use super::rules::Channel;
use super::sources::{BoxFuture, DbSource, Sources};

/// A monitor over `app`'s store, audit log and tools; `client` names it in the audit log.
pub async fn monitor(app: &App, client: &str) -> Monitor {
    Monitor {
        store: app.store.clone(),
        audit: app.audit.clone(),
        sources: Sources {
            db: Some(Arc::new(SqlSource(app.tools.clone()))),
            ..Sources::default()
        },
        sender: Some(Arc::new(NotifySender(Notifier::from_env(
            app.guard().clone(),
        )))),
        root: app.tools.workspace.primary().to_path_buf(),
        client: client.to_string(),
        concurrency: DEFAULT_CONCURRENCY,
    }
}

/// Notices delivered through the notify tool (policy allow-list, retries with backoff).
struct NotifySender(Notifier);

impl NoticeSender for NotifySender {
    fn send<'a>(
        &'a self,
        channel: Channel,
        notice: &'a Notice,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let msg = Message {
                channel,
                subject: Some(notice.subject.clone()),
                text: notice.text.clone(),
                severity: Some(notice.severity),
                attachments: Vec::new(),
                data: serde_json::to_value(notice).ok(),
            };
            self.0.send(&msg).await.map(|_| ()).map_err(|e| SendError {
                message: e.message,
                transient: e.transient,
            })
        })
    }
}

/// `db_query` rules run through the sql tool: its configured databases, read-only, judged.
struct SqlSource(ToolContext);

impl DbSource for SqlSource {
    fn query_scalar<'a>(
        &'a self,
        database: Option<&'a str>,
        query: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Option<f64>, String>> {
        Box::pin(async move {
            crate::tools::sql::query_scalar(&self.0, database, query, timeout)
                .await
                .map_err(|e| e.message)
        })
    }
}
