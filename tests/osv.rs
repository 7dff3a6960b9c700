//! `pi-mcp osv update` against a local HTTP server that serves zip archives built here from
//! the fixture records in `tests/data/osv`, the way the OSV project serves
//! `<base>/<Ecosystem>/all.zip`.

mod support;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use pi_mcp::guard::osv::{Advisories as _, Ecosystem, OsvDb};
use support::Workspace;

/// Archives by ecosystem name, and the paths requested so far.
#[derive(Clone, Default)]
struct Archives {
    zips: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    requested: Arc<Mutex<Vec<String>>>,
}

impl Archives {
    fn set(&self, eco: &str, zip: Vec<u8>) {
        self.zips.lock().unwrap().insert(eco.to_string(), zip);
    }
}

async fn serve_zip(
    State(a): State<Archives>,
    UrlPath(eco): UrlPath<String>,
) -> Result<Vec<u8>, StatusCode> {
    a.requested.lock().unwrap().push(format!("/{eco}/all.zip"));
    a.zips
        .lock()
        .unwrap()
        .get(&eco)
        .cloned()
        .ok_or(StatusCode::NOT_FOUND)
}

/// Starts the archive server on 127.0.0.1:<free port>; returns its base URL.
async fn start(archives: Archives) -> String {
    let app = axum::Router::new()
        .route("/{eco}/all.zip", axum::routing::get(serve_zip))
        .with_state(archives);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/osv")
}

/// A zip of `(name in archive, contents)`, deflated like the OSV archives.
fn zip_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        w.start_file(name.as_str(), options).expect("start file");
        w.write_all(bytes).expect("write entry");
    }
    w.finish().expect("finish zip").into_inner()
}

/// The fixture records of one ecosystem, as a zip like `<Ecosystem>/all.zip`.
fn fixture_zip(eco: &str) -> (Vec<u8>, Vec<String>) {
    let mut entries = Vec::new();
    for e in std::fs::read_dir(fixture_dir().join(eco)).expect("fixture dir") {
        let path = e.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        entries.push((name, std::fs::read(&path).expect("read fixture")));
    }
    entries.sort();
    let names = entries.iter().map(|(n, _)| n.clone()).collect();
    (zip_of(&entries), names)
}

