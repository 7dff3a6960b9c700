//! Data profiling in the database: per table one aggregate query for the row count, null counts,
//! distinct counts, min/max/mean of numerics and timestamps and the latest timestamp
//! (freshness), and one grouped query for the value counts of low-cardinality columns. Rows are
//! never pulled into memory, and a table costs at most 2 full scans whatever its column count.
//! Above a configurable row estimate PostgreSQL tables are profiled on a `TABLESAMPLE SYSTEM`
//! sample (the row count and freshness stay exact: one full scan), with distinct counts
//! estimated from the sample (see [`super::sampling`]). A domain column is profiled as its base
//! type; a partitioned table costs one more scan for its breakdown per partition.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::partitions::{self, PartitionProfile};
use super::sampling;
use super::schema::{RelationKind, TableSchema, quote_ident};
use super::source::Source;

pub use super::sampling::{DEFAULT_SAMPLE_ABOVE_ROWS, SAMPLE_TARGET_ROWS};
/// Text-like columns with at most this many distinct values get value counts (and new-value
/// detection).
pub const TOP_VALUES_MAX_DISTINCT: i64 = 20;
/// Longest value kept in value counts (longer ones are cut).
pub const VALUE_MAX_CHARS: usize = 80;

/// What kind of statistics a column gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// min, max, mean, distinct, nulls.
    Numeric,
    /// min, max, mean (as epoch seconds), distinct, nulls; a freshness candidate.
    Temporal,
    /// distinct, nulls.
    Text,
    /// A type ghost does not know: compared as text (distinct, nulls, values).
    Other,
}

/// How many rows had one value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ValueCount {
    pub value: String,
    pub count: i64,
}

/// One column's statistics (over the sample when the table was sampled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ColumnProfile {
    pub name: String,
    pub data_type: String,
    pub kind: ColumnKind,
    pub nulls: i64,
    pub null_rate: f64,
    pub distinct: i64,
    /// `distinct` is estimated from a sample (exact otherwise).
    #[serde(default)]
    pub distinct_approximate: bool,
    pub min: Option<String>,
    pub max: Option<String>,
    pub mean: Option<f64>,
    /// Value counts, most frequent first (low-cardinality columns only).
    pub values: Option<Vec<ValueCount>>,
}

/// One table's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TableProfile {
    pub table: String,
    /// Exact row count.
    pub row_count: i64,
    /// Rows the column statistics were computed on.
    pub rows_examined: i64,
    /// `Some(percent)` when the column statistics come from `TABLESAMPLE SYSTEM (percent)`.
    pub sample_percent: Option<f64>,
    /// The planner's row estimate that decided sampling (PostgreSQL).
    pub row_estimate: Option<f64>,
    /// Full scans of the table this profile cost.
    pub full_scans: u32,
    pub freshness_column: Option<String>,
    /// Latest value of the freshness column.
    pub freshness: Option<String>,
    pub columns: Vec<ColumnProfile>,
    /// A partitioned table or a materialized view (PostgreSQL); a plain table otherwise.
    #[serde(default, skip_serializing_if = "RelationKind::is_table")]
    pub kind: RelationKind,
    /// A partitioned table's rows and freshness per leaf partition (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<PartitionProfile>,
    pub elapsed_ms: u64,
}

