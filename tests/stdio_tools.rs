//! The built binary over stdio, driven by rmcp's client: initialize, tools/list, read, edit,
//! bash, a denied command, path escapes, prompts, and the audit log that records it all.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Workspace, bin, call, spawn_stdio, text_of};

fn lines(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

#[tokio::test]
async fn initialize_reports_name_version_and_described_tools() {
    let ws = Workspace::new();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    let info = client.peer_info().expect("server info");
    let server = info.server_info.as_ref().expect("server identity");
    assert_eq!(server.name, "pi-mcp");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(names, ["bash", "edit", "read"]);
    for t in &tools {
        assert!(
            t.description.as_deref().is_some_and(|d| d.len() > 40),
            "{} needs a description",
            t.name
        );
        let props = t
            .input_schema
            .get("properties")
            .and_then(Value::as_object)
            .expect("properties");
        for (name, schema) in props {
            let described = schema
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.is_empty());
            assert!(
                described,
                "parameter {}.{name} has no description: {schema}",
                t.name
            );
        }
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn read_pages_large_files_and_explains_bad_paths() {
    let ws = Workspace::new();
    ws.write("big.log", lines(10_000));
    ws.write("small.txt", "alpha\nbeta\ngamma\n");
    ws.write("bin.dat", [0xff_u8, 0xfe, 0x00, 0x80, b'\n']);
    std::fs::create_dir(ws.path().join("dir")).unwrap();
    // A 1x1 PNG.
    let png: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, 0x49, 0x48, 0x44, 0x52, 0,
        0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1F, 0x15, 0xC4, 0x89, 0, 0, 0, 0x0A, 0x49, 0x44,
        0x41, 0x54, 0x78, 0x9C, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0D, 0x0A, 0x2D, 0xB4, 0, 0, 0, 0,
        0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];
    ws.write("reports/chart.png", png);
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();

    let r = call(&client, "read", json!({"path": "big.log"})).await;
    let t = text_of(&r);
    assert_eq!(r.is_error, Some(false));
    assert!(t.starts_with("line 1\n"));
    assert!(t.contains("line 2000\n") && !t.contains("line 2001\n"));
    assert!(
        t.ends_with("[Showing lines 1-2000 of 10000. Use offset=2001 to continue.]"),
        "{}",
        &t[t.len() - 120..]
    );

    let r = call(
        &client,
        "read",
        json!({"path": "big.log", "offset": 9990, "limit": 5}),
    )
    .await;
    let t = text_of(&r);
    assert!(
        t.starts_with("line 9990\nline 9991\n")
            && t.contains("line 9994\n")
            && !t.contains("line 9995\n"),
        "{t}"
    );
    assert!(
        t.contains("[Showing lines 9990-9994 of 10000. Use offset=9995 to continue.]"),
        "{t}"
    );

    let r = call(&client, "read", json!({"path": "big.log", "offset": 9999})).await;
    assert_eq!(text_of(&r), "line 9999\nline 10000\n");

    let r = call(&client, "read", json!({"path": "small.txt", "offset": 50})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("has 3 lines"), "{}", text_of(&r));

    for (path, expect) in [
        ("dir", "is a directory"),
        ("bin.dat", "not UTF-8"),
        ("nope.txt", "does not exist"),
    ] {
        let r = call(&client, "read", json!({"path": path})).await;
        assert_eq!(r.is_error, Some(true), "{path}");
        assert!(text_of(&r).contains(expect), "{path}: {}", text_of(&r));
    }

    let r = call(&client, "read", json!({"path": "reports/chart.png"})).await;
    let image = r.content[0].as_image().expect("image content");
    assert_eq!(image.mime_type, "image/png");

    let r = call(&client, "read", json!({"path": 42})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("`path`"), "{}", text_of(&r));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn edit_replaces_exactly_once_keeps_format_and_is_atomic() {
    let ws = Workspace::new();
    ws.write("app.conf", "port = 80\nhost = a\nhost = a\n");
    ws.write("win.ini", "\u{feff}[main]\r\nkey = old\r\nother = 1\r\n");
    let script = ws.write("run.sh", "#!/bin/sh\necho old\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();

    let r = call(
        &client,
        "edit",
        json!({"path": "app.conf", "old_text": "port = 80", "new_text": "port = 8080"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert!(
        text_of(&r).contains("-port = 80\n+port = 8080"),
        "{}",
        text_of(&r)
    );
    assert_eq!(ws.read("app.conf"), "port = 8080\nhost = a\nhost = a\n");

    let r = call(
        &client,
        "edit",
        json!({"path": "app.conf", "old_text": "port = 9", "new_text": "x"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("not found"), "{}", text_of(&r));

    let r = call(
        &client,
        "edit",
        json!({"path": "app.conf", "old_text": "host = a", "new_text": "host = b"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("matches 2 places") && text_of(&r).contains("surrounding lines"),
        "{}",
        text_of(&r)
    );

    let r = call(
        &client,
        "edit",
        json!({"path": "win.ini", "old_text": "key = old\n", "new_text": "key = new\n"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert_eq!(
        ws.read("win.ini"),
        "\u{feff}[main]\r\nkey = new\r\nother = 1\r\n"
    );

    // All or nothing: the second edit fails, so the first is not applied either.
    let r = call(
        &client,
        "edit",
        json!({"path": "run.sh", "edits": [{"old_text": "echo old", "new_text": "echo new"}, {"old_text": "missing", "new_text": "x"}]}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("edits[1]"), "{}", text_of(&r));
    assert_eq!(ws.read("run.sh"), "#!/bin/sh\necho old\n");
    let r = call(
        &client,
        "edit",
        json!({"path": "run.sh", "edits": [{"old_text": "echo old", "new_text": "echo new"}, {"old_text": "#!/bin/sh", "new_text": "#!/bin/bash"}]}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert_eq!(ws.read("run.sh"), "#!/bin/bash\necho new\n");
    let mode = std::fs::metadata(&script).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "permissions kept");

    let r = call(
        &client,
        "edit",
        json!({"path": "new/notes.md", "old_text": "", "new_text": "# Notes\n"}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert_eq!(ws.read("new/notes.md"), "# Notes\n");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bash_runs_reports_exit_codes_times_out_and_saves_long_output() {
    let ws = Workspace::new();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();

    let r = call(
        &client,
        "bash",
        json!({"command": "echo out; echo err >&2; pwd"}),
    )
    .await;
    let t = text_of(&r);
    assert_eq!(r.is_error, Some(false), "{t}");
    assert!(
        t.contains("out\nerr\n")
            && t.contains(ws.path().to_str().unwrap())
            && t.contains("[exit code 0"),
        "{t}"
    );

    let r = call(&client, "bash", json!({"command": "echo failing; exit 7"})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("[exit code 7"), "{}", text_of(&r));

    // The timeout kills the whole process group, including a background child.
    let started = std::time::Instant::now();
    let r = call(
        &client,
        "bash",
        json!({"command": "sleep 30 & echo $! > child.pid; wait", "timeout_secs": 1}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("Timed out after 1 s"),
        "{}",
        text_of(&r)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let pid: i32 = ws.read("child.pid").trim().parse().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false);
    assert!(!alive, "the sleep child {pid} survived the timeout");

    // A background child that keeps the output open does not hold the call until the timeout.
    let started = std::time::Instant::now();
    let r = call(
        &client,
        "bash",
        json!({"command": "sleep 30 & echo started", "timeout_secs": 20}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert!(text_of(&r).starts_with("started\n"));
    assert!(started.elapsed() < Duration::from_secs(5));

    let r = call(&client, "bash", json!({"command": "seq 1 100000"})).await;
    let t = text_of(&r);
    assert_eq!(r.is_error, Some(false));
    assert!(
        t.contains("\n100000\n") && !t.contains("\n97999\n"),
        "the tail is kept"
    );
    assert!(t.contains("[Output cut"), "{}", &t[..200]);
    let saved = t
        .split("saved in ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .expect("saved path");
    let full = std::fs::read_to_string(ws.path().join(saved)).unwrap();
    assert_eq!(full.lines().count(), 100_000);

    let r = call(&client, "bash", json!({"command": "ls", "cwd": "/"})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("outside the workspace"),
        "{}",
        text_of(&r)
    );
    let r = call(
        &client,
        "bash",
        json!({"command": "true", "timeout_secs": 100000}),
    )
    .await;
    assert!(
        text_of(&r).contains("timeout_secs must be between 1 and 600"),
        "{}",
        text_of(&r)
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn denied_commands_do_not_run_and_paths_cannot_escape() {
    let ws = Workspace::new();
    ws.write("canary.txt", "still here\n");
    ws.write(".env", "SECRET=1\n");
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), "outside\n").unwrap();
    std::os::unix::fs::symlink(outside.path(), ws.path().join("link.txt")).unwrap();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();

    let r = call(&client, "bash", json!({"command": "shred -u canary.txt"})).await;
    let t = text_of(&r);
    assert_eq!(r.is_error, Some(true));
    assert!(t.contains("NOT run") && t.contains("rule `shred`"), "{t}");
    assert_eq!(ws.read("canary.txt"), "still here\n");

    // Without elicitation support the `ask` is refused with the reason.
    let r = call(
        &client,
        "bash",
        json!({"command": "python3 -c 'open(\"made.txt\",\"w\")'"}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("needs human approval") && text_of(&r).contains("inline-code"),
        "{}",
        text_of(&r)
    );
    assert!(!ws.path().join("made.txt").exists());

    let outside_path = outside.path().to_str().unwrap();
    for (tool, args, expect) in [
        (
            "read",
            json!({"path": "../../etc/passwd"}),
            "outside the workspace",
        ),
        (
            "read",
            json!({"path": outside_path}),
            "outside the workspace",
        ),
        ("read", json!({"path": "link.txt"}), "outside the workspace"),
        ("read", json!({"path": ".env"}), "protected path"),
        (
            "edit",
            json!({"path": ".env", "old_text": "SECRET=1", "new_text": "SECRET=2"}),
            "protected path",
        ),
        (
            "edit",
            json!({"path": "link.txt", "old_text": "outside", "new_text": "x"}),
            "outside the workspace",
        ),
        (
            "edit",
            json!({"path": "../escape.txt", "old_text": "", "new_text": "x"}),
            "outside the workspace",
        ),
    ] {
        let r = call(&client, tool, args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{tool} {args}");
        assert!(
            text_of(&r).contains(expect),
            "{tool} {args}: {}",
            text_of(&r)
        );
    }
    assert_eq!(ws.read(".env"), "SECRET=1\n");
    assert_eq!(
        std::fs::read_to_string(outside.path()).unwrap(),
        "outside\n"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bash_children_do_not_see_denied_environment_variables() {
    let ws = Workspace::new();
    let cmd = tokio::process::Command::new(bin());
    let mut cmd = cmd;
    cmd.arg("--workspace")
        .arg(ws.path())
        .args(["serve", "--stdio"])
        .current_dir(ws.path())
        .env_remove("PI_MCP_STATE_URL")
        .env("ANTHROPIC_API_KEY", "sk-test-secret")
        .env("HARMLESS_VAR", "visible")
        .kill_on_drop(true);
    let transport = rmcp::transport::TokioChildProcess::new(cmd).unwrap();
    let client = rmcp::ServiceExt::serve((), transport).await.unwrap();
    let r = call(
        &client,
        "bash",
        json!({"command": "echo key=${ANTHROPIC_API_KEY:-unset} other=$HARMLESS_VAR"}),
    )
    .await;
    assert!(
        text_of(&r).contains("key=unset other=visible"),
        "{}",
        text_of(&r)
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn prompts_are_listed_and_rendered_with_arguments() {
    let ws = Workspace::new();
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    let prompts = client.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"sre") && names.contains(&"data_ghost"),
        "{names:?}"
    );
    let sre = prompts.iter().find(|p| p.name == "sre").unwrap();
    let args = sre.arguments.as_ref().unwrap();
    assert!(
        args.iter()
            .any(|a| a.name == "incident" && a.required == Some(true))
    );

    let mut params = rmcp::model::GetPromptRequestParams::new("sre");
    let mut map = serde_json::Map::new();
    map.insert("incident".into(), "checkout 5xx spike".into());
    map.insert("window".into(), "2h".into());
    params.arguments = Some(map);
    let got = client.get_prompt(params).await.unwrap();
    let text = serde_json::to_string(&got.messages).unwrap();
    assert!(
        text.contains("checkout 5xx spike") && text.contains("the last 2h"),
        "{text}"
    );
    assert!(text.contains("Verify") && text.contains("health check"));

    let missing = client
        .get_prompt(rmcp::model::GetPromptRequestParams::new("sre"))
        .await;
    assert!(missing.is_err(), "a missing required argument is an error");

    // A user's own prompts directory overrides the built-ins without recompiling.
    ws.write(
        "prompts/custom.md",
        "---\nname: custom\ndescription: mine\narguments:\n  - name: x\n---\nHello {{x}}\n",
    );
    let client2 = spawn_stdio(ws.path(), &[]).await.unwrap();
    let names: Vec<String> = client2
        .list_all_prompts()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["custom"]);
    client.cancel().await.unwrap();
    client2.cancel().await.unwrap();
}

#[tokio::test]
async fn resources_list_the_policy_and_reports() {
    let ws = Workspace::new();
    ws.write("reports/db/latest.md", "# Report\n");
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    let resources = client.list_all_resources().await.unwrap();
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert!(uris.contains(&"pi-mcp://policy"), "{uris:?}");
    let report = uris
        .iter()
        .find(|u| u.ends_with("reports/db/latest.md"))
        .expect("report listed");
    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(*report))
        .await
        .unwrap();
    assert!(serde_json::to_string(&read).unwrap().contains("# Report"));
    let policy = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "pi-mcp://policy",
        ))
        .await
        .unwrap();
    assert!(
        serde_json::to_string(&policy)
            .unwrap()
            .contains("rm-root-or-home")
    );
    let outside = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "file:///etc/passwd",
        ))
        .await;
    assert!(outside.is_err());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn every_call_is_in_the_audit_log() {
    let ws = Workspace::new();
    ws.write("a.txt", "a\n");
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    call(&client, "read", json!({"path": "a.txt"})).await;
    call(
        &client,
        "bash",
        json!({"command": "echo token=abc123secret"}),
    )
    .await;
    call(&client, "bash", json!({"command": "shred x"})).await;
    call(&client, "read", json!({"path": ".env"})).await;
    client.cancel().await.unwrap();
    // The server flushes the log when the session ends; give the process a moment to exit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = std::process::Command::new(bin())
        .args([
            "--workspace",
            ws.path().to_str().unwrap(),
            "audit",
            "--json",
            "--tail",
            "50",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let summary: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["tool"].as_str().unwrap().to_string(),
                e["decision"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("read", "allow"),
        ("bash", "allow"),
        ("bash", "deny"),
        ("read", "deny"),
    ] {
        assert!(
            summary.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} missing from {summary:?}"
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("abc123secret"), "secrets are redacted");
    let shred = entries
        .iter()
        .find(|e| e["decision"] == "deny" && e["tool"] == "bash")
        .unwrap();
    assert_eq!(shred["outcome"], "denied");
    assert!(shred["reasons"].to_string().contains("shred"));
    assert!(shred["duration_ms"].as_i64().is_some() && shred["ts"].as_str().unwrap().contains('T'));
}

#[tokio::test]
async fn garbage_on_stdin_does_not_stop_the_server() {
    use std::io::Write;
    let ws = Workspace::new();
    let mut child = std::process::Command::new(bin())
        .args([
            "--workspace",
            ws.path().to_str().unwrap(),
            "serve",
            "--stdio",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    writeln!(stdin, "{init}").unwrap();
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc":"2.0","method":"notifications/initialized"})
    )
    .unwrap();
    writeln!(stdin, "this is not json").unwrap();
    writeln!(stdin, "{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":").unwrap();
    writeln!(stdin, "{}", json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"nope","arguments":{}}})).unwrap();
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc":"2.0","id":4,"method":"tools/list"})
    )
    .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exits 0 when stdin closes");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"id\":4") && stdout.contains("\"bash\""),
        "still serving after garbage: {stdout}"
    );
    assert!(stdout.contains("unknown tool `nope`"), "{stdout}");
}
