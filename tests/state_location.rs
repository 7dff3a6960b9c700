//! pi-mcp's own state (the approvals and audit log in the state store, the OSV database) lives
//! outside the workspace, where `bash` may write: by default under `$XDG_STATE_HOME/pi-mcp/`
//! (else `~/.local/state/pi-mcp/`); a store placed where bash may write is refused with
//! `"sandbox": "required"` and reported otherwise; and the guard protects it wherever it is.
//! An audited call a killed server answered but had not committed is stored by the next start,
//! once, from the audit journal kept in that state directory.

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use support::{Workspace, call, cli, spawn_stdio, text_of};

/// `pi-mcp --workspace <ws> <args>` with only the given state settings (no test state dir).
fn pi_with(ws: &Path, args: &[&str], env: &[(&str, &Path)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(support::bin());
    for var in [
        "PI_MCP_STATE_DIR",
        "PI_MCP_STATE_URL",
        "PI_MCP_OSV_DB",
        "PI_MCP_POLICY",
        "XDG_STATE_HOME",
    ] {
        cmd.env_remove(var);
    }
    cmd.arg("--workspace").arg(ws).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run pi-mcp")
}

/// The one `<name>-<hash>` directory under `base/pi-mcp`.
fn only_slug_dir(base: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(base.join("pi-mcp"))
        .expect("pi-mcp's state directory was created")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

#[test]
fn the_default_state_store_is_outside_the_workspace() {
    let ws = Workspace::new();
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let xdg = elsewhere.path().join("xdg");
    let out = pi_with(ws.path(), &["audit"], &[("XDG_STATE_HOME", &xdg)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = only_slug_dir(&xdg);
    let name = ws
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let slug = dir.file_name().unwrap().to_string_lossy().into_owned();
    assert!(slug.starts_with(&format!("{name}-")), "{slug}");
    assert!(dir.join("state.db").is_file());
    assert!(
        !ws.path().join(".pi-mcp").exists(),
        "nothing in the workspace"
    );

    // Without XDG_STATE_HOME: ~/.local/state (HOME is a temp dir here, never the real one).
    let home = elsewhere.path().join("home");
    let out = pi_with(ws.path(), &["audit"], &[("HOME", &home)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = only_slug_dir(&home.join(".local/state"));
    assert_eq!(dir.file_name().unwrap().to_string_lossy(), slug);
    assert!(dir.join("state.db").is_file());

    // PI_MCP_STATE_DIR wins, and the OSV database lives there too.
    let explicit = elsewhere.path().join("explicit");
    let out = pi_with(
        ws.path(),
        &[
            "osv",
            "update",
            "--base-url",
            "http://127.0.0.1:9",
            "--ecosystem",
            "Go",
        ],
        &[("PI_MCP_STATE_DIR", &explicit)],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let osv = explicit.join("osv");
    assert!(
        stdout.contains(&format!("OSV database: {}", osv.display())),
        "{stdout}"
    );
}

#[test]
fn a_required_sandbox_refuses_a_state_store_that_bash_could_write() {
    let ws = Workspace::new();
    let policy = ws.write("policy.json", r#"{"sandbox": "required"}"#);
    let inside = ws.path().join("state.db");
    let url = format!("sqlite://{}", inside.display());
    let policy = policy.to_str().unwrap();
    let out = cli(
        ws.path(),
        &["--policy", policy, "--state-url", &url, "serve", "--stdio"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&inside.display().to_string())
            && stderr.contains("--state-url")
            && stderr.contains("outside the workspace"),
        "{stderr}"
    );
    assert!(!inside.exists(), "refused before the store was opened");

    // The same for an OSV database in the workspace.
    let osv = ws.path().join("osv");
    let out = cli(
        ws.path(),
        &[
            "--policy",
            policy,
            "--osv-db",
            osv.to_str().unwrap(),
            "serve",
            "--stdio",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&osv.display().to_string()) && stderr.contains("--osv-db"),
        "{stderr}"
    );

    // A policy `writable_paths` entry that covers the state directory counts too.
    let state = support::state_dir(ws.path());
    let policy = ws.write(
        "policy-wide.json",
        json!({"sandbox": "required", "writable_paths": [state.parent().unwrap()]}).to_string(),
    );
    let out = cli(
        ws.path(),
        &["--policy", policy.to_str().unwrap(), "serve", "--stdio"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("which bash commands may write"), "{stderr}");

    // best_effort (the default) starts (and, with stdin closed, stops), saying why the layout
    // is unsafe.
    let out = cli(ws.path(), &["--state-url", &url, "serve", "--stdio"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("WARN") && stderr.contains("which bash commands may write"),
        "{stderr}"
    );
    assert!(
        stderr.contains("policy: built-in default policy"),
        "it started: {stderr}"
    );
}

#[tokio::test]
async fn the_guard_protects_the_state_store_wherever_it_is() {
    let ws = Workspace::new();
    // A bash argument naming the state directory needs approval (even with the sandbox off).
    let db = support::state_db(ws.path());
    let command = format!("sqlite3 {} .dump", db.display());
    let out = cli(
        ws.path(),
        &["policy", "check", "--json", "--", &command],
        &[],
    );
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verdict JSON");
    assert_ne!(verdict["decision"], "allow", "{verdict}");
    assert!(verdict.to_string().contains("protected-path"), "{verdict}");

    // A store placed in the workspace (best_effort warns) cannot be read or edited.
    let url = format!("sqlite://{}", ws.path().join("inside.db").display());
    let client = spawn_stdio(ws.path(), &["--state-url", &url])
        .await
        .unwrap();
    for (tool, args) in [
        ("read", json!({"path": "inside.db"})),
        ("read", json!({"path": "inside.db-wal"})),
        (
            "edit",
            json!({"path": "inside.db", "old_text": "a", "new_text": "b"}),
        ),
    ] {
        let r = call(&client, tool, args).await;
        assert_eq!(r.is_error, Some(true), "{}", text_of(&r));
        assert!(text_of(&r).contains("protected"), "{tool}: {}", text_of(&r));
    }
    let r = call(
        &client,
        "bash",
        json!({"command": "cp /dev/null inside.db"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true), "{}", text_of(&r));
    assert!(text_of(&r).contains("protected"), "{}", text_of(&r));
    // By effect: the store's write-ahead log (its latest commits, these calls' audit rows)
    // exists beside it, and a command that names it only at run time reads none of it.
    let wal = ws.path().join("inside.db-wal");
    support::wait_until(Duration::from_secs(15), "a write-ahead log", || {
        std::fs::metadata(&wal).map_or(0, |m| m.len()) > 0
    })
    .await;
    let r = call(
        &client,
        "bash",
        json!({"command": "cat $(ls | grep wal) | wc -c"}),
    )
    .await;
    let text = text_of(&r);
    let bytes: u64 = text
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no byte count: {text}"));
    assert_eq!(bytes, 0, "the child read the store's log: {text}");
    client.cancel().await.unwrap();
}

#[test]
fn processes_opening_a_new_store_at_once_all_succeed() {
    // SQLite has no migration lock: the processes that lose the race try their migrations again.
    for _ in 0..3 {
        let ws = Workspace::new();
        let elsewhere = tempfile::tempdir().expect("temp dir");
        let dir = elsewhere.path().join("state");
        let children: Vec<_> = (0..6)
            .map(|_| {
                let mut cmd = std::process::Command::new(support::bin());
                for var in ["PI_MCP_STATE_URL", "PI_MCP_POLICY", "XDG_STATE_HOME"] {
                    cmd.env_remove(var);
                }
                cmd.env("PI_MCP_STATE_DIR", &dir)
                    .arg("--workspace")
                    .arg(ws.path())
                    .args(["approvals", "list"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn pi-mcp")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait for pi-mcp");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn read_call(id: u64, path: &str) -> serde_json::Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
           "params":{"name":"read","arguments":{"path":path}}})
}

/// The audit rows of `read` calls on `path`, as `pi-mcp audit` shows them with `env`.
fn reads_of(ws: &Path, env: &[(&str, &str)], path: &str) -> usize {
    support::audit_entries(ws, env)
        .iter()
        .filter(|e| e["tool"] == "read" && e["arguments"]["path"] == path)
        .count()
}

/// A connection holding off the store's audit writes.
enum WritesHeld {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WritesHeld {
    /// SQLite: the database's write lock. PostgreSQL: a lock on `audit_log` that inserts wait for.
    async fn take(ws: &Path, pg_url: Option<&str>) -> WritesHeld {
        use sqlx::Connection as _;
        match pg_url {
            None => {
                let db = support::state_db(ws);
                let url = format!("sqlite://{}", db.display());
                let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut c)
                    .await
                    .unwrap();
                WritesHeld::Sqlite(c)
            }
            Some(url) => {
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::raw_sql("BEGIN; LOCK TABLE audit_log IN SHARE MODE")
                    .execute(&mut c)
                    .await
                    .unwrap();
                WritesHeld::Postgres(c)
            }
        }
    }

    async fn release(self) {
        match self {
            WritesHeld::Sqlite(mut c) => drop(sqlx::query("ROLLBACK").execute(&mut c).await),
            WritesHeld::Postgres(mut c) => drop(sqlx::query("ROLLBACK").execute(&mut c).await),
        }
    }
}

/// Calls answered together after the audit commits were held off.
const PIPELINED: usize = 20;

/// A server answers `read`s, their audit commit is held off, and it is killed: the next start
/// stores the rows from the journal, once, and a second replay of the same journal adds nothing.
async fn killed_server_loses_no_answered_call(pg_url: Option<&str>) {
    let ws = Workspace::new();
    ws.write("first.txt", "1");
    ws.write("second.txt", "2");
    let env: Vec<(&str, &str)> = pg_url
        .map(|u| ("PI_MCP_STATE_URL", u))
        .into_iter()
        .collect();
    // The store exists and is migrated before anyone locks it.
    assert!(support::audit_entries(ws.path(), &env).is_empty());
    let mut child = support::stdio_child(ws.path(), &[], &env, std::process::Stdio::null());
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    support::send_line(&mut stdin, support::initialize(1));
    support::reply(&mut stdout, 1);
    support::send_line(
        &mut stdin,
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
    );
    support::send_line(&mut stdin, read_call(2, "first.txt"));
    assert_eq!(support::reply(&mut stdout, 2)["result"]["isError"], false);
    support::wait_until(Duration::from_secs(15), "first.txt's row stored", || {
        reads_of(ws.path(), &env, "first.txt") > 0
    })
    .await;

    // Another connection holds off the store's writes: the server's commit of the next rows
    // waits behind it, and the server is killed after answering, before it can commit. The
    // calls are pipelined, so their journal lines are written together (one `write`).
    let held = WritesHeld::take(ws.path(), pg_url).await;
    let burst = 3..3 + PIPELINED as u64;
    let lines: String = burst
        .clone()
        .map(|id| format!("{}\n", read_call(id, "second.txt")))
        .collect();
    stdin.write_all(lines.as_bytes()).unwrap();
    for answer in support::replies(&mut stdout, burst).values() {
        assert_eq!(answer["result"]["isError"], false, "{answer}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    held.release().await;

    // The journal the killed server left holds the answered call; the next start stores it.
    let journal_files = || -> Vec<PathBuf> {
        let root = support::state_dir(ws.path()).join("audit-journal");
        std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
            .map(|f| f.path())
            .collect()
    };
    let left = journal_files();
    assert_eq!(left.len(), 1, "{left:?}");
    let saved = std::fs::read(&left[0]).unwrap();
    assert!(String::from_utf8_lossy(&saved).contains("second.txt"));
    assert_eq!(reads_of(ws.path(), &env, "second.txt"), PIPELINED);
    assert_eq!(reads_of(ws.path(), &env, "first.txt"), 1);
    assert!(journal_files().is_empty(), "a replayed journal is removed");

    // Replaying the same journal again (a crash after the commit, before the removal) adds
    // nothing.
    std::fs::write(&left[0], &saved).unwrap();
    assert_eq!(reads_of(ws.path(), &env, "second.txt"), PIPELINED);
    assert!(journal_files().is_empty());
}

#[tokio::test]
async fn a_killed_server_loses_no_answered_call_and_a_replay_duplicates_none() {
    killed_server_loses_no_answered_call(None).await;
}

#[tokio::test]
async fn a_killed_server_loses_no_answered_call_on_postgres_either() {
    let Some(base) = support::require_service("PI_MCP_TEST_PG_URL") else {
        return;
    };
    let url = support::fresh_pg_database(&base).await;
    killed_server_loses_no_answered_call(Some(&url)).await;
}

#[tokio::test]
async fn the_state_store_uses_the_write_ahead_log() {
    use sqlx::Connection as _;
    let ws = Workspace::new();
    assert!(support::audit_entries(ws.path(), &[]).is_empty());
    let db = support::state_db(ws.path());
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut c)
        .await
        .unwrap();
    // Readers never wait for the audit writer, and a commit is an append (no sync per commit).
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn without_a_journal_an_answer_waits_for_its_audit_commit() {
    let ws = Workspace::new();
    ws.write("a.txt", "1");
    assert!(support::audit_entries(ws.path(), &[]).is_empty());
    // The journal's directory cannot be created: a file has its name.
    std::fs::write(
        support::state_dir(ws.path()).join("audit-journal"),
        "not a directory",
    )
    .unwrap();
    let mut child = support::stdio_child(ws.path(), &[], &[], std::process::Stdio::null());
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, answers) = std::sync::mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = lines.send(serde_json::from_str(&line).unwrap());
        }
    });
    support::send_line(&mut stdin, support::initialize(1));
    answers.recv_timeout(Duration::from_secs(30)).unwrap();
    support::send_line(
        &mut stdin,
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
    );
    // While the store's writes are held off, the call cannot answer: its row is not safe yet.
    let held = WritesHeld::take(ws.path(), None).await;
    support::send_line(&mut stdin, read_call(2, "a.txt"));
    assert!(
        answers.recv_timeout(Duration::from_millis(500)).is_err(),
        "answered before its audit row was stored"
    );
    held.release().await;
    let answer = answers.recv_timeout(Duration::from_secs(15)).unwrap();
    assert_eq!(answer["id"], 2);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(reads_of(ws.path(), &[], "a.txt"), 1);
}