/// Runs `pi-mcp --workspace <ws> <args>` with only the given OSV settings in its environment.
async fn pi(ws: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(support::bin());
    cmd.arg("--workspace")
        .arg(ws)
        .args(args)
        .envs(support::state_env(ws));
    for var in [
        "PI_MCP_OSV_DB",
        "PI_MCP_OSV_URL",
        "PI_MCP_STATE_URL",
        "PI_MCP_POLICY",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("run pi-mcp");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_fills_the_database_from_the_archives() {
    let archives = Archives::default();
    let (pypi, pypi_names) = fixture_zip("PyPI");
    let (npm, npm_names) = fixture_zip("npm");
    archives.set("PyPI", pypi);
    archives.set("npm", npm);
    let base = start(archives.clone()).await;
    let ws = Workspace::new();
    let (ok, stdout, stderr) = pi(
        ws.path(),
        &[
            "osv",
            "update",
            "--base-url",
            &base,
            "--ecosystem",
            "PyPI",
            "--ecosystem",
            "npm",
        ],
        &[],
    )
    .await;
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("PyPI: 3 records"), "{stdout}");
    assert!(stdout.contains("npm: 1 records"), "{stdout}");
    assert_eq!(
        *archives.requested.lock().unwrap(),
        ["/PyPI/all.zip", "/npm/all.zip"]
    );
    let db_dir = support::osv_dir(ws.path());
    assert_eq!(
        listing(&db_dir),
        ["PyPI", "npm"],
        "no temporary files are left"
    );
    assert_eq!(listing(&db_dir.join("PyPI")), pypi_names);
    assert_eq!(listing(&db_dir.join("npm")), npm_names);
    let unpacked = std::fs::read(db_dir.join("PyPI/GHSA-h5c8-rqwp-cp95.json")).expect("record");
    let original =
        std::fs::read(fixture_dir().join("PyPI/GHSA-h5c8-rqwp-cp95.json")).expect("fixture");
    assert_eq!(unpacked, original);
    // and the guard's loader reads what was unpacked
    let db = OsvDb::load(&db_dir).expect("load");
    let f = db.check(Ecosystem::PyPI, "jinja2", "3.1.2").expect("check");
    assert_eq!(f[0].id, "GHSA-h5c8-rqwp-cp95");
    assert_eq!(f[0].fixed.as_deref(), Some("3.1.3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ecosystem_keeps_its_old_copy_and_the_others_update() {
    let archives = Archives::default();
    archives.set("PyPI", fixture_zip("PyPI").0);
    let base = start(archives).await;
    let ws = Workspace::new();
    let db_dir = support::osv_dir(ws.path());
    for old in ["Go/GO-2022-1059.json", "PyPI/STALE-1.json"] {
        let path = db_dir.join(old);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create the old copy");
        std::fs::write(path, "{}").expect("write the old copy");
    }
    let (ok, stdout, stderr) = pi(
        ws.path(),
        &[
            "osv",
            "update",
            "--base-url",
            &base,
            "--ecosystem",
            "go",
            "--ecosystem",
            "pypi",
        ],
        &[],
    )
    .await;
    assert!(!ok, "a missing archive fails the run: {stdout}");
    assert!(
        stderr.contains("Go:") && stderr.contains("answered HTTP 404"),
        "{stderr}"
    );
    assert!(stdout.contains("PyPI: 3 records"), "{stdout}");
    assert_eq!(listing(&db_dir.join("Go")), ["GO-2022-1059.json"]);
    assert!(
        !listing(&db_dir.join("PyPI")).contains(&"STALE-1.json".to_string()),
        "an update replaces the old records"
    );
    assert_eq!(listing(&db_dir), ["Go", "PyPI"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_entries_cannot_escape_the_database_directory() {
    let record =
        std::fs::read(fixture_dir().join("npm/GHSA-35jh-r3h4-6jhm.json")).expect("fixture");
    let entries: Vec<(String, Vec<u8>)> = [
        "../escape.json",
        "../../escape2.json",
        "/tmp/pi-mcp-osv-absolute.json",
        "nested/dir/GHSA-nested.json",
        "GHSA-35jh-r3h4-6jhm.json",
        "README.txt",
        ".hidden.json",
    ]
    .iter()
    .map(|n| (n.to_string(), record.clone()))
    .chain([("BIG.json".to_string(), vec![b' '; 8 * 1024 * 1024 + 1])])
    .collect();
    let archives = Archives::default();
    archives.set("npm", zip_of(&entries));
    let base = start(archives).await;
    let ws = Workspace::new();
    let db_dir = ws.path().join("db");
    let (ok, stdout, stderr) = pi(
        ws.path(),
        &[
            "osv",
            "update",
            "--ecosystem",
            "npm",
            "--dir",
            db_dir.to_str().expect("utf-8"),
        ],
        &[("PI_MCP_OSV_URL", &base)],
    )
    .await;
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(listing(&db_dir.join("npm")), ["GHSA-35jh-r3h4-6jhm.json"]);
    assert_eq!(listing(ws.path()), ["db"]);
    assert!(!Path::new("/tmp/pi-mcp-osv-absolute.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_directory_comes_from_pi_mcp_osv_db() {
    let archives = Archives::default();
    archives.set("crates.io", fixture_zip("crates.io").0);
    let base = start(archives).await;
    let ws = Workspace::new();
    let custom = ws.path().join("custom-osv");
    let (ok, stdout, stderr) = pi(
        ws.path(),
        &["osv", "update", "--ecosystem", "crates.io"],
        &[
            ("PI_MCP_OSV_URL", &base),
            ("PI_MCP_OSV_DB", custom.to_str().expect("utf-8")),
        ],
    )
    .await;
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        listing(&custom.join("crates.io")),
        ["RUSTSEC-2020-0071.json", "RUSTSEC-2021-0078.json"]
    );
    assert!(!support::osv_dir(ws.path()).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_archives_and_unreachable_servers_are_reported() {
    let archives = Archives::default();
    archives.set("PyPI", b"this is not a zip".to_vec());
    archives.set(
        "npm",
        zip_of(&[("notes.txt".into(), b"no records".to_vec())]),
    );
    let base = start(archives).await;
    let ws = Workspace::new();
    let (ok, _, stderr) = pi(
        ws.path(),
        &[
            "osv",
            "update",
            "--base-url",
            &base,
            "--ecosystem",
            "PyPI",
            "--ecosystem",
            "npm",
        ],
        &[],
    )
    .await;
    assert!(!ok);
    assert!(stderr.contains("is not a readable zip archive"), "{stderr}");
    assert!(stderr.contains("holds no OSV records"), "{stderr}");
    // nothing listens on port 9 of this machine's loopback
    let (ok, _, stderr) = pi(
        ws.path(),
        &[
            "osv",
            "update",
            "--base-url",
            "http://127.0.0.1:9",
            "--ecosystem",
            "Go",
        ],
        &[],
    )
    .await;
    assert!(!ok);
    assert!(
        stderr.contains("cannot download http://127.0.0.1:9/Go/all.zip"),
        "{stderr}"
    );
    assert!(!support::osv_dir(ws.path()).join("Go").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_ecosystem_is_a_usage_error() {
    let ws = Workspace::new();
    let (ok, _, stderr) = pi(ws.path(), &["osv", "update", "--ecosystem", "maven"], &[]).await;
    assert!(!ok);
    assert!(stderr.contains("unknown ecosystem `maven`"), "{stderr}");
}

// ---- Install checks through the guard. These need `Guard::judge_simple` to call
// `installs::judge_installs` and the binary to load the database at start (see the OSV section
// of the README); nothing here installs anything: only decisions are asked for, and the one
// `bash` call is refused before it runs (and could not reach an index if it were not).

/// `pi-mcp policy check --json` with the fixture database (or none); the verdict and stderr.
async fn check(ws: &Path, command: &str, with_db: bool) -> (serde_json::Value, String) {
    let db = fixture_dir();
    let mut args = vec!["policy", "check", "--json"];
    if with_db {
        args.extend(["--osv-db", db.to_str().expect("utf-8")]);
    }
    args.extend(["--", command]);
    let (_, stdout, stderr) = pi(ws, &args, &[("HOME", "/home/agent")]).await;
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{command}: {e}: {stdout}: {stderr}"));
    (v, stderr)
}

fn rules(v: &serde_json::Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["rule"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn policy_check_judges_installs_against_the_database() {
    let ws = Workspace::new();
    for (command, decision, rule) in [
        ("pip install jinja2==3.1.2", "deny", "osv-vulnerable"),
        ("sudo pip3 install 'Jinja2==2.10'", "deny", "osv-vulnerable"),
        ("npm i lodash@4.17.20", "deny", "osv-vulnerable"),
        (
            "cargo install hyper --version 0.14.9",
            "deny",
            "osv-vulnerable",
        ),
        ("go get golang.org/x/text@v0.3.7", "deny", "osv-vulnerable"),
        ("gem install rack -v 2.2.8", "deny", "osv-vulnerable"),
        ("pip install requests", "ask", "osv-unpinned"),
        ("pip install jinja2==3.1.3", "allow", ""),
        ("npm install lodash@4.17.21", "allow", ""),
    ] {
        let (v, _) = check(ws.path(), command, true).await;
        assert_eq!(v["decision"], decision, "{command}: {v}");
        if !rule.is_empty() {
            assert!(rules(&v).contains(&rule.to_string()), "{command}: {v}");
        }
    }
    let (v, _) = check(ws.path(), "pip install jinja2==3.1.2", true).await;
    let text = v.to_string();
    for part in [
        "GHSA-h5c8-rqwp-cp95",
        "CVE-2024-22195",
        "first fixed version: 3.1.3",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }
    ws.write("requirements.txt", "flask==3.0.0\nrequests==2.30.0\n");
    let (v, _) = check(ws.path(), "pip install -r requirements.txt", true).await;
    assert_eq!(v["decision"], "deny", "{v}");
    assert!(v.to_string().contains("requirements.txt:2"), "{v}");
}

#[tokio::test]
async fn without_a_database_installs_ask_and_only_the_daemons_warn_once() {
    let ws = Workspace::new();
    let (v, stderr) = check(ws.path(), "pip install jinja2==3.1.3", false).await;
    assert_eq!(v["decision"], "ask", "{v}");
    assert!(rules(&v).contains(&"osv-no-database".to_string()), "{v}");
    // The verdict says it; a one-shot command does not also warn on stderr.
    assert_eq!(
        stderr.matches("no OSV advisory database").count(),
        0,
        "{stderr}"
    );
    let (v, _) = check(ws.path(), "ls -la", false).await;
    assert_eq!(v["decision"], "allow", "{v}");
    // The daemon, which runs commands on its own, warns once.
    std::fs::write(ws.path().join("alerts.json"), r#"{"rules": []}"#).unwrap();
    let (ok, _, stderr) = pi(
        ws.path(),
        &["heartbeat", "--once", "--rules", "alerts.json"],
        &[],
    )
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(
        stderr.matches("no OSV advisory database").count(),
        1,
        "{stderr}"
    );
    for args in [
        &["approvals", "list"][..],
        &["policy", "validate"][..],
        &["audit"][..],
    ] {
        let (ok, _, stderr) = pi(ws.path(), args, &[]).await;
        assert!(ok, "{args:?}: {stderr}");
        assert!(!stderr.contains("OSV"), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn the_bash_tool_refuses_a_vulnerable_install() {
    let ws = Workspace::new();
    let db = fixture_dir();
    let client =
        support::spawn_stdio_env(ws.path(), &[("PI_MCP_OSV_DB", db.to_str().expect("utf-8"))])
            .await
            .expect("start server");
    let command = "pip install --no-index --dry-run --find-links ./none jinja2==3.1.2";
    let result = support::call(&client, "bash", serde_json::json!({"command": command})).await;
    let text = support::text_of(&result);
    assert_eq!(result.is_error, Some(true), "{text}");
    assert!(
        text.contains("GHSA-h5c8-rqwp-cp95") && text.contains("3.1.3"),
        "{text}"
    );
    client.cancel().await.expect("stop");
}
