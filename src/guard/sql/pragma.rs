//! SQLite `PRAGMA`s: which ones only report, and a small recogniser for the forms the SQL
//! parser cannot read (`PRAGMA table_info(orders)`, with a bare identifier, fails to parse in
//! sqlparser, yet it is the usual way to list a table's columns). The parser's `Pragma`
//! statements and the recogniser's answers meet in [`judge`], so both paths apply the same list.
//! The recogniser accepts exactly `PRAGMA [schema.]name [(argument)] [;]` with an identifier,
//! a quoted name or an integer as the argument, and nothing else: anything it cannot account
//! for stays refused.
//!
//! `integrity_check` and `quick_check` only read, but they read the whole file: they pass, and
//! the tool's statement timeout (SQLite's interrupt deadline) bounds them like any query.
//! `journal_mode`, `foreign_keys` and the like pass only bare (they then report the setting);
//! with an argument or `=` they set it, and are refused.

/// Pragmas that only report when given no `=`. Those in [`WITH_NAME`] may name a table or an
/// index; those in [`WITH_NUMBER`] may take a count.
pub const READ_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
    "database_list",
    "collation_list",
    "function_list",
    "module_list",
    "pragma_list",
    "compile_options",
    "user_version",
    "schema_version",
    "application_id",
    "data_version",
    "page_count",
    "page_size",
    "max_page_count",
    "freelist_count",
    "encoding",
    "journal_mode",
    "auto_vacuum",
    "foreign_keys",
    "query_only",
    "cache_size",
    "busy_timeout",
];

/// Pragmas whose argument is a table or index name (they report on it).
pub const WITH_NAME: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
];

/// Pragmas whose argument is a number that limits the report (most errors listed).
pub const WITH_NUMBER: &[&str] = &["integrity_check", "quick_check"];

/// A pragma's argument, as far as the judge cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Argument {
    None,
    Name,
    Number,
    /// Anything else (a keyword such as `ON`, an expression, a negative number…).
    Other,
}

/// A pragma statement the recogniser read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pragma {
    /// Lower-case, without the schema.
    pub name: String,
    pub argument: Argument,
    /// The assignment form `PRAGMA x = y`.
    pub assigns: bool,
}

/// `Ok(())` when the pragma only reads; otherwise why not.
pub fn judge(p: &Pragma) -> Result<(), String> {
    let name = p.name.as_str();
    let reads = READ_PRAGMAS.contains(&name);
    let argument_ok = match p.argument {
        Argument::None => true,
        Argument::Name => WITH_NAME.contains(&name),
        Argument::Number => WITH_NUMBER.contains(&name),
        Argument::Other => false,
    };
    if reads && argument_ok && !p.assigns {
        return Ok(());
    }
    let why = if p.assigns {
        "the `=` form sets it".to_string()
    } else if !reads {
        "it is not one of the reporting pragmas".to_string()
    } else if p.argument == Argument::None {
        "this form may change the connection or the file".to_string()
    } else {
        format!("with an argument it sets rather than reports (`PRAGMA {name}` alone reads it)")
    };
    Err(format!(
        "`PRAGMA {name}` is refused: {why}. Reporting pragmas (no `=`): {}; a table or index \
         name is accepted by {}",
        READ_PRAGMAS.join(", "),
        WITH_NAME.join(", ")
    ))
}

/// Reads `sql` as `PRAGMA [schema.]name [(argument) | = value] [;]`. `None` when it does not
/// start with the word PRAGMA; `Some(Err)` when it does but is not in a form the recogniser
/// accounts for (then it is refused).
pub fn recognise(sql: &str) -> Option<Result<Pragma, String>> {
    let mut lexer = Lexer::new(sql);
    match lexer.next() {
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("pragma") => {}
        _ => return None,
    }
    Some(pragma_body(&mut lexer).ok_or_else(|| {
        "this PRAGMA is not in a form the judge can read: use `PRAGMA name`, \
         `PRAGMA name(table)` or `PRAGMA schema.name(table)`, one per call"
            .to_string()
    }))
}

fn pragma_body(lexer: &mut Lexer<'_>) -> Option<Pragma> {
    let mut name = name_of(lexer.next()?)?;
    let mut next = lexer.next();
    if next == Some(Token::Punct('.')) {
        name = name_of(lexer.next()?)?;
        next = lexer.next();
    }
    let mut pragma = Pragma {
        name: name.to_ascii_lowercase(),
        argument: Argument::None,
        assigns: false,
    };
    match next {
        None | Some(Token::Punct(';')) => {}
        Some(Token::Punct('(')) => {
            pragma.argument = argument(lexer.next()?);
            if lexer.next()? != Token::Punct(')') {
                return None;
            }
            if !matches!(lexer.next(), None | Some(Token::Punct(';'))) {
                return None;
            }
        }
        Some(Token::Punct('=')) => {
            // Refused whatever follows; the value need not be read.
            pragma.assigns = true;
            return Some(pragma);
        }
        _ => return None,
    }
    // Only whitespace may follow the terminator.
    lexer.next().is_none().then_some(pragma)
}

fn name_of(token: Token<'_>) -> Option<String> {
    match token {
        Token::Word(w) => Some(w.to_string()),
        Token::Quoted(q) => Some(q),
        _ => None,
    }
}

fn argument(token: Token<'_>) -> Argument {
    match token {
        Token::Word(w) if !is_keyword_value(w) => Argument::Name,
        Token::Quoted(_) | Token::Str(_) => Argument::Name,
        Token::Number(_) => Argument::Number,
        _ => Argument::Other,
    }
}

