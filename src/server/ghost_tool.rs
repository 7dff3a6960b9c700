//! The `ghost` MCP tool: one Data Ghost run ([`crate::ghost::run_once`]) on a database the
//! policy names (resolved like the `sql` tool's, so the model cannot point it at an arbitrary
//! URL), returned as a short summary plus the run as structured JSON. When the call carries a
//! progress token, each profiled table is reported to the client as `notifications/progress`
//! (progress = tables done, total = tables, message = the table).

use rmcp::model::{CallToolResult, ContentBlock, ProgressNotificationParam, ProgressToken};
use rmcp::{Peer, RoleServer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::PiServer;
use crate::app::App;
use crate::ghost::deliver::DeliveryPolicy;
use crate::ghost::progress::{ProgressFn, ProgressSink};
use crate::ghost::{GhostRun, run_once};
use crate::guard::{Decision, Verdict};
use crate::tools::ToolError;
use crate::tools::sql::{DEFAULT_DATABASE, resolve_database};

/// The rule an audit entry names when the ghost is asked for a database the policy does not name.
pub const UNKNOWN_DATABASE_RULE: &str = "ghost-database";

/// Findings and schema changes listed in the summary the model reads (the structured result
/// has them all).
pub const SUMMARY_TOP_ITEMS: usize = 5;

pub const GHOST_DESCRIPTION: &str = "Run the Data Ghost once on DATABASE_URL or a database named in \
the policy's sql section: snapshot the schema and diff it against the previous run, profile every table \
with aggregate queries (read-only connection), judge the profiles against the stored history, and write \
a Markdown report with PNG charts under reports/<database>/. Returns a summary (report path, counts, top \
findings) plus the whole run as structured JSON. deliver: true also sends the report through the \
configured notify channels when something reaches the delivery bar. Sends progress notifications per \
table when the call carries a progress token.";

/// Parameters of `ghost`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GhostParams {
    /// A database named in the policy's `sql.databases`; default: the server's DATABASE_URL.
    #[serde(default)]
    pub database: Option<String>,
    /// Deliver the report through the configured notify channels (Slack, email, webhook) when a
    /// change or finding reaches warning (default false: only write the report).
    #[serde(default)]
    pub deliver: bool,
}

/// A finished `ghost` call, ready for the audit log.
pub struct GhostToolOutput {
    pub result: CallToolResult,
    pub verdict: Verdict,
    pub outcome: String,
}

