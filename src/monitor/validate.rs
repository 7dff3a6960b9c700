//! Turns a rules file into validated [`Rule`]s. Every problem names the file, line, column,
//! rule id and field; a bad rule is reported and skipped while the others still run, and only
//! a file that is not a rules file at all (unreadable, not JSON, wrong shape) fails as a whole.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::EXAMPLE_RULES_FILE;
use super::rules::{
    DbQueryParams, Field, LogKeywordParams, MetricParams, OnFire, Params, Rule, RuleSpec, RuleType,
};

/// Largest rules file read (a larger one is refused as a whole).
pub const MAX_RULES_FILE_BYTES: u64 = 32 * 1024 * 1024;
/// Most recent evaluations `evaluation_periods` may span (the state keeps this many).
pub const MAX_EVALUATION_PERIODS: u32 = 64;
/// Most dimensions on one metric (CloudWatch's own limit).
pub const MAX_DIMENSIONS: usize = 30;
/// Longest db_query timeout.
pub const MAX_QUERY_TIMEOUT_SECS: u64 = 300;
/// Most model turns an `on_fire` investigation may be given.
pub const MAX_INVESTIGATION_STEPS: u32 = 200;
/// Longest an `on_fire` investigation may run, in minutes (one day).
pub const MAX_INVESTIGATION_MINUTES: u64 = 24 * 60;

/// One problem found in a rules file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The rule's id when it could be read.
    pub rule: Option<String>,
    /// Dotted path of the field at fault (`params.pattern`), when known.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if let Some(r) = &self.rule {
            write!(f, "rule `{r}`: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field `{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

/// The usable rules of a file and the problems of the rest.
#[derive(Debug, Clone, Default)]
pub struct LoadedRules {
    pub rules: Vec<Rule>,
    pub problems: Vec<Problem>,
}

/// Reads and validates `path`. `Err` only when the file as a whole is unusable.
pub fn load(path: &Path) -> Result<LoadedRules, Problem> {
    let file = path.display().to_string();
    let whole = |message: String| Problem {
        file: file.clone(),
        line: 0,
        column: 0,
        rule: None,
        field: None,
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| whole(read_error(&e)))?;
    if meta.len() > MAX_RULES_FILE_BYTES {
        return Err(whole(format!(
            "the file has {} bytes; the limit is {MAX_RULES_FILE_BYTES}",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| whole(read_error(&e)))?;
    parse(&text, &file)
}

/// Why a rules file cannot be read; a missing one says how to start.
pub fn read_error(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        return format!(
            "no rules file here. To start, copy the shipped example and edit it: \
             `cp {EXAMPLE_RULES_FILE} {}` (in the workspace), then check it with \
             `pi-mcp monitor validate`; or name another file with --rules / PI_MCP_ALERTS \
             (`pi-mcp monitor schema` prints the format)",
            super::DEFAULT_RULES_FILE
        );
    }
    format!("cannot read: {e}")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopLevel<'a> {
    #[serde(rename = "$schema", default)]
    _schema: Option<String>,
    #[serde(borrow)]
    rules: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ParamsOnly<'a> {
    #[serde(borrow)]
    params: &'a RawValue,
}

/// Validates the text of a rules file named `file` (for messages).
pub fn parse(text: &str, file: &str) -> Result<LoadedRules, Problem> {
    let src = Source { text, file };
    let raws: Vec<&RawValue> = match text.trim_start().chars().next() {
        Some('[') => serde_json::from_str(text).map_err(|e| src.json_error(0, &e, None, None))?,
        Some('{') => {
            let top: TopLevel = serde_json::from_str(text)
                .map_err(|e| src.json_error(0, &e, None, Some("rules".into())))?;
            top.rules
        }
        _ => {
            return Err(src.problem(
                0,
                None,
                None,
                "not a rules file: expected a JSON object {\"rules\": [...]} or an array of rules"
                    .into(),
            ));
        }
    };
    let mut out = LoadedRules::default();
    let mut seen = HashSet::new();
    for raw in raws {
        match check_rule(&src, raw) {
            Ok(rule) => {
                if seen.insert(rule.spec.id.clone()) {
                    out.rules.push(rule);
                } else {
                    let at = src.offset_of(raw);
                    let message = "duplicate id: an earlier rule has it; ids must be unique";
                    out.problems.push(src.problem(
                        src.key_offset(raw.get(), at, "id"),
                        Some(rule.spec.id.clone()),
                        Some("id".into()),
                        message.into(),
                    ));
                }
            }
            Err(p) => out.problems.push(p),
        }
    }
    Ok(out)
}

struct Source<'a> {
    text: &'a str,
    file: &'a str,
}

impl Source<'_> {
    fn offset_of(&self, raw: &RawValue) -> usize {
        (raw.get().as_ptr() as usize).saturating_sub(self.text.as_ptr() as usize)
    }

    fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rfind('\n')
            .map_or(before.len(), |i| before.len() - i - 1)
            + 1;
        (line, column)
    }

    fn problem(
        &self,
        offset: usize,
        rule: Option<String>,
        field: Option<String>,
        message: String,
    ) -> Problem {
        let (line, column) = self.line_col(offset);
        Problem {
            file: self.file.to_string(),
            line,
            column,
            rule,
            field,
            message,
        }
    }

    /// A serde_json error inside the slice starting at `base`, placed in the whole file.
    fn json_error(
        &self,
        base: usize,
        e: &serde_json::Error,
        rule: Option<String>,
        field: Option<String>,
    ) -> Problem {
        let (base_line, base_col) = self.line_col(base);
        let (line, column) = if e.line() <= 1 {
            (base_line, base_col + e.column().saturating_sub(1))
        } else {
            (base_line + e.line() - 1, e.column())
        };
        let message = strip_position(&e.to_string());
        Problem {
            file: self.file.to_string(),
            line,
            column,
            rule,
            field,
            message,
        }
    }

    /// Where `"key":` appears inside `slice` (which starts at `base`), else `base`.
    fn key_offset(&self, slice: &str, base: usize, key: &str) -> usize {
        let needle = format!("\"{key}\"");
        let mut from = 0;
        while let Some(i) = slice[from..].find(&needle) {
            let end = from + i + needle.len();
            if slice[end..].trim_start().starts_with(':') {
                return base + from + i;
            }
            from = end;
        }
        base
    }

    /// Deserializes `raw` into `T`, naming the field at fault on error.
    fn typed<T: DeserializeOwned>(
        &self,
        raw: &str,
        base: usize,
        rule: Option<&str>,
        prefix: &str,
    ) -> Result<T, Problem> {
        let mut de = serde_json::Deserializer::from_str(raw);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let field = match (prefix, path.as_str()) {
                (p, ".") => (!p.is_empty()).then(|| p.to_string()),
                ("", f) => Some(f.to_string()),
                (p, f) => Some(format!("{p}.{f}")),
            };
            self.json_error(base, e.inner(), rule.map(str::to_string), field)
        })
    }
}

