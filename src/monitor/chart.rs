//! A rule's recent values as a PNG chart (`pi-mcp monitor chart RULE`): the values the monitor
//! kept in the rule's state (the last 20 evaluations), the threshold as a dashed line and the
//! evaluations that breached it ringed, so a reader sees how far and how long a rule was over.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::rules::Rule;
use super::state::RuleState;
use crate::chart::{self, ChartError, Series, Threshold, TimeChart, ValueKind, format};

/// Draws `state`'s recent values of `rule` against its threshold into a PNG at `path`.
pub fn render(path: &Path, rule: &Rule, state: &RuleState) -> Result<(), ChartError> {
    let field = rule.field.as_str();
    let series = [Series {
        name: match state.recent.len() {
            0 => format!("{field} (not evaluated yet)"),
            n => format!("{field} (last {n} evaluations)"),
        },
        points: state.recent.clone(),
    }];
    let breached: Vec<(DateTime<Utc>, f64)> = state
        .recent
        .iter()
        .copied()
        .filter(|(_, v)| rule.breaches(*v))
        .collect();
    let condition = &rule.spec.condition;
    let threshold = Threshold {
        value: condition.threshold,
        label: format!(
            "threshold: {field} {} {}",
            condition.operator.symbol(),
            format::value(ValueKind::Number, condition.threshold)
        ),
    };
    chart::time_chart(
        path,
        &TimeChart {
            title: &format!("{}: {}", rule.display_name(), state.state.as_str()),
            kind: ValueKind::Number,
            series: &series,
            marked: &breached,
            marked_label: "breached",
            threshold: Some(&threshold),
        },
    )
}