/// Runs `ghost` for `server`'s session; progress goes to `peer` under `token` when given.
pub async fn run(
    server: &PiServer,
    params: GhostParams,
    peer: Peer<RoleServer>,
    token: Option<ProgressToken>,
) -> Result<GhostToolOutput, ToolError> {
    let target = resolve_database(&server.tools.guard, params.database.as_deref())
        .map_err(|e| refuse_unknown(server, params.database.as_deref(), e))?;
    let app = App {
        tools: server.tools.clone(),
        store: server.audit.store().clone(),
        audit: server.audit.clone(),
        prompts_dir: server.prompts_dir.clone(),
        reports_dir: server.reports_dir.clone(),
    };
    let mut opts = crate::ghost::command::options_from_env(target.url.clone())
        .map_err(|e| ToolError::new(format!("the server's ghost settings are invalid: {e:#}")))?;
    if !params.deliver {
        opts.delivery = DeliveryPolicy::off();
    }
    // A run as a task also says how far it got in the task's status message (`tasks/get`).
    let task = super::tasks::current().map(|t| t.task);
    let forwarder = (token.is_some() || task.is_some()).then(|| {
        let (tx, rx) = mpsc::unbounded_channel();
        opts.progress = ProgressSink {
            terminal_bar: false,
            callback: Some(tables_done(tx)),
        };
        tokio::spawn(forward(peer, token, task, rx))
    });
    let run = run_once(&app, &opts).await;
    // The callback (and with it the channel's sender) goes with the options, so the forwarder
    // ends once every notification is sent: all of them reach the client before the result.
    drop(opts);
    if let Some(task) = forwarder {
        let _ = task.await;
    }
    let run = run.map_err(|e| ToolError::new(format!("the ghost run could not finish: {e}")))?;
    crate::ghost::command::log_run(&run);
    let outcome = if run.failed() {
        format!("error: nothing profiled in `{}`", target.name)
    } else {
        format!(
            "ok: {} table(s), {} change(s), {} finding(s)",
            run.tables_profiled,
            run.schema_changes.len(),
            run.findings.len()
        )
    };
    let content = vec![ContentBlock::text(summary(&target.name, &run))];
    let mut result = if run.failed() {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    result.structured_content = serde_json::to_value(&run).ok();
    Ok(GhostToolOutput {
        result,
        verdict: Verdict::allow(),
        outcome,
    })
}

/// An unknown database name is a refusal by the policy (a model may try a URL there): the
/// error carries a deny verdict for the audit log. Other resolution errors (an unset variable)
/// stay configuration errors.
fn refuse_unknown(server: &PiServer, name: Option<&str>, e: ToolError) -> ToolError {
    match name {
        Some(n)
            if n != DEFAULT_DATABASE
                && !server.tools.guard.file().sql.databases.contains_key(n) =>
        {
            let verdict = Verdict::single(Decision::Deny, UNKNOWN_DATABASE_RULE, e.message.clone());
            ToolError::denied(e.message, verdict)
        }
        _ => e,
    }
}

/// A progress callback that turns "table `done + 1` starts" into "`done` tables are done"
/// messages (named after the table that finished) on `tx`.
fn tables_done(tx: mpsc::UnboundedSender<(usize, usize, String)>) -> ProgressFn {
    let current = std::sync::Mutex::new(String::new());
    std::sync::Arc::new(move |done: usize, total: usize, table: &str| {
        let Ok(mut current) = current.lock() else {
            return;
        };
        let finished = std::mem::replace(&mut *current, table.to_string());
        if done > 0 && total > 0 {
            let _ = tx.send((done, total, finished));
        }
    })
}

/// Sends each `(done, total, table)` to the client as a progress notification, in order, and
/// to the task's status message when the run is a task.
async fn forward(
    peer: Peer<RoleServer>,
    token: Option<ProgressToken>,
    task: Option<rmcp::task_manager::TaskContext>,
    mut rx: mpsc::UnboundedReceiver<(usize, usize, String)>,
) {
    while let Some((done, total, table)) = rx.recv().await {
        if let Some(task) = &task {
            task.set_status_message(format!("{done} of {total} tables profiled (last: {table})"));
        }
        let Some(token) = &token else {
            continue;
        };
        let param = ProgressNotificationParam::new(token.clone(), done as f64)
            .with_total(total as f64)
            .with_message(table);
        if let Err(e) = peer.notify_progress(param).await {
            tracing::debug!("ghost: progress notification not sent: {e}");
        }
    }
}

/// What the model reads: where the report is, the counts, the top items and any problems.
pub fn summary(database: &str, run: &GhostRun) -> String {
    let mut s = format!(
        "Data Ghost run on `{database}` ({}): {} table(s) profiled, {} failed; {} schema change(s), \
         {} finding(s); highest severity: {}.{}\nreport: {}\nlatest: {}\n",
        run.backend.as_deref().unwrap_or("unreachable"),
        run.tables_profiled,
        run.tables_failed,
        run.schema_changes.len(),
        run.findings.len(),
        run.max_severity().map_or("none".into(), |s| s.to_string()),
        if run.first_run {
            " First run: this is the baseline later runs are compared with."
        } else {
            ""
        },
        run.report_path.display(),
        run.latest_path.display(),
    );
    let mut items = run.items();
    items.sort_by_key(|(sev, _)| std::cmp::Reverse(*sev));
    if !items.is_empty() {
        s.push_str("Top items:\n");
        for (sev, text) in items.iter().take(SUMMARY_TOP_ITEMS) {
            s.push_str(&format!("- [{sev}] {text}\n"));
        }
        if items.len() > SUMMARY_TOP_ITEMS {
            s.push_str(&format!(
                "- … and {} more (see the report or the structured result)\n",
                items.len() - SUMMARY_TOP_ITEMS
            ));
        }
    }
    for e in &run.errors {
        s.push_str(&format!("problem: {e}\n"));
    }
    for d in &run.deliveries {
        s.push_str(&format!(
            "delivery on {}: {}\n",
            d.channel,
            if d.delivered { "sent" } else { "failed" }
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ghost::anomaly::{Finding, FindingKind};
    use crate::severity::Severity;
    use std::path::PathBuf;

    fn run_with(findings: usize) -> GhostRun {
        GhostRun {
            run_id: "r1".into(),
            database: "shop".into(),
            backend: Some("sqlite".into()),
            taken_at: "2026-01-01T00:00:00.000Z".into(),
            elapsed_ms: 1,
            first_run: false,
            tables_profiled: 2,
            tables_failed: 0,
            schema_changes: Vec::new(),
            findings: (0..findings)
                .map(|i| Finding {
                    severity: if i == findings - 1 {
                        Severity::Critical
                    } else {
                        Severity::Info
                    },
                    kind: FindingKind::RowCount,
                    table: format!("t{i}"),
                    column: None,
                    message: format!("finding {i}"),
                })
                .collect(),
            errors: Vec::new(),
            profiles: Vec::new(),
            report_path: PathBuf::from("/r/shop/x/report.md"),
            latest_path: PathBuf::from("/r/shop/latest.md"),
            charts: Vec::new(),
            deliveries: Vec::new(),
        }
    }

    #[test]
    fn the_summary_lists_the_most_severe_items_up_to_the_limit() {
        let text = summary("shop", &run_with(SUMMARY_TOP_ITEMS + 2));
        assert_eq!(text.matches("\n- [").count(), SUMMARY_TOP_ITEMS, "{text}");
        assert!(text.contains("… and 2 more"), "{text}");
        let first = text.lines().find(|l| l.starts_with("- [")).unwrap();
        assert!(first.starts_with("- [critical]"), "{text}");
        assert!(text.contains("report: /r/shop/x/report.md"));
        let few = summary("shop", &run_with(2));
        assert!(!few.contains("more"), "{few}");
    }

    #[tokio::test]
    async fn progress_counts_tables_done_and_names_them() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let cb = tables_done(tx);
        cb(0, 2, "a");
        cb(1, 2, "b");
        cb(2, 2, "");
        drop(cb);
        let mut got = Vec::new();
        while let Some(m) = rx.recv().await {
            got.push(m);
        }
        assert_eq!(got, [(1, 2, "a".to_string()), (2, 2, "b".to_string())]);
    }
}
