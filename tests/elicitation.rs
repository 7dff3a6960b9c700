//! `ask` decisions are resolved through MCP elicitation when the client declares it: the user
//! sees the command and the reasons; approving runs it, declining does not.

mod support;

use std::sync::{Arc, Mutex};

use rmcp::model::{
    ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult, ElicitationAction,
    Implementation,
};
use rmcp::service::RequestContext;
use rmcp::{ClientHandler, ErrorData, RoleClient};
use serde_json::json;
use support::{Workspace, call, spawn_stdio_with, text_of};

/// A client whose user answers every approval request with `approve`.
#[derive(Clone)]
struct Answering {
    approve: bool,
    seen: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler for Answering {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_elicitation().build(),
            Implementation::new("approving-test-client", "1.0.0"),
        )
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = &request {
            self.seen.lock().unwrap().push(message.clone());
        }
        Ok(ElicitResult::new(ElicitationAction::Accept)
            .with_content(json!({"approve": self.approve})))
    }
}

async fn client(
    ws: &Workspace,
    approve: bool,
) -> (
    rmcp::service::RunningService<RoleClient, Answering>,
    Arc<Mutex<Vec<String>>>,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = Answering {
        approve,
        seen: seen.clone(),
    };
    (
        spawn_stdio_with(ws.path(), &[], handler).await.unwrap(),
        seen,
    )
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
}
