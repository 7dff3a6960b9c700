//! The Data Ghost inside `pi-mcp heartbeat`: with GHOST_CRON set the daemon runs the ghost on
//! that schedule beside the monitor and stops it cleanly on SIGTERM; `--ghost --once` runs it
//! once; a ghost without a database is a clear start-up error.

mod support;

use std::path::Path;

use support::{Daemon, Workspace, cli};

/// A small SQLite database in the workspace, as a URL.
fn sqlite_db(ws: &Workspace) -> String {
    let path = ws.path().join("shop.db");
    let conn = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute('create table orders(id integer primary key, kind text, amount real)'); \
             c.executemany('insert into orders(kind, amount) values (?, ?)', [('a', i) for i in range(50)]); \
             c.commit()",
        )
        .arg(&path)
        .status()
        .expect("python3 creates the database");
    assert!(conn.success());
    format!("sqlite://{}", path.display())
}

fn report_runs(ws: &Path) -> usize {
    let dir = ws.join("reports").join("shop");
    std::fs::read_dir(&dir)
        .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_the_ghost_on_its_cron_and_stops_it_on_sigterm() {
    let ws = Workspace::new();
    let db = sqlite_db(&ws);
    ws.write("configs/alerts.json", r#"{"rules": []}"#);
    let daemon = Daemon::start(
        ws.path(),
        &["--interval", "1s"],
        &[("GHOST_CRON", "*/1 * * * * *"), ("DATABASE_URL", &db)],
    );
    daemon
        .wait_for("ghost: running on `*/1 * * * * *`", 1)
        .await;
    daemon.wait_for("schema change(s),", 2).await;
    daemon.wait_for("heartbeat: 0 rules", 1).await;
    let status = daemon.stop().await;
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let runs = report_runs(ws.path());
    assert!(runs >= 2, "at least two report runs, found {runs}");
    assert!(ws.path().join("reports/shop/latest.md").is_file());
}

#[tokio::test]
async fn once_runs_the_ghost_once_and_a_ghost_without_a_database_is_refused() {
    let ws = Workspace::new();
    let db = sqlite_db(&ws);
    ws.write("configs/alerts.json", r#"{"rules": []}"#);
    let out = cli(
        ws.path(),
        &["heartbeat", "--once", "--ghost"],
        &[("DATABASE_URL", &db)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report_runs(ws.path()), 1);

    let out = cli(
        ws.path(),
        &["heartbeat", "--once", "--ghost"],
        &[("DATABASE_URL", "")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the Data Ghost needs a database"), "{err}");
}
