//! The audit journal: what makes the batched audit log crash-safe. The audit writer commits
//! entries to the store in batches (one transaction per burst, within milliseconds), so a tool
//! call's answer does not wait for a database commit; before the entry is queued for that
//! batch it is appended here, a line per entry (the lines of calls answered together in one
//! `write(2)`: [`Journal::stage`]), and only then does the call answer.
//! A crash, a kill or an OOM of the server after the answer leaves the line in the file (the
//! kernel holds it, as SQLite's WAL at `synchronous=NORMAL` holds the store's own commits), and
//! the next pi-mcp to open the same store replays it ([`replay`]). Rows carry the line's key
//! (`<process>:<seq>`) under a unique index, so a replay inserts each row once however often
//! it runs or whatever the dead process had already committed.
//!
//! One directory per store (`<state dir>/audit-journal/<hash of the store's URL>`), one file
//! per process, held under an exclusive `flock` for the process's life: a live process's file
//! is never replayed by another, a dead one's is. Committed lines are dropped by truncating
//! the file once the writer has caught up, or by starting a new segment when it never does.
//! Written by hand: it is an append, a lock and a truncate; no crate offers this small a log.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A segment is replaced by a new one at this size when the writer never catches up.
const ROTATE_AT: u64 = 1 << 20;
/// Journal files end in this; a segment being created ends in `.tmp` until it is locked.
const SUFFIX: &str = "jsonl";

/// One audit row as the store receives it: JSON columns already serialised.
#[derive(Debug)]
pub struct AuditRow {
    pub ts: String,
    pub tool: String,
    pub arguments: String,
    pub decision: String,
    pub risk: i64,
    pub reasons: String,
    pub duration_ms: i64,
    pub outcome: String,
    pub client: String,
    pub redactions: i64,
    /// `<process>:<seq>` when the row is in the journal.
    pub key: Option<String>,
}

/// A journal line, as written and as read back (the strings borrowed where they can be).
#[derive(Serialize, Deserialize)]
struct Line<'a> {
    seq: u64,
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow)]
    tool: Cow<'a, str>,
    #[serde(borrow)]
    arguments: &'a RawValue,
    #[serde(borrow)]
    decision: Cow<'a, str>,
    risk: i64,
    #[serde(borrow)]
    reasons: &'a RawValue,
    duration_ms: i64,
    #[serde(borrow)]
    outcome: Cow<'a, str>,
    #[serde(borrow)]
    client: Cow<'a, str>,
    redactions: i64,
}

/// This process's journal.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    /// Random name of this process's files and keys.
    process: String,
    state: Mutex<State>,
    /// A write failed: entries are no longer journaled (read on every call, without the lock).
    broken: AtomicBool,
}

#[derive(Debug)]
struct State {
    file: Flock<File>,
    segment: u32,
    bytes: u64,
    /// The last sequence number given to a row.
    numbered: u64,
    /// The last sequence number written to the file (the staged rows come after it).
    written: u64,
    /// Lines numbered but not yet written, and their rows, in order ([`Journal::stage`]).
    staged: Vec<u8>,
    staged_rows: Vec<(AuditRow, u64)>,
    /// Earlier segments still holding lines not yet committed: path, file (keeping the lock),
    /// last sequence number in it.
    retired: Vec<(PathBuf, Flock<File>, u64)>,
    /// The first sequence number whose commit failed: its line and every later one stay in
    /// the journal for the next start to replay.
    kept_from: Option<u64>,
}

/// The journal directory for the store at `url`, under `state_dir`.
pub fn dir_for(state_dir: &Path, url: &str) -> PathBuf {
    use sha2::Digest as _;
    let hash = hex::encode(sha2::Sha256::digest(url.as_bytes()));
    state_dir.join("audit-journal").join(&hash[..16])
}

fn segment_path(dir: &Path, process: &str, segment: u32, ext: &str) -> PathBuf {
    dir.join(format!("{process}.{segment}.{ext}"))
}

