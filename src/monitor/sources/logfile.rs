//! `log_keyword` rules on local files: each (rule, file) pair remembers how far it has read
//! (byte offset plus the file's device and inode), so a heartbeat reads only what was appended.
//! A new inode (rotation) or a file shorter than the offset (truncation) starts again at the
//! top. Per-evaluation match counts are kept so the value covers the rule's window.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use regex::bytes::Regex;
use sqlx::Row;

use crate::monitor::rules::LogKeywordParams;
use crate::monitor::transition::Outcome;
use crate::store::{Store, StoreError, placeholders};

/// A file seen for the first time is read from at most this far before its end.
pub const FIRST_READ_MAX_BYTES: u64 = 1024 * 1024;
/// Most bytes read from one file per evaluation (the rest waits for the next heartbeat).
pub const MAX_READ_BYTES_PER_EVAL: u64 = 16 * 1024 * 1024;
/// Most files one glob may match.
pub const MAX_GLOB_FILES: usize = 1000;
/// How deep a glob's directory walk goes below its literal prefix.
const MAX_GLOB_DEPTH: usize = 8;

/// Where a rule stopped reading a file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileOffset {
    /// `device:inode`.
    pub file_id: String,
    pub offset: u64,
}

/// Offsets and recent counts of every log rule, loaded once per heartbeat.
#[derive(Debug, Default)]
pub struct LogBook {
    offsets: HashMap<(String, String), FileOffset>,
    counts: HashMap<String, Vec<(DateTime<Utc>, u64)>>,
}

/// What one rule's evaluation read: its outcome and the bookkeeping to store.
#[derive(Debug, Clone)]
pub struct LogRead {
    pub outcome: Outcome,
    pub rule_id: String,
    pub offsets: Vec<(String, FileOffset)>,
    pub counts: Vec<(DateTime<Utc>, u64)>,
}

impl LogBook {
    /// Loads the book from the store.
    pub async fn load(store: &Store) -> Result<LogBook, StoreError> {
        let mut book = LogBook::default();
        let rows =
            sqlx::query("SELECT rule_id, path, file_id, offset_bytes FROM monitor_log_offsets")
                .fetch_all(store.pool())
                .await?;
        for r in &rows {
            let offset: i64 = r.try_get("offset_bytes")?;
            book.offsets.insert(
                (r.try_get("rule_id")?, r.try_get("path")?),
                FileOffset {
                    file_id: r.try_get("file_id")?,
                    offset: u64::try_from(offset).unwrap_or(0),
                },
            );
        }
        let rows = sqlx::query("SELECT rule_id, recent FROM monitor_log_counts")
            .fetch_all(store.pool())
            .await?;
        for r in &rows {
            let recent: String = r.try_get("recent")?;
            let recent: Vec<(String, u64)> = serde_json::from_str(&recent).unwrap_or_default();
            let recent = recent
                .into_iter()
                .filter_map(|(t, n)| {
                    DateTime::parse_from_rfc3339(&t)
                        .ok()
                        .map(|t| (t.with_timezone(&Utc), n))
                })
                .collect();
            book.counts.insert(r.try_get("rule_id")?, recent);
        }
        Ok(book)
    }
}

/// Rows per multi-row offset upsert (4 parameters each, well under both backends' limits).
const OFFSET_BATCH: usize = 1000;
/// Rows per multi-row count upsert (2 parameters each).
const COUNT_BATCH: usize = 2000;

