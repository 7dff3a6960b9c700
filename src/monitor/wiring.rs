//! Connects the monitor's narrow traits to the real tools (`tools::cloudwatch`, `tools::sql`,
//! `tools::notify`), so the monitor owns no second copy of AWS, database or channel code.

use std::sync::Arc;

use std::time::Duration;

use crate::app::App;
use crate::tools::ToolContext;
use crate::tools::notify::{Message, Notifier};

use super::evaluate::{DEFAULT_CONCURRENCY, Monitor};
use super::outbox::{Notice, NoticeSender, Patience, SendError};
use super::rules::Channel;
use super::sources::{
    BoxFuture, DbSource, LogGroupSource, MetricQuery, MetricSeries, MetricSource, Sources,
};
use crate::guard::cloudwatch::CloudWatchTarget;
use crate::guard::{Decision, Guard};
use crate::tools::cloudwatch::CloudWatch;

/// A monitor over `app`'s store, audit log and tools; `client` names it in the audit log.
/// CloudWatch comes from the standard AWS chain; when it cannot be set up, metric and log
/// group rules evaluate to an error saying so.
pub async fn monitor(app: &App, client: &str) -> Monitor {
    let cloudwatch = match CloudWatch::from_env().await {
        Ok(cw) => Some(Arc::new(CloudWatchSource(cw, app.guard().clone()))),
        Err(e) => {
            tracing::debug!("CloudWatch unavailable to the monitor: {e}");
            None
        }
    };
    Monitor {
        store: app.store.clone(),
        audit: app.audit.clone(),
        sources: Sources {
            db: Some(Arc::new(SqlSource(app.tools.clone()))),
            metrics: cloudwatch.clone().map(|c| c as Arc<dyn MetricSource>),
            log_groups: cloudwatch.map(|c| c as Arc<dyn LogGroupSource>),
        },
        sender: Some(Arc::new(NotifySender(Notifier::from_env(
            app.guard().clone(),
        )))),
        root: app.tools.workspace.primary().to_path_buf(),
        client: client.to_string(),
        holder: super::lease::holder_id(),
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
        patience: Patience,
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
            let sent = match patience {
                Patience::Retry => self.0.send(&msg).await,
                Patience::Once => self.0.send_once(&msg).await,
            };
            sent.map(|_| ()).map_err(|e| SendError {
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

/// Metric and log-group rules through the cloudwatch tool, within the policy's `cloudwatch`
/// allow-lists (namespaces, log groups) as the tool's own calls are.
struct CloudWatchSource(CloudWatch, Arc<Guard>);

impl CloudWatchSource {
    fn judge(&self, action: &str, target: CloudWatchTarget<'_>) -> Result<(), String> {
        let v = self.1.judge_cloudwatch(action, target);
        if v.decision == Decision::Allow {
            return Ok(());
        }
        let why: Vec<&str> = v.reasons.iter().map(|r| r.message.as_str()).collect();
        Err(format!(
            "refused by policy: {} (widen the policy's cloudwatch section or change the rule)",
            why.join("; ")
        ))
    }
}

impl MetricSource for CloudWatchSource {
    fn get_metric_data<'a>(
        &'a self,
        queries: &'a [MetricQuery],
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, Result<Vec<MetricSeries>, String>> {
        Box::pin(async move {
            self.0
                .get_metric_data(queries, start, end)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn permits(&self, namespace: &str) -> Result<(), String> {
        self.judge("get_metric_data", CloudWatchTarget::Namespace(namespace))
    }
}

impl LogGroupSource for CloudWatchSource {
    fn count_log_events<'a>(
        &'a self,
        log_group: &'a str,
        filter: &'a str,
        matching: Option<&'a regex::Regex>,
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move {
            self.judge("filter_log_events", CloudWatchTarget::LogGroup(log_group))?;
            let filter = (!filter.is_empty()).then_some(filter);
            self.0
                .count_log_events(log_group, filter, matching, start, end)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
