//! The SQL statement judge and the policy's `sql` section. The `sql` tool asks here before it
//! connects: only one read statement passes (`SELECT`, `WITH … SELECT`, `EXPLAIN` of a read,
//! `SHOW`, read-only `PRAGMA`s), unless the database allows writes; side-effecting functions,
//! data-modifying CTEs, `SELECT INTO`, row locks and utility statements are refused, and
//! anything the parser cannot read is refused too (fail closed). The connection the tool opens
//! is read-only as well; this judge is the first of the two layers.

pub mod clients;
mod functions;
mod literals;
mod memo;
pub mod pragma;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlparser::ast::{Query, SetExpr, Statement, Value};
use sqlparser::dialect::{Dialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Tokenizer;

pub use functions::denied_function;
pub use memo::judge_sql_memo;

use super::{Decision, PolicyError, Verdict};

/// Longest statement judged; longer ones are refused before parsing.
pub const MAX_QUERY_BYTES: usize = 100_000;

/// How deeply a statement may nest (subqueries, parentheses) before it is refused.
pub const MAX_NESTING: usize = 50;

/// The policy's `sql` section: the databases the `sql` tool may reach and its limits.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlPolicy {
    /// Named databases (`database` argument of the tool). Without a `default` entry, the
    /// default database is the server's `DATABASE_URL`.
    #[serde(default)]
    pub databases: BTreeMap<String, SqlDatabase>,
    /// Most rows a call may ask for.
    #[serde(default = "default_max_rows_cap")]
    pub max_rows: usize,
    /// Rows returned when the call gives no `max_rows`.
    #[serde(default = "default_max_rows")]
    pub default_max_rows: usize,
    /// Statement timeout when the call gives none, and the longest a call may ask for.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

impl Default for SqlPolicy {
    fn default() -> Self {
        SqlPolicy {
            databases: BTreeMap::new(),
            max_rows: default_max_rows_cap(),
            default_max_rows: default_max_rows(),
            timeout_secs: default_timeout_secs(),
        }
    }
}

fn default_max_rows_cap() -> usize {
    1000
}
fn default_max_rows() -> usize {
    200
}
fn default_timeout_secs() -> u64 {
    30
}

/// One named database.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlDatabase {
    /// Environment variable that holds the URL (keeps passwords out of the policy).
    #[serde(default)]
    pub url_env: Option<String>,
    /// The URL itself (`sqlite://PATH`, or `postgres://…` without a password).
    #[serde(default)]
    pub url: Option<String>,
    /// Let write statements through and open the connection read-write (still one statement,
    /// still judged for side-effecting functions and utility statements, still audited).
    #[serde(default)]
    pub allow_writes: bool,
}

impl SqlPolicy {
    /// Checks the section's consistency; errors name the file, database and field.
    pub fn validate(&self, file: &str) -> Result<(), PolicyError> {
        let err = |rule: &str, field: String, message: &str| PolicyError::Rule {
            file: file.to_string(),
            rule: rule.to_string(),
            field,
            message: message.to_string(),
        };
        for (name, db) in &self.databases {
            if db.url.is_some() == db.url_env.is_some() {
                return Err(err(
                    "sql",
                    format!("sql.databases.{name}"),
                    "give exactly one of `url` and `url_env`",
                ));
            }
            if let Some(url) = &db.url
                && SqlDialect::from_url(url).is_none()
            {
                return Err(err(
                    "sql",
                    format!("sql.databases.{name}.url"),
                    "use sqlite://PATH or postgres://…",
                ));
            }
        }
        if self.default_max_rows == 0 || self.default_max_rows > self.max_rows {
            return Err(err(
                "sql",
                "sql.default_max_rows".into(),
                "need 1 <= default_max_rows <= max_rows",
            ));
        }
        if self.timeout_secs == 0 {
            return Err(err("sql", "sql.timeout_secs".into(), "must be at least 1"));
        }
        Ok(())
    }

