//! What a statement calls and which words it uses, read from its tokens rather than its syntax
//! tree: a token scan cannot miss a call hidden in a corner of the tree the walker forgot, so it
//! is the fail-closed half of the SQL judge. Holds the deny-lists of side-effecting functions.

use sqlparser::tokenizer::{Token, Word};

use super::SqlDialect;

/// PostgreSQL functions that act outside the query (signals, files, large objects, locks,
/// sequences, settings, replication, other databases) or run SQL given as text.
const PG_DENIED: &[&str] = &[
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_signal_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_log_backend_memory_contexts",
    "pg_logical_emit_message",
    "pg_import_system_collations",
    "pg_notify",
    "nextval",
    "setval",
    "lastval",
    "set_config",
    "txid_current",
    "pg_current_xact_id",
    "ts_stat",
    "ts_rewrite",
    "loread",
    "lowrite",
    "pg_truncate_visibility_map",
    "pg_log_standby_snapshot",
    "pg_replication_slot_advance",
    "pg_sync_replication_slots",
    "brin_summarize_new_values",
    "brin_summarize_range",
    "brin_desummarize_range",
    "gin_clean_pending_list",
    "pg_prewarm",
];

/// Prefixes of PostgreSQL function families denied as a whole.
const PG_DENIED_PREFIXES: &[&str] = &[
    "lo_",
    "be_lo_",
    "pg_advisory",
    "pg_try_advisory",
    "dblink",
    // `query_to_xml*`, `cursor_to_xml*`, `table_to_xml*`, `schema_to_xml*` and
    // `database_to_xml*` run SQL (given as text, or built from a name) inside the server.
    "query_to_xml",
    "cursor_to_xml",
    "table_to_xml",
    "schema_to_xml",
    "database_to_xml",
    "pg_read_",
    "pg_ls_",
    "pg_stat_file",
    "pg_file_",
    "pg_stat_reset",
    "pg_replication_origin_",
    "pg_create_logical_replication_slot",
    "pg_create_physical_replication_slot",
    "pg_drop_replication_slot",
    "pg_logical_slot_",
    "pg_copy_",
    "pg_wal_replay_",
    "pg_stat_statements_reset",
];

/// SQLite functions that load code or touch files.
const SQLITE_DENIED: &[&str] = &[
    "load_extension",
    "writefile",
    "readfile",
    "edit",
    "fts3_tokenizer",
    "zipfile",
    "sqlar_compress",
    "sqlar_uncompress",
    "lsdir",
    "eval",
];

/// Why `name` may not be called, or `None` when the deny-lists do not name it.
pub fn denied_function(name: &str, dialect: SqlDialect) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    match dialect {
        SqlDialect::Postgres => {
            if PG_DENIED.contains(&lower.as_str())
                || PG_DENIED_PREFIXES.iter().any(|p| lower.starts_with(p))
            {
                Some(
                    "it has effects outside the query (signals, files, locks, sequences, \
                     settings or SQL given as text)",
                )
            } else {
                None
            }
        }
        SqlDialect::Sqlite => SQLITE_DENIED
            .contains(&lower.as_str())
            .then_some("it loads code or reads or writes files"),
    }
}

/// Words that never appear, unquoted, in a read statement this judge lets through; one of them
/// in a read means the syntax tree hid a write (or the parser and the server disagree).
const WRITE_WORDS: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "INTO", "COPY", "ATTACH", "DETACH",
    "VACUUM", "GRANT", "REVOKE", "ALTER", "DROP", "CREATE", "CALL", "NOTIFY", "LISTEN", "UNLISTEN",
    "REINDEX", "CLUSTER", "REFRESH", "SHARE", "UPSERT", "REPLACE",
];

/// The tokens of a statement that matter, whitespace and comments left out.
pub fn significant(tokens: Vec<Token>) -> Vec<Token> {
    tokens
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_) | Token::EOF))
        .collect()
}

/// Names followed by `(`: every function call (and some harmless keywords like `IN (`).
/// A qualified call `s.f(` yields `f`.
pub fn called_names(tokens: &[Token]) -> Vec<String> {
    let mut names: Vec<String> = tokens
        .windows(2)
        .filter_map(|pair| match pair {
            [Token::Word(w), Token::LParen] => Some(w.value.clone()),
            _ => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The first unquoted write word in `tokens`, if any (`REPLACE` only when it is not a call).
pub fn write_word(tokens: &[Token]) -> Option<String> {
    tokens.iter().enumerate().find_map(|(i, t)| {
        let Token::Word(Word {
            value,
            quote_style: None,
            ..
        }) = t
        else {
            return None;
        };
        let upper = value.to_ascii_uppercase();
        if !WRITE_WORDS.contains(&upper.as_str()) {
            return None;
        }
        if upper == "REPLACE" && matches!(tokens.get(i + 1), Some(Token::LParen)) {
            return None;
        }
        Some(upper)
    })
}