/// serde_json appends " at line L column C"; the problem carries the position itself.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn check_rule(src: &Source, raw: &RawValue) -> Result<Rule, Problem> {
    let base = src.offset_of(raw);
    let text = raw.get();
    let id = serde_json::from_str::<IdOnly>(text)
        .ok()
        .and_then(|r| r.id)
        .and_then(|v| v.as_str().map(str::to_string));
    let spec: RuleSpec = src.typed(text, base, id.as_deref(), "")?;
    let id = spec.id.clone();
    let at = |key: &str| src.key_offset(text, base, key);
    let fail = |offset: usize, field: &str, message: String| {
        src.problem(offset, Some(id.clone()), Some(field.to_string()), message)
    };
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
    {
        return Err(fail(
            at("id"),
            "id",
            "an id is non-empty and uses only letters, digits, `-`, `_`, `.` and `:`".into(),
        ));
    }
    if !spec.condition.threshold.is_finite() {
        return Err(fail(
            at("threshold"),
            "condition.threshold",
            "must be a finite number".into(),
        ));
    }
    let params_raw = serde_json::from_str::<ParamsOnly>(text)
        .map(|p| p.params)
        .map_err(|e| src.json_error(base, &e, Some(id.clone()), Some("params".into())))?;
    let p_base = src.offset_of(params_raw);
    let p_text = params_raw.get();
    let p_at = |key: &str| src.key_offset(p_text, p_base, key);
    let params = match spec.kind {
        RuleType::Metric => {
            Params::Metric(src.typed::<MetricParams>(p_text, p_base, Some(&id), "params")?)
        }
        RuleType::LogKeyword => Params::LogKeyword(src.typed::<LogKeywordParams>(
            p_text,
            p_base,
            Some(&id),
            "params",
        )?),
        RuleType::DbQuery => {
            Params::DbQuery(src.typed::<DbQueryParams>(p_text, p_base, Some(&id), "params")?)
        }
    };
    let pfail = |key: &str, message: String| fail(p_at(key), &format!("params.{key}"), message);
    match &params {
        Params::Metric(m) => check_metric(m, &pfail)?,
        Params::LogKeyword(l) => check_log(l, &pfail)?,
        Params::DbQuery(d) => check_db(d, &pfail)?,
    }
    let field = check_field(spec.kind, spec.condition.field)
        .map_err(|m| fail(at("field"), "condition.field", m))?;
    if let Some(m) = spec.datapoints_to_alarm {
        let n = spec.evaluation_periods.unwrap_or(m);
        if m == 0 || n < m || n > MAX_EVALUATION_PERIODS {
            return Err(fail(
                at("datapoints_to_alarm"),
                "datapoints_to_alarm",
                format!(
                    "needs 1 <= datapoints_to_alarm ({m}) <= evaluation_periods ({n}) <= {MAX_EVALUATION_PERIODS}"
                ),
            ));
        }
    } else if spec.evaluation_periods.is_some() {
        return Err(fail(
            at("evaluation_periods"),
            "evaluation_periods",
            "evaluation_periods needs datapoints_to_alarm".into(),
        ));
    }
    if spec.repeat_minutes == Some(0) {
        return Err(fail(
            at("repeat_minutes"),
            "repeat_minutes",
            "must be at least 1 (leave it out to never repeat)".into(),
        ));
    }
    check_on_fire(&spec.on_fire)
        .map_err(|(field, m)| fail(at(field), &format!("on_fire.{field}"), m))?;
    Ok(Rule {
        spec,
        params,
        field,
    })
}