/// Words that are setting values rather than names (`PRAGMA foreign_keys(ON)`).
fn is_keyword_value(w: &str) -> bool {
    const VALUES: &[&str] = &[
        "on",
        "off",
        "yes",
        "no",
        "true",
        "false",
        "full",
        "normal",
        "none",
        "wal",
        "delete",
        "truncate",
        "persist",
        "memory",
        "incremental",
        "exclusive",
    ];
    VALUES.iter().any(|v| v.eq_ignore_ascii_case(w))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    /// `"name"`, `[name]` or `` `name` ``, unquoted.
    Quoted(String),
    /// `'text'`.
    Str(String),
    Number(&'a str),
    Punct(char),
    /// Anything the lexer does not know (a comment, an unterminated quote, another symbol).
    Unknown,
}

/// Just enough of SQLite's lexer for one pragma: words, quoted names, strings, numbers and
/// punctuation, whitespace skipped. Comments are `Unknown`, so they fail closed.
struct Lexer<'a> {
    rest: &'a str,
}

impl<'a> Lexer<'a> {
    fn new(sql: &'a str) -> Self {
        Lexer { rest: sql }
    }

    fn next(&mut self) -> Option<Token<'a>> {
        self.rest = self.rest.trim_start();
        let c = self.rest.chars().next()?;
        let (token, len) = if c.is_ascii_alphabetic() || c == '_' {
            let len = self
                .rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
                .unwrap_or(self.rest.len());
            (Token::Word(&self.rest[..len]), len)
        } else if c.is_ascii_digit() {
            let len = self
                .rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(self.rest.len());
            (Token::Number(&self.rest[..len]), len)
        } else if let Some(close) = match c {
            '"' => Some('"'),
            '`' => Some('`'),
            '[' => Some(']'),
            '\'' => Some('\''),
            _ => None,
        } {
            match quoted(self.rest, close) {
                Some((inner, len)) if c == '\'' => (Token::Str(inner), len),
                Some((inner, len)) => (Token::Quoted(inner), len),
                None => (Token::Unknown, self.rest.len()),
            }
        } else if matches!(c, '(' | ')' | '.' | ';' | '=') {
            (Token::Punct(c), 1)
        } else {
            (Token::Unknown, self.rest.len())
        };
        self.rest = &self.rest[len..];
        Some(token)
    }
}

/// The text inside a quote opened by `s`'s first character and closed by `close` (doubled to
/// escape it, except for `]`), and the quote's length in bytes.
fn quoted(s: &str, close: char) -> Option<(String, usize)> {
    let mut inner = String::new();
    let mut chars = s.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c != close {
            inner.push(c);
            continue;
        }
        if close != ']' && chars.peek().is_some_and(|(_, n)| *n == close) {
            chars.next();
            inner.push(c);
            continue;
        }
        return Some((inner, i + c.len_utf8()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(sql: &str) -> Option<Result<(), String>> {
        recognise(sql).map(|r| r.and_then(|p| judge(&p)))
    }

    #[test]
    fn reporting_pragmas_with_a_table_name_pass() {
        for sql in [
            "PRAGMA table_info(orders)",
            "pragma TABLE_INFO ( \"order items\" ) ;",
            "PRAGMA main.index_list([orders])",
            "PRAGMA index_info('orders_by_day');  ",
            "PRAGMA index_xinfo(`ix`)",
            "PRAGMA table_xinfo(orders)",
            "PRAGMA foreign_key_list(orders)",
            "PRAGMA table_list",
            "PRAGMA table_list(orders)",
            "PRAGMA database_list",
            "PRAGMA collation_list",
            "PRAGMA function_list",
            "PRAGMA pragma_list",
            "PRAGMA compile_options",
            "PRAGMA integrity_check",
            "PRAGMA integrity_check(10)",
            "PRAGMA quick_check(orders)",
            "PRAGMA journal_mode",
        ] {
            assert_eq!(verdict(sql), Some(Ok(())), "{sql}");
        }
    }

    #[test]
    fn pragmas_that_set_or_run_something_are_refused() {
        for sql in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA journal_mode(WAL)",
            "PRAGMA writable_schema = 1",
            "PRAGMA writable_schema",
            "PRAGMA wal_checkpoint",
            "PRAGMA wal_checkpoint(TRUNCATE)",
            "PRAGMA optimize",
            "PRAGMA incremental_vacuum(10)",
            "PRAGMA query_only = 0",
            "PRAGMA query_only(0)",
            "PRAGMA foreign_keys(ON)",
            "PRAGMA user_version = 3",
            "PRAGMA table_info(orders); DELETE FROM orders",
            "PRAGMA table_info(orders) -- note",
            "PRAGMA table_info(orders, 2)",
            "PRAGMA table_info(lower(x))",
            "PRAGMA table_info('unterminated)",
            "PRAGMA a.b.c(x)",
            "PRAGMA",
        ] {
            assert!(
                matches!(verdict(sql), Some(Err(_))),
                "{sql}: {:?}",
                verdict(sql)
            );
        }
    }

    #[test]
    fn other_statements_are_left_to_the_parser() {
        assert_eq!(verdict("SELECT 1"), None);
        assert_eq!(verdict("  /* c */ PRAGMA table_info(t)"), None);
        assert_eq!(verdict("PRAGMATIC"), None);
    }

    #[test]
    fn quotes_unescape() {
        assert_eq!(quoted("\"a\"\"b\" rest", '"'), Some(("a\"b".into(), 6)));
        assert_eq!(quoted("[a]]", ']'), Some(("a".into(), 3)));
        assert_eq!(quoted("'open", '\''), None);
    }
}
