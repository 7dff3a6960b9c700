//! How `serve --stdio` ends: a signal or the end of stdin before any session, a kill right
//! after an answer (nothing answered goes unaudited), and a client that stops reading.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Workspace, audit_entries, initialize, send_line, stdio_child};

/// Ctrl-C (SIGINT) or Ctrl-D (stdin closed) while `serve` still waits for a client's
/// `initialize` ends it at once with exit 0: a human who typed `pi-mcp serve` to try it gets out
/// the way the hint says, without an error.
#[tokio::test]
async fn sigint_or_eof_before_initialize_stops_serve_cleanly() {
    let ws = Workspace::new();
    let spawn = || {
        support::serve_child(
            ws.path(),
            &[],
            &[],
            &[("RUST_LOG", "pi_mcp=debug")],
            std::process::Stdio::piped(),
        )
    };
    // SIGINT with stdin still open: nothing else would end the wait.
    let mut child = spawn();
    let stdin = child.stdin.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    // Signal only once serve handles signals (before that, SIGINT kills it as any program).
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let up = lines
        .by_ref()
        .any(|l| l.is_ok_and(|l| l.contains("signal handlers installed")));
    assert!(up, "serve started");
    let status = signal_and_wait(
        &mut child,
        nix::sys::signal::Signal::SIGINT,
        Duration::from_secs(10),
        "serve ignored SIGINT while waiting for initialize",
    )
    .await;
    drop(stdin);
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("shutting down on signal")),
        "{rest:?}"
    );
    assert!(!rest.iter().any(|l| l.contains("error")), "{rest:?}");

    // Stdin closed before any request.
    let mut child = spawn();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(!stderr.contains("pi-mcp: error"), "{stderr}");
    assert!(stderr.contains("stdin closed before a client"), "{stderr}");
}

/// With `audit_before_answer`, a call's audit rows are committed before its answer leaves: a
/// server killed (SIGKILL) the moment it answered has the calls in its audit log.
#[test]
fn an_answered_call_is_in_the_audit_log_even_if_the_server_is_killed_right_after() {
    use std::io::{BufRead, BufReader, Write};
    let ws = Workspace::new();
    ws.write("note.txt", "hello\n");
    let policy = ws.write("audit-policy.json", r#"{"audit_before_answer": true}"#);
    let mut child = stdio_child(
        ws.path(),
        &["--policy", policy.to_str().unwrap()],
        &[],
        std::process::Stdio::null(),
    );
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut send = |v: Value| writeln!(stdin, "{v}").unwrap();
    send(
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "killer", "version": "1"}}}),
    );
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    for id in 1..=3 {
        send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": "read", "arguments": {"path": "note.txt"}}}));
    }
    let mut answered = 0;
    let mut line = String::new();
    while answered < 3 {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the server ended early"
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["id"].as_i64().is_some_and(|id| id >= 1) {
            answered += 1;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let reads = audit_entries(ws.path(), &[])
        .into_iter()
        .filter(|e| e["tool"] == "read" && e["client"] == "killer")
        .count();
    assert_eq!(reads, 3, "every answered call was already audited");
}

/// Stdin closing while calls run: every call still running is answered before the server
/// exits, except one the client cancelled, whose answer is dropped. Plain `tools/call` lines
/// take the stdio layer's own lane (`server/stdio/direct.rs`); lines naming a protocol version
/// in `_meta` go through rmcp's dispatch. Both behave the same.
#[test]
fn calls_running_when_stdin_closes_are_answered_unless_cancelled() {
    use std::io::{BufRead, BufReader};
    let ws = Workspace::new();
    let mut child = stdio_child(ws.path(), &[], &[], std::process::Stdio::null());
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    send_line(&mut stdin, initialize(0));
    support::reply(&mut stdout, 0);
    send_line(
        &mut stdin,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    // One round trip after `initialized`: the session is up, and with it the lane.
    send_line(
        &mut stdin,
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    );
    support::reply(&mut stdout, 1);
    let sleeper = |id: u64, word: &str, meta: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "bash", "arguments": {"command": format!("sleep 1; echo {word}")},
            "_meta": meta}})
    };
    let rmcp = json!({"io.modelcontextprotocol/protocolVersion": "2025-11-25"});
    for (id, word, meta) in [
        (2, "dropped", json!({})),
        (3, "lane", json!({"progressToken": "p3"})),
        (4, "dropped", rmcp.clone()),
        (5, "dispatch", rmcp),
    ] {
        send_line(&mut stdin, sleeper(id, word, meta));
    }
    for id in [2, 4] {
        send_line(
            &mut stdin,
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": id, "reason": "test"}}),
        );
    }
    drop(stdin);
    let rest: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert!(child.wait().unwrap().success());
    for (id, word) in [(3, "lane"), (5, "dispatch")] {
        let answer = rest
            .iter()
            .find(|v| v["id"] == id)
            .unwrap_or_else(|| panic!("call {id} answered before the exit: {rest:#?}"));
        assert!(answer["result"].to_string().contains(word), "{answer}");
    }
    assert!(
        !rest.iter().any(|v| v["id"] == 2 || v["id"] == 4),
        "a cancelled call is not answered: {rest:#?}"
    );
}

/// A client that stops reading stdout while answers are still queued does not keep the server
/// from exiting: on SIGTERM it waits a bounded time for stdout, then drops what is left and
/// exits (a writer that waited for stdout forever would hang here).
#[tokio::test]
async fn a_client_that_stops_reading_does_not_keep_the_server_from_exiting() {
    let ws = Workspace::new();
    // About 50 KiB per answer: a few answers fill the pipe.
    let line = "x".repeat(99) + "\n";
    ws.write("big.txt", line.repeat(500));
    let mut child = stdio_child(ws.path(), &[], &[], std::process::Stdio::null());
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    send_line(&mut stdin, initialize(0));
    send_line(
        &mut stdin,
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    for id in 1..=40 {
        send_line(
            &mut stdin,
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "read", "arguments": {"path": "big.txt"}}}),
        );
    }
    // Every call is audited once answered (queued): then the answers wait on a full pipe.
    support::wait_until(Duration::from_secs(60), "the calls answered", || {
        audit_entries(ws.path(), &[])
            .iter()
            .filter(|e| e["tool"] == "read")
            .count()
            >= 40
    })
    .await;
    let status = signal_and_wait(
        &mut child,
        nix::sys::signal::Signal::SIGTERM,
        Duration::from_secs(60),
        "the server did not exit while its client stopped reading",
    )
    .await;
    drop((stdin, stdout));
    assert!(status.code().is_some(), "it exited by itself: {status:?}");
}

/// Sends `signal` to `child` and waits for it to exit, failing with `what` after `within`.
async fn signal_and_wait(
    child: &mut std::process::Child,
    signal: nix::sys::signal::Signal,
    within: Duration,
    what: &str,
) -> std::process::ExitStatus {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid"));
    nix::sys::signal::kill(pid, signal).expect("signal the server");
    let mut status = None;
    support::wait_until(within, what, || {
        status = child.try_wait().expect("wait for the server");
        status.is_some()
    })
    .await;
    status.expect("exited")
}
