//! The Data Ghost: watches a database (PostgreSQL or SQLite) from the outside. Each run snapshots
//! the schema and diffs it against the previous run, profiles every table in the database with
//! aggregate queries, judges the profiles against the stored history with robust thresholds,
//! writes a Markdown report with PNG charts under `reports/<database>/<UTC timestamp>/`, and
//! plans the messages that deliver it. [`run_once`] is the job the CLI and the heartbeat share.

pub mod anomaly;
pub mod charts;
pub mod command;
pub mod deliver;
pub mod demo;
pub mod diff;
pub mod history;
pub mod markdown;
pub mod partitions;
pub mod profile;
pub mod progress;
pub mod report;
pub mod sampling;
pub mod schema;
pub mod source;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::App;
use crate::severity::Severity;
use anomaly::{Finding, FindingKind};
use diff::SchemaChange;
use profile::TableProfile;
use source::Source;

/// Default cut-off for each statement the ghost runs on the watched database.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(300);

/// How a run is done.
#[derive(Clone)]
pub struct GhostOptions {
    /// `postgres://...` or `sqlite://PATH` of the watched database.
    pub database_url: String,
    /// PostgreSQL tables estimated above this many rows are profiled on a sample.
    pub sample_above_rows: u64,
    /// Each statement on the watched database is cancelled after this long.
    pub statement_timeout: Duration,
    /// Which runs produce messages.
    pub delivery: deliver::DeliveryPolicy,
    /// Where progress goes (stderr bar or log lines, plus an optional callback).
    pub progress: progress::ProgressSink,
}

impl GhostOptions {
    /// Defaults for `database_url`: sampling above [`profile::DEFAULT_SAMPLE_ABOVE_ROWS`],
    /// [`DEFAULT_STATEMENT_TIMEOUT`], delivery at warning or above, progress as log lines.
    pub fn new(database_url: impl Into<String>) -> Self {
        GhostOptions {
            database_url: database_url.into(),
            sample_above_rows: profile::DEFAULT_SAMPLE_ABOVE_ROWS,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            delivery: deliver::DeliveryPolicy::default(),
            progress: progress::ProgressSink::default(),
        }
    }
}

/// What one run found and wrote.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct GhostRun {
    pub run_id: String,
    pub database: String,
    pub backend: Option<String>,
    /// UTC time the run started (store format).
    pub taken_at: String,
    pub elapsed_ms: u64,
    /// No earlier snapshot: this run is the baseline.
    pub first_run: bool,
    pub tables_profiled: usize,
    pub tables_failed: usize,
    pub schema_changes: Vec<SchemaChange>,
    pub findings: Vec<Finding>,
    /// Problems that kept something from being profiled (connection, snapshot, tables).
    pub errors: Vec<String>,
    pub profiles: Vec<TableProfile>,
    pub report_path: PathBuf,
    pub latest_path: PathBuf,
    pub charts: Vec<PathBuf>,
    /// What was delivered through the notify channels (empty when nothing reached the bar).
    pub deliveries: Vec<deliver::DeliveryOutcome>,
}

impl GhostRun {
    /// A run that has found nothing yet (a baseline until an earlier snapshot turns up).
    pub fn started(run_id: String, database: String, taken_at: String) -> GhostRun {
        GhostRun {
            run_id,
            database,
            backend: None,
            taken_at,
            elapsed_ms: 0,
            first_run: true,
            tables_profiled: 0,
            tables_failed: 0,
            schema_changes: Vec::new(),
            findings: Vec::new(),
            errors: Vec::new(),
            profiles: Vec::new(),
            report_path: PathBuf::new(),
            latest_path: PathBuf::new(),
            charts: Vec::new(),
            deliveries: Vec::new(),
        }
    }

    /// The highest severity among schema changes and findings.
    pub fn max_severity(&self) -> Option<Severity> {
        self.schema_changes
            .iter()
            .map(SchemaChange::severity)
            .chain(self.findings.iter().map(|f| f.severity))
            .max()
    }

    /// Every schema change and finding as (severity, one line of Markdown), most severe first;
    /// at the same severity schema changes come before findings.
    pub fn items(&self) -> Vec<(Severity, String)> {
        let mut items: Vec<(Severity, String)> = self
            .schema_changes
            .iter()
            .map(|c| (c.severity(), c.describe()))
            .chain(self.findings.iter().map(|f| {
                (
                    f.severity,
                    format!("`{}`: {}", markdown::inline(&f.table), f.message),
                )
            }))
            .collect();
        // A stable sort keeps schema changes ahead of findings of the same severity.
        items.sort_by_key(|(s, _)| std::cmp::Reverse(*s));
        items
    }