impl TableProfile {
    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Time column names that say "last written", best first.
const FRESHNESS_NAMES: &[&str] = &[
    "updated_at",
    "modified_at",
    "created_at",
    "inserted_at",
    "event_time",
    "timestamp",
    "ts",
];

/// The column kind for a declared type.
pub fn kind_of(source: &Source, data_type: &str) -> ColumnKind {
    let t = data_type.to_ascii_lowercase();
    match source {
        Source::Postgres(_) => {
            let base = t.split('(').next().unwrap_or("").trim();
            match base {
                "smallint" | "integer" | "bigint" | "real" | "double precision" | "numeric"
                | "decimal" => ColumnKind::Numeric,
                "date" => ColumnKind::Temporal,
                _ if base.starts_with("timestamp") => ColumnKind::Temporal,
                "text" | "character varying" | "character" | "uuid" | "boolean" | "name"
                | "citext" => ColumnKind::Text,
                _ => ColumnKind::Other,
            }
        }
        Source::Sqlite(_) => {
            if t.contains("date") || t.contains("time") {
                ColumnKind::Temporal
            } else if t.contains("int")
                || t.contains("real")
                || t.contains("floa")
                || t.contains("doub")
                || t.contains("numeric")
                || t.contains("decimal")
            {
                ColumnKind::Numeric
            } else if t.contains("char") || t.contains("clob") || t.contains("text") {
                ColumnKind::Text
            } else {
                ColumnKind::Other
            }
        }
    }
}

/// `col` as text; SQLite blobs become `x` + hex (they need not be UTF-8).
fn text_expr(source: &Source, col: &str) -> String {
    match source {
        Source::Postgres(_) => format!("({col})::text"),
        Source::Sqlite(_) => format!(
            "(CASE typeof({col}) WHEN 'blob' THEN 'x' || hex({col}) ELSE CAST({col} AS TEXT) END)"
        ),
    }
}

/// What distinct values of `col` are counted on: the column, or its text for types ghost does
/// not know (they may have no equality operator).
fn distinct_expr(source: &Source, col: &str, kind: ColumnKind) -> String {
    match kind {
        ColumnKind::Other => text_expr(source, col),
        _ => col.to_string(),
    }
}

/// The select-list items of column `i` in the statistics query.
/// `exact_distinct`: count distinct values (`d{i}`); sampled tables estimate them instead.
fn column_aggregates(
    source: &Source,
    i: usize,
    col: &str,
    kind: ColumnKind,
    exact_distinct: bool,
) -> String {
    let pg = matches!(source, Source::Postgres(_));
    let int = if pg { "::int8" } else { "" };
    let distinct_of = distinct_expr(source, col, kind);
    let mut items = vec![format!("count({col}){int} AS nn{i}")];
    if exact_distinct {
        items.push(format!("count(DISTINCT {distinct_of}){int} AS d{i}"));
    }
    let mean = match (kind, pg) {
        (ColumnKind::Numeric, true) => Some(format!("avg({col})::float8")),
        (ColumnKind::Numeric, false) => Some(format!("avg({col})")),
        (ColumnKind::Temporal, true) => Some(format!("avg(extract(epoch FROM {col}))::float8")),
        (ColumnKind::Temporal, false) => {
            Some(format!("avg((julianday({col}) - 2440587.5) * 86400.0)"))
        }
        _ => None,
    };
    if let Some(mean) = mean {
        let lo = text_expr(source, &format!("min({col})"));
        let hi = text_expr(source, &format!("max({col})"));
        items.push(format!("{lo} AS lo{i}, {hi} AS hi{i}, {mean} AS mean{i}"));
    }
    items.join(", ")
}

/// Profiles one table. `sample_above_rows`: sample PostgreSQL tables estimated larger;
/// `timeout`: each SQLite statement is interrupted after it (PostgreSQL sessions carry their
/// own `statement_timeout`).
pub async fn profile_table(
    source: &Source,
    table: &TableSchema,
    sample_above_rows: u64,
    timeout: Duration,
) -> Result<TableProfile, sqlx::Error> {
    let started = Instant::now();
    let ident = table.sql_ident();
    let kinds: Vec<ColumnKind> = table
        .columns
        .iter()
        .map(|c| kind_of(source, c.profiled_type()))
        .collect();
    let cols: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let freshness = pick_freshness_column(table, &kinds);
    let row_estimate = match source {
        Source::Postgres(pool) => sampling::row_estimate(pool, table).await?,
        Source::Sqlite(_) => None,
    };
    let sample_percent = sampling::sample_percent(row_estimate, sample_above_rows);
    let from = match sample_percent {
        Some(p) => sampling::sampled_from(&ident, p),
        None => ident.clone(),
    };
    // A sampled table's exact row count and freshness (its one full scan) run on the pool's
    // second connection while the sample is profiled.
    let exact = async {
        match (sample_percent, source) {
            (Some(_), Source::Postgres(pool)) => {
                let fresh = freshness.map_or_else(
                    || "NULL::text".to_string(),
                    |i| text_expr(source, &format!("max({})", cols[i])),
                );
                let sql = format!("SELECT count(*)::int8 AS n, {fresh} AS fresh FROM {ident}");
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_one(pool)
                    .await?;
                Ok(Some((
                    row.try_get::<i64, _>("n")?,
                    row.try_get::<Option<String>, _>("fresh")?,
                )))
            }
            _ => Ok::<_, sqlx::Error>(None),
        }
    };
    let (exact, statistics) = tokio::join!(
        exact,
        column_statistics(
            source,
            table,
            (&from, sample_percent.is_some()),
            &cols,
            &kinds,
            timeout
        )
    );
    let (exact, mut stats) = (exact?, statistics?);
    let partitions = match source {
        Source::Postgres(pool) if table.kind == RelationKind::PartitionedTable => {
            partitions::breakdown(pool, table, freshness.map(|i| cols[i].as_str())).await?
        }
        _ => Vec::new(),
    };
    let examined = stats.examined;
    let (row_count, freshness_value, full_scans) = match exact {
        Some((n, fresh)) => {
            if let Some(once) = &stats.seen_once {
                scale_distinct_to_table(&mut stats.columns, once, examined, n);
            }
            (n, fresh, 1)
        }
        None => (
            examined,
            freshness.and_then(|i| stats.columns[i].max.clone()),
            1 + u32::from(stats.values_counted),
        ),
    };
    let full_scans = full_scans + u32::from(!partitions.is_empty());
    let columns = stats.columns;
    Ok(TableProfile {
        table: table.qualified(),
        row_count,
        rows_examined: examined,
        sample_percent,
        row_estimate,
        full_scans,
        freshness_column: freshness.map(|i| table.columns[i].name.clone()),
        freshness: freshness_value,
        columns,
        kind: table.kind,
        partitions,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// Turns the sample's distinct counts (in `distinct`, with the values seen once in `once`)
/// into estimates for a table of `rows` rows, marked approximate.
fn scale_distinct_to_table(columns: &mut [ColumnProfile], once: &[i64], examined: i64, rows: i64) {
    for (c, f1) in columns.iter_mut().zip(once) {
        let sampled = examined - c.nulls;
        let total = if examined > 0 {
            (rows as f64 * sampled as f64 / examined as f64).round() as i64
        } else {
            0
        };
        c.distinct = sampling::estimate_distinct(sampled, c.distinct, *f1, total);
        c.distinct_approximate = total > sampled;
    }
}

/// What [`column_statistics`] found over the table or its sample.
struct Statistics {
    examined: i64,
    /// `distinct` is exact, or, for a sample, the distinct values within the sample.
    columns: Vec<ColumnProfile>,
    /// Per column, the values seen exactly once in the sample (sampled tables only).
    seen_once: Option<Vec<i64>>,
    /// The value counts ran (a second pass over `from`).
    values_counted: bool,
}

/// The statistics query, then (sampled tables) the distinct values of the sample, then the
/// value counts of text-like low-cardinality columns, over `from` (the table or its sample).
async fn column_statistics(
    source: &Source,
    table: &TableSchema,
    (from, sampled): (&str, bool),
    cols: &[String],
    kinds: &[ColumnKind],
    timeout: Duration,
) -> Result<Statistics, sqlx::Error> {
    let mut select = vec![match source {
        Source::Postgres(_) => "count(*)::int8 AS n".to_string(),
        Source::Sqlite(_) => "count(*) AS n".to_string(),
    }];
    for (i, (col, kind)) in cols.iter().zip(kinds).enumerate() {
        select.push(column_aggregates(source, i, col, *kind, !sampled));
    }
    let sql = format!("SELECT {} FROM {from}", select.join(", "));
    let (examined, columns, seen_once) = match source {
        Source::Postgres(pool) => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await?;
            let (examined, mut columns) = read_statistics(&row, table, kinds, !sampled)?;
            let seen_once = if sampled {
                let exprs: Vec<String> = cols
                    .iter()
                    .zip(kinds)
                    .map(|(c, k)| distinct_expr(source, c, *k))
                    .collect();
                let found = sampling::distinct_in_sample(pool, from, &exprs).await?;
                for (c, (d, _)) in columns.iter_mut().zip(&found) {
                    c.distinct = *d;
                }
                Some(found.into_iter().map(|(_, f1)| f1).collect())
            } else {
                None
            };
            (examined, columns, seen_once)
        }
        Source::Sqlite(pool) => {
            let mut conn = sqlite_connection(pool, timeout).await?;
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut *conn)
                .await?;
            let (examined, columns) = read_statistics(&row, table, kinds, true)?;
            (examined, columns, None)
        }
    };
    // Categories: text-like columns with few values (numbers and times are judged by range).
    let low_cardinality: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| sampling::is_categorical(c.kind))
        .filter(|(_, c)| c.distinct > 0 && c.distinct <= TOP_VALUES_MAX_DISTINCT)
        .map(|(i, _)| i)
        .collect();
    let mut stats = Statistics {
        examined,
        columns,
        seen_once,
        values_counted: !low_cardinality.is_empty(),
    };
    if low_cardinality.is_empty() {
        return Ok(stats);
    }
    let columns = &mut stats.columns;
    let counts = value_counts(source, from, cols, &low_cardinality, timeout).await?;
    for i in &low_cardinality {
        let mut values: Vec<ValueCount> = counts
            .iter()
            .filter(|(k, _, _)| *k == *i as i64)
            .map(|(_, v, n)| ValueCount {
                value: v.chars().take(VALUE_MAX_CHARS).collect(),
                count: *n,
            })
            .collect();
        values.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
        columns[*i].values = Some(values);
    }
    Ok(stats)
}

/// `(column index, value, rows)` for the given columns, in one scan of `from`.
async fn value_counts(
    source: &Source,
    from: &str,
    cols: &[String],
    which: &[usize],
    timeout: Duration,
) -> Result<Vec<(i64, String, i64)>, sqlx::Error> {
    let rows = match source {
        Source::Postgres(pool) => {
            let values: Vec<String> = which
                .iter()
                .map(|i| format!("({i}::int8, ({})::text)", cols[*i]))
                .collect();
            let sql = format!(
                "SELECT x.k AS k, x.v AS v, count(*)::int8 AS n FROM {from}
                 CROSS JOIN LATERAL (VALUES {}) AS x(k, v)
                 WHERE x.v IS NOT NULL GROUP BY x.k, x.v",
                values.join(", ")
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("k")?, r.try_get("v")?, r.try_get("n")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        }
        Source::Sqlite(pool) => {
            let keys: Vec<String> = which
                .iter()
                .map(|i| format!("SELECT {i} AS pimcp_k"))
                .collect();
            let cases: Vec<String> = which
                .iter()
                .map(|i| {
                    format!(
                        "WHEN {i} THEN {}",
                        text_expr(source, &format!("t.{}", cols[*i]))
                    )
                })
                .collect();
            // Every name is qualified: in SQLite a bare alias in WHERE or GROUP BY loses to a
            // table column of the same name (a column `v` or `k` would be counted instead).
            // CROSS JOIN keeps the table as the outer loop in SQLite: one scan.
            let sql = format!(
                "SELECT q.pimcp_k AS k, q.pimcp_v AS v, count(*) AS n FROM
                   (SELECT ks.pimcp_k AS pimcp_k, CASE ks.pimcp_k {} END AS pimcp_v
                    FROM {from} AS t CROSS JOIN ({}) AS ks) AS q
                 WHERE q.pimcp_v IS NOT NULL GROUP BY q.pimcp_k, q.pimcp_v",
                cases.join(" "),
                keys.join(" UNION ALL ")
            );
            let mut conn = sqlite_connection(pool, timeout).await?;
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut *conn)
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("k")?, r.try_get("v")?, r.try_get("n")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        }
    };
    Ok(rows)
}

/// A pooled SQLite connection whose statements are interrupted once `timeout` has passed.
async fn sqlite_connection(
    pool: &sqlx::SqlitePool,
    timeout: Duration,
) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    crate::tools::sql::set_sqlite_deadline(&mut conn, Instant::now() + timeout)
        .await
        .map_err(|e| sqlx::Error::Protocol(e.message))?;
    Ok(conn)
}

