//! A client whose user answers every approval request (an MCP elicitation form, whether the
//! server sends it in the call or as an input-required result) with `approve`, and keeps the
//! questions it was asked and any log messages it received.

// MCP logging is deprecated (SEP-2577), but a server must still not send unrequested logs.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};

use rmcp::model::{
    ClientCapabilities, ClientConfig, ElicitRequestParams, ElicitResult, ElicitationAction,
    Implementation, LoggingMessageNotificationParam,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ClientHandler, ErrorData, RoleClient};
use serde_json::json;

#[derive(Clone)]
pub struct User {
    pub approve: bool,
    /// Whether the client declares elicitation (without it, nobody can be asked).
    pub elicits: bool,
    /// The messages of the forms the user was shown.
    pub asked: Arc<Mutex<Vec<String>>>,
    /// `notifications/message` received.
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl User {
    pub fn new(approve: bool) -> Self {
        User {
            approve,
            elicits: true,
            asked: Arc::default(),
            logs: Arc::default(),
        }
    }
}

impl ClientHandler for User {
    fn get_info(&self) -> ClientConfig {
        let caps = if self.elicits {
            ClientCapabilities::builder().enable_elicitation().build()
        } else {
            ClientCapabilities::default()
        };
        ClientConfig::new(caps, Implementation::new("approving-test-client", "1.0.0"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams { message, .. } = &request {
            self.asked.lock().unwrap().push(message.clone());
        }
        Ok(ElicitResult::new(ElicitationAction::Accept)
            .with_content(json!({"approve": self.approve})))
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.logs.lock().unwrap().push(params.data.to_string());
    }
}
