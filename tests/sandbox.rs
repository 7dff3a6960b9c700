//! The OS sandbox under the policy: a `bash` command the policy allows still cannot write
//! outside the workspace, its temp directory and the policy's `writable_paths`, and with
//! `"network": "deny"` it cannot open a TCP connection; it cannot write pi-mcp's own state
//! store (so it cannot forge an approval); ordinary commands keep working.

mod support;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rmcp::RoleClient;
use rmcp::model::CallToolResult;
use rmcp::service::RunningService;
use serde_json::json;
use support::{Workspace, call, cli, spawn_stdio, text_of};

/// A path in /tmp (outside the workspace) that no other test or run uses.
fn outside_path(tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    PathBuf::from(format!("/tmp/outside-{tag}-{}-{nanos}", std::process::id()))
}

/// Writes `policy` into the workspace and starts the server with `--policy` pointing at it.
async fn serve_with_policy(ws: &Workspace, policy: &str) -> RunningService<RoleClient, ()> {
    let path = ws.write("test-policy.json", policy);
    let path = path.to_str().expect("UTF-8 temp path");
    spawn_stdio(ws.path(), &["--policy", path]).await.unwrap()
}

async fn bash(client: &RunningService<RoleClient, ()>, command: &str) -> CallToolResult {
    call(client, "bash", json!({ "command": command })).await
}

fn assert_ok(r: &CallToolResult) -> String {
    let text = text_of(r);
    assert_eq!(r.is_error, Some(false), "{text}");
    text
}

fn assert_permission_error(r: &CallToolResult, path: &Path) {
    let text = text_of(r);
    assert_eq!(r.is_error, Some(true), "{text}");
    assert!(
        text.contains("Permission denied") && !text.contains("denied by policy"),
        "{text}"
    );
    assert!(!path.exists(), "{} was created", path.display());
}

