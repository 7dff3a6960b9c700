//! `ask` decisions are resolved through MCP elicitation when the client declares it: the user
//! sees the command and the reasons; approving runs it, declining does not; either answer is
//! audited under an approval id.

mod support;

use std::sync::{Arc, Mutex};

use rmcp::RoleClient;
use serde_json::json;
use support::user::User;
use support::{Workspace, call, spawn_stdio_with, text_of};

async fn client(
    ws: &Workspace,
    approve: bool,
) -> (
    rmcp::service::RunningService<RoleClient, User>,
    Arc<Mutex<Vec<String>>>,
) {
    let user = User::new(approve);
    let seen = user.asked.clone();
    (spawn_stdio_with(ws.path(), &[], user).await.unwrap(), seen)
}

// `python3 -c` is rated `ask` (rule inline-code); the command itself is a harmless write.
const ASKING: &str = "python3 -c 'open(\"approved.txt\", \"w\").write(\"yes\")'";

#[tokio::test]
async fn an_approved_ask_runs() {
    let ws = Workspace::new();
    let (c, seen) = client(&ws, true).await;
    let r = call(&c, "bash", json!({"command": ASKING})).await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert_eq!(ws.read("approved.txt"), "yes");
    let asked = seen.lock().unwrap().join("\n");
    assert!(
        asked.contains(ASKING) && asked.contains("inline-code") && asked.contains("risk"),
        "{asked}"
    );
    c.cancel().await.unwrap();
    let id = approval_id(&ws).await;
    let steps = support::approval_steps(ws.path(), &id, 2).await;
    assert!(steps[0].contains("approved by the user"), "{steps:?}");
    assert!(steps[1].starts_with("used"), "{steps:?}");
}

/// The id of the one approval the audit log mentions (waiting for the server's writes).
async fn approval_id(ws: &Workspace) -> String {
    for _ in 0..150 {
        let entries = support::audit_entries(ws.path(), &[]);
        if let Some(e) = entries.iter().find(|e| e["tool"] == "approval") {
            return e["arguments"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no approval in the audit log");
}

#[tokio::test]
async fn a_declined_ask_does_not_run() {
    let ws = Workspace::new();
    let (c, seen) = client(&ws, false).await;
    let r = call(&c, "bash", json!({"command": ASKING})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("declined") && text_of(&r).contains("NOT run"),
        "{}",
        text_of(&r)
    );
    assert!(!ws.path().join("approved.txt").exists());
    assert_eq!(seen.lock().unwrap().len(), 1);
    // A plainly allowed command is never sent for approval.
    call(&c, "bash", json!({"command": "echo fine"})).await;
    assert_eq!(seen.lock().unwrap().len(), 1);
    c.cancel().await.unwrap();
    let id = approval_id(&ws).await;
    let steps = support::approval_steps(ws.path(), &id, 1).await;
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert!(steps[0].contains("denied by the user"), "{steps:?}");
}
