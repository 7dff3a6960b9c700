//! The alert lifecycle as a pure function: given a rule, its previous state and the outcome
//! of one evaluation, the next state and the notice (if any) to send. Keeping it free of I/O
//! makes every lifecycle rule (pending duration, M of N, cooldown, repeat, no data, resolution)
//! testable on its own.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::rules::{MissingPolicy, Rule};
use super::state::{RECENT_VALUES, RuleState, StateKind};
use super::validate::MAX_EVALUATION_PERIODS;

/// What one evaluation of a rule produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Value(f64),
    NoData,
    Error(String),
}

/// Which notice a transition sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Firing,
    /// Still firing after `repeat_minutes`.
    Repeat,
    Resolved,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Firing => "firing",
            NoticeKind::Repeat => "repeat",
            NoticeKind::Resolved => "resolved",
        }
    }
}

/// The result of one step.
#[derive(Debug, Clone)]
pub struct Step {
    pub next: RuleState,
    pub notice: Option<NoticeKind>,
    /// A firing notice was due but the rule is in cooldown.
    pub suppressed: bool,
}

enum Effect {
    Breach,
    Clear(StateKind),
    Hold,
}

/// Advances `prev` (or a fresh state) by one evaluation at `now`.
pub fn step(rule: &Rule, prev: Option<&RuleState>, outcome: &Outcome, now: DateTime<Utc>) -> Step {
    let prev = prev
        .cloned()
        .unwrap_or_else(|| RuleState::new(rule.id(), now));
    let mut next = prev.clone();
    next.last_evaluated = Some(now);
    next.problem = match outcome {
        Outcome::Error(m) => Some(m.clone()),
        _ => None,
    };
    let missing = |policy: MissingPolicy, shown: StateKind| match policy {
        MissingPolicy::Ok => Effect::Clear(shown),
        MissingPolicy::Alerting => Effect::Breach,
        MissingPolicy::Keep if matches!(prev.state, StateKind::Pending | StateKind::Firing) => {
            Effect::Hold
        }
        MissingPolicy::Keep => Effect::Clear(shown),
    };
    let effect = match outcome {
        Outcome::Value(v) => {
            next.value = Some(*v);
            next.recent.push((now, *v));
            let excess = next.recent.len().saturating_sub(RECENT_VALUES);
            next.recent.drain(..excess);
            if rule.breaches(*v) {
                Effect::Breach
            } else {
                Effect::Clear(StateKind::Ok)
            }
        }
        Outcome::NoData => {
            next.value = None;
            missing(rule.spec.no_data, StateKind::NoData)
        }
        Outcome::Error(_) => {
            next.value = None;
            missing(rule.spec.on_error, StateKind::Error)
        }
    };
    let mut out = Step {
        next,
        notice: None,
        suppressed: false,
    };
    match effect {
        Effect::Hold => {}
        Effect::Breach => breach(rule, &prev, &mut out, now),
        Effect::Clear(shown) => clear(rule, &prev, &mut out, shown, now),
    }
    out
}

fn push_breach(state: &mut RuleState, breached: bool) {
    state.breaches.push(if breached { '1' } else { '0' });
    let keep = MAX_EVALUATION_PERIODS as usize;
    if state.breaches.len() > keep {
        state.breaches = state.breaches[state.breaches.len() - keep..].to_string();
    }
}

fn minutes(m: u64) -> Duration {
    Duration::minutes(i64::try_from(m).unwrap_or(i64::MAX / 120_000))
}

/// Whether the breach has lasted long enough (`for_minutes`, `datapoints_to_alarm`) to fire.
fn held(rule: &Rule, state: &RuleState, now: DateTime<Utc>) -> bool {
    let mut ok = true;
    if let Some(m) = rule.spec.datapoints_to_alarm {
        let n = rule.spec.evaluation_periods.unwrap_or(m) as usize;
        let tail = &state.breaches[state.breaches.len().saturating_sub(n)..];
        ok &= tail.matches('1').count() >= m as usize;
    }
    if let Some(f) = rule.spec.for_minutes {
        let since = state.breach_since.unwrap_or(now);
        ok &= now - since >= minutes(f);
    }
    ok
}

fn announce_firing(rule: &Rule, out: &mut Step, now: DateTime<Utc>) {
    let s = &mut out.next;
    if s.cooldown_until.is_some_and(|c| now < c) {
        out.suppressed = true;
        return;
    }
    s.notified_firing = true;
    s.last_notified = Some(now);
    s.cooldown_until = Some(now + minutes(rule.spec.cooldown_minutes));
    out.notice = Some(NoticeKind::Firing);
}

fn breach(rule: &Rule, prev: &RuleState, out: &mut Step, now: DateTime<Utc>) {
    push_breach(&mut out.next, true);
    if out.next.breach_since.is_none() {
        out.next.breach_since = Some(now);
    }
    if prev.state == StateKind::Firing {
        if !prev.notified_firing {
            // Fired during a cooldown: announce once the cooldown is over.
            announce_firing(rule, out, now);
        } else if let Some(r) = rule.spec.repeat_minutes
            && prev.last_notified.is_none_or(|t| now - t >= minutes(r))
        {
            out.next.last_notified = Some(now);
            out.notice = Some(NoticeKind::Repeat);
        }
        return;
    }
    if held(rule, &out.next, now) {
        out.next.state = StateKind::Firing;
        out.next.since = now;
        out.next.notified_firing = false;
        announce_firing(rule, out, now);
    } else if prev.state != StateKind::Pending {
        out.next.state = StateKind::Pending;
        out.next.since = now;
    }
}

