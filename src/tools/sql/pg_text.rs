//! PostgreSQL prints its own types best. The tool decodes the binary wire format only for the
//! types whose JSON form is richer than their text (numbers, booleans, JSON, text, uuid, bytea,
//! dates and times, enums, and arrays of these); every other type (`tsvector`, ranges, `interval`,
//! geometric types, `inet`, `money`, `regclass`, extension types such as `ltree`, composites,
//! and any type added later) is asked for in its text form by a wrapper query that casts that
//! column to `text` (`inet` through `abbrev`, since its cast to text always adds the netmask
//! while its output does not). Arrays of such types are cast to `text` too (array output uses
//! each element's output function) and parsed back into JSON arrays of their elements' text.
//!
//! A statement whose column types sqlx cannot resolve at all (it does not know multiranges)
//! is read over the simple protocol, where every value is text ([`all_text`]).
//!
//! The wrapper never replaces the judged statement: the user's statement is prepared (and so
//! described) on its own first, inside the same read-only transaction, and only its column
//! list decides the casts. The wrapper is built as
//! `SELECT <casts> FROM (\n<statement>\n) AS pimcp_q(<names>)`, the statement without its
//! terminating `;` and trailing comments ([`super::pg_lex`]). If PostgreSQL refuses the wrapper
//! (a statement that cannot be a subquery), the statement is read over the simple protocol
//! instead, where every value is text ([`all_text`]).

use std::iter::Peekable;
use std::str::Chars;

use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgTypeInfo, PgTypeKind, Postgres};
use sqlx::{AssertSqlSafe, Column, Executor, Row, TypeInfo, ValueRef};

use super::exec::Rows;
use super::values::MAX_ARRAY_ELEMENTS;

/// How one result column reaches the tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// Binary wire format, decoded by [`super::values`].
    Binary,
    /// `column::text`: PostgreSQL's own text output.
    Text,
    /// `abbrev(column)`: an `inet` as its output function prints it.
    Inet,
    /// `column::text` of an array, parsed by [`array_json`]; elements are separated by
    /// `delimiter` (`;` for `box`, `,` for every other built-in type).
    TextArray { delimiter: char },
}

/// Types whose binary form [`super::values`] decodes to JSON at least as faithful as their text.
const BINARY_TYPES: &[&str] = &[
    "BOOL",
    "INT2",
    "INT4",
    "INT8",
    "FLOAT4",
    "FLOAT8",
    "NUMERIC",
    "TEXT",
    "VARCHAR",
    "BPCHAR",
    "NAME",
    "CHAR",
    "CITEXT",
    "UNKNOWN",
    "VOID",
    "UUID",
    "JSON",
    "JSONB",
    "BYTEA",
    "DATE",
    "TIME",
    "TIMESTAMP",
    "TIMESTAMPTZ",
    "OID",
    "XID",
    "CID",
];

/// How a column of type `info` is fetched.
pub fn render_of(info: &PgTypeInfo) -> Render {
    let Some(kind) = kind_of(info) else {
        return Render::Text;
    };
    match kind {
        PgTypeKind::Domain(base) => render_of(base),
        PgTypeKind::Enum(_) => Render::Binary,
        PgTypeKind::Array(elem) => match render_of(elem) {
            Render::Binary => Render::Binary,
            _ => Render::TextArray {
                delimiter: if base_name(elem) == "BOX" { ';' } else { ',' },
            },
        },
        PgTypeKind::Simple | PgTypeKind::Pseudo => {
            let name = info.name().to_ascii_uppercase();
            if BINARY_TYPES.contains(&name.as_str()) {
                Render::Binary
            } else if name == "INET" {
                Render::Inet
            } else {
                Render::Text
            }
        }
        _ => Render::Text,
    }
}

/// The upper-case name of the type under any domains.
fn base_name(info: &PgTypeInfo) -> String {
    match kind_of(info) {
        Some(PgTypeKind::Domain(base)) => base_name(base),
        _ => info.name().to_ascii_uppercase(),
    }
}

/// The type's kind, or `None` for a type sqlx has not resolved (it knows only the OID or only
/// the name, and asking such a type for its kind panics).
pub fn kind_of(info: &PgTypeInfo) -> Option<&PgTypeKind> {
    (info.oid().is_some() && info.name() != UNRESOLVED).then(|| info.kind())
}

/// The name sqlx gives a type it knows only by OID.
const UNRESOLVED: &str = "?";

