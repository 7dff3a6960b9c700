//! Schema snapshots: the tables of the watched database with their columns (type, nullability,
//! default, position), primary and foreign keys and indexes, read from the catalogs
//! (PostgreSQL: every schema but the system ones; SQLite: every user table). On PostgreSQL a
//! partitioned table is one entry that lists its leaf partitions, materialized views are
//! entries too, a domain column carries its base type, and enum types are listed with their
//! labels. A snapshot is plain data, stored as JSON in the state store so the next run can diff
//! against it (fields added later default when an older snapshot is read).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::source::Source;

/// The whole schema at one moment, tables keyed by their qualified name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchemaSnapshot {
    pub tables: BTreeMap<String, TableSchema>,
    /// PostgreSQL enum types (`schema.type`) and their labels in sort order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub enums: BTreeMap<String, Vec<String>>,
}

/// What kind of relation a [`TableSchema`] describes.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    #[default]
    Table,
    /// A PostgreSQL partitioned table: profiled as one, with a breakdown per partition.
    PartitionedTable,
    MaterializedView,
}

impl RelationKind {
    pub fn is_table(&self) -> bool {
        *self == RelationKind::Table
    }

    /// For reports: `table`, `partitioned table`, `materialized view`.
    pub fn label(&self) -> &'static str {
        match self {
            RelationKind::Table => "table",
            RelationKind::PartitionedTable => "partitioned table",
            RelationKind::MaterializedView => "materialized view",
        }
    }

    fn from_relkind(relkind: &str) -> RelationKind {
        match relkind {
            "p" => RelationKind::PartitionedTable,
            "m" => RelationKind::MaterializedView,
            _ => RelationKind::Table,
        }
    }
}

/// One table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    /// PostgreSQL schema (`None` on SQLite).
    pub schema: Option<String>,
    pub name: String,
    /// In position order.
    pub columns: Vec<ColumnSchema>,
    pub primary_key: Vec<String>,
    /// Foreign keys by constraint name: their definition.
    pub foreign_keys: BTreeMap<String, String>,
    /// Indexes by name: their definition.
    pub indexes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "RelationKind::is_table")]
    pub kind: RelationKind,
    /// A partitioned table's leaf partitions (`schema.name`), in name order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<String>,
}

/// One column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnSchema {
    pub name: String,
    /// The declared type as the catalog prints it (`integer`, `character varying(20)`, `TEXT`).
    pub data_type: String,
    pub nullable: bool,
    pub default: Option<String>,
    /// Stable ordinal (PostgreSQL attnum, SQLite cid + 1): a rename keeps it.
    pub position: i64,
    /// For a PostgreSQL domain column: the type under the domain (through nested domains),
    /// which decides how the column is profiled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_type: Option<String>,
}

impl ColumnSchema {
    /// The type the column is profiled as: the domain's base type, else the declared type.
    pub fn profiled_type(&self) -> &str {
        self.base_type.as_deref().unwrap_or(&self.data_type)
    }
}

impl TableSchema {
    /// `schema.table` on PostgreSQL, `table` on SQLite.
    pub fn qualified(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", self.name),
            None => self.name.clone(),
        }
    }

    /// The table as a quoted SQL identifier.
    pub fn sql_ident(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&self.name)),
            None => quote_ident(&self.name),
        }
    }
}

/// Quotes an identifier for PostgreSQL and SQLite alike (`"a""b"`).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Tables and materialized views of user schemas; a partitioned table counts once (its
/// partitions are listed under it, not as tables).
const PG_USER_RELATIONS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
     AND c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition";

/// A domain column's base type, through nested domains (`NULL` for other columns).
const PG_BASE_TYPE: &str = "CASE WHEN ty.typtype = 'd' THEN
         (WITH RECURSIVE d(t, m, depth) AS (
              SELECT ty.typbasetype, ty.typtypmod, 1
              UNION ALL
              SELECT b.typbasetype, b.typtypmod, d.depth + 1
              FROM d JOIN pg_type b ON b.oid = d.t WHERE b.typtype = 'd' AND d.depth < 50)
          SELECT format_type(d.t, d.m) FROM d ORDER BY d.depth DESC LIMIT 1)
     END";

