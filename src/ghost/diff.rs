//! Schema diff: what changed between two snapshots. Tables and columns added or dropped; a
//! column counts as renamed when one dropped and one added column of the same table share type
//! and position, a table when a dropped and an added table have the same columns (names and
//! types, in order); type, nullability and default changes; keys and indexes added, dropped or
//! (indexes) redefined under the same name; partitions added to or dropped from a partitioned
//! table; enum types added or dropped and their labels added or removed.

use serde::{Deserialize, Serialize};

use super::markdown::inline;
use super::schema::{ColumnSchema, SchemaSnapshot, TableSchema};
use crate::severity::Severity;

/// One schema change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SchemaChange {
    TableAdded {
        table: String,
    },
    TableDropped {
        table: String,
    },
    TableRenamed {
        from: String,
        to: String,
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
    IndexChanged {
        table: String,
        index: String,
        from: String,
        to: String,
    },
    PartitionAdded {
        table: String,
        partition: String,
    },
    PartitionDropped {
        table: String,
        partition: String,
    },
    EnumAdded {
        enum_type: String,
        labels: Vec<String>,
    },
    EnumDropped {
        enum_type: String,
    },
    /// Labels a reader of the column has not seen before (`ALTER TYPE … ADD VALUE`).
    EnumLabelsAdded {
        enum_type: String,
        labels: Vec<String>,
    },
    EnumLabelsRemoved {
        enum_type: String,
        labels: Vec<String>,
    },
}

impl SchemaChange {
    /// How much a change can break readers: drops and type changes break queries.
    pub fn severity(&self) -> Severity {
        use SchemaChange::*;
        match self {
            TableDropped { .. }
            | TableRenamed { .. }
            | ColumnDropped { .. }
            | ColumnRenamed { .. } => Severity::Critical,
            TypeChanged { .. }
            | IndexChanged { .. }
            | NullabilityChanged { .. }
            | PrimaryKeyChanged { .. }
            | IndexDropped { .. }
            | ForeignKeyDropped { .. }
            | PartitionDropped { .. }
            | EnumDropped { .. }
            | EnumLabelsRemoved { .. } => Severity::Warning,
            PartitionAdded { .. } | EnumAdded { .. } | EnumLabelsAdded { .. } => Severity::Info,
            TableAdded { .. }
            | ColumnAdded { .. }
            | DefaultChanged { .. }
            | ForeignKeyAdded { .. }
            | IndexAdded { .. } => Severity::Info,
        }
    }

    /// One line for the report (Markdown; names from the database are made safe).
    pub fn describe(&self) -> String {
        use SchemaChange::*;
        let n = |name: &str| inline(name);
        match self {
            TableAdded { table } => format!("table `{}` added", n(table)),
            TableDropped { table } => format!("table `{}` dropped", n(table)),
            TableRenamed { from, to } => {
                format!("table `{}` renamed to `{}`", n(from), n(to))
            }
            ColumnAdded {
                table,
                column,
                data_type,
            } => format!(
                "column `{}.{}` added ({})",
                n(table),
                n(column),
                n(data_type)
            ),
            ColumnDropped { table, column } => {
                format!("column `{}.{}` dropped", n(table), n(column))
            }
            ColumnRenamed { table, from, to } => {
                format!("column `{}.{}` renamed to `{}`", n(table), n(from), n(to))
            }
            TypeChanged {
                table,
                column,
                from,
                to,
            } => format!(
                "column `{}.{}` type changed from {} to {}",
                n(table),
                n(column),
                n(from),
                n(to)
            ),
            NullabilityChanged {
                table,
                column,
                nullable,
            } => format!(
                "column `{}.{}` is now {}",
                n(table),
                n(column),
                if *nullable { "nullable" } else { "NOT NULL" }
            ),
            DefaultChanged {
                table,
                column,
                from,
                to,
            } => format!(
                "column `{}.{}` default changed from {} to {}",
                n(table),
                n(column),
                from.as_deref().map_or("none".into(), n),
                to.as_deref().map_or("none".into(), n)
            ),
            PrimaryKeyChanged { table, from, to } => format!(
                "table `{}` primary key changed from ({}) to ({})",
                n(table),
                n(&from.join(", ")),
                n(&to.join(", "))
            ),
            ForeignKeyAdded {
                table,
                name,
                definition,
            } => format!(
                "foreign key `{}` added on `{}`: {}",
                n(name),
                n(table),
                n(definition)
            ),
            ForeignKeyDropped { table, name } => {
                format!("foreign key `{}` dropped from `{}`", n(name), n(table))
            }
            IndexAdded {
                table,
                index,
                definition,
            } => format!(
                "index `{}` added on `{}`: {}",
                n(index),
                n(table),
                n(definition)
            ),
            IndexDropped { table, index } => {
                format!("index `{}` dropped from `{}`", n(index), n(table))
            }
            IndexChanged {
                table,
                index,
                from,
                to,
            } => format!(
                "index `{}` on `{}` redefined: was {}, now {}",
                n(index),
                n(table),
                n(from),
                n(to)
            ),
            PartitionAdded { table, partition } => {
                format!("partition `{}` added to `{}`", n(partition), n(table))
            }
            PartitionDropped { table, partition } => {
                format!(
                    "partition `{}` detached or dropped from `{}`",
                    n(partition),
                    n(table)
                )
            }
            EnumAdded { enum_type, labels } => format!(
                "enum type `{}` added ({})",
                n(enum_type),
                n(&labels.join(", "))
            ),
            EnumDropped { enum_type } => format!("enum type `{}` dropped", n(enum_type)),
            EnumLabelsAdded { enum_type, labels } => format!(
                "enum type `{}` has new labels: {}",
                n(enum_type),
                n(&labels.join(", "))
            ),
            EnumLabelsRemoved { enum_type, labels } => format!(
                "enum type `{}` lost labels: {}",
                n(enum_type),
                n(&labels.join(", "))
            ),
        }
    }
}

