//! One evaluation of all enabled rules: metric rules together in batched GetMetricData calls,
//! the others concurrently under a bound; then every rule's state steps forward, and the new
//! states, log offsets and queued notices are written in one transaction (so a crash leaves
//! either all of a heartbeat or none of it). A dry run computes the same and writes nothing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::lease::{Busy, LEASE_WAIT, Lease, MONITOR_LEASE};
use super::outbox::{self, DeliveryReport, Notice, NoticeSender};
use super::rules::{Channel, LogKeywordParams, Params, Rule};
use super::silence::{self, Silence};
use super::sources::logfile::{self, LogBook, LogRead};
use super::sources::{Sources, db, metric};
use super::state::{self, StateKind};
use super::transition::{NoticeKind, Outcome, Step, step};
use crate::store::{AuditLog, Store, StoreError};

/// Rules evaluated at the same time (metric rules are batched separately).
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Blocking threads that read local log files (each takes a share of the rules, grouped by
/// path so that rules on one file share its reads).
pub const LOG_READERS: usize = 2;

/// What the sources answered in one evaluation.
struct Gathered {
    /// Every enabled rule's outcome, by index.
    outcomes: HashMap<usize, Outcome>,
    /// The local log files' bookkeeping to store.
    reads: Vec<LogRead>,
    metric_calls: usize,
    db_statements: usize,
}

/// Everything an evaluation needs.
#[derive(Clone)]
pub struct Monitor {
    pub store: Store,
    pub audit: AuditLog,
    pub sources: Sources,
    /// Delivers queued notices; `None` leaves them in the outbox.
    pub sender: Option<Arc<dyn NoticeSender>>,
    /// Relative log paths are resolved against this directory (the workspace).
    pub root: PathBuf,
    /// Who evaluates, for the audit log (`cli`, `heartbeat`).
    pub client: String,
    /// This process's name in the monitor lease ([`super::lease::holder_id`]).
    pub holder: String,
    pub concurrency: usize,
}

/// One rule's result.
#[derive(Debug, Clone, Serialize)]
pub struct RuleReport {
    pub rule: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub previous: StateKind,
    pub state: StateKind,
    pub value: Option<f64>,
    pub condition: String,
    /// The notice this evaluation queued (or, in a dry run, would queue).
    pub notice: Option<NoticeKind>,
    pub channels: Vec<Channel>,
    /// A firing notice was held back by the cooldown.
    pub suppressed: bool,
    pub problem: Option<String>,
    /// The silence in force on this rule: it was evaluated, its notice (if any) not queued.
    pub silence: Option<Silence>,
    /// The notice this evaluation would have queued, had the rule not been silenced.
    pub muted: Option<NoticeKind>,
}

/// The result of one evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub dry_run: bool,
    pub rules: Vec<RuleReport>,
    /// GetMetricData calls made.
    pub metric_calls: usize,
    /// SQL statements run for `db_query` rules (rules that run the same statement share one).
    pub db_statements: usize,
    /// Notices queued (one per notice, not per channel).
    pub notices: usize,
    pub duration_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("state store: {0}")]
    Sql(#[from] sqlx::Error),
    /// Another evaluator holds the monitor lease: this beat was skipped.
    #[error("{0}")]
    Busy(Busy),
}

impl Monitor {
    /// One heartbeat's work under the monitor lease: evaluate every enabled rule, record the
    /// new states and queued notices, then deliver the outbox. Fails with
    /// [`MonitorError::Busy`] when another evaluator keeps the lease past [`LEASE_WAIT`].
    pub async fn beat(&self, rules: &[Rule]) -> Result<(Evaluation, DeliveryReport), MonitorError> {
        let held = Lease::acquire(&self.store, MONITOR_LEASE, &self.holder, LEASE_WAIT)
            .await?
            .map_err(MonitorError::Busy)?;
        let done = async {
            let evaluation = self.evaluate(rules, false).await?;
            let delivery = match &self.sender {
                Some(s) => {
                    outbox::deliver(&self.store, s.clone(), &self.audit, &self.client, &held)
                        .await?
                }
                None => DeliveryReport::default(),
            };
            Ok((evaluation, delivery))
        }
        .await;
        held.release().await;
        done
    }