/// Reads the current schema.
pub async fn snapshot(source: &Source) -> Result<SchemaSnapshot, sqlx::Error> {
    match source {
        Source::Postgres(pool) => snapshot_postgres(pool).await,
        Source::Sqlite(pool) => snapshot_sqlite(pool).await,
    }
}

async fn snapshot_postgres(pool: &sqlx::PgPool) -> Result<SchemaSnapshot, sqlx::Error> {
    let mut snap = SchemaSnapshot::default();
    let columns = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT n.nspname::text AS sch, c.relname::text AS tbl, a.attname::text AS col,
                format_type(a.atttypid, a.atttypmod) AS typ, NOT a.attnotnull AS nullable,
                pg_get_expr(d.adbin, d.adrelid) AS dflt, a.attnum::int8 AS pos,
                c.relkind::text AS relkind, {PG_BASE_TYPE} AS base
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         LEFT JOIN pg_type ty ON ty.oid = a.atttypid
         WHERE {PG_USER_RELATIONS}
         ORDER BY 1, 2, a.attnum"
    )))
    .fetch_all(pool)
    .await?;
    for r in columns {
        let schema: String = r.try_get("sch")?;
        let name: String = r.try_get("tbl")?;
        let table = table_entry(&mut snap, Some(schema), name);
        table.kind = RelationKind::from_relkind(&r.try_get::<String, _>("relkind")?);
        if let Some(col) = r.try_get::<Option<String>, _>("col")? {
            table.columns.push(ColumnSchema {
                name: col,
                data_type: r.try_get("typ")?,
                nullable: r.try_get("nullable")?,
                default: r.try_get("dflt")?,
                position: r.try_get("pos")?,
                base_type: r.try_get("base")?,
            });
        }
    }
    partitions_and_enums(pool, &mut snap).await?;
    let constraints = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT n.nspname::text AS sch, c.relname::text AS tbl, con.conname::text AS name,
                con.contype::text AS kind, pg_get_constraintdef(con.oid) AS def,
                ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(num, ord)
                      JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
                      ORDER BY k.ord) AS cols
         FROM pg_constraint con
         JOIN pg_class c ON c.oid = con.conrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE con.contype IN ('p', 'f') AND {PG_USER_RELATIONS}
         ORDER BY 1, 2, 3"
    )))
    .fetch_all(pool)
    .await?;
    for r in constraints {
        let key = format!(
            "{}.{}",
            r.try_get::<String, _>("sch")?,
            r.try_get::<String, _>("tbl")?
        );
        let Some(table) = snap.tables.get_mut(&key) else {
            continue;
        };
        let kind: String = r.try_get("kind")?;
        if kind == "p" {
            table.primary_key = r.try_get("cols")?;
        } else {
            table
                .foreign_keys
                .insert(r.try_get("name")?, r.try_get("def")?);
        }
    }
    let indexes = sqlx::query(
        "SELECT schemaname::text AS sch, tablename::text AS tbl, indexname::text AS name,
                indexdef AS def
         FROM pg_indexes
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_all(pool)
    .await?;
    for r in indexes {
        let key = format!(
            "{}.{}",
            r.try_get::<String, _>("sch")?,
            r.try_get::<String, _>("tbl")?
        );
        if let Some(table) = snap.tables.get_mut(&key) {
            table.indexes.insert(r.try_get("name")?, r.try_get("def")?);
        }
    }
    Ok(snap)
}

/// Each partitioned table's leaf partitions, and the enum types with their labels.
async fn partitions_and_enums(
    pool: &sqlx::PgPool,
    snap: &mut SchemaSnapshot,
) -> Result<(), sqlx::Error> {
    let parts = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT n.nspname::text AS sch, c.relname::text AS tbl,
                ln.nspname::text || '.' || l.relname::text AS part
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         CROSS JOIN LATERAL pg_partition_tree(c.oid) t
         JOIN pg_class l ON l.oid = t.relid
         JOIN pg_namespace ln ON ln.oid = l.relnamespace
         WHERE c.relkind = 'p' AND t.isleaf AND t.relid <> c.oid AND {PG_USER_RELATIONS}
         ORDER BY 1, 2, 3"
    )))
    .fetch_all(pool)
    .await?;
    for r in parts {
        let key = format!(
            "{}.{}",
            r.try_get::<String, _>("sch")?,
            r.try_get::<String, _>("tbl")?
        );
        if let Some(table) = snap.tables.get_mut(&key) {
            table.partitions.push(r.try_get("part")?);
        }
    }
    let enums = sqlx::query(
        "SELECT n.nspname::text || '.' || t.typname::text AS name,
                array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
         FROM pg_type t
         JOIN pg_namespace n ON n.oid = t.typnamespace
         JOIN pg_enum e ON e.enumtypid = t.oid
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
         GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    for r in enums {
        snap.enums.insert(r.try_get("name")?, r.try_get("labels")?);
    }
    Ok(())
}