/// The investigation budget of `on_fire`: (field, problem) when out of bounds.
fn check_on_fire(on_fire: &OnFire) -> Result<(), (&'static str, String)> {
    if let Some(n) = on_fire.max_steps
        && !(1..=MAX_INVESTIGATION_STEPS).contains(&n)
    {
        return Err((
            "max_steps",
            format!("must be between 1 and {MAX_INVESTIGATION_STEPS} (got {n})"),
        ));
    }
    if let Some(m) = on_fire.timeout_minutes
        && !(1..=MAX_INVESTIGATION_MINUTES).contains(&m)
    {
        return Err((
            "timeout_minutes",
            format!("must be between 1 and {MAX_INVESTIGATION_MINUTES} (got {m})"),
        ));
    }
    Ok(())
}

fn check_field(kind: RuleType, field: Option<Field>) -> Result<Field, String> {
    let allowed: &[Field] = match kind {
        RuleType::Metric => &[
            Field::Avg,
            Field::Min,
            Field::Max,
            Field::Sum,
            Field::Count,
            Field::Last,
        ],
        RuleType::LogKeyword => &[Field::Count],
        RuleType::DbQuery => &[Field::Value],
    };
    match field {
        None => Ok(allowed[0]),
        Some(f) if allowed.contains(&f) => Ok(f),
        Some(f) => Err(format!(
            "`{}` does not apply to a {} rule; use one of: {}",
            f.as_str(),
            kind.as_str(),
            allowed
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

type Fail<'a> = dyn Fn(&str, String) -> Problem + 'a;

fn check_metric(m: &MetricParams, fail: &Fail) -> Result<(), Problem> {
    if m.namespace.trim().is_empty() {
        return Err(fail("namespace", "must not be empty".into()));
    }
    if m.metric_name.trim().is_empty() {
        return Err(fail("metric_name", "must not be empty".into()));
    }
    if m.dimension_name.is_some() != m.dimension_value.is_some() {
        return Err(fail(
            "dimension_name",
            "dimension_name and dimension_value go together".into(),
        ));
    }
    if m.all_dimensions().len() > MAX_DIMENSIONS {
        return Err(fail(
            "dimensions",
            format!("at most {MAX_DIMENSIONS} dimensions"),
        ));
    }
    if !(matches!(m.period, 1 | 5 | 10 | 30) || (m.period >= 60 && m.period.is_multiple_of(60))) {
        return Err(fail(
            "period",
            format!(
                "{} s is not a CloudWatch period: use 1, 5, 10, 30 or a multiple of 60",
                m.period
            ),
        ));
    }
    if m.window_minutes == 0 || u64::from(m.window_minutes) * 60 < u64::from(m.period) {
        return Err(fail(
            "window_minutes",
            "the window must be at least one period long".into(),
        ));
    }
    Ok(())
}

fn check_log(l: &LogKeywordParams, fail: &Fail) -> Result<(), Problem> {
    match (&l.log_group, &l.path) {
        (Some(_), Some(_)) => {
            return Err(fail("path", "give log_group or path, not both".into()));
        }
        (None, None) => {
            return Err(fail(
                "log_group",
                "give log_group (CloudWatch Logs) or path (a local file or glob)".into(),
            ));
        }
        (Some(g), None) if g.trim().is_empty() => {
            return Err(fail("log_group", "must not be empty".into()));
        }
        (None, Some(p)) => {
            if p.trim().is_empty() {
                return Err(fail("path", "must not be empty".into()));
            }
            if let Err(e) = globset::Glob::new(p) {
                return Err(fail("path", format!("not a valid glob: {e}")));
            }
        }
        _ => {}
    }
    match (&l.keyword, &l.pattern) {
        (Some(_), Some(_)) => Err(fail("pattern", "give keyword or pattern, not both".into())),
        (None, None) => Err(fail(
            "keyword",
            "give keyword (plain text) or pattern (a regex)".into(),
        )),
        (Some(k), None) if k.is_empty() => Err(fail("keyword", "must not be empty".into())),
        (None, Some(p)) => match regex::Regex::new(p) {
            Ok(_) => Ok(()),
            Err(e) => Err(fail("pattern", format!("not a valid regex: {e}"))),
        },
        _ if l.window_minutes == 0 => Err(fail("window_minutes", "must be at least 1".into())),
        _ => Ok(()),
    }
}

fn check_db(d: &DbQueryParams, fail: &Fail) -> Result<(), Problem> {
    if d.query.trim().is_empty() {
        return Err(fail("query", "must not be empty".into()));
    }
    if d.timeout_secs == 0 || d.timeout_secs > MAX_QUERY_TIMEOUT_SECS {
        return Err(fail(
            "timeout_secs",
            format!("must be between 1 and {MAX_QUERY_TIMEOUT_SECS}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