    /// True when some database in the policy accepts writes.
    pub fn any_writable(&self) -> bool {
        self.databases.values().any(|d| d.allow_writes)
    }
}

/// Which SQL the statement is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlDialect {
    Postgres,
    Sqlite,
}

impl SqlDialect {
    /// The dialect of a database URL, or `None` for an unsupported scheme.
    pub fn from_url(url: &str) -> Option<SqlDialect> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(SqlDialect::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(SqlDialect::Sqlite)
        } else {
            None
        }
    }

    fn parser_dialect(self) -> Box<dyn Dialect> {
        match self {
            SqlDialect::Postgres => Box::new(PostgreSqlDialect {}),
            SqlDialect::Sqlite => Box::new(SQLiteDialect {}),
        }
    }
}

/// The judge's answer for one statement.
#[derive(Debug, Clone)]
pub struct SqlJudgement {
    pub verdict: Verdict,
    /// Names the statement calls (`f(`), for the tool's check of user-defined functions.
    pub called: Vec<String>,
    /// The statement writes (only ever allowed when the database allows writes).
    pub writes: bool,
}

/// Rule ids, shown in verdicts and the audit log.
pub mod rules {
    pub const PARSE: &str = "sql-parse";
    pub const SINGLE: &str = "sql-single-statement";
    pub const READ_ONLY: &str = "sql-read-only";
    pub const UTILITY: &str = "sql-utility";
    pub const FUNCTION: &str = "sql-function";
    pub const CALL_IN_TEXT: &str = "sql-call-in-text";
    pub const MODIFYING_CTE: &str = "sql-data-modifying-cte";
    pub const SELECT_INTO: &str = "sql-select-into";
    pub const ROW_LOCK: &str = "sql-row-lock";
    pub const PRAGMA: &str = "sql-pragma";
    pub const SIZE: &str = "sql-size";
    pub const VOLATILE: &str = "sql-volatile-function";
}

fn deny(rule: &str, message: impl Into<String>) -> SqlJudgement {
    SqlJudgement {
        verdict: Verdict::single(Decision::Deny, rule, message),
        called: Vec::new(),
        writes: false,
    }
}

/// Judges one SQL text for a database in `dialect`; `allow_writes` lets writes through.
pub fn judge_sql(sql: &str, dialect: SqlDialect, allow_writes: bool) -> SqlJudgement {
    if sql.len() > MAX_QUERY_BYTES {
        return deny(
            rules::SIZE,
            format!(
                "the query is {} bytes; the limit is {MAX_QUERY_BYTES}: ask a smaller question",
                sql.len()
            ),
        );
    }
    let parser_dialect = dialect.parser_dialect();
    let tokens = match Tokenizer::new(parser_dialect.as_ref(), sql).tokenize() {
        Ok(t) => functions::significant(t),
        Err(e) => return deny(rules::PARSE, parse_message(&e.to_string(), dialect)),
    };
    let parsed = Parser::new(parser_dialect.as_ref())
        .with_recursion_limit(MAX_NESTING)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements());
    let statements = match parsed {
        Ok(s) => s,
        Err(e) => return unparsed(sql, dialect, &e.to_string()),
    };
    let [statement] = statements.as_slice() else {
        return deny(
            rules::SINGLE,
            format!(
                "the query holds {} statements; send exactly one statement per call (no `;` between statements)",
                statements.len()
            ),
        );
    };
    let mut called = functions::called_names(&tokens);
    for name in &called {
        if let Some(why) = denied_function(name, dialect) {
            return deny(
                rules::FUNCTION,
                format!("`{name}(…)` is not allowed: {why}; query the data without it"),
            );
        }
    }
    let in_text = literals::literal_calls(&tokens, dialect);
    for name in &in_text {
        if let Some(why) = denied_function(name, dialect) {
            return deny(
                rules::CALL_IN_TEXT,
                format!(
                    "a string literal names `{name}`, which some functions would run as SQL, and                      `{name}(…)` is not allowed: {why}; leave the call out of the text"
                ),
            );
        }
    }
    // Names called inside text still go to the volatile-function check of the tool.
    called.extend(in_text);
    called.sort();
    called.dedup();
    let kind = match classify(statement, dialect, allow_writes) {
        Ok(k) => k,
        Err(j) => return j,
    };
    if kind == Kind::Read
        && let Some(word) = functions::write_word(&tokens)
    {
        return deny(
            rules::READ_ONLY,
            format!(
                "`{word}` has no place in a read-only query (the database is read-only); \
                 send a plain SELECT (quote an identifier named `{word}`)"
            ),
        );
    }
    let what = statement_label(statement);
    let message = match kind {
        Kind::Read => format!("single read statement ({what})"),
        Kind::Write => format!("write statement ({what}) on a database that allows writes"),
    };
    SqlJudgement {
        verdict: Verdict::single(Decision::Allow, rules::READ_ONLY, message),
        called,
        writes: kind == Kind::Write,
    }
}

