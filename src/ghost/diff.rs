//! Schema diff: what changed between two snapshots. Tables and columns added or dropped; a
//! column counts as renamed when one dropped and one added column of the same table share type
//! and position; type, nullability and default changes; keys and indexes added or dropped.

use serde::{Deserialize, Serialize};

use super::schema::{ColumnSchema, SchemaSnapshot, TableSchema};
use crate::severity::Severity;

/// One schema change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SchemaChange {
    TableAdded {
        table: String,
    },
    TableDropped {
        table: String,
    },
    ColumnAdded {
        table: String,
        column: String,
        data_type: String,
    },
    ColumnDropped {
        table: String,
        column: String,
    },
    ColumnRenamed {
        table: String,
        from: String,
        to: String,
    },
    TypeChanged {
        table: String,
        column: String,
        from: String,
        to: String,
    },
    NullabilityChanged {
        table: String,
        column: String,
        nullable: bool,
    },
    DefaultChanged {
        table: String,
        column: String,
        from: Option<String>,
        to: Option<String>,
    },
    PrimaryKeyChanged {
        table: String,
        from: Vec<String>,
        to: Vec<String>,
    },
    ForeignKeyAdded {
        table: String,
        name: String,
        definition: String,
    },
    ForeignKeyDropped {
        table: String,
        name: String,
    },
    IndexAdded {
        table: String,
        index: String,
        definition: String,
    },
    IndexDropped {
        table: String,
        index: String,
    },
}

impl SchemaChange {
    /// How much a change can break readers: drops and type changes break queries.
    pub fn severity(&self) -> Severity {
        use SchemaChange::*;
        match self {
            TableDropped { .. } | ColumnDropped { .. } | ColumnRenamed { .. } => Severity::Critical,
            TypeChanged { .. }
            | NullabilityChanged { .. }
            | PrimaryKeyChanged { .. }
            | IndexDropped { .. }
            | ForeignKeyDropped { .. } => Severity::Warning,
            TableAdded { .. }
            | ColumnAdded { .. }
            | DefaultChanged { .. }
            | ForeignKeyAdded { .. }
            | IndexAdded { .. } => Severity::Info,
        }
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        use SchemaChange::*;
        match self {
            TableAdded { table } => format!("table `{table}` added"),
            TableDropped { table } => format!("table `{table}` dropped"),
            ColumnAdded {
                table,
                column,
                data_type,
            } => format!("column `{table}.{column}` added ({data_type})"),
            ColumnDropped { table, column } => format!("column `{table}.{column}` dropped"),
            ColumnRenamed { table, from, to } => {
                format!("column `{table}.{from}` renamed to `{to}`")
            }
            TypeChanged {
                table,
                column,
                from,
                to,
            } => format!("column `{table}.{column}` type changed from {from} to {to}"),
            NullabilityChanged {
                table,
                column,
                nullable,
            } => format!(
                "column `{table}.{column}` is now {}",
                if *nullable { "nullable" } else { "NOT NULL" }
            ),
            DefaultChanged {
                table,
                column,
                from,
                to,
            } => format!(
                "column `{table}.{column}` default changed from {} to {}",
                from.as_deref().unwrap_or("none"),
                to.as_deref().unwrap_or("none")
            ),
            PrimaryKeyChanged { table, from, to } => format!(
                "table `{table}` primary key changed from ({}) to ({})",
                from.join(", "),
                to.join(", ")
            ),
            ForeignKeyAdded {
                table,
                name,
                definition,
            } => format!("foreign key `{name}` added on `{table}`: {definition}"),
            ForeignKeyDropped { table, name } => {
                format!("foreign key `{name}` dropped from `{table}`")
            }
            IndexAdded {
                table,
                index,
                definition,
            } => format!("index `{index}` added on `{table}`: {definition}"),
            IndexDropped { table, index } => format!("index `{index}` dropped from `{table}`"),
        }
    }
}

/// The changes from `old` to `new`, tables in name order.
pub fn diff(old: &SchemaSnapshot, new: &SchemaSnapshot) -> Vec<SchemaChange> {
    let mut out = Vec::new();
    for (name, table) in &old.tables {
        match new.tables.get(name) {
            None => out.push(SchemaChange::TableDropped {
                table: name.clone(),
            }),
            Some(now) => diff_table(name, table, now, &mut out),
        }
    }
    for name in new.tables.keys() {
        if !old.tables.contains_key(name) {
            out.push(SchemaChange::TableAdded {
                table: name.clone(),
            });
        }
    }
    out
}

