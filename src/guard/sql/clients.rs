//! SQL given to a database client on the command line (`psql -c`, `mysql -e`, `sqlite3 db
//! 'SQL'`, `duckdb -c`, `clickhouse-client -q`) judged by the same statement judge as the `sql`
//! tool rather than by a regex: comments between keywords (`DROP/**/DATABASE`) and client
//! meta-commands that run programs (`\!`, `.shell`, `system`) cannot slip past. A single read
//! statement and the clients' read-only meta-commands pass; anything else is at least `ask`,
//! and dropping a database or schema is `deny`.

use sqlparser::dialect::GenericDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use super::{SqlDialect, judge_sql};
use crate::guard::shell::Command;
use crate::guard::words::Word;
use crate::guard::{Decision, Verdict};

/// Rule ids of this judge.
pub const CLIENT_SQL: &str = "sql-client-statement";
pub const CLIENT_DROP: &str = "sql-client-drop-database";

/// psql meta-commands that only describe or format (`\dt`, `\d+ users`, `\l`, `\x`).
const PSQL_READ_META: &[&str] = &[
    "d", "l", "dn", "dt", "di", "dv", "dm", "ds", "df", "du", "dg", "dp", "dx", "dT", "dD", "dE",
    "db", "dc", "dC", "dd", "des", "det", "deu", "dew", "dF", "dL", "dO", "dy", "drds", "lo_list",
    "conninfo", "x", "timing", "encoding", "echo", "?", "h", "help", "sf", "sv", "z",
];

/// sqlite3 / duckdb dot-commands that only describe or format.
const SQLITE_READ_META: &[&str] = &[
    "tables",
    "schema",
    "indexes",
    "indices",
    "databases",
    "dbinfo",
    "headers",
    "header",
    "mode",
    "show",
    "help",
    "width",
    "fullschema",
    "dump",
    "nullvalue",
    "separator",
    "timer",
    "stats",
    "eqp",
    "explain",
    "lint",
    "columns",
    "print",
    "echo",
    "changes",
    "version",
];

/// Judges the SQL texts `cmd` passes inline, or `None` when it is no SQL client or passes none.
pub fn judge_client(cmd: &Command) -> Option<Verdict> {
    let program = cmd.program();
    let (dialect, texts) = match program {
        "psql" => (
            SqlDialect::Postgres,
            option_texts(cmd, &["-c"], &["--command"]),
        ),
        "cockroach" => (
            SqlDialect::Postgres,
            option_texts(cmd, &["-e"], &["--execute"]),
        ),
        "mysql" | "mariadb" => (
            SqlDialect::Postgres,
            option_texts(cmd, &["-e"], &["--execute"]),
        ),
        "clickhouse-client" => (
            SqlDialect::Postgres,
            option_texts(cmd, &["-q"], &["--query"]),
        ),
        "duckdb" => {
            let mut t = option_texts(cmd, &["-c", "-s", "-cmd"], &[]);
            t.extend(sqlite_positional_sql(cmd));
            (SqlDialect::Sqlite, t)
        }
        "sqlite3" => {
            let mut t = option_texts(cmd, &["-cmd"], &[]);
            t.extend(sqlite_positional_sql(cmd));
            (SqlDialect::Sqlite, t)
        }
        _ => return None,
    };
    if texts.is_empty() {
        return None;
    }
    let mut v = Verdict::allow();
    for t in texts {
        v = v.merge(judge_text(program, &t, dialect));
    }
    Some(v)
}

fn judge_text(program: &str, text: &Word, dialect: SqlDialect) -> Verdict {
    let ask = |why: String| {
        Verdict::single(
            Decision::Ask,
            CLIENT_SQL,
            format!("`{program}` runs `{}`: {why}", text.text),
        )
    };
    if text.dynamic {
        return ask("the statement is computed at run time".into());
    }
    let trimmed = text.text.trim();
    if let Some(meta) = trimmed.strip_prefix('\\') {
        let name = meta.split_whitespace().next().unwrap_or("");
        let name = name.trim_end_matches(['+', 'S']);
        return if PSQL_READ_META.contains(&name) && !meta.contains('\\') {
            Verdict::allow()
        } else {
            ask("a client meta-command that can run programs or write files".into())
        };
    }
    if let Some(dot) = trimmed.strip_prefix('.') {
        let name = dot.split_whitespace().next().unwrap_or("");
        return if SQLITE_READ_META.contains(&name) && !dot.contains(['\n', ';']) {
            Verdict::allow()
        } else {
            ask("a dot-command that can run programs or write files".into())
        };
    }
    let plain = without_comments(trimmed);
    if drops_database(&plain) {
        return Verdict::single(
            Decision::Deny,
            CLIENT_DROP,
            format!("`{program}` drops a database or schema: `{plain}`"),
        );
    }
    let judged = judge_sql(trimmed, dialect, false);
    if judged.verdict.decision == Decision::Allow {
        return Verdict::allow();
    }
    let why = judged
        .verdict
        .reasons
        .first()
        .map(|r| r.message.clone())
        .unwrap_or_default();
    ask(format!("not a single read-only statement ({why})"))
}