/// A statement the parser could not read: on SQLite the pragma recogniser may still account
/// for it (a reporting pragma passes); everything else is refused.
fn unparsed(sql: &str, dialect: SqlDialect, error: &str) -> SqlJudgement {
    let recognised = match dialect {
        SqlDialect::Sqlite => pragma::recognise(sql),
        SqlDialect::Postgres => None,
    };
    match recognised {
        None => deny(rules::PARSE, parse_message(error, dialect)),
        Some(Err(why)) => deny(rules::PRAGMA, why),
        Some(Ok(p)) => match pragma::judge(&p) {
            Err(why) => deny(rules::PRAGMA, why),
            Ok(()) => SqlJudgement {
                verdict: Verdict::single(
                    Decision::Allow,
                    rules::READ_ONLY,
                    format!(
                        "single read statement (PRAGMA {}, a reporting pragma)",
                        p.name
                    ),
                ),
                called: Vec::new(),
                writes: false,
            },
        },
    }
}

fn parse_message(error: &str, dialect: SqlDialect) -> String {
    let name = match dialect {
        SqlDialect::Postgres => "PostgreSQL",
        SqlDialect::Sqlite => "SQLite",
    };
    format!(
        "the query could not be parsed as {name} SQL ({error}); fix the syntax, or rewrite it \
         as one plain SELECT"
    )
}

/// Whether a statement reads or writes; `Write` is the greater, so `.max()` combines parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Read,
    Write,
}

/// The first word of the statement's text, for messages (`SELECT`, `DELETE`, …).
fn statement_label(statement: &Statement) -> String {
    let text = statement.to_string();
    let first: String = text
        .split_whitespace()
        .next()
        .unwrap_or("statement")
        .chars()
        .take(20)
        .collect();
    first.to_ascii_uppercase()
}

fn read_only_refusal(rule: &str, what: &str) -> SqlJudgement {
    deny(
        rule,
        format!(
            "{what}: the database is read-only, so only one SELECT, WITH … SELECT, EXPLAIN, SHOW \
             or read-only PRAGMA is accepted"
        ),
    )
}

