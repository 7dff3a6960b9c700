//! A partitioned table is profiled as one table (its statistics span every partition), and
//! this module adds the breakdown an operator asks for next: rows and freshness per leaf
//! partition, in one grouped scan on `tableoid`. Partitions with no rows are listed with 0,
//! so an empty new partition shows up too.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::schema::TableSchema;

/// One leaf partition of a partitioned table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PartitionProfile {
    /// `schema.name`.
    pub partition: String,
    pub row_count: i64,
    /// Latest value of the table's freshness column in this partition.
    pub freshness: Option<String>,
}

/// Rows and freshness per partition of `table`; `freshness` is the quoted freshness column.
pub async fn breakdown(
    pool: &sqlx::PgPool,
    table: &TableSchema,
    freshness: Option<&str>,
) -> Result<Vec<PartitionProfile>, sqlx::Error> {
    let fresh = freshness.map_or_else(
        || "NULL::text".to_string(),
        |col| format!("(max({col}))::text"),
    );
    let sql = format!(
        "SELECT n.nspname::text || '.' || c.relname::text AS part, x.n AS n, x.fresh AS fresh
         FROM (SELECT tableoid, count(*)::int8 AS n, {fresh} AS fresh FROM {}
               GROUP BY tableoid) AS x
         JOIN pg_class c ON c.oid = x.tableoid
         JOIN pg_namespace n ON n.oid = c.relnamespace",
        table.sql_ident()
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?;
    let mut out: Vec<PartitionProfile> = table
        .partitions
        .iter()
        .map(|p| PartitionProfile {
            partition: p.clone(),
            row_count: 0,
            freshness: None,
        })
        .collect();
    for r in rows {
        let name: String = r.try_get("part")?;
        let found = PartitionProfile {
            partition: name.clone(),
            row_count: r.try_get("n")?,
            freshness: r.try_get("fresh")?,
        };
        match out.iter_mut().find(|p| p.partition == name) {
            Some(slot) => *slot = found,
            // Attached after the snapshot was read: still counted.
            None => out.push(found),
        }
    }
    Ok(out)
}
