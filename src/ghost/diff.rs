//! Schema diff: what changed between two snapshots. Tables and columns added or dropped; a
//! column counts as renamed when one dropped and one added column of the same table share type
//! and position, a table when a dropped and an added table have the same columns (names and
//! types, in order); type, nullability and default changes; keys and indexes added, dropped or
//! (indexes) redefined under the same name.

use serde::{Deserialize, Serialize};

use super::markdown::inline;
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
            | ForeignKeyDropped { .. } => Severity::Warning,
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
    out
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
    fn a_table_is_renamed_when_its_columns_reappear_in_order() {
        let old = snap(vec![col("a", "int", 1), col("b", "text", 2)]);
        let mut t = old.tables["t"].clone();
        t.schema = Some("public".into());
        t.indexes.insert(
            "t_a".into(),
            "CREATE INDEX t_a ON public.t USING btree (a)".into(),
        );
        let mut old = SchemaSnapshot::default();
        old.tables.insert("public.t".into(), t.clone());
        let mut new = SchemaSnapshot::default();
        let mut u = t.clone();
        u.name = "u".into();
        u.indexes.insert(
            "t_a".into(),
            "CREATE INDEX t_a ON public.u USING btree (a)".into(),
        );
        new.tables.insert("public.u".into(), u.clone());
        assert_eq!(
            diff(&old, &new),
            vec![SchemaChange::TableRenamed {
                from: "public.t".into(),
                to: "public.u".into()
            }]
        );
        // Other columns, or the same ones in another order: a drop and an add.
        u.columns.reverse();
        new.tables.insert("public.u".into(), u);
        let changes = diff(&old, &new);
        assert!(changes.contains(&SchemaChange::TableDropped {
            table: "public.t".into()
        }));
        assert!(changes.contains(&SchemaChange::TableAdded {
            table: "public.u".into()
        }));
    }

    #[test]
    fn an_index_redefined_under_its_name_is_a_change() {
        let mut old = snap(vec![col("a", "int", 1), col("b", "int", 2)]);
        let mut new = old.clone();
        let set = |s: &mut SchemaSnapshot, def: &str| {
            if let Some(t) = s.tables.get_mut("t") {
                t.indexes.insert("ix".into(), def.into());
            }
        };
        set(&mut old, "INDEX ix ON t (a)");
        set(&mut new, "INDEX ix ON t (a, b)");
        let changes = diff(&old, &new);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].severity(), Severity::Warning);
        assert!(
            changes[0]
                .describe()
                .contains("was INDEX ix ON t (a), now INDEX ix ON t (a, b)")
        );
    }

    #[test]
    fn identical_snapshots_have_no_changes() {
        let s = snap(vec![col("a", "int", 1)]);
        assert!(diff(&s, &s).is_empty());
    }
}