fn table_entry(
    snap: &mut SchemaSnapshot,
    schema: Option<String>,
    name: String,
) -> &mut TableSchema {
    let table = TableSchema {
        schema,
        name,
        ..TableSchema::default()
    };
    snap.tables.entry(table.qualified()).or_insert(table)
}

async fn snapshot_sqlite(pool: &sqlx::SqlitePool) -> Result<SchemaSnapshot, sqlx::Error> {
    let mut snap = SchemaSnapshot::default();
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )
    .fetch_all(pool)
    .await?;
    for name in names {
        let mut table = TableSchema {
            name: name.clone(),
            ..TableSchema::default()
        };
        let cols = sqlx::query(
            "SELECT cid, name, type, \"notnull\" AS not_null, dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid",
        )
        .bind(&name)
        .fetch_all(pool)
        .await?;
        let mut pk: Vec<(i64, String)> = Vec::new();
        for r in cols {
            let col: String = r.try_get("name")?;
            let pk_pos: i64 = r.try_get("pk")?;
            if pk_pos > 0 {
                pk.push((pk_pos, col.clone()));
            }
            table.columns.push(ColumnSchema {
                name: col,
                data_type: r.try_get("type")?,
                nullable: r.try_get::<i64, _>("not_null")? == 0 && pk_pos == 0,
                default: r.try_get("dflt_value")?,
                position: r.try_get::<i64, _>("cid")? + 1,
                base_type: None,
            });
        }
        pk.sort();
        table.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        table.foreign_keys = sqlite_foreign_keys(pool, &name).await?;
        table.indexes = sqlite_indexes(pool, &name).await?;
        snap.tables.insert(table.qualified(), table);
    }
    Ok(snap)
}

async fn sqlite_foreign_keys(
    pool: &sqlx::SqlitePool,
    table: &str,
) -> Result<BTreeMap<String, String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, \"table\" AS target, \"from\" AS src, \"to\" AS dst FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
    )
    .bind(table)
    .fetch_all(pool)
    .await?;
    let mut grouped: BTreeMap<i64, (String, Vec<String>, Vec<String>)> = BTreeMap::new();
    for r in rows {
        let entry = grouped
            .entry(r.try_get("id")?)
            .or_insert_with(|| (String::new(), Vec::new(), Vec::new()));
        entry.0 = r.try_get("target")?;
        entry.1.push(r.try_get("src")?);
        entry
            .2
            .push(r.try_get::<Option<String>, _>("dst")?.unwrap_or_default());
    }
    Ok(grouped
        .into_values()
        .map(|(target, from, to)| {
            let def = format!(
                "FOREIGN KEY ({}) REFERENCES {target}({})",
                from.join(", "),
                to.join(", ")
            );
            (format!("fk_{}_{}", target, from.join("_")), def)
        })
        .collect())
}

async fn sqlite_indexes(
    pool: &sqlx::SqlitePool,
    table: &str,
) -> Result<BTreeMap<String, String>, sqlx::Error> {
    let list = sqlx::query("SELECT name, \"unique\" AS uniq FROM pragma_index_list(?1)")
        .bind(table)
        .fetch_all(pool)
        .await?;
    let mut out = BTreeMap::new();
    for r in list {
        let name: String = r.try_get("name")?;
        let unique: i64 = r.try_get("uniq")?;
        let cols: Vec<Option<String>> =
            sqlx::query_scalar("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .bind(&name)
                .fetch_all(pool)
                .await?;
        let cols: Vec<String> = cols
            .into_iter()
            .map(|c| c.unwrap_or_else(|| "<expr>".into()))
            .collect();
        let def = format!(
            "{}INDEX {name} ON {table} ({})",
            if unique != 0 { "UNIQUE " } else { "" },
            cols.join(", ")
        );
        out.insert(name, def);
    }
    Ok(out)
}
