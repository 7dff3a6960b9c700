//! Secrets never reach the model through a tool result: the real binary over stdio, started
//! with random canary values in its secret variables and a temporary HOME whose
//! `~/.aws/credentials` holds a random fake key. A `read` and a `bash` that surface those values
//! come back masked with a `[N secrets redacted]` line, and the audit log holds no canary.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Workspace, audit_entries, call, spawn_stdio_env, text_of};

/// A random value no output could contain by chance.
fn canary(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("random bytes");
    format!("{prefix}{}", hex::encode(bytes))
}

#[tokio::test]
async fn secrets_are_masked_in_results_and_the_audit_log() {
    let ws = Workspace::new();
    let home = tempfile::tempdir().expect("temp home");
    let signing = canary("sig");
    let token = canary("tok");
    let hook_token = canary("Hook");
    let aws_secret = canary("aws");
    let webhook = format!("http://127.0.0.1:9/services/T0TEST/B0TEST/{hook_token}");
    std::fs::create_dir_all(home.path().join(".aws")).expect("mkdir ~/.aws");
    std::fs::write(
        home.path().join(".aws/credentials"),
        format!("[default]\naws_access_key_id = AKIATESTTESTTEST0000\naws_secret_access_key = {aws_secret}\n"),
    )
    .expect("write credentials");
    ws.write(
        "notes/deploy.log",
        format!(
            "signing secret {signing}\nserver token {token}\nwebhook {webhook}\n\
             hook token alone {hook_token}\naws {aws_secret}\nnothing secret here\n"
        ),
    );
    let home_dir = home.path().to_string_lossy().into_owned();
    let client = spawn_stdio_env(
        ws.path(),
        &[
            ("HOME", &home_dir),
            ("SLACK_SIGNING_SECRET", &signing),
            ("SLACK_WEBHOOK_URL", &webhook),
            ("PI_MCP_TOKEN", &token),
        ],
    )
    .await
    .expect("server starts");
    let canaries = [&signing, &token, &hook_token, &aws_secret];
    let clean = |what: &str, text: &str| {
        for c in canaries {
            assert!(!text.contains(c.as_str()), "{what} leaks {c}:\n{text}");
        }
    };

    let read = call(&client, "read", json!({"path": "notes/deploy.log"})).await;
    let text = text_of(&read);
    clean("read", &text);
    assert!(text.contains("[5 secrets redacted]"), "{text}");
    assert!(text.contains("[REDACTED:SLACK_SIGNING_SECRET]"), "{text}");
    assert!(text.contains("[REDACTED:~/.aws/credentials]"), "{text}");
    assert!(text.contains("nothing secret here"), "{text}");

    let cat = call(&client, "bash", json!({"command": "cat notes/deploy.log"})).await;
    let text = text_of(&cat);
    clean("bash cat", &text);
    assert!(text.contains("[5 secrets redacted]"), "{text}");

    let echo = call(
        &client,
        "bash",
        json!({"command": format!("echo {signing} {aws_secret}; echo password=hunter22 >&2")}),
    )
    .await;
    let text = text_of(&echo);
    clean("bash echo", &text);
    assert!(text.contains("[3 secrets redacted]"), "{text}");

    // An error message is a result too.
    let missing = call(&client, "read", json!({"path": format!("{token}.txt")})).await;
    assert_eq!(missing.is_error, Some(true));
    clean("read error", &text_of(&missing));

    client.cancel().await.expect("cancel");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let entries = audit_entries(ws.path(), &[]);
    let log = serde_json::to_string(&entries).expect("audit JSON");
    clean("audit log", &log);
    let counts: Vec<(String, i64)> = entries
        .iter()
        .map(|e| {
            (
                e["tool"].as_str().unwrap_or_default().to_string(),
                e["redactions"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("read".to_string(), 5),
            ("bash".to_string(), 5),
            ("bash".to_string(), 3),
            ("read".to_string(), 1)
        ],
        "{log}"
    );
}
