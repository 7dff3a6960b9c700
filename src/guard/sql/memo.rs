//! The judge's answers remembered per (dialect, writes allowed, statement text): a client
//! that asks the same question again (a dashboard, a monitor, an agent polling) is judged
//! once instead of tokenizing, parsing and walking the statement on every call. The judge is
//! a pure function of exactly that key, so a remembered answer is the answer it would give.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{SqlDialect, SqlJudgement, judge_sql};

/// Statements remembered; when full, the memory starts over (a simple, bounded cache: the
/// statements a session repeats are few).
pub const MAX_REMEMBERED: usize = 256;
/// Longest statement remembered (longer ones are judged every time, and are rarely repeated).
pub const MAX_REMEMBERED_BYTES: usize = 4096;

type Key = (SqlDialect, bool, String);

static MEMO: Mutex<Option<HashMap<Key, SqlJudgement>>> = Mutex::new(None);

/// [`judge_sql`], remembered.
pub fn judge_sql_memo(sql: &str, dialect: SqlDialect, allow_writes: bool) -> SqlJudgement {
    if sql.len() > MAX_REMEMBERED_BYTES {
        return judge_sql(sql, dialect, allow_writes);
    }
    let key = (dialect, allow_writes, sql.to_string());
    if let Some(j) = lock().as_ref().and_then(|m| m.get(&key)) {
        return j.clone();
    }
    let judgement = judge_sql(sql, dialect, allow_writes);
    let mut memo = lock();
    let map = memo.get_or_insert_with(HashMap::new);
    if map.len() >= MAX_REMEMBERED {
        map.clear();
    }
    map.insert(key, judgement.clone());
    judgement
}

fn lock() -> std::sync::MutexGuard<'static, Option<HashMap<Key, SqlJudgement>>> {
    MEMO.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::Decision;

    #[test]
    fn remembered_answers_are_the_judges_answers() {
        for (sql, writes) in [
            ("SELECT 1", false),
            ("DELETE FROM t", false),
            ("DELETE FROM t", true),
            ("SELECT nextval('s')", false),
            ("not sql at all", false),
        ] {
            for _ in 0..2 {
                let fresh = judge_sql(sql, SqlDialect::Postgres, writes);
                let memo = judge_sql_memo(sql, SqlDialect::Postgres, writes);
                assert_eq!(fresh.verdict.decision, memo.verdict.decision, "{sql}");
                assert_eq!(fresh.called, memo.called, "{sql}");
                assert_eq!(fresh.writes, memo.writes, "{sql}");
            }
        }
        // The key holds the write permission: a write allowed in one place is not in another.
        assert_eq!(
            judge_sql_memo("DELETE FROM t", SqlDialect::Sqlite, true)
                .verdict
                .decision,
            Decision::Allow
        );
        assert_eq!(
            judge_sql_memo("DELETE FROM t", SqlDialect::Sqlite, false)
                .verdict
                .decision,
            Decision::Deny
        );
    }
}
