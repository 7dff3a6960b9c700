//! The schema diff on hand-made snapshots: renames, retypes, partitions and enum labels.

use super::*;

fn col(name: &str, ty: &str, pos: i64) -> ColumnSchema {
    ColumnSchema {
        name: name.into(),
        data_type: ty.into(),
        nullable: true,
        default: None,
        position: pos,
        base_type: None,
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

#[test]
fn partitions_and_enum_labels_are_diffed() {
    let mut old = snap(vec![col("a", "int", 1)]);
    if let Some(t) = old.tables.get_mut("t") {
        t.partitions = vec!["public.t_2024".into(), "public.t_2025".into()];
    }
    old.enums
        .insert("public.mood".into(), vec!["sad".into(), "happy".into()]);
    old.enums.insert("public.gone".into(), vec!["x".into()]);
    let mut new = old.clone();
    if let Some(t) = new.tables.get_mut("t") {
        t.partitions = vec!["public.t_2025".into(), "public.t_2026".into()];
    }
    new.enums.remove("public.gone");
    new.enums.insert(
        "public.mood".into(),
        vec!["sad".into(), "meh".into(), "happy".into()],
    );
    new.enums.insert("public.size".into(), vec!["s".into()]);
    let changes = diff(&old, &new);
    assert_eq!(
        changes,
        vec![
            SchemaChange::PartitionDropped {
                table: "t".into(),
                partition: "public.t_2024".into()
            },
            SchemaChange::PartitionAdded {
                table: "t".into(),
                partition: "public.t_2026".into()
            },
            SchemaChange::EnumDropped {
                enum_type: "public.gone".into()
            },
            SchemaChange::EnumLabelsAdded {
                enum_type: "public.mood".into(),
                labels: vec!["meh".into()]
            },
            SchemaChange::EnumAdded {
                enum_type: "public.size".into(),
                labels: vec!["s".into()]
            },
        ]
    );
    assert!(changes[3].describe().contains("new labels: meh"));
    assert_eq!(changes[0].severity(), Severity::Warning);
}

#[test]
fn older_snapshots_without_the_new_fields_still_read() {
    let json = r#"{"tables": {"t": {"schema": null, "name": "t", "columns": [{"name": "a",
        "data_type": "int", "nullable": true, "default": null, "position": 1}],
        "primary_key": [], "foreign_keys": {}, "indexes": {}}}}"#;
    let snap: SchemaSnapshot = serde_json::from_str(json).unwrap_or_default();
    assert_eq!(snap.tables.len(), 1);
    assert!(snap.enums.is_empty());
    assert!(diff(&snap, &snap).is_empty());
}