    /// True when the run could profile nothing because of errors (the CLI exits non-zero).
    pub fn failed(&self) -> bool {
        self.tables_profiled == 0 && !self.errors.is_empty()
    }
}

/// Why a run could not finish at all (problems with the watched database are not errors:
/// they are reported in the run).
#[derive(Debug, thiserror::Error)]
pub enum GhostError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot write the report: {0}")]
    Report(#[from] report::ReportError),
}

/// Runs the Data Ghost once: snapshot, diff, profile, judge, report, record.
pub async fn run_once(app: &App, opts: &GhostOptions) -> Result<GhostRun, GhostError> {
    let started = Instant::now();
    let now = chrono::Utc::now();
    let database = source::database_name(&opts.database_url);
    let run_id = format!(
        "{}-{}",
        now.format("%Y%m%dT%H%M%S%.3fZ"),
        std::process::id()
    );
    let mut run = GhostRun::started(
        run_id,
        database.clone(),
        crate::store::approvals::timestamp(now),
    );
    let observed = match source::open(&opts.database_url, opts.statement_timeout).await {
        Err(e) => {
            run.errors.push(e.to_string());
            None
        }
        Ok(source) => {
            run.backend = Some(source::backend_name(&source).to_string());
            let snap = observe(app, opts, &source, &mut run).await?;
            source.close().await;
            snap
        }
    };
    for e in &run.errors {
        tracing::warn!("ghost {database}: {e}");
    }
    run.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let empty = history::History::new();
    let past = observed.as_ref().map_or(&empty, |o| &o.1);
    let written = report::write(&app.reports_dir, &mut run, past, now)?;
    run.charts = written.charts;
    if let Some((snapshot, _)) = &observed {
        history::record(
            &app.store,
            &run.run_id,
            &database,
            &run.taken_at,
            Some(&run.report_path.display().to_string()),
            snapshot,
            &run.profiles,
        )
        .await?;
    }
    let config = crate::tools::notify::config::ChannelConfig::from_env();
    let channels = deliver::configured_channels(&config);
    let messages = deliver::plan(&run, &written.markdown, &opts.delivery, &channels);
    if !messages.is_empty() {
        let notifier = crate::tools::notify::Notifier::from_env(app.guard().clone());
        run.deliveries = deliver::send(&notifier, &messages).await;
    }
    Ok(run)
}

/// Snapshot, diff and profile; returns the snapshot to record and the history it was judged
/// against (None when the snapshot failed).
async fn observe(
    app: &App,
    opts: &GhostOptions,
    source: &Source,
    run: &mut GhostRun,
) -> Result<Option<(schema::SchemaSnapshot, history::History)>, GhostError> {
    let snap = match schema::snapshot(source).await {
        Ok(s) => s,
        Err(e) => {
            run.errors
                .push(format!("cannot read the schema of `{}`: {e}", run.database));
            return Ok(None);
        }
    };
    if let Some(previous) = history::latest_snapshot(&app.store, &run.database).await? {
        run.first_run = false;
        run.schema_changes = diff::diff(&previous, &snap);
    }
    let past = history::load(&app.store, &run.database).await?;
    let bar = opts.progress.start(snap.tables.len(), &run.database);
    for (i, table) in snap.tables.values().enumerate() {
        let name = table.qualified();
        bar.step(i, &name);
        let profiled = profile::profile_table(
            source,
            table,
            opts.sample_above_rows,
            opts.statement_timeout,
        )
        .await;
        match profiled {
            Ok(p) => {
                let earlier = past.get(&name).map(Vec::as_slice).unwrap_or_default();
                run.findings.extend(anomaly::judge_table(&p, earlier));
                run.profiles.push(p);
            }
            Err(e) => {
                let message = format!("could not profile `{name}`: {e}");
                // SQLite says only "interrupted" when the deadline passes.
                let message = if message.contains("interrupted") {
                    format!(
                        "{message} (the statement timeout of {} s passed)",
                        opts.statement_timeout.as_secs()
                    )
                } else {
                    message
                };
                run.errors.push(message.clone());
                run.findings.push(Finding {
                    severity: Severity::Warning,
                    kind: FindingKind::ProfileFailed,
                    table: name,
                    column: None,
                    message,
                });
            }
        }
    }
    bar.finish();
    run.tables_profiled = run.profiles.len();
    run.tables_failed = snap.tables.len() - run.profiles.len();
    run.findings
        .sort_by(|a, b| b.severity.cmp(&a.severity).then(a.table.cmp(&b.table)));
    Ok(Some((snap, past)))
}
