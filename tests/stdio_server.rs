//! The built binary over stdio, driven by rmcp's client: initialize and tools/list, `bash`
//! (output, exit codes, timeouts, long output, denied commands, environment), prompts,
//! resources, the audit log, and garbage on stdin.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{
    Workspace, audit_entries, call, initialize, spawn_stdio, spawn_stdio_env, stdio_child, text_of,
};

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
    assert_eq!(
        names,
        [
            "bash",
            "cloudwatch",
            "edit",
            "ghost",
            "notify",
            "read",
            "sql"
        ]
    );
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
        json!({"command": "sleep 30.4159 & wait", "timeout_secs": 1}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("Timed out after 1 s"),
        "{}",
        text_of(&r)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // The child's own pid is a pid of its namespace: find it on the host by its command line.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let dir = e.path();
            let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
            cmdline == b"sleep\x0030.4159\x00" && !stat.contains(") Z ")
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        survivors.is_empty(),
        "the sleep child survived the timeout: {survivors:?}"
    );

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
async fn denied_commands_do_not_run() {
    let ws = Workspace::new();
    ws.write("canary.txt", "still here\n");
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

    client.cancel().await.unwrap();
}

#[tokio::test]
async fn bash_children_do_not_see_denied_environment_variables() {
    let ws = Workspace::new();
    let env = [
        ("ANTHROPIC_API_KEY", "sk-test-secret"),
        ("HARMLESS_VAR", "visible"),
    ];
    let client = spawn_stdio_env(ws.path(), &env).await.unwrap();
    let command = "echo key=${ANTHROPIC_API_KEY:-unset} other=$HARMLESS_VAR";
    let r = call(&client, "bash", json!({ "command": command })).await;
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

/// More report files than the listing's cap (1000): the newest runs and every `latest.md` stay
/// listed, the oldest runs are the ones left out.
#[tokio::test]
async fn resources_keep_the_newest_reports_past_the_cap() {
    let ws = Workspace::new();
    let runs = 1100;
    for i in 0..runs {
        // Stamps in the ghost's format, one minute apart, created oldest last.
        let stamp = format!(
            "20260101T{:02}{:02}00.000Z",
            (runs - 1 - i) / 60,
            (runs - 1 - i) % 60
        );
        ws.write(&format!("reports/shop/{stamp}/report.md"), "");
    }
    ws.write("reports/shop/latest.md", "# newest\n");
    ws.write("reports/zoo/latest.md", "# zoo\n");
    let client = spawn_stdio(ws.path(), &[]).await.unwrap();
    let resources = client.list_all_resources().await.unwrap();
    let reports: Vec<&str> = resources
        .iter()
        .map(|r| r.uri.as_str())
        .filter(|u| u.starts_with("file://"))
        .collect();
    assert_eq!(reports.len(), 1000, "the cap still applies");
    assert!(
        reports[0].ends_with("reports/shop/latest.md"),
        "{:?}",
        &reports[..3]
    );
    assert!(
        reports[1].ends_with("reports/zoo/latest.md"),
        "{:?}",
        &reports[..3]
    );
    assert!(
        reports[2].ends_with("reports/shop/20260101T181900.000Z/report.md"),
        "the newest run comes next: {:?}",
        &reports[..3]
    );
    assert!(
        !reports.iter().any(|u| u.contains("20260101T000000.000Z")),
        "the oldest run is the one left out"
    );
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
    let entries = audit_entries(ws.path(), &[]);
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
    let text = serde_json::to_string(&entries).unwrap();
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
    let mut child = stdio_child(ws.path(), &[], &[], std::process::Stdio::null());
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

/// Runs `serve --stdio`, writes `lines`, closes stdin, and returns the exit status with every
/// JSON line the server wrote.
fn raw_stdio(ws: &Workspace, lines: &[Value]) -> (std::process::ExitStatus, Vec<Value>, String) {
    use std::io::Write;
    let mut child = stdio_child(ws.path(), &[], &[], std::process::Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let replies = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (
        out.status,
        replies,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn reply_to(replies: &[Value], id: Value) -> &Value {
    replies
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no reply with id {id}: {replies:#?}"))
}

#[tokio::test]
async fn requests_with_badly_shaped_params_are_answered_with_their_id() {
    let ws = Workspace::new();
    let (status, replies, stderr) = raw_stdio(
        &ws,
        &[
            initialize(1),
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":["bash"]}),
            json!({"jsonrpc":"2.0","id":"eight","method":"tools/call","params":{"name":"read","arguments":{},"_meta":"x"}}),
            json!({"jsonrpc":"2.0","id":9,"method":"prompts/get","params":{"name":5}}),
            json!({"jsonrpc":"2.0","id":10,"method":"no/such/method","params":[1]}),
            json!({"jsonrpc":"1.0","id":11,"method":"tools/list"}),
            json!({"jsonrpc":"2.0","id":12,"method":"tools/list"}),
        ],
    );
    assert!(status.success(), "{stderr}");
    let code = |id: Value| reply_to(&replies, id)["error"]["code"].clone();
    let message = |id: Value| {
        reply_to(&replies, id)["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(code(json!(7)), -32602);
    assert!(
        message(json!(7)).contains("tools/call"),
        "{}",
        message(json!(7))
    );
    assert_eq!(code(json!("eight")), -32602);
    assert!(
        message(json!("eight")).contains("params._meta"),
        "{}",
        message(json!("eight"))
    );
    assert_eq!(
        code(json!(9)),
        -32602,
        "a known method with bad params is not -32601"
    );
    assert!(
        message(json!(9)).contains("params.name"),
        "{}",
        message(json!(9))
    );
    assert_eq!(code(json!(10)), -32601);
    assert_eq!(code(json!(11)), -32600);
    assert!(reply_to(&replies, json!(12))["result"]["tools"].is_array());
    assert!(
        replies.iter().all(|r| r.get("id").is_some()),
        "every answer names its request: {replies:#?}"
    );
}

#[tokio::test]
async fn notifications_and_responses_before_initialize_do_not_end_the_server() {
    let ws = Workspace::new();
    let (status, replies, stderr) = raw_stdio(
        &ws,
        &[
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}),
            json!({"jsonrpc":"2.0","id":99,"result":{}}),
            json!({"jsonrpc":"2.0","id":98,"error":{"code":-1,"message":"stray"}}),
            initialize(1),
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            json!({"jsonrpc":"2.0","id":97,"result":{}}),
            json!({"jsonrpc":"2.0","id":2,"method":"ping"}),
            json!({"jsonrpc":"2.0","id":3,"method":"tools/list"}),
        ],
    );
    assert!(status.success(), "exit {status}: {stderr}");
    assert_eq!(
        reply_to(&replies, json!(1))["result"]["serverInfo"]["name"],
        "pi-mcp"
    );
    assert_eq!(reply_to(&replies, json!(2))["result"], json!({}));
    assert!(reply_to(&replies, json!(3))["result"]["tools"].is_array());
    assert!(
        stderr.contains("ignoring a notification sent before `initialize`"),
        "{stderr}"
    );
}

/// `serve` tells a human at a terminal what it waits for (on stderr); a client on a pipe, as
/// every MCP host is, sees nothing of it on either stream.
#[tokio::test]
async fn no_terminal_hint_when_stdin_is_a_pipe() {
    use std::io::Write;
    let ws = Workspace::new();
    let mut child = support::serve_child(
        ws.path(),
        &[],
        &[],
        &[("RUST_LOG", "pi_mcp=info")],
        std::process::Stdio::piped(),
    );
    let mut stdin = child.stdin.take().unwrap();
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    writeln!(stdin, "{init}").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exits 0 when stdin closes");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("\"id\":1"), "answered initialize: {stdout}");
    let hint = pi_mcp::server::STDIN_TERMINAL_HINT;
    assert!(!stderr.contains("waiting for an MCP client"), "{stderr}");
    assert!(!stderr.contains(hint) && !stdout.contains(hint), "{stderr}");
    // The serve log still goes to stderr, so the check above looked at a live stream.
    assert!(stderr.contains("stdio session ended"), "{stderr}");
}
