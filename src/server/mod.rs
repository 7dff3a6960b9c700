//! The MCP face of pi-mcp (rmcp): a thin handler that turns MCP requests into `tools::*` calls,
//! serves the prompts and resources, and runs over stdio or Streamable HTTP.

// MCP logging is deprecated by SEP-2577 but clients (and the conformance suite) still use it.
#![allow(deprecated)]

pub mod approval;
pub mod call_meta;
pub mod completions;
pub mod ghost_tool;
pub mod http;
pub mod live;
pub mod mrtr;
pub mod prompts;
pub mod resources;
pub mod schemas;
pub mod slack;
pub mod stdio;
pub mod subscriptions;
pub mod tasks;
pub mod tool_calls;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, CompleteRequestParams,
    CompleteResult, GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult,
    Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, LoggingLevel, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ServerCapabilities, ServerConfig, SetLevelRequestParams,
    SubscribeRequestParams, SubscriptionFilter, Tool, UnsubscribeRequestParams, UpdateTaskParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

use crate::store::AuditLog;
use crate::tools::ToolContext;

/// Everything a server session needs; cheap to clone (one per HTTP session).
#[derive(Clone)]
pub struct PiServer {
    pub tools: ToolContext,
    pub audit: AuditLog,
    pub prompts_dir: Option<PathBuf>,
    pub reports_dir: PathBuf,
    log_level: Arc<Mutex<LoggingLevel>>,
    /// The process-wide resource watcher (shared by every session).
    pub live: live::LiveResources,
    /// This session's `resources/subscribe` URIs ([`PiServer::for_session`] gives a new one).
    subscriptions: subscriptions::SessionSubscriptions,
    /// The process's long-running calls ([`tasks`]), shared by every session.
    tasks: tasks::Tasks,
    /// The requestState key and ledger of this process (shared by all sessions).
    mrtr: Arc<mrtr::StateKeeper>,
    /// The autonomous run this in-process server serves ([`PiServer::for_run`]): who its
    /// approvals say asked, known to the server rather than claimed by a client.
    pub run: Option<String>,
}

const INSTRUCTIONS: &str = "pi-mcp gives you guarded operations tools. `read` and `edit` work on files inside the \
workspace; `bash` runs shell commands after a policy check. A refused command names the rule that refused it: \
take another approach instead of rewording the same command. Prompts `sre` and `data_ghost` describe \
how to investigate an incident and how to analyse a database.";

/// The server face over an assembled application (kept here so `app` does not depend on the
/// faces above it).
impl crate::app::App {
    /// An MCP server handler over this application's tools (for stdio, HTTP or in-process use).
    pub fn server(&self) -> PiServer {
        PiServer::new(
            self.tools.clone(),
            self.audit.clone(),
            self.prompts_dir.clone(),
            self.reports_dir.clone(),
        )
    }
}

impl PiServer {
    pub fn new(
        tools: ToolContext,
        audit: AuditLog,
        prompts_dir: Option<PathBuf>,
        reports_dir: PathBuf,
    ) -> Self {
        PiServer {
            tools,
            audit,
            prompts_dir,
            reports_dir,
            log_level: Arc::new(Mutex::new(LoggingLevel::Info)),
            live: live::LiveResources::default(),
            subscriptions: subscriptions::SessionSubscriptions::default(),
            tasks: tasks::Tasks::default(),
            mrtr: Arc::new(mrtr::StateKeeper::new()),
            run: None,
        }
    }

    /// The handler an agent run connects to in-process: its approvals name `run` as the asker.
    pub fn for_run(self, run: &str) -> PiServer {
        PiServer {
            run: Some(run.to_string()),
            ..self
        }
    }

    /// A handler for one more session (HTTP makes one per session): everything shared but the
    /// session's own resource subscriptions.
    pub fn for_session(&self) -> PiServer {
        PiServer {
            subscriptions: subscriptions::SessionSubscriptions::default(),
            ..self.clone()
        }
    }