/// The wrapper query for `statement` with `plan` (one entry per column), or `None` when every
/// column is read in binary (the statement then runs as it is).
pub fn wrapper(statement: &str, plan: &[Render]) -> Option<String> {
    if plan.iter().all(|r| *r == Render::Binary) {
        return None;
    }
    let names: Vec<String> = (1..=plan.len()).map(|i| format!("c{i}")).collect();
    let items: Vec<String> = plan
        .iter()
        .zip(&names)
        .map(|(render, name)| match render {
            Render::Binary => format!("pimcp_q.{name}"),
            Render::Text | Render::TextArray { .. } => format!("pimcp_q.{name}::text"),
            Render::Inet => format!("abbrev(pimcp_q.{name})"),
        })
        .collect();
    Some(format!(
        "SELECT {} FROM (\n{}\n) AS pimcp_q({})",
        items.join(", "),
        super::pg_lex::without_terminator(statement),
        names.join(", ")
    ))
}

/// A column type's name for the result: the catalog name, or `oid N` for a type sqlx could
/// not resolve.
pub fn type_name(info: &PgTypeInfo) -> String {
    match kind_of(info) {
        Some(_) => info.name().to_ascii_lowercase(),
        None => info
            .oid()
            .map_or_else(|| "unknown".to_string(), |oid| format!("oid {}", oid.0)),
    }
}

/// Runs `sql` over the simple protocol, where every value arrives as text: the path for a
/// statement whose column types sqlx cannot resolve. Only ever called after PostgreSQL has
/// parsed the same text as exactly one statement (a prepared statement holds one), inside the
/// caller's read-only transaction. Numbers, booleans and JSON still become JSON; everything
/// else, timestamps included, is PostgreSQL's text. `known` holds the columns and types when
/// the statement could be described; otherwise they come with the first row.
pub async fn all_text(
    conn: &mut PoolConnection<Postgres>,
    sql: &str,
    max_rows: usize,
    known: Rows,
) -> Result<Rows, sqlx::Error> {
    let mut rows = Rows {
        rows: Vec::new(),
        ..known
    };
    let mut texts: Vec<Vec<Option<String>>> = Vec::new();
    let mut unresolved: Vec<(usize, Oid)> = Vec::new();
    {
        let mut stream = sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).fetch(&mut **conn);
        while let Some(row) = stream.try_next().await? {
            if texts.is_empty() {
                rows.columns = row.columns().iter().map(|c| c.name().to_string()).collect();
                rows.types = row
                    .columns()
                    .iter()
                    .map(|c| type_name(c.type_info()))
                    .collect();
                unresolved = row
                    .columns()
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| kind_of(c.type_info()).is_none())
                    .filter_map(|(i, c)| c.type_info().oid().map(|oid| (i, oid)))
                    .collect();
            }
            if texts.len() == max_rows {
                rows.truncated = true;
                break;
            }
            let values = (0..row.len())
                .map(|i| {
                    let raw = row.try_get_raw(i)?;
                    Ok((!raw.is_null()).then(|| raw.as_str().unwrap_or_default().to_string()))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            texts.push(values);
        }
    }
    // Names for the types sqlx does not know (a multirange, an array of them), so arrays
    // still become JSON arrays.
    for (i, oid) in unresolved {
        let name: Option<String> = sqlx::query_scalar("SELECT format_type($1, NULL)")
            .bind(oid)
            .fetch_one(&mut **conn)
            .await?;
        if let (Some(name), Some(slot)) = (name, rows.types.get_mut(i)) {
            *slot = name;
        }
    }
    rows.rows = texts
        .into_iter()
        .map(|row| {
            row.into_iter()
                .enumerate()
                .map(|(i, text)| match text {
                    None => Value::Null,
                    Some(text) => text_json(rows.types.get(i).map_or("", String::as_str), &text),
                })
                .collect()
        })
        .collect();
    if !rows.truncated {
        conn.execute("ROLLBACK").await?;
    }
    Ok(rows)
}

/// A text-format value of type `name` (lower case) as JSON.
fn text_json(name: &str, text: &str) -> Value {
    let parsed = match name {
        "bool" => Some(Value::Bool(text == "t")),
        "int2" | "int4" | "int8" | "oid" => text.parse::<i64>().ok().map(Value::from),
        "float4" | "float8" => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        "json" | "jsonb" => serde_json::from_str(text).ok(),
        _ if name.ends_with("[]") => array_json(text, if name == "box[]" { ';' } else { ',' }),
        _ => None,
    };
    parsed.unwrap_or_else(|| Value::String(text.to_string()))
}

/// An array's text (`{a,"b c",NULL}`, nested braces for more dimensions, an optional
/// `[1:2]=` bounds prefix) as a JSON array of strings and nulls; `None` when it is not one.
/// Arrays longer than [`MAX_ARRAY_ELEMENTS`] end with a `"… N more"` marker, like decoded ones.
pub fn array_json(text: &str, delimiter: char) -> Option<Value> {
    let body = match text.strip_prefix('[') {
        Some(_) => text.split_once('=')?.1,
        None => text,
    };
    let mut chars = body.chars().peekable();
    let value = array_items(&mut chars, delimiter)?;
    chars.next().is_none().then_some(value)
}

