//! Entry points: `ghost demo` (a real report in one command), `ghost --heartbeat` on GHOST_CRON
//! until SIGTERM, and the reports served as MCP resources with the right MIME types.

use std::time::{Duration, Instant};

use crate::{assert_report_consistent, findings, sqlite_db, support};

#[tokio::test]
async fn demo_builds_an_example_and_reports_planted_patterns() {
    let ws = support::Workspace::new();
    let out = support::cli_ok(ws.path(), &["ghost", "demo", "--json"], &[]);
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    let found = findings(&run);
    for (kind, severity) in [
        ("row_count", "critical"),
        ("null_spike", "critical"),
        ("new_values", "warning"),
    ] {
        assert!(
            found.iter().any(|f| f.0 == kind && f.3 == severity),
            "{kind}: {found:?}"
        );
    }
    let kinds: Vec<&str> = run["schema_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    for k in [
        "column_added",
        "column_renamed",
        "index_dropped",
        "table_added",
        "table_dropped",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    assert_report_consistent(&run);

    // The reports are MCP resources: Markdown as text/markdown, charts as image/png.
    let client = support::spawn_stdio(ws.path(), &[]).await.unwrap();
    let resources = client.list_all_resources().await.unwrap();
    let mime = |suffix: &str| {
        resources
            .iter()
            .find(|r| r.uri.ends_with(suffix))
            .and_then(|r| r.mime_type.clone())
            .unwrap_or_else(|| panic!("no resource ending in {suffix}"))
    };
    assert_eq!(mime("latest.md"), "text/markdown");
    assert_eq!(mime(".png"), "image/png");
    let png = resources
        .iter()
        .find(|r| r.uri.ends_with(".png"))
        .unwrap()
        .uri
        .clone();
    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(png))
        .await
        .unwrap();
    assert!(matches!(
        &read.contents[0],
        rmcp::model::ResourceContents::BlobResourceContents { mime_type: Some(m), .. } if m == "image/png"
    ));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn heartbeat_runs_on_the_cron_and_stops_on_sigterm() {
    let ws = support::Workspace::new();
    let (db, url) = sqlite_db(ws.path(), "beat").await;
    db.exec("CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1);")
        .await;
    let mut child = std::process::Command::new(support::bin())
        .arg("--workspace")
        .arg(ws.path())
        .args(["ghost", "--heartbeat", "--database", &url])
        .env("GHOST_CRON", "* * * * * *")
        .env_remove("PI_MCP_STATE_URL")
        .envs(support::state_env(ws.path()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let reports = ws.path().join("reports").join("beat");
    let started = Instant::now();
    // Two runs: the schedule repeats.
    let runs = || {
        std::fs::read_dir(&reports).map_or(0, |d| d.flatten().filter(|e| e.path().is_dir()).count())
    };
    while runs() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no heartbeat runs"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("heartbeat exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.matches("report: ").count() >= 2, "{stdout}");

    let out = support::cli(
        ws.path(),
        &["ghost", "--heartbeat", "--database", &url],
        &[("GHOST_CRON", "0 * * * *")],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("6 or 7"));
}

/// `ghost --heartbeat` with `extra` args on the default (hourly) schedule; its report runs.
fn hourly_heartbeat(ws: &std::path::Path, url: &str, extra: &[&str]) -> std::process::Child {
    std::process::Command::new(support::bin())
        .arg("--workspace")
        .arg(ws)
        .args(["ghost", "--heartbeat", "--database", url])
        .args(extra)
        .env_remove("GHOST_CRON")
        .env_remove("PI_MCP_STATE_URL")
        .envs(support::state_env(ws))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn stop(child: std::process::Child) -> std::process::Output {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn heartbeat_runs_once_at_start_unless_told_not_to() {
    let ws = support::Workspace::new();
    let (db, url) = sqlite_db(ws.path(), "first").await;
    db.exec("CREATE TABLE t (id INTEGER); INSERT INTO t VALUES (1);")
        .await;
    let reports = ws.path().join("reports").join("first");
    let runs = || {
        std::fs::read_dir(&reports).map_or(0, |d| d.flatten().filter(|e| e.path().is_dir()).count())
    };
    // The next hourly tick may be an hour away: the first report comes at start.
    let mut child = hourly_heartbeat(ws.path(), &url, &[]);
    let started = Instant::now();
    while runs() < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no report within 20 s of start"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("heartbeat exited early: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("first report after {:?}", started.elapsed());
    let out = stop(child);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("report: ")
            .count(),
        1
    );

    // --no-initial-run waits for the tick.
    let child = hourly_heartbeat(ws.path(), &url, &["--no-initial-run"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let out = stop(child);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(runs(), 1, "no run before the first tick");
}