    /// What the next heartbeat would do: evaluates every enabled rule and writes nothing
    /// (no state, log offsets, outbox rows; no lease).
    pub async fn dry_run(&self, rules: &[Rule]) -> Result<Evaluation, MonitorError> {
        self.evaluate(rules, true).await
    }

    /// Evaluates every enabled rule of `rules` once (under the lease unless `dry_run`).
    async fn evaluate(&self, rules: &[Rule], dry_run: bool) -> Result<Evaluation, MonitorError> {
        let started = Instant::now();
        let now = Utc::now();
        let enabled: Vec<&Rule> = rules.iter().filter(|r| r.spec.enabled).collect();
        let previous = state::load_all(&self.store).await?;
        let silences = silence::active(&self.store, now).await?;
        let loaded = started.elapsed();
        let Gathered {
            outcomes,
            reads,
            metric_calls,
            db_statements,
        } = self.outcomes(&enabled, now).await?;
        let gathered = started.elapsed();
        let mut next_states = Vec::with_capacity(enabled.len());
        let mut notices = Vec::new();
        let mut reports = Vec::with_capacity(enabled.len());
        // Rules whose "until it resolves" silence ends with this evaluation.
        let mut resolved: Vec<&str> = Vec::new();
        for (i, rule) in enabled.iter().enumerate() {
            let outcome = outcomes
                .get(&i)
                .cloned()
                .unwrap_or_else(|| Outcome::Error("internal: no outcome".into()));
            let prev = previous.get(rule.id());
            let mut s = step(rule, prev, &outcome, now);
            let silence = silences.get(rule.id()).cloned();
            let muted = silence.as_ref().and_then(|_| mute(&mut s, prev));
            if silence.as_ref().is_some_and(|x| x.ends_at.is_none())
                && s.next.state == StateKind::Ok
            {
                resolved.push(rule.id());
            }
            let before = prev.map_or(StateKind::Ok, |p| p.state);
            if !dry_run {
                report_changes(rule, prev.map(|p| (p.state, p.problem.as_deref())), &s.next);
            }
            if let Some(kind) = s.notice {
                notices.push(Notice::new(rule, kind, &s.next));
            }
            // A dry run leaves no trace in the store, the audit log included.
            if !dry_run {
                self.audit.record(super::audit_entry(
                    "monitor.evaluate",
                    serde_json::json!({"rule": rule.id(), "type": rule.spec.kind.as_str()}),
                    &evaluation_outcome(before, &s.next, s.notice, muted),
                    started,
                    &self.client,
                ));
            }
            reports.push(RuleReport {
                rule: rule.id().to_string(),
                name: rule.display_name().to_string(),
                kind: rule.spec.kind.as_str(),
                previous: before,
                state: s.next.state,
                value: s.next.value,
                condition: rule.condition_text(),
                notice: s.notice,
                channels: rule.spec.channels.clone(),
                suppressed: s.suppressed,
                problem: s.next.problem.clone(),
                silence,
                muted,
            });
            next_states.push(s.next);
        }
        let stepped = started.elapsed();
        if !dry_run {
            let by_id: HashMap<&str, &Rule> = enabled.iter().map(|r| (r.id(), *r)).collect();
            let mut tx = self.store.pool().begin().await?;
            state::save(&mut tx, &next_states).await?;
            logfile::save(&mut tx, &reads).await?;
            outbox::enqueue(&mut tx, &by_id, &notices).await?;
            silence::end_resolved(&mut tx, &resolved, now).await?;
            tx.commit().await?;
        }
        tracing::debug!(
            "evaluated {} rules in {:?}: states loaded {:?}, sources {:?}, steps {:?}, saved {:?} \
             ({db_statements} SQL statements, {metric_calls} GetMetricData calls)",
            enabled.len(),
            started.elapsed(),
            loaded,
            gathered - loaded,
            stepped - gathered,
            started.elapsed() - stepped,
        );
        Ok(Evaluation {
            dry_run,
            rules: reports,
            metric_calls,
            db_statements,
            notices: notices.len(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// Every enabled rule's outcome, the log bookkeeping, and the calls made.
    async fn outcomes(
        &self,
        rules: &[&Rule],
        now: DateTime<Utc>,
    ) -> Result<Gathered, MonitorError> {
        let mut outcomes = HashMap::with_capacity(rules.len());
        let metric_rules: Vec<(usize, &Rule)> = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.params, Params::Metric(_)))
            .map(|(i, r)| (i, *r))
            .collect();
        let mut calls = 0;
        if !metric_rules.is_empty() {
            match &self.sources.metrics {
                Some(src) => {
                    let (got, n) = metric::evaluate(src.as_ref(), &metric_rules, now).await;
                    calls = n;
                    outcomes.extend(got);
                }
                None => {
                    for (i, _) in &metric_rules {
                        outcomes.insert(
                            *i,
                            Outcome::Error(
                                "metric rules need CloudWatch access; it is not configured".into(),
                            ),
                        );
                    }
                }
            }
        }
        let book = if rules.iter().any(|r| is_local_log(r)) {
            Arc::new(LogBook::load(&self.store).await?)
        } else {
            Arc::new(LogBook::default())
        };
        let mut local: Vec<(usize, String, LogKeywordParams)> = rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match &r.params {
                Params::LogKeyword(p) if p.path.is_some() => {
                    Some((i, r.id().to_string(), p.clone()))
                }
                _ => None,
            })
            .collect();
        // Rules on the same files next to each other, so each reader shares their reads.
        local.sort_by(|a, b| a.2.path.cmp(&b.2.path));
        let per_reader = local.len().div_ceil(LOG_READERS).max(1);
        let mut readers = tokio::task::JoinSet::new();
        for chunk in local.chunks(per_reader) {
            let (chunk, root, book) = (chunk.to_vec(), self.root.clone(), book.clone());
            readers.spawn_blocking(move || logfile::evaluate_all(&root, &chunk, &book, now));
        }
        let limit = Arc::new(tokio::sync::Semaphore::new(self.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, rule) in rules.iter().enumerate() {
            // Log-group rules here; local files are read above, db_query rules below.
            let Params::LogKeyword(p) = &rule.params else {
                continue;
            };
            if p.path.is_some() {
                continue;
            }
            let group = p.log_group.clone().unwrap_or_default();
            let (p, sources, limit) = (p.clone(), self.sources.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let outcome = db::evaluate_log_group(&sources, &group, &p, now).await;
                (vec![i], outcome)
            });
        }
        // Each distinct statement runs once (judged by the guard, then run read-only), and
        // every rule that asks it takes its outcome.
        let queries = db::group_queries(rules.iter().enumerate().filter_map(
            |(i, r)| match &r.params {
                Params::DbQuery(p) => Some((i, p)),
                _ => None,
            },
        ));
        let db_statements = queries.len();
        for query in queries {
            let (sources, limit) = (self.sources.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let outcome = db::evaluate_query(&sources, &query.params).await;
                (query.rules, outcome)
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok((takers, outcome)) => {
                    for i in takers {
                        outcomes.insert(i, outcome.clone());
                    }
                }
                Err(e) => tracing::error!("a rule evaluation task failed: {e}"),
            }
        }
        let mut reads = Vec::with_capacity(local.len());
        while let Some(done) = readers.join_next().await {
            match done {
                Ok(got) => {
                    for (i, read) in got {
                        outcomes.insert(i, read.outcome.clone());
                        reads.push(read);
                    }
                }
                Err(e) => tracing::error!("a log reader failed: {e}"),
            }
        }
        Ok(Gathered {
            outcomes,
            reads,
            metric_calls: calls,
            db_statements,
        })
    }
}

fn is_local_log(rule: &Rule) -> bool {
    matches!(&rule.params, Params::LogKeyword(p) if p.path.is_some())
}

/// Holds back a silenced rule's notice: the state keeps its value and lifecycle, but nothing
/// counts as announced (a firing muted to the end is announced when the silence ends, after
/// the cooldown; a firing never announced sends no resolution). Returns the muted notice.
fn mute(s: &mut Step, prev: Option<&state::RuleState>) -> Option<NoticeKind> {
    let muted = s.notice.take()?;
    s.next.last_notified = prev.and_then(|p| p.last_notified);
    s.next.cooldown_until = prev.and_then(|p| p.cooldown_until);
    if muted == NoticeKind::Firing {
        s.next.notified_firing = false;
    }
    Some(muted)
}

fn evaluation_outcome(
    before: StateKind,
    next: &state::RuleState,
    notice: Option<NoticeKind>,
    muted: Option<NoticeKind>,
) -> String {
    let value = next.value.map_or_else(|| "-".into(), |v| v.to_string());
    let mut out = format!("{} value={value}", next.state.as_str());
    if before != next.state {
        out.push_str(&format!(" (was {})", before.as_str()));
    }
    if let Some(n) = notice {
        out.push_str(&format!(" notify={}", n.as_str()));
    }
    if let Some(n) = muted {
        out.push_str(&format!(" silenced (not notified: {})", n.as_str()));
    }
    if let Some(p) = &next.problem {
        out.push_str(&format!(" error: {p}"));
    }
    out
}

/// Logs a state change, and a problem when it starts or changes: once, not every heartbeat.
fn report_changes(rule: &Rule, prev: Option<(StateKind, Option<&str>)>, next: &state::RuleState) {
    let (before, before_problem) = prev.unwrap_or((StateKind::Ok, None));
    if let Some(p) = &next.problem {
        if before_problem != Some(p.as_str()) || before != next.state {
            tracing::warn!("rule `{}`: evaluation failed: {p}", rule.id());
        }
    } else if before_problem.is_some() {
        tracing::info!("rule `{}`: evaluates again", rule.id());
    }
    if prev.is_some_and(|_| before != next.state) || (prev.is_none() && next.state != StateKind::Ok)
    {
        let value = next.value.map_or_else(|| "-".into(), |v| v.to_string());
        tracing::info!(
            "rule `{}`: {} -> {} (value {value}, {})",
            rule.id(),
            before.as_str(),
            next.state.as_str(),
            rule.condition_text()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::validate::parse;

    #[test]
    fn a_muted_firing_is_announced_when_the_silence_ends_and_never_resolves_unannounced() {
        let text = r#"[{"id": "r", "type": "db_query", "params": {"query": "q"},
            "condition": {"operator": "gt", "threshold": 10}, "cooldown_minutes": 30}]"#;
        let rule = parse(text, "t").unwrap().rules.remove(0);
        let t0 = Utc::now();
        // Fires while silenced: nothing is announced, no cooldown starts.
        let mut s = step(&rule, None, &Outcome::Value(11.0), t0);
        assert_eq!(mute(&mut s, None), Some(NoticeKind::Firing));
        assert_eq!((s.notice, s.next.state), (None, StateKind::Firing));
        assert!(!s.next.notified_firing && s.next.cooldown_until.is_none());
        // Resolves while silenced: no resolution of a firing no one was told about.
        let resolved = step(&rule, Some(&s.next), &Outcome::Value(1.0), t0);
        assert_eq!(resolved.notice, None);
        // Still firing when the silence ends: announced then.
        let later = t0 + chrono::Duration::minutes(5);
        let after = step(&rule, Some(&s.next), &Outcome::Value(12.0), later);
        assert_eq!(after.notice, Some(NoticeKind::Firing));
    }
}