/// Stores what `reads` advanced, on `conn` (inside the evaluation's transaction), in a few
/// multi-row statements rather than one per (rule, file).
pub async fn save(conn: &mut sqlx::AnyConnection, reads: &[LogRead]) -> Result<(), sqlx::Error> {
    let backend = placeholders::backend_of(conn);
    let offsets: Vec<(&str, &str, &FileOffset)> = reads
        .iter()
        .flat_map(|r| {
            r.offsets
                .iter()
                .map(|(path, off)| (r.rule_id.as_str(), path.as_str(), off))
        })
        .collect();
    for chunk in offsets.chunks(OFFSET_BATCH) {
        let sql = format!(
            "INSERT INTO monitor_log_offsets (rule_id, path, file_id, offset_bytes) VALUES {} \
             ON CONFLICT (rule_id, path) DO UPDATE SET file_id = excluded.file_id, offset_bytes = excluded.offset_bytes",
            placeholders::rows(backend, chunk.len(), 4)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (rule, path, off) in chunk {
            q = q
                .bind(rule.to_string())
                .bind(path.to_string())
                .bind(off.file_id.clone())
                .bind(i64::try_from(off.offset).unwrap_or(i64::MAX));
        }
        q.execute(&mut *conn).await?;
    }
    for chunk in reads.chunks(COUNT_BATCH) {
        let sql = format!(
            "INSERT INTO monitor_log_counts (rule_id, recent) VALUES {} \
             ON CONFLICT (rule_id) DO UPDATE SET recent = excluded.recent",
            placeholders::rows(backend, chunk.len(), 2)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for read in chunk {
            let counts: Vec<(String, u64)> = read
                .counts
                .iter()
                .map(|(t, n)| (crate::store::approvals::timestamp(*t), *n))
                .collect();
            q = q
                .bind(read.rule_id.clone())
                .bind(serde_json::to_string(&counts).unwrap_or_else(|_| "[]".into()));
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A read's identity: the file, where the rule stopped last (none: never read), the pattern.
type ReadKey = (PathBuf, Option<FileOffset>, String);

/// What one heartbeat already worked out, shared by all its local-file rules: compiled
/// patterns, expanded globs, and the match count of each (file, starting point, pattern). Rules
/// watching the same file with the same pattern from the same offset (the usual case: they
/// have been evaluated together since they were added) cost one read between them.
#[derive(Default)]
pub struct ReadMemo {
    matchers: HashMap<String, Result<Regex, String>>,
    globs: HashMap<String, Result<Vec<PathBuf>, String>>,
    reads: HashMap<ReadKey, Result<(u64, FileOffset), String>>,
}

/// Evaluates local-file rules `(index, rule id, params)` in one pass (blocking I/O: run it on
/// a blocking thread), each file read once per distinct starting point and pattern.
pub fn evaluate_all(
    root: &Path,
    rules: &[(usize, String, LogKeywordParams)],
    book: &LogBook,
    now: DateTime<Utc>,
) -> Vec<(usize, LogRead)> {
    let mut memo = ReadMemo::default();
    rules
        .iter()
        .map(|(i, id, p)| (*i, evaluate(root, id, p, book, now, &mut memo)))
        .collect()
}

/// Evaluates one local-file rule (blocking I/O), reusing and filling `memo`.
pub fn evaluate(
    root: &Path,
    rule_id: &str,
    p: &LogKeywordParams,
    book: &LogBook,
    now: DateTime<Utc>,
    memo: &mut ReadMemo,
) -> LogRead {
    let mut read = LogRead {
        outcome: Outcome::NoData,
        rule_id: rule_id.to_string(),
        offsets: Vec::new(),
        counts: Vec::new(),
    };
    let pattern = p.path.as_deref().unwrap_or_default();
    let source = match (&p.keyword, &p.pattern) {
        (Some(k), _) => regex::escape(k),
        (None, Some(pat)) => pat.clone(),
        (None, None) => "$^".to_string(),
    };
    let matcher = memo
        .matchers
        .entry(source.clone())
        .or_insert_with(|| Regex::new(&source).map_err(|e| format!("pattern: {e}")))
        .clone();
    let matcher = match matcher {
        Ok(m) => m,
        Err(e) => {
            read.outcome = Outcome::Error(e);
            return read;
        }
    };
    let files = memo
        .globs
        .entry(pattern.to_string())
        .or_insert_with(|| expand(root, pattern))
        .clone();
    let files = match files {
        Ok(f) => f,
        Err(e) => {
            read.outcome = Outcome::Error(e);
            return read;
        }
    };
    let mut fresh = 0u64;
    for file in &files {
        let key = file.display().to_string();
        let prev = book.offsets.get(&(rule_id.to_string(), key.clone()));
        let got = memo
            .reads
            .entry((file.clone(), prev.cloned(), source.clone()))
            .or_insert_with(|| read_new(file, prev, &matcher).map_err(|e| e.to_string()))
            .clone();
        match got {
            Ok((n, off)) => {
                fresh += n;
                read.offsets.push((key, off));
            }
            Err(e) => {
                read.outcome = Outcome::Error(format!("{}: {e}", file.display()));
                return read;
            }
        }
    }
    let window = Duration::minutes(i64::from(p.window_minutes));
    let mut counts: Vec<(DateTime<Utc>, u64)> = book
        .counts
        .get(rule_id)
        .map(|c| {
            c.iter()
                .filter(|(t, _)| now - *t < window)
                .copied()
                .collect()
        })
        .unwrap_or_default();
    counts.push((now, fresh));
    read.outcome = if files.is_empty() {
        Outcome::NoData
    } else {
        Outcome::Value(counts.iter().map(|(_, n)| *n as f64).sum())
    };
    read.counts = counts;
    read
}

/// The files `pattern` (relative to `root`, or absolute) names.
fn expand(root: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        root.join(pattern)
    };
    let is_glob = |s: &str| s.contains(['*', '?', '[', '{']);
    let text = full.display().to_string();
    if !is_glob(&text) {
        return Ok(if full.is_file() { vec![full] } else { vec![] });
    }
    let mut base = PathBuf::new();
    for c in full.components() {
        if is_glob(&c.as_os_str().to_string_lossy()) {
            break;
        }
        base.push(c);
    }
    let matcher = globset::GlobBuilder::new(&text)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("path glob: {e}"))?
        .compile_matcher();
    let mut out = Vec::new();
    let mut stack = vec![(base, 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() && depth < MAX_GLOB_DEPTH {
                stack.push((path, depth + 1));
            } else if ft.is_file() && matcher.is_match(&path) {
                out.push(path);
                if out.len() > MAX_GLOB_FILES {
                    return Err(format!(
                        "the glob `{pattern}` matches more than {MAX_GLOB_FILES} files; narrow it"
                    ));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Counts matching lines appended to `file` since `prev`; returns the count and new offset.
fn read_new(
    file: &Path,
    prev: Option<&FileOffset>,
    matcher: &Regex,
) -> std::io::Result<(u64, FileOffset)> {
    let mut f = std::fs::File::open(file)?;
    let meta = f.metadata()?;
    let file_id = format!("{}:{}", meta.dev(), meta.ino());
    let len = meta.len();
    let (start, skip_partial) = match prev {
        Some(p) if p.file_id == file_id && p.offset <= len => (p.offset, false),
        // Rotated (new inode) or truncated: the file is new to us; read it from the top.
        Some(_) => (0, false),
        None => {
            let s = len.saturating_sub(FIRST_READ_MAX_BYTES);
            (s, s > 0)
        }
    };
    let want = (len - start).min(MAX_READ_BYTES_PER_EVAL);
    let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
    f.seek(SeekFrom::Start(start))?;
    f.take(want).read_to_end(&mut buf)?;
    // Only whole lines count; a partial last line waits for its newline, unless a single line
    // fills the whole read.
    let mut end = match buf.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        None if want == MAX_READ_BYTES_PER_EVAL => buf.len(),
        None => 0,
    };
    let mut begin = 0;
    if skip_partial {
        begin = buf[..end]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(end, |i| i + 1);
    }
    end = end.max(begin);
    let count = buf[begin..end]
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty() && matcher.is_match(line))
        .count() as u64;
    Ok((
        count,
        FileOffset {
            file_id,
            offset: start + end as u64,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn params(path: &str, keyword: &str) -> LogKeywordParams {
        LogKeywordParams {
            log_group: None,
            path: Some(path.into()),
            keyword: Some(keyword.into()),
            pattern: None,
            window_minutes: 5,
        }
    }

    /// Runs one evaluation and folds its bookkeeping into `book`.
    fn eval(dir: &Path, p: &LogKeywordParams, book: &mut LogBook, now: DateTime<Utc>) -> Outcome {
        let r = evaluate(dir, "r", p, book, now, &mut ReadMemo::default());
        for (path, off) in r.offsets {
            book.offsets.insert(("r".into(), path), off);
        }
        book.counts.insert("r".into(), r.counts);
        r.outcome
    }

    #[test]
    fn reads_incrementally_and_survives_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        std::fs::write(&log, "ERROR a\nok\nERROR b\nERROR partial").unwrap();
        let p = params("app.log", "ERROR");
        let mut book = LogBook::default();
        let t0 = Utc::now();
        assert_eq!(eval(dir.path(), &p, &mut book, t0), Outcome::Value(2.0));
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        writeln!(f, " line\nERROR c").unwrap();
        // Two new whole lines match (the completed partial one and c); the window (5 min)
        // still holds the first two.
        let t1 = t0 + Duration::minutes(1);
        assert_eq!(eval(dir.path(), &p, &mut book, t1), Outcome::Value(4.0));
        // Outside the window only the new matches count.
        let t2 = t0 + Duration::minutes(10);
        assert_eq!(eval(dir.path(), &p, &mut book, t2), Outcome::Value(0.0));
        // Truncated: read from the top again.
        std::fs::write(&log, "ERROR x\n").unwrap();
        let t3 = t2 + Duration::minutes(10);
        assert_eq!(eval(dir.path(), &p, &mut book, t3), Outcome::Value(1.0));
        // Rotated: a new file with the same name, longer than the old offset.
        std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        std::fs::write(&log, "ERROR 1\nERROR 2\nERROR 3\n").unwrap();
        let t4 = t3 + Duration::minutes(10);
        assert_eq!(eval(dir.path(), &p, &mut book, t4), Outcome::Value(3.0));
    }

    #[test]
    fn globs_sum_their_files_and_missing_files_are_no_data() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        std::fs::write(dir.path().join("logs/a.log"), "panic!\n").unwrap();
        std::fs::write(dir.path().join("logs/b.log"), "panic!\npanic!\n").unwrap();
        std::fs::write(dir.path().join("logs/c.txt"), "panic!\n").unwrap();
        let mut book = LogBook::default();
        let p = params("logs/*.log", "panic");
        assert_eq!(
            eval(dir.path(), &p, &mut book, Utc::now()),
            Outcome::Value(3.0)
        );
        let p = params("nothing/*.log", "panic");
        assert_eq!(eval(dir.path(), &p, &mut book, Utc::now()), Outcome::NoData);
    }

    #[test]
    fn limits_bound_reads_and_globs() {
        let dir = tempfile::tempdir().unwrap();
        // A first read starts FIRST_READ_MAX_BYTES before the end, at a line boundary.
        let big = dir.path().join("big.log");
        let line = "ERROR filler line of fifty bytes..................\n";
        let lines = (FIRST_READ_MAX_BYTES as usize / line.len()) * 2;
        std::fs::write(&big, line.repeat(lines)).unwrap();
        let mut book = LogBook::default();
        let Outcome::Value(n) = eval(
            dir.path(),
            &params("big.log", "ERROR"),
            &mut book,
            Utc::now(),
        ) else {
            panic!("expected a value")
        };
        assert!(n < lines as f64 * 0.6 && n > lines as f64 * 0.4, "{n}");
        for i in 0..=MAX_GLOB_FILES {
            std::fs::write(dir.path().join(format!("f{i}.log")), "").unwrap();
        }
        let e = expand(dir.path(), "f*.log").unwrap_err();
        assert!(e.contains("narrow it"), "{e}");
    }

    #[test]
    fn one_evaluation_reads_at_most_the_per_evaluation_limit() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("huge.log");
        let line = "x".repeat(1023) + "\n";
        let lines = MAX_READ_BYTES_PER_EVAL as usize / line.len() + 10;
        std::fs::write(&log, line.repeat(lines)).unwrap();
        let matcher = Regex::new("x").unwrap();
        let start = FileOffset {
            file_id: {
                let m = std::fs::metadata(&log).unwrap();
                format!("{}:{}", m.dev(), m.ino())
            },
            offset: 0,
        };
        let (n, off) = read_new(&log, Some(&start), &matcher).unwrap();
        assert_eq!(off.offset, MAX_READ_BYTES_PER_EVAL);
        assert_eq!(n as usize, MAX_READ_BYTES_PER_EVAL as usize / line.len());
        let (rest, _) = read_new(&log, Some(&off), &matcher).unwrap();
        assert_eq!((n + rest) as usize, lines);
    }
}