/// Creates, locks and names a new segment file (locked before it has its final name, so no
/// other process ever sees it unlocked).
fn create_segment(dir: &Path, process: &str, segment: u32) -> std::io::Result<Flock<File>> {
    let tmp = segment_path(dir, process, segment, "tmp");
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let file = Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|(_, e)| std::io::Error::from(e))?;
    std::fs::rename(&tmp, segment_path(dir, process, segment, SUFFIX))?;
    Ok(file)
}

impl Journal {
    /// Opens a new journal for this process in `dir` (created private to this user).
    pub fn open(dir: &Path) -> std::io::Result<Journal> {
        super::create_private_dir(dir)?;
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
        let process = format!("{}-{}", std::process::id(), hex::encode(bytes));
        let file = create_segment(dir, &process, 0)?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            process,
            state: Mutex::new(State {
                file,
                segment: 0,
                bytes: 0,
                numbered: 0,
                written: 0,
                staged: Vec::new(),
                staged_rows: Vec::new(),
                retired: Vec::new(),
                kept_from: None,
            }),
            broken: AtomicBool::new(false),
        })
    }

    /// Appends `row` (after any staged rows), sets its key and, still in order, hands it to
    /// `queue` with its sequence number: the writer sees rows in sequence order. Returns false
    /// when the row could not be journaled (it is queued all the same, without a key or number).
    /// The tests' shorthand for a [`stage`](Self::stage) written at once, as
    /// `AuditLog::record` does.
    #[cfg(test)]
    pub fn append(&self, row: AuditRow, mut queue: impl FnMut(AuditRow, Option<u64>)) -> bool {
        self.stage(row, &mut queue).is_some() && self.write_staged(queue)
    }

    /// Numbers `row` and keeps its line for the next [`write_staged`](Self::write_staged),
    /// which writes every staged line in one `write` and only then queues their rows: calls
    /// answered together cost one `write` (issue 14). The row is not crash-safe until then.
    /// Returns its number; `None` when it cannot be journaled (then it is queued at once,
    /// without a key or number).
    pub fn stage(
        &self,
        mut row: AuditRow,
        queue: impl FnOnce(AuditRow, Option<u64>),
    ) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.broken.load(Ordering::Relaxed) {
            queue(row, None);
            return None;
        }
        let seq = state.numbered + 1;
        if let Err(e) = line(seq, &row, &mut state.staged) {
            tracing::error!("audit journal: cannot encode an entry ({e}); not journaled");
            queue(row, None);
            return None;
        }
        state.numbered = seq;
        row.key = Some(self.key(seq));
        state.staged_rows.push((row, seq));
        Some(seq)
    }

    /// Whether the row numbered `seq` is written (or can no longer be).
    pub fn is_written(&self, seq: u64) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.written >= seq || self.broken.load(Ordering::Relaxed)
    }

    /// Writes the staged lines in one `write` and queues their rows in order. On failure the
    /// journal stops journaling and the rows are queued without numbers (the caller's answers
    /// then wait for their commit). Returns false when something could not be written.
    pub fn write_staged(&self, mut queue: impl FnMut(AuditRow, Option<u64>)) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.staged_rows.is_empty() {
            return self.working();
        }
        let rows = std::mem::take(&mut state.staged_rows);
        let written = (&*state.file).write_all(&state.staged);
        let bytes = state.staged.len() as u64;
        state.staged.clear();
        match written {
            Ok(()) => {
                state.bytes += bytes;
                state.written = state.numbered;
                for (row, seq) in rows {
                    queue(row, Some(seq));
                }
                true
            }
            Err(e) => {
                tracing::error!(
                    "audit journal in {}: {e}; answers now wait for their audit commit",
                    self.dir.display()
                );
                self.broken.store(true, Ordering::Relaxed);
                // The lines written whole before the failure may be replayed by the next
                // start: the rows keep their keys, so the store takes each of them once.
                for (row, _) in rows {
                    queue(row, None);
                }
                false
            }
        }
    }

    /// Whether entries are being journaled (false after a write failed).
    pub fn working(&self) -> bool {
        !self.broken.load(Ordering::Relaxed)
    }

    fn key(&self, seq: u64) -> String {
        format!("{}:{seq}", self.process)
    }

    /// Every row up to `seq` is committed (or, `ok` false, the batch ending there failed and
    /// its rows stay for the next start): drops the lines no longer needed.
    pub fn committed(&self, first: u64, seq: u64, ok: bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !ok {
            state.kept_from.get_or_insert(first);
        }
        let done = match state.kept_from {
            Some(k) => seq.min(k.saturating_sub(1)),
            None => seq,
        };
        state.retired.retain(|(path, _, last)| {
            let keep = *last > done;
            if !keep {
                let _ = std::fs::remove_file(path);
            }
            keep
        });
        if done == state.written && state.bytes > 0 {
            match state.file.set_len(0) {
                Ok(()) => state.bytes = 0,
                Err(e) => tracing::warn!("audit journal: cannot truncate: {e}"),
            }
        } else if state.bytes >= ROTATE_AT {
            let segment = state.segment + 1;
            match create_segment(&self.dir, &self.process, segment) {
                Ok(file) => {
                    let old = std::mem::replace(&mut state.file, file);
                    let path = segment_path(&self.dir, &self.process, state.segment, SUFFIX);
                    let last = state.written;
                    state.retired.push((path, old, last));
                    state.segment = segment;
                    state.bytes = 0;
                }
                Err(e) => tracing::warn!("audit journal: cannot start a new segment: {e}"),
            }
        }
    }
}