    /// Serves one MCP session over stdin/stdout until stdin closes or SIGINT/SIGTERM arrives;
    /// either way the audit log is flushed before returning. Every line passes the pre-check
    /// in [`stdio`] before rmcp sees it. Both also end the wait for a client's `initialize`
    /// quietly (exit 0): a human who typed `pi-mcp serve` and then Ctrl-C or Ctrl-D gets no
    /// error, and no session was ever started. The sandbox `probe` runs once the client's
    /// session is up (or its hold ends), so that it does not delay the answer to `initialize`;
    /// a server ending before any session waits for its report.
    pub async fn serve_stdio(self, probe: Option<crate::app::SandboxProbe>) -> anyhow::Result<()> {
        let audit = self.audit.clone();
        let stop = shutdown_signal()?;
        tokio::pin!(stop);
        let (input, output) = stdio_pipes();
        let versions = ServerHandler::supported_protocol_versions(&self).into_owned();
        tracing::debug!("stdio: signal handlers installed; waiting for a client's initialize");
        let transport = stdio::CheckedStdio::new(input, output, versions);
        let lane = transport.lane_slot();
        let running = tokio::select! {
            r = self.serve(transport) => match r {
                Ok(running) => running,
                Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => {
                    tracing::info!("stdin closed before a client initialized a session");
                    if let Some(p) = probe {
                        p.finish();
                    }
                    audit.flush().await;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            },
            _ = &mut stop => {
                tracing::info!("shutting down on signal (no client had initialized a session)");
                if let Some(p) = probe {
                    p.finish();
                }
                audit.flush().await;
                return Ok(());
            }
        };
        if let Some(p) = &probe {
            p.go();
        }
        if let Some(direct) =
            stdio::Lane::for_session(running.service().clone(), running.peer().clone())
        {
            let _ = lane.set(direct);
        }
        let token = running.cancellation_token();
        let waiting = running.waiting();
        tokio::pin!(waiting);
        let reason = tokio::select! {
            r = &mut waiting => r,
            _ = stop => {
                tracing::info!("shutting down on signal");
                token.cancel();
                if let Some(direct) = lane.get() {
                    direct.session().cancel();
                }
                waiting.await
            }
        };
        audit.flush().await;
        tracing::info!("stdio session ended: {reason:?}");
        Ok(())
    }
}

/// The line `serve` writes to stderr when stdin is a terminal: someone typed `pi-mcp serve` by
/// hand and would otherwise look at a silent program. Never on stdout (it belongs to MCP), and
/// not when a client drives stdin through a pipe.
pub const STDIN_TERMINAL_HINT: &str = "pi-mcp: serving MCP on stdin/stdout: waiting for an MCP client \
     (Claude Desktop, Claude Code, the MCP Inspector) to speak JSON-RPC on stdin, so nothing more \
     appears here; see \"The first five minutes\" in the README. Ctrl-C stops.";

/// What `serve --stdio` should say on stderr before it waits, given whether stdin is a terminal.
pub fn stdin_hint(stdin_is_terminal: bool) -> Option<&'static str> {
    stdin_is_terminal.then_some(STDIN_TERMINAL_HINT)
}

/// Resolves on SIGINT or SIGTERM; the handlers are installed when this is called, so a signal
/// that arrives before the future is polled is not lost.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    })
}

type BoxedRead = Box<dyn tokio::io::AsyncRead + Send + Unpin>;
type BoxedWrite = Box<dyn tokio::io::AsyncWrite + Send + Unpin>;

/// Stdin and stdout as non-blocking pipes when they are pipes (how MCP hosts start servers), so
/// a message does not take a trip through tokio's blocking thread pool; tokio's stdio otherwise
/// (a terminal, a file).
fn stdio_pipes() -> (BoxedRead, BoxedWrite) {
    use std::os::fd::AsFd;
    use tokio::net::unix::pipe;
    let input: BoxedRead = match std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(pipe::Receiver::from_owned_fd)
    {
        Ok(Ok(r)) => Box::new(r),
        _ => Box::new(tokio::io::stdin()),
    };
    let output: BoxedWrite = match std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(pipe::Sender::from_owned_fd)
    {
        Ok(Ok(w)) => Box::new(w),
        _ => Box::new(tokio::io::stdout()),
    };
    (input, output)
}