fn array_items(chars: &mut Peekable<Chars<'_>>, delimiter: char) -> Option<Value> {
    if chars.next()? != '{' {
        return None;
    }
    let mut items = Vec::new();
    let mut extra = 0usize;
    if chars.peek() == Some(&'}') {
        chars.next();
        return Some(Value::Array(items));
    }
    loop {
        let item = match chars.peek()? {
            '{' => array_items(chars, delimiter)?,
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => s.push(chars.next()?),
                        c => s.push(c),
                    }
                }
                Value::String(s)
            }
            _ => {
                let mut s = String::new();
                while let Some(c) = chars.peek().copied() {
                    if c == delimiter || c == '}' {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                if s.eq_ignore_ascii_case("NULL") {
                    Value::Null
                } else {
                    Value::String(s)
                }
            }
        };
        if items.len() < MAX_ARRAY_ELEMENTS {
            items.push(item);
        } else {
            extra += 1;
        }
        match chars.next()? {
            '}' => break,
            c if c == delimiter => {}
            _ => return None,
        }
    }
    if extra > 0 {
        items.push(Value::String(format!("… {extra} more")));
    }
    Some(Value::Array(items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Type;
    use sqlx::postgres::types::{PgInterval, PgPoint};
    use sqlx::postgres::{PgTypeInfo, Postgres};

    fn info<T: Type<Postgres>>() -> PgTypeInfo {
        T::type_info()
    }

    #[test]
    fn known_types_stay_binary_and_the_rest_become_text() {
        let binary = [
            info::<i32>(),
            info::<String>(),
            info::<Vec<i64>>(),
            info::<Vec<String>>(),
        ];
        for t in &binary {
            assert_eq!(render_of(t), Render::Binary, "{}", t.name());
        }
        assert_eq!(render_of(&info::<PgInterval>()), Render::Text);
        assert_eq!(
            render_of(&info::<Vec<PgInterval>>()),
            Render::TextArray { delimiter: ',' }
        );
        // Declared by name only (never the case for a result column): text, no panic.
        assert_eq!(render_of(&info::<PgPoint>()), Render::Text);
        // An OID sqlx has no name for is printed by the server too.
        assert_eq!(
            render_of(&PgTypeInfo::with_oid(sqlx::postgres::types::Oid(123_456))),
            Render::Text
        );
    }

    #[test]
    fn the_wrapper_casts_only_what_is_needed_and_keeps_the_statement_whole() {
        assert_eq!(wrapper("SELECT 1", &[Render::Binary]), None);
        let w = wrapper(
            "SELECT a, b, c FROM t; -- note;\n ; ",
            &[
                Render::Binary,
                Render::Text,
                Render::TextArray { delimiter: ';' },
            ],
        )
        .unwrap_or_default();
        assert_eq!(
            w,
            "SELECT pimcp_q.c1, pimcp_q.c2::text, pimcp_q.c3::text FROM (\n\
             SELECT a, b, c FROM t\n) AS pimcp_q(c1, c2, c3)"
        );
    }

    #[test]
    fn array_text_parses_into_json_arrays() {
        use serde_json::json;
        assert_eq!(
            array_json(r#"{a,"b c",NULL,"NULL","q\"x\\y",""}"#, ','),
            Some(json!(["a", "b c", null, "NULL", "q\"x\\y", ""]))
        );
        assert_eq!(
            array_json("{{1.2.3.4,NULL},{::1,10.0.0.0/8}}", ','),
            Some(json!([["1.2.3.4", null], ["::1", "10.0.0.0/8"]]))
        );
        assert_eq!(
            array_json("{(3,4),(1,2);(1,1),(0,0)}", ';'),
            Some(json!(["(3,4),(1,2)", "(1,1),(0,0)"]))
        );
        assert_eq!(array_json("[0:1]={x,y}", ','), Some(json!(["x", "y"])));
        assert_eq!(array_json("{}", ','), Some(json!([])));
        for bad in ["", "{", "{a", "{a}b", "x", "{\"a}"] {
            assert_eq!(array_json(bad, ','), None, "{bad}");
        }
        let long = format!("{{{}}}", vec!["1"; MAX_ARRAY_ELEMENTS + 2].join(","));
        let parsed = array_json(&long, ',').unwrap_or_default();
        assert_eq!(parsed[MAX_ARRAY_ELEMENTS], json!("… 2 more"));
    }
}
