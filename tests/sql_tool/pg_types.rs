//! The type-mapping table on a real PostgreSQL: every built-in type a `SELECT` can return (the
//! base, range and multirange types of `pg_catalog`, read from `pg_type` so a type this list
//! lacks fails the test), one-dimensional arrays of each, and user types (domain, enum,
//! composite, `ltree` when the extension is there) come back from the `sql` tool as PostgreSQL
//! prints them: each value is compared with the type's output function in the same session,
//! `format('%s', value)`, which is what `psql` shows (`value::text` is the same for all but
//! `char(n)`, whose cast drops the padding, and `inet`, whose cast adds `/32`). Numbers,
//! booleans and JSON are JSON; timestamps are ISO-8601 (`T`, `Z`), the one deliberate
//! difference from `psql`.

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use super::postgres::PgDb;
use super::support::{Workspace, require_service};
use super::{Client, ok, sql, start};

/// Types no `SELECT` on a plain database can produce: no input function and no catalog column
/// of that type (they exist inside index internals, `pageinspect` or event triggers only).
const UNSELECTABLE: &[&str] = &[
    "gtsvector",
    "pg_brin_bloom_summary",
    "pg_brin_minmax_multi_summary",
];

/// `(type, sample expressions)` for every `pg_catalog` base, range and multirange type.
const SAMPLES: &[(&str, &[&str])] = &[
    ("aclitem", &["makeaclitem(10, 10, 'SELECT', false)"]),
    ("bit", &["B'101'"]),
    ("bool", &["true", "false"]),
    ("box", &["'((1,2),(3,4))'"]),
    ("bpchar", &["'ab'::char(4)"]),
    ("bytea", &["'\\xdeadbeef'", "''"]),
    ("char", &["'x'"]),
    ("cid", &["'7'"]),
    ("cidr", &["'10.1.0.0/16'", "'2001:db8::/32'"]),
    ("circle", &["'<(1,2),3>'"]),
    ("date", &["'2024-02-29'", "'0044-03-15 BC'", "'infinity'"]),
    ("float4", &["0.1", "1.5", "'Infinity'", "'NaN'"]),
    ("float8", &["0.1", "2.25", "'-Infinity'", "1e300"]),
    (
        "inet",
        &["'192.168.0.1/24'", "'192.168.0.1'", "'::1.2.3.4'"],
    ),
    ("int2", &["-32768"]),
    ("int4", &["7"]),
    ("int8", &["9007199254740993"]),
    (
        "interval",
        &["'1 year 2 mons 3 days 04:05:06.5'", "'-3 days'", "'0'"],
    ),
    ("json", &["'{\"a\": [1, 2, {\"b\": null}]}'"]),
    ("jsonb", &["'{\"a\": [1, 2.50, {\"b\": null}]}'"]),
    ("jsonpath", &["'$.a[*] ? (@ > 1)'"]),
    ("line", &["'{1,-1,0}'"]),
    ("lseg", &["'[(0,0),(1,1)]'"]),
    ("macaddr", &["'08:00:2b:01:02:03'"]),
    ("macaddr8", &["'08:00:2b:01:02:03:04:05'"]),
    ("money", &["12.34", "-1234567.5"]),
    ("name", &["'abc'"]),
    ("numeric", &["12.500", "'NaN'", "-0.005"]),
    ("oid", &["1259"]),
    ("path", &["'[(0,0),(1,1),(2,0)]'", "'((0,0),(1,1))'"]),
    (
        "pg_dependencies",
        &["(SELECT stxddependencies FROM pg_statistic_ext_data LIMIT 1)"],
    ),
    ("pg_lsn", &["'16/B374D848'"]),
    (
        "pg_mcv_list",
        &["(SELECT stxdmcv FROM pg_statistic_ext_data LIMIT 1)"],
    ),
    (
        "pg_ndistinct",
        &["(SELECT stxdndistinct FROM pg_statistic_ext_data LIMIT 1)"],
    ),
    (
        "pg_node_tree",
        &[
            "(SELECT proargdefaults FROM pg_proc WHERE proargdefaults IS NOT NULL ORDER BY oid LIMIT 1)",
        ],
    ),
    ("pg_snapshot", &["'10:20:10,14,15'"]),
    ("point", &["'(1.5,2)'"]),
    ("polygon", &["'((0,0),(1,1),(1,0))'"]),
    ("refcursor", &["'c1'"]),
    ("regclass", &["'pg_class'"]),
    ("regcollation", &["'\"C\"'"]),
    ("regconfig", &["'english'"]),
    ("regdictionary", &["'simple'"]),
    ("regnamespace", &["'pg_catalog'"]),
    ("regoper", &["'||/'"]),
    ("regoperator", &["'+(int4,int4)'"]),
    ("regproc", &["'now'"]),
    ("regprocedure", &["'abs(int4)'"]),
    ("regrole", &["'pg_monitor'"]),
    ("regtype", &["'int4'"]),
    ("text", &["'héllo'"]),
    ("tid", &["'(0,1)'"]),
    ("time", &["'13:45:06.12'", "'00:00'"]),
    (
        "timestamp",
        &["'2024-02-29 13:45:06.5'", "'0044-03-15 12:00 BC'"],
    ),
    ("timestamptz", &["'2024-02-29 13:45:06+02'", "'-infinity'"]),
    ("timetz", &["'13:45:06+02'", "'01:02:03.5-05:30'"]),
    ("tsquery", &["'fat & (rat | !cat)'"]),
    (
        "tsvector",
        &[
            "'a fat cat sat on a mat'",
            "to_tsvector('english', 'The quick brown foxes')",
        ],
    ),
    ("txid_snapshot", &["'10:20:10,14,15'"]),
    ("uuid", &["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"]),
    ("varbit", &["B'10110'"]),
    ("varchar", &["'ab'"]),
    ("xid", &["'42'"]),
    ("xid8", &["'42'"]),
    ("xml", &["'<a b=\"1\">x &amp; y</a>'"]),
    ("daterange", &["'[2024-01-01,2024-02-01)'", "'empty'"]),
    ("int4range", &["'[1,5)'", "'(,3]'"]),
    ("int8range", &["'[1,5)'"]),
    ("numrange", &["'[1.5,2.5]'"]),
    ("tsrange", &["'[2024-01-01 00:00,2024-01-02 00:00)'"]),
    ("tstzrange", &["'[2024-01-01 00:00+00,)'"]),
    (
        "datemultirange",
        &["'{[2024-01-01,2024-02-01), [2024-03-01,2024-04-01)}'"],
    ),
    ("int4multirange", &["'{[1,3), [5,7)}'", "'{}'"]),
    ("int8multirange", &["'{[1,3)}'"]),
    ("nummultirange", &["'{[1.5,2.5]}'"]),
    ("tsmultirange", &["'{[2024-01-01 00:00,2024-01-02 00:00)}'"]),
    (
        "tstzmultirange",
        &["'{[2024-01-01 00:00+00,2024-01-02 00:00+00)}'"],
    ),
];