fn classify(
    statement: &Statement,
    dialect: SqlDialect,
    allow_writes: bool,
) -> Result<Kind, SqlJudgement> {
    let label = statement_label(statement);
    match statement {
        Statement::Query(q) => query_kind(q, allow_writes),
        Statement::Explain {
            statement: inner,
            analyze,
            ..
        } => {
            let kind = classify(inner, dialect, allow_writes)?;
            if kind == Kind::Write && *analyze && !allow_writes {
                return Err(read_only_refusal(
                    rules::READ_ONLY,
                    "EXPLAIN ANALYZE runs the write it explains",
                ));
            }
            Ok(kind)
        }
        Statement::ExplainTable { .. }
        | Statement::ShowVariable { .. }
        | Statement::ShowVariables { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowViews { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowCreate { .. } => Ok(Kind::Read),
        Statement::Pragma { name, value, is_eq } => {
            let name = name
                .to_string()
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .trim_matches(['"', '`', '[', ']'])
                .to_ascii_lowercase();
            let argument = match value.as_ref().map(|v| &v.value) {
                None => pragma::Argument::None,
                Some(Value::Number(..)) => pragma::Argument::Number,
                Some(Value::SingleQuotedString(_) | Value::DoubleQuotedString(_)) => {
                    pragma::Argument::Name
                }
                Some(_) => pragma::Argument::Other,
            };
            let p = pragma::Pragma {
                name,
                argument,
                assigns: *is_eq,
            };
            match (dialect, pragma::judge(&p)) {
                (SqlDialect::Sqlite, Ok(())) => Ok(Kind::Read),
                (SqlDialect::Sqlite, Err(why)) => Err(deny(rules::PRAGMA, why)),
                (SqlDialect::Postgres, _) => Err(deny(
                    rules::PRAGMA,
                    "PostgreSQL has no PRAGMA; query the catalogs (pg_catalog, \
                     information_schema) instead",
                )),
            }
        }
        Statement::Insert(_)
        | Statement::Update(_)
        | Statement::Delete(_)
        | Statement::Merge(_)
        | Statement::CreateTable(_)
        | Statement::CreateIndex(_)
        | Statement::CreateView(_)
        | Statement::AlterTable(_)
        | Statement::Drop { .. }
        | Statement::Truncate(_) => {
            if allow_writes {
                Ok(Kind::Write)
            } else {
                Err(read_only_refusal(
                    rules::READ_ONLY,
                    &format!("`{label}` writes"),
                ))
            }
        }
        _ => Err(deny(
            rules::UTILITY,
            format!(
                "`{label}` statements are never run by this tool (utility, session, transaction, \
                 file or server commands); send one SELECT instead"
            ),
        )),
    }
}

/// A query is a write when its body or a CTE modifies data, it selects `INTO` a table or it
/// locks rows.
fn query_kind(query: &Query, allow_writes: bool) -> Result<Kind, SqlJudgement> {
    let mut kind = Kind::Read;
    if let Some(with) = &query.with {
        for cte in &with.cte_tables {
            if query_kind(&cte.query, allow_writes)? == Kind::Write {
                let what = format!("the CTE `{}` modifies data", cte.alias.name);
                kind = write_found(allow_writes, rules::MODIFYING_CTE, &what)?;
            }
        }
    }
    if !query.locks.is_empty() {
        kind = write_found(
            allow_writes,
            rules::ROW_LOCK,
            "`FOR UPDATE` / `FOR SHARE` locks rows",
        )?;
    }
    Ok(kind.max(set_expr_kind(&query.body, allow_writes)?))
}

fn set_expr_kind(body: &SetExpr, allow_writes: bool) -> Result<Kind, SqlJudgement> {
    match body {
        SetExpr::Select(s) if s.into.is_some() => write_found(
            allow_writes,
            rules::SELECT_INTO,
            "`SELECT … INTO` creates a table",
        ),
        SetExpr::Select(_) | SetExpr::Values(_) | SetExpr::Table(_) => Ok(Kind::Read),
        SetExpr::Query(q) => query_kind(q, allow_writes),
        SetExpr::SetOperation { left, right, .. } => {
            Ok(set_expr_kind(left, allow_writes)?.max(set_expr_kind(right, allow_writes)?))
        }
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
            write_found(
                allow_writes,
                rules::MODIFYING_CTE,
                "the query modifies data",
            )
        }
    }
}

/// A write inside a query: allowed (as a write) only where the database allows writes.
fn write_found(allow_writes: bool, rule: &str, what: &str) -> Result<Kind, SqlJudgement> {
    if allow_writes {
        Ok(Kind::Write)
    } else {
        Err(read_only_refusal(rule, what))
    }
}