/// Every method that awaits boxes what it awaits: rmcp's per-request task holds the future of
/// whichever method it calls, so one large method made every request's task large (it was
/// 5 KiB, copied several times per call; issue 14).
impl ServerHandler for PiServer {
    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            tool_calls::definitions_for(&self.tools.guard),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tool_calls::definitions_for(&self.tools.guard)
            .into_iter()
            .find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // The tool futures are large (every tool's state machine); boxed, the task rmcp spawns
        // per request is small to create and move (issue 14: its copy was visible per call).
        // Only a client that declared tasks can get one: the others skip building the future.
        if tasks::client_declared(&context)
            && let Some(task) = Box::pin(self.tasks.maybe_start(self, &request, &context)).await
        {
            return Ok(CallToolResponse::Task(task));
        }
        let via = mrtr::ask_via(&context, &request);
        Box::pin(tool_calls::call(
            self,
            &request.name,
            request.arguments.unwrap_or_default(),
            context.peer,
            context.meta.get_progress_token(),
            via,
        ))
        .await
    }

    fn get_info(&self) -> ServerConfig {
        #[allow(deprecated)]
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .enable_logging()
            .enable_completions()
            .enable_tasks()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(
                Implementation::new("pi-mcp", env!("CARGO_PKG_VERSION"))
                    .with_title("pi-mcp: guarded operations tools"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut level) = self.log_level.lock() {
            *level = request.level;
        }
        tracing::info!("client set the log level to {:?}", request.level);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let prompts = prompts::load_all(self.prompts_dir.as_deref())
            .map_err(|e| ErrorData::internal_error(e, None))?;
        Ok(ListPromptsResult::with_all_items(
            prompts.iter().map(|p| p.to_mcp()).collect(),
        ))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let prompts = prompts::load_all(self.prompts_dir.as_deref())
            .map_err(|e| ErrorData::internal_error(e, None))?;
        let Some(prompt) = prompts.iter().find(|p| p.name == request.name) else {
            let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown prompt `{}`; available: {}",
                    request.name,
                    names.join(", ")
                ),
                None,
            ));
        };
        let args = request.arguments.unwrap_or_default();
        let args = Box::pin(resources::with_alert_context(self, &request.name, args)).await?;
        prompt
            .render(&args)
            .map(Into::into)
            .map_err(|e| ErrorData::invalid_params(e, None))
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        completions::complete(self, &request)
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        self.tasks.get(&request.task_id)
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let client = tasks::client_name(&context.peer);
        self.tasks.update(
            &self.audit,
            &request.task_id,
            request.input_responses,
            &client,
        )
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let client = tasks::client_name(&context.peer);
        self.tasks.cancel(&self.audit, &request.task_id, &client)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(resources::list(self)))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri == resources::APPROVALS_URI {
            return Box::pin(resources::read_approvals(self))
                .await
                .map(Into::into);
        }
        if request.uri.starts_with(crate::monitor::mcp::ALERTS_URI) {
            return Box::pin(resources::read_alerts(self, &request.uri))
                .await
                .map(Into::into);
        }
        resources::read(self, &request.uri).map(Into::into)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions
            .subscribe(self, context.peer, request.uri);
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions.unsubscribe(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(subscriptions::accepted_filter(requested))
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        Box::pin(subscriptions::listen(self, context)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_on_stdin_gets_one_line_that_says_what_serve_waits_for() {
        let hint = stdin_hint(true).expect("a terminal gets the hint");
        assert!(!hint.contains('\n'), "one line: {hint}");
        assert!(hint.starts_with("pi-mcp: "), "{hint}");
        for part in [
            "waiting for an MCP client",
            "stdin",
            "Inspector",
            "README",
            "Ctrl-C",
        ] {
            assert!(hint.contains(part), "missing {part:?}: {hint}");
        }
        assert!(hint.contains("\"The first five minutes\""), "{hint}");
    }

    #[test]
    fn a_client_on_a_pipe_gets_no_hint() {
        assert_eq!(stdin_hint(false), None);
    }
}