fn diff_table(name: &str, old: &TableSchema, new: &TableSchema, out: &mut Vec<SchemaChange>) {
    let table = || name.to_string();
    let find = |cols: &[ColumnSchema], n: &str| cols.iter().position(|c| c.name == n);
    let mut dropped: Vec<&ColumnSchema> = old
        .columns
        .iter()
        .filter(|c| find(&new.columns, &c.name).is_none())
        .collect();
    let mut added: Vec<&ColumnSchema> = new
        .columns
        .iter()
        .filter(|c| find(&old.columns, &c.name).is_none())
        .collect();
    // A drop and an add with the same type at the same position is a rename.
    dropped.retain(|d| {
        let Some(i) = added
            .iter()
            .position(|a| a.position == d.position && a.data_type == d.data_type)
        else {
            return true;
        };
        let a = added.remove(i);
        out.push(SchemaChange::ColumnRenamed {
            table: table(),
            from: d.name.clone(),
            to: a.name.clone(),
        });
        compare_columns(name, &a.name, d, a, out);
        false
    });
    for d in dropped {
        out.push(SchemaChange::ColumnDropped {
            table: table(),
            column: d.name.clone(),
        });
    }
    for a in added {
        out.push(SchemaChange::ColumnAdded {
            table: table(),
            column: a.name.clone(),
            data_type: a.data_type.clone(),
        });
    }
    for o in &old.columns {
        if let Some(i) = find(&new.columns, &o.name) {
            compare_columns(name, &o.name, o, &new.columns[i], out);
        }
    }
    if old.primary_key != new.primary_key {
        out.push(SchemaChange::PrimaryKeyChanged {
            table: table(),
            from: old.primary_key.clone(),
            to: new.primary_key.clone(),
        });
    }
    for (fk, _) in old.foreign_keys.iter() {
        if !new.foreign_keys.contains_key(fk) {
            out.push(SchemaChange::ForeignKeyDropped {
                table: table(),
                name: fk.clone(),
            });
        }
    }
    for (fk, def) in new.foreign_keys.iter() {
        if !old.foreign_keys.contains_key(fk) {
            out.push(SchemaChange::ForeignKeyAdded {
                table: table(),
                name: fk.clone(),
                definition: def.clone(),
            });
        }
    }
    for ix in old.indexes.keys() {
        if !new.indexes.contains_key(ix) {
            out.push(SchemaChange::IndexDropped {
                table: table(),
                index: ix.clone(),
            });
        }
    }
    for (ix, def) in &new.indexes {
        if !old.indexes.contains_key(ix) {
            out.push(SchemaChange::IndexAdded {
                table: table(),
                index: ix.clone(),
                definition: def.clone(),
            });
        }
    }
}

fn compare_columns(
    table: &str,
    column: &str,
    old: &ColumnSchema,
    new: &ColumnSchema,
    out: &mut Vec<SchemaChange>,
) {
    if old.data_type != new.data_type {
        out.push(SchemaChange::TypeChanged {
            table: table.to_string(),
            column: column.to_string(),
            from: old.data_type.clone(),
            to: new.data_type.clone(),
        });
    }
    if old.nullable != new.nullable {
        out.push(SchemaChange::NullabilityChanged {
            table: table.to_string(),
            column: column.to_string(),
            nullable: new.nullable,
        });
    }
    if old.default != new.default {
        out.push(SchemaChange::DefaultChanged {
            table: table.to_string(),
            column: column.to_string(),
            from: old.default.clone(),
            to: new.default.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str, pos: i64) -> ColumnSchema {
        ColumnSchema {
            name: name.into(),
            data_type: ty.into(),
            nullable: true,
            default: None,
            position: pos,
        }
    }

    fn snap(cols: Vec<ColumnSchema>) -> SchemaSnapshot {
        let mut s = SchemaSnapshot::default();
        s.tables.insert(
            "t".into(),
            TableSchema {
                name: "t".into(),
                columns: cols,
                ..TableSchema::default()
            },
        );
        s
    }

    #[test]
    fn rename_needs_same_type_and_position() {
        let old = snap(vec![col("a", "int", 1), col("b", "text", 2)]);
        let renamed = snap(vec![col("a", "int", 1), col("c", "text", 2)]);
        assert_eq!(
            diff(&old, &renamed),
            vec![SchemaChange::ColumnRenamed {
                table: "t".into(),
                from: "b".into(),
                to: "c".into()
            }]
        );
        let retyped = snap(vec![col("a", "int", 1), col("c", "int", 2)]);
        let changes = diff(&old, &retyped);
        assert!(changes.contains(&SchemaChange::ColumnDropped {
            table: "t".into(),
            column: "b".into()
        }));
        assert!(
            changes
                .iter()
                .any(|c| matches!(c, SchemaChange::ColumnAdded { column, .. } if column == "c"))
        );
    }

    #[test]
    fn identical_snapshots_have_no_changes() {
        let s = snap(vec![col("a", "int", 1)]);
        assert!(diff(&s, &s).is_empty());
    }
}
