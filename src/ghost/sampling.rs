//! Large PostgreSQL tables: when to sample them and what a sample says about the whole table.
//! The size estimate comes from `pg_class.reltuples`, or, for a table never vacuumed or
//! analysed (`reltuples = -1`, e.g. freshly loaded), from the planner's estimate over the
//! table's current size, so a big new table is sampled too. Distinct counts over a sample are
//! scaled to the table with the Haas–Stokes (Duj1) estimator that PostgreSQL's ANALYZE uses,
//! and are marked approximate.

use sqlx::Row;

use super::profile::ColumnKind;
use super::schema::TableSchema;

/// Rows a sample aims at: the sample percentage is this over the row estimate.
pub const SAMPLE_TARGET_ROWS: f64 = 100_000.0;
/// Default row estimate above which PostgreSQL tables are sampled.
pub const DEFAULT_SAMPLE_ABOVE_ROWS: u64 = 1_000_000;
/// Seed of `TABLESAMPLE ... REPEATABLE`, so every sampled query sees the same pages.
const SAMPLE_SEED: i64 = 42;

/// How many rows the table holds, as far as the catalog and planner know without a scan:
/// `reltuples`, or the planner's estimate from the table's size when it was never analysed.
pub async fn row_estimate(
    pool: &sqlx::PgPool,
    table: &TableSchema,
) -> Result<Option<f64>, sqlx::Error> {
    let reltuples: Option<f64> = sqlx::query_scalar(
        "SELECT c.reltuples::float8 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relname = $2",
    )
    .bind(table.schema.as_deref().unwrap_or("public"))
    .bind(&table.name)
    .fetch_optional(pool)
    .await?;
    if let Some(known) = reltuples.filter(|e| *e >= 0.0) {
        return Ok(Some(known));
    }
    // Never analysed: the planner scales its width-based density to the current block count.
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN SELECT 1 FROM {}",
        table.sql_ident()
    )))
    .fetch_all(pool)
    .await?;
    Ok(plan.first().and_then(|line| planned_rows(line)))
}

/// The `rows=N` of an EXPLAIN line (`Seq Scan on t  (cost=0.00..35.50 rows=2550 width=4)`).
fn planned_rows(line: &str) -> Option<f64> {
    let rest = &line[line.find(" rows=")? + " rows=".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The sample percentage for a table estimated at `estimate` rows, when it is above
/// `sample_above_rows` (aimed at [`SAMPLE_TARGET_ROWS`]).
pub fn sample_percent(estimate: Option<f64>, sample_above_rows: u64) -> Option<f64> {
    estimate
        .filter(|e| *e > sample_above_rows as f64)
        .map(|e| (100.0 * SAMPLE_TARGET_ROWS / e).clamp(0.0001, 100.0))
}

/// The `FROM` item of the sample.
pub fn sampled_from(ident: &str, percent: f64) -> String {
    format!("{ident} TABLESAMPLE SYSTEM ({percent}) REPEATABLE ({SAMPLE_SEED})")
}

/// Per column `(distinct values, values seen exactly once)` in `from` (the sample), for the
/// grouping expressions `exprs` (a column, or its text for types without equality). The sample
/// is read once into a materialized CTE, then grouped per column: grouping the columns' native
/// values beats one grouped pass over all of them cast to text (measured: 375 ms vs 767 ms on a
/// 100,000-row sample of 12 columns).
pub async fn distinct_in_sample(
    pool: &sqlx::PgPool,
    from: &str,
    exprs: &[String],
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    if exprs.is_empty() {
        return Ok(Vec::new());
    }
    let per_column: Vec<String> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            format!(
                "(SELECT ARRAY[count(*), count(*) FILTER (WHERE g.c = 1)]::int8[]
                  FROM (SELECT count(*) AS c FROM s WHERE {e} IS NOT NULL GROUP BY {e}) AS g)
                 AS c{i}"
            )
        })
        .collect();
    let sql = format!(
        "WITH s AS MATERIALIZED (SELECT * FROM {from}) SELECT {}",
        per_column.join(", ")
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await?;
    (0..exprs.len())
        .map(|i| {
            let pair: Vec<i64> = row.try_get(i)?;
            Ok((
                pair.first().copied().unwrap_or(0),
                pair.get(1).copied().unwrap_or(0),
            ))
        })
        .collect()
}

/// The Haas–Stokes Duj1 estimate of a column's distinct values in the table: `n` non-null
/// values sampled, `d` distinct among them, `f1` of those seen once, `total` non-null values in
/// the table. `n·d / (n − f1 + f1·n/total)`, kept within `[d, total]`.
pub fn estimate_distinct(n: i64, d: i64, f1: i64, total: i64) -> i64 {
    if n <= 0 || d <= 0 || total <= n {
        return d;
    }
    let (n, d, f1, total) = (n as f64, d as f64, f1 as f64, total as f64);
    let estimate = n * d / (n - f1 + f1 * n / total);
    estimate.round().clamp(d, total) as i64
}

/// Whether a column kind is compared by value (text-like) rather than by range.
pub fn is_categorical(kind: ColumnKind) -> bool {
    matches!(kind, ColumnKind::Text | ColumnKind::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_planner_line_gives_its_rows() {
        assert_eq!(
            planned_rows("Seq Scan on t  (cost=0.00..35.50 rows=2550 width=4)"),
            Some(2550.0)
        );
        assert_eq!(planned_rows("Result  (cost=0.00..0.01 width=4)"), None);
    }

    #[test]
    fn distinct_estimates_scale_with_the_unseen_part() {
        // Every sampled value distinct: the whole column is distinct.
        assert_eq!(estimate_distinct(1000, 1000, 1000, 1_000_000), 1_000_000);
        // Few categories, each seen many times: the sample saw them all.
        assert_eq!(estimate_distinct(1000, 5, 0, 1_000_000), 5);
        // The sample is the table: exact.
        assert_eq!(estimate_distinct(500, 40, 10, 500), 40);
        let mid = estimate_distinct(1000, 600, 300, 100_000);
        assert!(mid > 600 && mid < 100_000, "{mid}");
        assert_eq!(estimate_distinct(0, 0, 0, 10), 0);
    }

    #[test]
    fn only_tables_above_the_threshold_are_sampled() {
        assert_eq!(sample_percent(Some(500.0), 1000), None);
        assert_eq!(sample_percent(None, 1000), None);
        let p = sample_percent(Some(10_000_000.0), 1000).unwrap_or_default();
        assert!((p - 1.0).abs() < 1e-9, "{p}");
    }
}