/// The changes from `old` to `new`, tables in name order (renames where the dropped table was).
pub fn diff(old: &SchemaSnapshot, new: &SchemaSnapshot) -> Vec<SchemaChange> {
    let mut out = Vec::new();
    let mut added: Vec<&TableSchema> = new
        .tables
        .iter()
        .filter(|(name, _)| !old.tables.contains_key(*name))
        .map(|(_, t)| t)
        .collect();
    for (name, table) in &old.tables {
        if let Some(now) = new.tables.get(name) {
            diff_table(name, table, now, &mut out);
            continue;
        }
        // A dropped table whose columns reappear, unchanged and in order, under a new name.
        match added.iter().position(|a| same_columns(table, a)) {
            Some(i) => {
                let now = added.remove(i);
                let to = now.qualified();
                out.push(SchemaChange::TableRenamed {
                    from: name.clone(),
                    to: to.clone(),
                });
                diff_table(&to, table, now, &mut out);
            }
            None => out.push(SchemaChange::TableDropped {
                table: name.clone(),
            }),
        }
    }
    for table in added {
        out.push(SchemaChange::TableAdded {
            table: table.qualified(),
        });
    }
    diff_enums(old, new, &mut out);
    out
}

/// Enum types added or dropped, and labels added to or gone from a type that stayed.
fn diff_enums(old: &SchemaSnapshot, new: &SchemaSnapshot, out: &mut Vec<SchemaChange>) {
    for (name, labels) in &old.enums {
        let Some(now) = new.enums.get(name) else {
            out.push(SchemaChange::EnumDropped {
                enum_type: name.clone(),
            });
            continue;
        };
        let gone = missing_from(labels, now);
        if !gone.is_empty() {
            out.push(SchemaChange::EnumLabelsRemoved {
                enum_type: name.clone(),
                labels: gone,
            });
        }
        let added = missing_from(now, labels);
        if !added.is_empty() {
            out.push(SchemaChange::EnumLabelsAdded {
                enum_type: name.clone(),
                labels: added,
            });
        }
    }
    for (name, labels) in &new.enums {
        if !old.enums.contains_key(name) {
            out.push(SchemaChange::EnumAdded {
                enum_type: name.clone(),
                labels: labels.clone(),
            });
        }
    }
}

/// The items of `a` that `b` lacks, in `a`'s order.
fn missing_from(a: &[String], b: &[String]) -> Vec<String> {
    a.iter().filter(|x| !b.contains(x)).cloned().collect()
}

/// Leaf partitions added to or gone from a partitioned table.
fn diff_partitions(name: &str, old: &TableSchema, new: &TableSchema, out: &mut Vec<SchemaChange>) {
    for partition in missing_from(&old.partitions, &new.partitions) {
        out.push(SchemaChange::PartitionDropped {
            table: name.to_string(),
            partition,
        });
    }
    for partition in missing_from(&new.partitions, &old.partitions) {
        out.push(SchemaChange::PartitionAdded {
            table: name.to_string(),
            partition,
        });
    }
}

/// Same column names and types in the same order (positions may differ).
fn same_columns(a: &TableSchema, b: &TableSchema) -> bool {
    !a.columns.is_empty()
        && a.columns.len() == b.columns.len()
        && a.columns
            .iter()
            .zip(&b.columns)
            .all(|(x, y)| x.name == y.name && x.data_type == y.data_type)
}

/// An index definition as it would read on `new`: definitions name their table right after
/// ` ON ` (PostgreSQL `ON [ONLY] schema.table`, SQLite `ON table`), so a renamed table's
/// unchanged index is not reported as redefined.
fn as_on_renamed(definition: &str, old: &TableSchema, new: &TableSchema) -> String {
    if old.qualified() == new.qualified() {
        return definition.to_string();
    }
    let Some((head, rest)) = definition.split_once(" ON ") else {
        return definition.to_string();
    };
    let (only, rest) = rest
        .strip_prefix("ONLY ")
        .map_or(("", rest), |r| ("ONLY ", r));
    let forms = [
        (old.sql_ident(), new.sql_ident()),
        (old.qualified(), new.qualified()),
        (old.name.clone(), new.name.clone()),
    ];
    for (was, now) in forms {
        if let Some(tail) = rest.strip_prefix(was.as_str()) {
            return format!("{head} ON {only}{now}{tail}");
        }
    }
    definition.to_string()
}

fn diff_table(name: &str, old: &TableSchema, new: &TableSchema, out: &mut Vec<SchemaChange>) {
    diff_partitions(name, old, new, out);
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
        match old.indexes.get(ix) {
            None => out.push(SchemaChange::IndexAdded {
                table: table(),
                index: ix.clone(),
                definition: def.clone(),
            }),
            Some(was) if as_on_renamed(was, old, new) != *def => {
                out.push(SchemaChange::IndexChanged {
                    table: table(),
                    index: ix.clone(),
                    from: was.clone(),
                    to: def.clone(),
                });
            }
            Some(_) => {}
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
#[path = "diff_tests.rs"]
mod tests;