fn clear(rule: &Rule, prev: &RuleState, out: &mut Step, shown: StateKind, now: DateTime<Utc>) {
    push_breach(&mut out.next, false);
    out.next.breach_since = None;
    if prev.state == StateKind::Firing {
        if prev.notified_firing && rule.spec.send_resolved {
            out.next.last_notified = Some(now);
            out.notice = Some(NoticeKind::Resolved);
        }
        out.next.notified_firing = false;
    }
    if out.next.state != shown {
        out.next.state = shown;
        out.next.since = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::validate::parse;

    fn rule(extra: &str) -> Rule {
        let text = format!(
            "[{{\"id\": \"r\", \"type\": \"db_query\", \"params\": {{\"query\": \"q\"}}, \"condition\": {{\"operator\": \"gt\", \"threshold\": 10}}{extra}}}]"
        );
        let mut loaded = parse(&text, "t").unwrap();
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        loaded.rules.remove(0)
    }

    fn run(rule: &Rule, seq: &[(i64, Outcome)]) -> Vec<(StateKind, Option<NoticeKind>)> {
        let t0 = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut state = None;
        let mut out = Vec::new();
        for (minute, outcome) in seq {
            let s = step(
                rule,
                state.as_ref(),
                outcome,
                t0 + Duration::minutes(*minute),
            );
            out.push((s.next.state, s.notice));
            state = Some(s.next);
        }
        out
    }

    use NoticeKind::{Firing as Fire, Repeat, Resolved};
    use Outcome::Value as V;
    use StateKind::*;

    #[test]
    fn fires_once_and_resolves() {
        let r = rule("");
        let got = run(
            &r,
            &[
                (0, V(1.0)),
                (5, V(11.0)),
                (10, V(12.0)),
                (15, V(13.0)),
                (20, V(1.0)),
            ],
        );
        assert_eq!(
            got,
            [
                (Ok, None),
                (Firing, Some(Fire)),
                (Firing, None),
                (Firing, None),
                (Ok, Some(Resolved))
            ]
        );
    }

    #[test]
    fn for_minutes_goes_through_pending() {
        let r = rule(", \"for_minutes\": 10");
        let got = run(
            &r,
            &[(0, V(11.0)), (5, V(11.0)), (10, V(11.0)), (15, V(1.0))],
        );
        assert_eq!(
            got,
            [
                (Pending, None),
                (Pending, None),
                (Firing, Some(Fire)),
                (Ok, Some(Resolved))
            ]
        );
        // A pending rule that recovers sends nothing.
        let got = run(&r, &[(0, V(11.0)), (5, V(1.0))]);
        assert_eq!(got, [(Pending, None), (Ok, None)]);
    }

    #[test]
    fn m_of_n_datapoints() {
        let r = rule(", \"datapoints_to_alarm\": 2, \"evaluation_periods\": 3");
        let got = run(&r, &[(0, V(11.0)), (1, V(1.0)), (2, V(11.0))]);
        assert_eq!(got, [(Pending, None), (Ok, None), (Firing, Some(Fire))]);
    }

    #[test]
    fn cooldown_suppresses_a_refire_and_its_resolution() {
        let r = rule(", \"cooldown_minutes\": 30");
        let got = run(
            &r,
            &[
                (0, V(11.0)),
                (5, V(1.0)),
                (10, V(11.0)),
                (15, V(1.0)),
                (40, V(11.0)),
            ],
        );
        assert_eq!(
            got,
            [
                (Firing, Some(Fire)),
                (Ok, Some(Resolved)),
                (Firing, None),
                (Ok, None),
                (Firing, Some(Fire))
            ]
        );
        // Still firing when the cooldown ends: announced then.
        let got = run(
            &r,
            &[(0, V(11.0)), (5, V(1.0)), (10, V(11.0)), (35, V(11.0))],
        );
        assert_eq!(got[3], (Firing, Some(Fire)));
    }

    #[test]
    fn repeat_while_firing() {
        let r = rule(", \"repeat_minutes\": 10");
        let got = run(
            &r,
            &[(0, V(11.0)), (5, V(11.0)), (10, V(11.0)), (15, V(11.0))],
        );
        let notices: Vec<_> = got.iter().map(|g| g.1).collect();
        assert_eq!(notices, [Some(Fire), None, Some(Repeat), None]);
    }

    #[test]
    fn missing_data_policies() {
        let keep = rule("");
        let got = run(
            &keep,
            &[(0, Outcome::NoData), (1, V(11.0)), (2, Outcome::NoData)],
        );
        assert_eq!(got, [(NoData, None), (Firing, Some(Fire)), (Firing, None)]);
        let ok = rule(", \"no_data\": \"ok\"");
        let got = run(&ok, &[(0, V(11.0)), (1, Outcome::NoData)]);
        assert_eq!(got, [(Firing, Some(Fire)), (NoData, Some(Resolved))]);
        let alerting = rule(", \"no_data\": \"alerting\"");
        assert_eq!(
            run(&alerting, &[(0, Outcome::NoData)]),
            [(Firing, Some(Fire))]
        );
        let err = Outcome::Error("down".into());
        assert_eq!(run(&keep, &[(0, err.clone())]), [(Error, None)]);
        let no_resolved = rule(", \"send_resolved\": false");
        assert_eq!(
            run(&no_resolved, &[(0, V(11.0)), (1, V(0.0))])[1],
            (Ok, None)
        );
    }
}