fn pick_freshness_column(table: &TableSchema, kinds: &[ColumnKind]) -> Option<usize> {
    let temporal: Vec<usize> = (0..table.columns.len())
        .filter(|i| kinds[*i] == ColumnKind::Temporal)
        .collect();
    FRESHNESS_NAMES
        .iter()
        .find_map(|name| {
            temporal
                .iter()
                .copied()
                .find(|i| table.columns[*i].name.eq_ignore_ascii_case(name))
        })
        .or_else(|| temporal.first().copied())
}

/// Reads the statistics query's row: `(rows examined, column profiles)`.
fn read_statistics<R>(
    row: &R,
    table: &TableSchema,
    kinds: &[ColumnKind],
    with_distinct: bool,
) -> Result<(i64, Vec<ColumnProfile>), sqlx::Error>
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<f64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let n: i64 = row.try_get("n")?;
    let mut out = Vec::with_capacity(table.columns.len());
    for (i, (col, kind)) in table.columns.iter().zip(kinds).enumerate() {
        let non_null: i64 = row.try_get(format!("nn{i}").as_str())?;
        let distinct: i64 = if with_distinct {
            row.try_get(format!("d{i}").as_str())?
        } else {
            0
        };
        let (min, max, mean) = if matches!(kind, ColumnKind::Numeric | ColumnKind::Temporal) {
            (
                row.try_get::<Option<String>, _>(format!("lo{i}").as_str())?,
                row.try_get::<Option<String>, _>(format!("hi{i}").as_str())?,
                row.try_get::<Option<f64>, _>(format!("mean{i}").as_str())?,
            )
        } else {
            (None, None, None)
        };
        let nulls = n - non_null;
        out.push(ColumnProfile {
            name: col.name.clone(),
            data_type: col.data_type.clone(),
            kind: *kind,
            nulls,
            null_rate: if n > 0 { nulls as f64 / n as f64 } else { 0.0 },
            distinct,
            distinct_approximate: false,
            min,
            max,
            mean,
            values: None,
        });
    }
    Ok((n, out))
}