/// User types: `(expression, label)`.
const USER_TYPES: &[&str] = &[
    "'happy'::mood",
    "1999::year",
    "'(1,2)'::pg_temp_pair",
    "ROW(1, 'a b', NULL)",
    "ARRAY[['a', 'b'], ['c', NULL]]",
    "ARRAY[ARRAY['(1,2)'::point], ARRAY['(3,4)'::point]]",
    "ARRAY['[1,2)'::int4range]",
    "ARRAY[1999::year]",
    "ARRAY['1.2.3.4'::inet, '10.0.0.0/8', NULL]",
    "ARRAY['((1,2),(3,4))'::box, '((0,0),(1,1))']",
    "'{1,2}'::years",
];

const FIXTURE: &str = "
    CREATE TABLE stats_src (a int, b int);
    INSERT INTO stats_src SELECT g % 10, g % 5 FROM generate_series(1, 1000) g;
    CREATE STATISTICS stats_src_ext (ndistinct, dependencies, mcv) ON a, b FROM stats_src;
    ANALYZE stats_src;
    CREATE DOMAIN year AS integer CHECK (VALUE > 0);
    CREATE DOMAIN years AS year[];
    CREATE TYPE pg_temp_pair AS (x int, y text);";

/// Whether the tool's JSON `value` shows what PostgreSQL printed as `text`.
fn same(value: &Value, text: &Value) -> bool {
    match (value, text) {
        (Value::Null, Value::Null) => true,
        (Value::Array(items), Value::Array(texts)) => {
            items.len() == texts.len() && items.iter().zip(texts).all(|(v, t)| same(v, t))
        }
        (v, Value::String(t)) => match v {
            Value::String(s) => s == t || iso(s) == *t,
            Value::Array(_) if t.starts_with('{') => {
                array_text(v, ',') == *t || array_text(v, ';') == *t
            }
            Value::Number(n) => n.to_string() == *t || n.as_f64() == t.parse::<f64>().ok(),
            Value::Bool(b) => t == if *b { "t" } else { "f" },
            Value::Object(_) | Value::Array(_) => {
                serde_json::from_str::<Value>(t).is_ok_and(|parsed| parsed == *v)
            }
            Value::Null => false,
        },
        _ => false,
    }
}

/// A JSON array as PostgreSQL's array output writes it (`{a,"b c",NULL}`; `box` uses `;`).
fn array_text(v: &Value, delimiter: char) -> String {
    match v {
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(|i| array_text(i, delimiter)).collect();
            format!("{{{}}}", inner.join(&delimiter.to_string()))
        }
        Value::Null => "NULL".into(),
        Value::String(s) => {
            let plain = !s.is_empty()
                && !s.eq_ignore_ascii_case("null")
                && !s.contains(['{', '}', delimiter, '"', '\\', ' ']);
            if plain {
                s.clone()
            } else {
                format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
            }
        }
        other => other.to_string(),
    }
}

/// An ISO-8601 timestamp the tool printed, in PostgreSQL's ISO `DateStyle` (session zone UTC).
fn iso(s: &str) -> String {
    s.replacen('T', " ", 1).replace('Z', "+00")
}