/// Appends `row`'s journal line, numbered `seq`, to `out` (nothing on failure).
fn line(seq: u64, row: &AuditRow, out: &mut Vec<u8>) -> serde_json::Result<()> {
    fn raw(s: &str) -> serde_json::Result<&RawValue> {
        serde_json::from_str(s)
    }
    let start = out.len();
    let written = serde_json::to_writer(
        &mut *out,
        &Line {
            seq,
            ts: Cow::Borrowed(&row.ts),
            tool: Cow::Borrowed(&row.tool),
            arguments: raw(&row.arguments)?,
            decision: Cow::Borrowed(&row.decision),
            risk: row.risk,
            reasons: raw(&row.reasons)?,
            duration_ms: row.duration_ms,
            outcome: Cow::Borrowed(&row.outcome),
            client: Cow::Borrowed(&row.client),
            redactions: row.redactions,
        },
    );
    match written {
        Ok(()) => {
            out.push(b'\n');
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// The rows of a stopped process's journal file named `process`: every whole line (a line the
/// crash cut short is skipped and counted).
fn rows_of(process: &str, text: &str) -> (Vec<AuditRow>, usize) {
    let mut rows = Vec::new();
    let mut torn = 0;
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Line>(l) {
            Ok(r) => rows.push(AuditRow {
                ts: r.ts.into_owned(),
                tool: r.tool.into_owned(),
                arguments: r.arguments.get().to_string(),
                decision: r.decision.into_owned(),
                risk: r.risk,
                reasons: r.reasons.get().to_string(),
                duration_ms: r.duration_ms,
                outcome: r.outcome.into_owned(),
                client: r.client.into_owned(),
                redactions: r.redactions,
                key: Some(format!("{process}:{}", r.seq)),
            }),
            Err(_) => torn += 1,
        }
    }
    (rows, torn)
}

/// Stores what processes that stopped left in `dir`'s journal files, then removes the files.
/// A file still locked belongs to a running process and is left alone; a file whose rows
/// cannot be stored now is kept for the next start. Returns how many rows were inserted.
pub async fn replay(store: &super::Store, dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut inserted = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Some((process, ext)) = name.to_str().and_then(|n| {
            let (stem, ext) = n.rsplit_once('.')?;
            Some((stem.rsplit_once('.')?.0.to_string(), ext.to_string()))
        }) else {
            continue;
        };
        if ext != SUFFIX && ext != "tmp" {
            continue;
        }
        let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else {
            continue;
        };
        let Ok(file) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            continue; // a running process's journal
        };
        let text = match std::io::read_to_string(&*file) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("audit journal {}: cannot read: {e}", path.display());
                continue;
            }
        };
        let (rows, torn) = rows_of(&process, &text);
        if torn > 0 {
            tracing::warn!(
                "audit journal {}: {torn} line(s) cut short by a crash were skipped",
                path.display()
            );
        }
        let n = rows.len();
        let mut stored = true;
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<AuditRow> = rows.by_ref().take(super::audit::BATCH).collect();
            match super::audit::insert_rows(store, chunk).await {
                Ok(added) => inserted += added,
                Err(e) => {
                    tracing::error!(
                        "audit journal {}: cannot store its {n} entries yet ({e}); kept for \
                         the next start",
                        path.display()
                    );
                    stored = false;
                    break;
                }
            }
        }
        if stored {
            let _ = std::fs::remove_file(&path);
        }
    }
    if inserted > 0 {
        tracing::warn!(
            "audit journal: stored {inserted} audit entries a stopped pi-mcp had answered but \
             not committed"
        );
    }
    inserted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tool: &str) -> AuditRow {
        AuditRow {
            ts: "2026-12-07T00:00:00Z".into(),
            tool: tool.into(),
            arguments: r#"{"path":"a\nb"}"#.into(),
            decision: "allow".into(),
            risk: 0,
            reasons: "[]".into(),
            duration_ms: 1,
            outcome: "ok \"quoted\"\n".into(),
            client: "c".into(),
            redactions: 0,
            key: None,
        }
    }

    #[test]
    fn lines_read_back_as_written_and_a_torn_line_is_skipped() {
        let r = row("read");
        let mut out = Vec::new();
        line(7, &r, &mut out).unwrap();
        let mut text = String::from_utf8(out).unwrap();
        text.push_str(r#"{"seq":8,"ts":"2026"#);
        let (rows, torn) = rows_of("p", &text);
        assert_eq!(torn, 1);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].key.as_deref(), Some("p:7"));
        assert_eq!(rows[0].arguments, r.arguments);
        assert_eq!(rows[0].tool, "read");
        assert_eq!(rows[0].outcome, r.outcome, "escaped text reads back");
    }

    #[test]
    fn staged_rows_are_written_together_and_only_then_queued() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let file = segment_path(dir.path(), &j.process, 0, SUFFIX);
        let mut queued = Vec::new();
        let staged: Vec<_> = ["read", "sql"]
            .into_iter()
            .map(|t| j.stage(row(t), |_, _| panic!("queued before it was written")))
            .collect();
        assert_eq!(staged, vec![Some(1), Some(2)]);
        assert!(!j.is_written(1) && !j.is_written(2));
        assert_eq!(
            std::fs::metadata(&file).unwrap().len(),
            0,
            "nothing written yet"
        );
        // A row appended now is written after the staged ones, all in order.
        assert!(j.append(row("edit"), |r, s| queued.push((r.tool, s))));
        assert!(j.is_written(2) && j.is_written(3));
        assert_eq!(
            queued,
            vec![
                ("read".to_string(), Some(1)),
                ("sql".to_string(), Some(2)),
                ("edit".to_string(), Some(3))
            ]
        );
        let (rows, torn) = rows_of("p", &std::fs::read_to_string(&file).unwrap());
        assert_eq!((rows.len(), torn), (3, 0));
        assert!(j.write_staged(|_, _| panic!("nothing is staged")));
        j.committed(1, 3, true);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 0);
    }

    #[test]
    fn a_caught_up_journal_is_emptied_and_a_failed_commit_keeps_its_lines() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let mut seqs = Vec::new();
        for _ in 0..3 {
            assert!(j.append(row("read"), |r, s| {
                assert_eq!(r.key, Some(j.key(s.unwrap())));
                seqs.push(s.unwrap())
            }));
        }
        assert_eq!(seqs, vec![1, 2, 3]);
        let file = segment_path(dir.path(), &j.process, 0, SUFFIX);
        j.committed(1, 2, true);
        assert!(
            std::fs::metadata(&file).unwrap().len() > 0,
            "line 3 is not committed"
        );
        j.committed(3, 3, true);
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 0);
        j.append(row("sql"), |_, _| {});
        j.committed(4, 4, false);
        assert!(
            std::fs::metadata(&file).unwrap().len() > 0,
            "kept for the replay"
        );
        // Another process cannot take a live journal.
        let other = OpenOptions::new().read(true).open(&file).unwrap();
        assert!(Flock::lock(other, FlockArg::LockExclusiveNonblock).is_err());
    }
}