/// The SQL with its comments replaced by spaces, tokenised the generic way; the text itself
/// when it does not tokenise.
pub fn without_comments(sql: &str) -> String {
    let dialect = GenericDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() else {
        return sql.to_string();
    };
    let mut out = String::with_capacity(sql.len());
    for t in tokens {
        match t {
            Token::Whitespace(Whitespace::SingleLineComment { .. })
            | Token::Whitespace(Whitespace::MultiLineComment(_)) => out.push(' '),
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

/// `DROP DATABASE` / `DROP SCHEMA` anywhere in the (comment-free) text.
fn drops_database(sql: &str) -> bool {
    let words: Vec<String> = sql
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect();
    words
        .windows(2)
        .any(|w| w[0] == "drop" && (w[1] == "database" || w[1] == "schema"))
}

/// Values of `-c X`, `-cX`, `--command X`, `--command=X` style options.
fn option_texts(cmd: &Command, short: &[&str], long: &[&str]) -> Vec<Word> {
    let argv = &cmd.argv;
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let w = &argv[i];
        let t = w.text.as_str();
        if short.contains(&t) || long.contains(&t) {
            out.extend(argv.get(i + 1).cloned());
            i += 2;
            continue;
        }
        let attached = long
            .iter()
            .find_map(|l| t.strip_prefix(l).and_then(|r| r.strip_prefix('=')))
            .or_else(|| {
                short
                    .iter()
                    .filter(|s| s.len() == 2)
                    .find_map(|s| t.strip_prefix(s).filter(|r| !r.is_empty()))
            });
        if let Some(v) = attached {
            out.push(Word {
                text: v.to_string(),
                dynamic: w.dynamic,
            });
        }
        i += 1;
    }
    out
}

/// sqlite3's `DB SQL...`: positional words after the database file (options with a value
/// skipped).
fn sqlite_positional_sql(cmd: &Command) -> Vec<Word> {
    const WITH_VALUE: &[&str] = &[
        "-cmd",
        "-separator",
        "-newline",
        "-nullvalue",
        "-init",
        "-vfs",
        "-lookaside",
        "-pagecache",
        "-mmap",
        "-maxsize",
        "-c",
        "-s",
    ];
    let argv = &cmd.argv;
    let mut positionals = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let t = argv[i].text.as_str();
        if t.starts_with('-') && !argv[i].dynamic {
            i += if WITH_VALUE.contains(&t) { 2 } else { 1 };
            continue;
        }
        positionals.push(argv[i].clone());
        i += 1;
    }
    positionals.into_iter().skip(1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(line: &str) -> Decision {
        let a = crate::guard::shell::analyze(line);
        judge_client(&a.commands[0]).map_or(Decision::Allow, |v| v.decision)
    }

    #[test]
    fn reads_pass_and_everything_else_asks() {
        assert_eq!(
            judge("psql -c 'select count(*) from orders'"),
            Decision::Allow
        );
        assert_eq!(judge("psql -c '\\dt'"), Decision::Allow);
        assert_eq!(judge("sqlite3 app.db .tables"), Decision::Allow);
        assert_eq!(judge("psql -c '\\! id'"), Decision::Ask);
        assert_eq!(judge("sqlite3 :memory: '.shell id'"), Decision::Ask);
        assert_eq!(judge("mysql -e 'system id'"), Decision::Ask);
        assert_eq!(judge("psql -c 'DROP/**/DATABASE prod'"), Decision::Deny);
        assert_eq!(
            judge("psql --command='drop -- x\n schema s'"),
            Decision::Deny
        );
        assert_eq!(judge("psql -c \"$Q\""), Decision::Ask);
    }
}