#[tokio::test]
async fn an_allowed_write_outside_the_workspace_fails_and_leaves_no_file() {
    let ws = Workspace::new();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    // The built-in policy allows both commands: only the sandbox stops them.
    let py_target = outside_path("py");
    ws.write(
        "outside.py",
        format!("open({:?}, 'w')\n", py_target.display().to_string()),
    );
    let r = bash(&client, "python3 outside.py").await;
    assert_permission_error(&r, &py_target);
    assert!(text_of(&r).contains("PermissionError"), "{}", text_of(&r));

    let touch_target = outside_path("touch");
    let r = bash(&client, &format!("touch {}", touch_target.display())).await;
    assert_permission_error(&r, &touch_target);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn inline_python_cannot_write_to_tmp() {
    let ws = Workspace::new();
    // An empty policy allows every command (no rules), so `python3 -c` runs without approval.
    let client = serve_with_policy(&ws, "{}").await;
    let target = outside_path("inline");
    let command = format!("python3 -c \"open('{}','w')\"", target.display());
    let r = bash(&client, &command).await;
    assert_permission_error(&r, &target);
    assert!(text_of(&r).contains("PermissionError"), "{}", text_of(&r));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn workspace_temp_dir_and_ordinary_commands_still_work() {
    let ws = Workspace::new();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();

    let text = assert_ok(&bash(&client, "echo hello > out.txt && cat out.txt | tr a-z A-Z").await);
    assert!(text.contains("HELLO"), "{text}");
    assert_eq!(ws.read("out.txt"), "hello\n");

    let text = assert_ok(
        &bash(
            &client,
            "mkdir -p sub/dir && cp out.txt sub/dir/ && ls sub/dir",
        )
        .await,
    );
    assert!(text.contains("out.txt"), "{text}");

    let text = assert_ok(&bash(&client, "ls -la > /dev/null && echo listed").await);
    assert!(text.contains("listed"), "{text}");

    let text = assert_ok(
        &bash(
            &client,
            "echo to-stdout > /dev/stdout; echo to-stderr > /dev/stderr; cat <(echo substituted)",
        )
        .await,
    );
    for word in ["to-stdout", "to-stderr", "substituted"] {
        assert!(text.contains(word), "{text}");
    }

    // TMPDIR points into the workspace, and temp files land there.
    let tmp = ws.path().join(".pi-mcp/tmp");
    let text = assert_ok(&bash(&client, "echo \"$TMPDIR\"").await);
    assert!(text.contains(tmp.to_str().unwrap()), "{text}");
    ws.write(
        "tmp_write.py",
        "import tempfile\nwith tempfile.NamedTemporaryFile('w', delete=False) as f:\n    \
         f.write('tmpdata')\nprint(f.name)\n",
    );
    let text = assert_ok(&bash(&client, "python3 tmp_write.py").await);
    let written = text.lines().next().unwrap_or_default();
    assert!(written.starts_with(tmp.to_str().unwrap()), "{text}");
    assert_eq!(std::fs::read_to_string(written).unwrap(), "tmpdata");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn writable_paths_extend_what_bash_may_write() {
    let ws = Workspace::new();
    let extra = tempfile::Builder::new()
        .prefix("pi-mcp-writable.")
        .tempdir()
        .unwrap();
    let policy = json!({ "writable_paths": [extra.path()] }).to_string();
    let client = serve_with_policy(&ws, &policy).await;
    let inside = extra.path().join("granted.txt");
    assert_ok(&bash(&client, &format!("touch {}", inside.display())).await);
    assert!(inside.exists());
    let target = outside_path("not-listed");
    let r = bash(&client, &format!("touch {}", target.display())).await;
    assert_permission_error(&r, &target);
    client.cancel().await.unwrap();
}

const CONNECT: &str = "import socket, sys\n\
    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5).close()\n\
    print('connected')\n";

#[tokio::test]
async fn network_deny_blocks_tcp_but_not_unix_sockets() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let inline =
        format!("python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}))\"");

    // The built-in policy (allowlist, nothing listed): the child's loopback is its own, and
    // the host's listener is out of reach.
    let ws = Workspace::new();
    ws.write("connect.py", CONNECT);
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    let text = text_of(&bash(&client, &format!("python3 connect.py {port}")).await);
    assert!(text.contains("ConnectionRefusedError"), "{text}");
    client.cancel().await.unwrap();

    // `open` (and the older `allow`) leaves the network alone.
    for open in [
        r#"{"network": "allow"}"#,
        r#"{"network": {"mode": "open"}}"#,
    ] {
        let ws = Workspace::new();
        let client = serve_with_policy(&ws, open).await;
        assert_ok(&bash(&client, &inline).await);
        client.cancel().await.unwrap();
    }

    let ws = Workspace::new();
    let client = serve_with_policy(&ws, r#"{"network": "deny"}"#).await;
    let r = bash(&client, &inline).await;
    let text = text_of(&r);
    assert_eq!(r.is_error, Some(true), "{text}");
    assert!(text.contains("PermissionError"), "{text}");
    let unix = "python3 -c \"import socket; a, b = socket.socketpair(); a.send(b'local'); \
                print(b.recv(5).decode())\"";
    let text = assert_ok(&bash(&client, unix).await);
    assert!(text.contains("local"), "{text}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn required_sandbox_starts_on_this_kernel_and_says_so() {
    let ws = Workspace::new();
    let path = ws.write("test-policy.json", r#"{"sandbox": "required"}"#);
    let path = path.to_str().unwrap();
    // With stdin closed the stdio server gets past its start-up checks, logs, and stops.
    let out = cli(ws.path(), &["--policy", path, "serve", "--stdio"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Landlock ABI v5 enforced"), "{stderr}");

    let client = spawn_stdio(ws.path(), &["--policy", path]).await.unwrap();
    assert_ok(&bash(&client, "touch inside.txt").await);
    let target = outside_path("required");
    assert_permission_error(
        &bash(&client, &format!("touch {}", target.display())).await,
        &target,
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn sandbox_off_runs_bash_unconfined() {
    let ws = Workspace::new();
    let path = ws.write(
        "test-policy.json",
        r#"{"sandbox": "off", "known_programs": ["touch"]}"#,
    );
    let path = path.to_str().unwrap();
    let out = cli(ws.path(), &["--policy", path, "serve", "--stdio"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sandbox: off by policy"), "{stderr}");

    let client = spawn_stdio(ws.path(), &["--policy", path]).await.unwrap();
    let target = outside_path("off");
    let r = bash(&client, &format!("touch {}", target.display())).await;
    let created = target.exists();
    let _ = std::fs::remove_file(&target);
    assert_ok(&r);
    assert!(created, "{}", text_of(&r));
    client.cancel().await.unwrap();
}

#[test]
fn the_sandbox_subcommand_is_hidden_from_help() {
    let ws = Workspace::new();
    let out = cli(ws.path(), &["--help"], &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("serve")
            && !help.contains("__sandbox-exec")
            && !help.contains("sandbox-exec"),
        "{help}"
    );
}

/// A script that opens the state store for appending; the path is in the script, not in the
/// command, so the guard's text check cannot see it and only the sandbox stands in the way.
const APPEND: &str = "open(STATE_DB, 'a').close()\nprint('appended')\n";
/// The forgery an agent would try: approve every pending approval behind the human's back.
const FORGE: &str = "import sqlite3\ndb = sqlite3.connect(STATE_DB)\n\
    db.execute(\"UPDATE approvals SET status = 'approved'\")\ndb.commit()\nprint('forged')\n";

#[tokio::test]
async fn an_allowed_command_cannot_write_the_state_store() {
    let ws = Workspace::new();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    // A pending approval to forge: `python3 -c` is rated `ask` and nobody can be asked.
    let r = bash(&client, "python3 -c 'print(1)'").await;
    let text = text_of(&r);
    let id = text
        .split("approval `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no pending approval: {text}"))
        .to_string();
    let db = support::state_db(ws.path());
    assert!(!db.starts_with(ws.path()), "{}", db.display());
    assert!(db.exists(), "{}", db.display());
    for (name, body) in [("append.py", APPEND), ("forge.py", FORGE)] {
        ws.write(
            name,
            format!("STATE_DB = {:?}\n{body}", db.display().to_string()),
        );
        let r = bash(&client, &format!("python3 {name}")).await;
        let text = text_of(&r);
        assert_eq!(r.is_error, Some(true), "{name}: {text}");
        assert!(!text.contains("denied by policy"), "{name}: {text}");
        assert!(
            !text.contains("appended") && !text.contains("forged"),
            "{name}: {text}"
        );
    }
    let text = text_of(&bash(&client, "python3 append.py").await);
    assert!(text.contains("PermissionError"), "{text}");
    let out = cli(ws.path(), &["approvals", "show", &id], &[]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("\"status\": \"pending\""), "{shown}");
    client.cancel().await.unwrap();
}
