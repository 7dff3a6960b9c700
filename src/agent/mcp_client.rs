//! The agent's hands: an MCP client of pi-mcp's own server, connected in-process over a
//! `tokio::io::duplex` pipe (so every call passes the same guard, approvals and audit as an
//! outside client's), plus external MCP servers from a Claude Desktop style config file
//! (`{"mcpServers": {"name": {"command", "args", "env"}}}`) launched as child processes, their
//! tools named `<server>__<tool>` so they cannot clash with the built-in ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, CancelledNotificationParam,
    ClientRequest, ContentBlock, RequestId, ServerResult,
};
use rmcp::service::{PeerRequestOptions, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{Peer, RoleClient, ServiceExt};
use serde::Deserialize;

use super::progress::{AgentClient, ProgressInbox, ProgressUpdate};
use super::provider::ToolSpec;
use crate::app::App;
use crate::server::call_meta::{self, CallMeta};

/// Bytes buffered in each direction of the in-process pipe.
const DUPLEX_BUFFER: usize = 256 * 1024;
/// Separator between an external server's name and its tool's name.
pub const NAMESPACE_SEPARATOR: &str = "__";
/// The longest tool name both model APIs accept.
const MAX_TOOL_NAME: usize = 64;

/// Why the tools could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("cannot connect to pi-mcp's own server in-process: {0}")]
    Local(String),
    #[error("{file}: {detail}")]
    Config { file: PathBuf, detail: String },
    #[error("{file}: server `{server}`: {detail}")]
    External {
        file: PathBuf,
        server: String,
        detail: String,
    },
}

/// The `mcpServers` config file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct McpConfig {
    mcp_servers: BTreeMap<String, ServerEntry>,
}

#[derive(Debug, Deserialize)]
struct ServerEntry {
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

/// A tool the model may call, and where it lives.
#[derive(Debug, Clone)]
pub struct AgentTool {
    pub spec: ToolSpec,
    /// Its name on its server.
    pub remote_name: String,
    /// Declared read-only (`readOnlyHint`); tools without the hint count as state-changing.
    pub read_only: bool,
    /// A tool of pi-mcp's own in-process server (not of an attached external server).
    pub local: bool,
    server: usize,
}

/// A tool call's outcome in text, as the model will see it.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    pub text: String,
    pub is_error: bool,
    /// The progress notifications the call sent while it ran (for the transcript).
    pub progress: Vec<ProgressUpdate>,
    /// What pi-mcp's own server said about the call (decision, exit status, approval).
    pub meta: Option<CallMeta>,
}

impl CallOutcome {
    /// An outcome without progress.
    pub fn new(text: impl Into<String>, is_error: bool) -> Self {
        CallOutcome {
            text: text.into(),
            is_error,
            progress: Vec::new(),
            meta: None,
        }
    }
}

type Connection = RunningService<RoleClient, AgentClient>;

/// Every connected server and the tools they offer.
pub struct ToolBox {
    connections: Vec<Connection>,
    tools: Vec<AgentTool>,
}

fn client_info() -> AgentClient {
    AgentClient::default()
}

impl ToolBox {
    /// Connects to the app's own server (serving the run `requested_by` names) and to every
    /// server in `config` (if given).
    pub async fn connect(
        app: &App,
        config: Option<&Path>,
        requested_by: &str,
    ) -> Result<ToolBox, McpError> {
        let (client_io, server_io) = tokio::io::duplex(DUPLEX_BUFFER);
        // The run's own server: its approvals name the run that asked.
        let server = app.server().for_run(requested_by);
        tokio::spawn(async move {
            match server.serve(server_io).await {
                Ok(running) => {
                    let _ = running.waiting().await;
                }
                Err(e) => tracing::error!("agent: in-process server failed to start: {e}"),
            }
        });
        let local = client_info()
            .serve(client_io)
            .await
            .map_err(|e| McpError::Local(e.to_string()))?;
        let mut toolbox = ToolBox {
            connections: Vec::new(),
            tools: Vec::new(),
        };
        toolbox.add(local, None).await.map_err(McpError::Local)?;
        if let Some(file) = config {
            for (name, entry) in read_config(file)? {
                let external = |detail: String| McpError::External {
                    file: file.to_path_buf(),
                    server: name.clone(),
                    detail,
                };
                // An external server sees pi-mcp's environment minus what the policy keeps
                // from every child (API keys, tokens, database URLs), plus its own `env`.
                let mut cmd = tokio::process::Command::new(&entry.command);
                cmd.env_clear()
                    .envs(
                        std::env::vars_os().filter(|(k, _)| {
                            k.to_str().is_some_and(|k| !app.guard().env_denied(k))
                        }),
                    )
                    .args(&entry.args)
                    .envs(&entry.env)
                    .kill_on_drop(true);
                let transport = TokioChildProcess::new(cmd)
                    .map_err(|e| external(format!("cannot start `{}`: {e}", entry.command)))?;
                let running = client_info()
                    .serve(transport)
                    .await
                    .map_err(|e| external(format!("MCP initialize failed: {e}")))?;
                toolbox.add(running, Some(&name)).await.map_err(external)?;
            }
        }
        Ok(toolbox)
    }