async fn check(client: &Client, expr: &str, failures: &mut Vec<String>) {
    let query = format!(
        "SELECT {expr} AS v, format('%s', {expr}) AS t, ARRAY[{expr}, NULL] AS a, \
         ARRAY[format('%s', {expr}), NULL] AS at"
    );
    let r = sql(client, json!({ "query": query })).await;
    if r.is_error == Some(true) {
        // Types without an array type (internal statistics) are checked alone.
        let alone = format!("SELECT {expr} AS v, format('%s', {expr}) AS t");
        let r = sql(client, json!({ "query": alone })).await;
        let v = ok(&r);
        if !same(&v["rows"][0][0], &v["rows"][0][1]) {
            failures.push(format!(
                "{expr}: {} vs {}",
                v["rows"][0][0], v["rows"][0][1]
            ));
        }
        return;
    }
    let v = ok(&r);
    let row = &v["rows"][0];
    if !same(&row[0], &row[1]) {
        failures.push(format!("{expr}: {} vs {}", row[0], row[1]));
    }
    // An array expression's own array is checked above; ARRAY[it, NULL] is no new case.
    if !row[0].is_array() && !same(&row[2], &row[3]) {
        failures.push(format!("ARRAY[{expr}]: {} vs {}", row[2], row[3]));
    }
    let text = format!("{}{}", row[0], row[2]);
    if text.contains("not decoded") || text.contains("unreadable") {
        failures.push(format!("{expr}: {text}"));
    }
}

#[tokio::test]
async fn every_builtin_type_reads_as_postgres_prints_it() {
    let Some(base) = require_service("PI_MCP_TEST_PG_URL") else {
        return;
    };
    let db = PgDb::create(&base).await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql(FIXTURE).execute(&mut conn).await.unwrap();
    let ltree: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'ltree')",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    if ltree {
        sqlx::raw_sql("CREATE EXTENSION ltree")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let builtin: Vec<String> = sqlx::query_scalar(
        "SELECT t.typname::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = 'pg_catalog' AND t.typtype IN ('b', 'r', 'm')
           AND t.typcategory <> 'A' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    drop(conn);
    let missing: Vec<&String> = builtin
        .iter()
        .filter(|t| !UNSELECTABLE.contains(&t.as_str()))
        .filter(|t| !SAMPLES.iter().any(|(name, _)| name == t))
        .collect();
    assert!(missing.is_empty(), "types without a sample: {missing:?}");
    assert!(builtin.len() >= 80, "{builtin:?}");

    let ws = Workspace::new();
    let client = start(&ws, &[("DATABASE_URL", &db.url)]).await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, exprs) in SAMPLES {
        for expr in *exprs {
            check(&client, &format!("({expr})::{name}"), &mut failures).await;
            checked += 1;
        }
    }
    for expr in USER_TYPES {
        check(&client, expr, &mut failures).await;
        checked += 1;
    }
    if ltree {
        check(&client, "'top.science.astronomy'::ltree", &mut failures).await;
        check(&client, "'*.science.*'::lquery", &mut failures).await;
    } else {
        eprintln!("ltree is not available here: its case is skipped");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 100, "{checked}");

    // Spot checks of the exact JSON, and the statement stays the one that was judged.
    let v = ok(&sql(
        &client,
        json!({ "query": "SELECT 'a:1 b:2'::tsvector AS tv, '[1,5)'::int4range AS r, \
                 '1 day'::interval AS i, 1999::year AS y, ARRAY['(1,2)'::point] AS pts, \
                 'pg_class'::regclass AS rc; -- trailing note;" }),
    )
    .await);
    assert_eq!(
        v["rows"][0],
        json!(["'a':1 'b':2", "[1,5)", "1 day", 1999, ["(1,2)"], "pg_class"])
    );
    assert_eq!(
        v["column_types"],
        json!([
            "tsvector",
            "int4range",
            "interval",
            "int4",
            "point[]",
            "regclass"
        ])
    );
    let v = ok(&sql(
        &client,
        json!({ "query": "SELECT oid::regclass AS rel, relkind FROM pg_class \
                 WHERE relname = 'stats_src' ORDER BY 1 LIMIT 1" }),
    )
    .await);
    assert_eq!(v["rows"], json!([["stats_src", "r"]]));
    // Multiranges, which the driver cannot describe, read as text; truncation still holds.
    let v = ok(&sql(
        &client,
        json!({ "query": "SELECT g AS n, int4multirange(int4range(g, g + 2)) AS m, \
                 ARRAY[int4multirange(int4range(1, 2))] AS ms FROM generate_series(1, 5) g",
                "max_rows": 2 }),
    )
    .await);
    assert_eq!(
        v["rows"],
        json!([[1, "{[1,3)}", ["{[1,2)}"]], [2, "{[2,4)}", ["{[1,2)}"]]])
    );
    assert_eq!(v["truncated"], json!(true));
    assert_eq!(
        v["column_types"],
        json!(["int4", "int4multirange", "int4multirange[]"])
    );
    ok(&sql(&client, json!({ "query": "SELECT 1" })).await);
    client.cancel().await.unwrap();
}
