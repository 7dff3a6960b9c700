//! Schema snapshots: the tables of the watched database with their columns (type, nullability,
//! default, position), primary and foreign keys and indexes, read from the catalogs
//! (PostgreSQL: every schema but the system ones; SQLite: every user table). A snapshot is plain
//! data, stored as JSON in the state store so the next run can diff against it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::source::Source;

/// The whole schema at one moment, tables keyed by their qualified name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchemaSnapshot {
    pub tables: BTreeMap<String, TableSchema>,
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

/// Tables of user schemas; a partitioned table counts once (its partitions are not listed).
const PG_USER_RELATIONS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
     AND c.relkind IN ('r', 'p') AND NOT c.relispartition";

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
                pg_get_expr(d.adbin, d.adrelid) AS dflt, a.attnum::int8 AS pos
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE {PG_USER_RELATIONS}
         ORDER BY 1, 2, a.attnum"
    )))
    .fetch_all(pool)
    .await?;
    for r in columns {
        let schema: String = r.try_get("sch")?;
        let name: String = r.try_get("tbl")?;
        let table = table_entry(&mut snap, Some(schema), name);
        if let Some(col) = r.try_get::<Option<String>, _>("col")? {
            table.columns.push(ColumnSchema {
                name: col,
                data_type: r.try_get("typ")?,
                nullable: r.try_get("nullable")?,
                default: r.try_get("dflt")?,
                position: r.try_get("pos")?,
            });
        }
    }
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