    async fn add(&mut self, conn: Connection, namespace: Option<&str>) -> Result<(), String> {
        let listed = conn
            .list_all_tools()
            .await
            .map_err(|e| format!("tools/list failed: {e}"))?;
        let server = self.connections.len();
        for tool in listed {
            let name = match namespace {
                Some(ns) => model_name(ns, &tool.name),
                None => tool.name.to_string(),
            };
            if self.tools.iter().any(|t| t.spec.name == name) {
                tracing::warn!("agent: skipping duplicate tool name `{name}`");
                continue;
            }
            // An external server's own read-only claim is not trusted: its tools count as
            // changing things, so dry runs refuse them and `remediate: false` asks first.
            let read_only = namespace.is_none()
                && tool
                    .annotations
                    .as_ref()
                    .and_then(|a| a.read_only_hint)
                    .unwrap_or(false);
            self.tools.push(AgentTool {
                spec: ToolSpec {
                    name,
                    description: tool.description.as_deref().unwrap_or_default().to_string(),
                    input_schema: serde_json::Value::Object((*tool.input_schema).clone()),
                },
                remote_name: tool.name.to_string(),
                read_only,
                local: namespace.is_none(),
                server,
            });
        }
        self.connections.push(conn);
        Ok(())
    }

    /// The tools as the model sees them.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|t| t.spec.clone()).collect()
    }

    pub fn find(&self, name: &str) -> Option<&AgentTool> {
        self.tools.iter().find(|t| t.spec.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.tools.iter().map(|t| t.spec.name.as_str()).collect()
    }

    /// A handle that can call `tool` from another task.
    pub fn caller(&self, tool: &AgentTool) -> Option<Caller> {
        let conn = self.connections.get(tool.server)?;
        Some(Caller {
            peer: conn.peer().clone(),
            inbox: conn.service().inbox.clone(),
            remote_name: tool.remote_name.clone(),
        })
    }

    /// Closes every connection (external servers are stopped).
    pub async fn close(self) {
        for conn in self.connections {
            let _ = conn.cancel().await;
        }
    }
}

/// Calls one tool on its server.
#[derive(Clone)]
pub struct Caller {
    peer: Peer<RoleClient>,
    inbox: ProgressInbox,
    remote_name: String,
}

impl Caller {
    /// Calls the tool with a progress token (rmcp gives every request one) and collects the
    /// progress the server reports under it.
    pub async fn call(&self, arguments: serde_json::Map<String, serde_json::Value>) -> CallOutcome {
        let mut params = CallToolRequestParams::new(self.remote_name.clone());
        params.arguments = Some(arguments);
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let handle = match self
            .peer
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await
        {
            Ok(h) => h,
            Err(e) => return CallOutcome::new(format!("The tool call failed: {e}"), true),
        };
        let token = handle.progress_token.clone();
        self.inbox.claim(&token, &self.remote_name);
        let mut abandoned = CancelOnDrop(Some((self.peer.clone(), handle.id.clone())));
        let response = handle.await_response().await;
        abandoned.0 = None;
        let progress = self.inbox.take(&token).await;
        let mut outcome = match response {
            Ok(ServerResult::CallToolResult(result)) => outcome_of(&result),
            Ok(other) => CallOutcome::new(
                format!(
                    "The tool call failed: the server answered with something other than a tool \
                     result ({})",
                    serde_json::to_string(&other).unwrap_or_default()
                ),
                true,
            ),
            Err(e) => CallOutcome::new(format!("The tool call failed: {e}"), true),
        };
        outcome.progress = progress;
        outcome
    }
}

/// Tells the server to stop a call whose caller went away (the run was interrupted or timed
/// out) before the result arrived, as rmcp's own `call_tool` does.
struct CancelOnDrop(Option<(Peer<RoleClient>, RequestId)>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some((peer, id)) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let reason = Some("the agent no longer waits for this call".to_string());
                let _ = peer
                    .notify_cancelled(CancelledNotificationParam::new(Some(id), reason))
                    .await;
            });
        }
    }
}

/// Text of a tool result: text blocks as they are, other content described in a line.
pub fn outcome_of(result: &CallToolResult) -> CallOutcome {
    let mut parts = Vec::new();
    for block in &result.content {
        match block {
            ContentBlock::Text(t) => parts.push(t.text.clone()),
            ContentBlock::Image(i) => parts.push(format!(
                "[image {} ({} bytes of base64) not shown]",
                i.mime_type,
                i.data.len()
            )),
            ContentBlock::Resource(r) => parts.push(format!(
                "[embedded resource: {}]",
                serde_json::to_string(r).unwrap_or_default()
            )),
            ContentBlock::Audio(_) => parts.push("[audio content not shown]".into()),
            ContentBlock::ResourceLink(r) => parts.push(format!("[resource link {}]", r.uri)),
            _ => parts.push("[content of an unknown kind not shown]".into()),
        }
    }
    if parts.is_empty()
        && let Some(s) = &result.structured_content
    {
        parts.push(s.to_string());
    }
    let mut outcome = CallOutcome::new(parts.join("\n"), result.is_error.unwrap_or(false));
    outcome.meta = call_meta::read(result);
    outcome
}

fn read_config(file: &Path) -> Result<BTreeMap<String, ServerEntry>, McpError> {
    let config_error = |detail: String| McpError::Config {
        file: file.to_path_buf(),
        detail,
    };
    let text = std::fs::read_to_string(file).map_err(|e| config_error(e.to_string()))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    let config: McpConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        config_error(format!(
            "at `{}`: {} (expected {{\"mcpServers\": {{\"name\": {{\"command\": ..., \"args\": [...], \"env\": {{...}}}}}}}})",
            e.path(),
            e.inner()
        ))
    })?;
    Ok(config.mcp_servers)
}

/// `<server>__<tool>`, keeping only the characters both model APIs accept in tool names.
pub fn model_name(server: &str, tool: &str) -> String {
    let raw = format!("{server}{NAMESPACE_SEPARATOR}{tool}");
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_TOOL_NAME)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_names_are_namespaced_and_valid_for_both_apis() {
        assert_eq!(model_name("github", "create_issue"), "github__create_issue");
        assert_eq!(model_name("my server", "a.b"), "my_server__a_b");
        assert_eq!(model_name(&"x".repeat(80), "t").len(), MAX_TOOL_NAME);
    }
}
