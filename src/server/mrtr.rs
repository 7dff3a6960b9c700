//! Approvals as input-required results (MRTR, SEP-2322) for clients on protocol 2026-07-28,
//! which has no server-to-client requests: an `ask` answers the `tools/call` with an
//! elicitation request for the user plus a `requestState`, and the client's retry carries the
//! answer. The state is sealed with a key only this process holds (random, in memory, never in
//! a file or the environment a `bash` child could read) and bound to the exact tool, command
//! text, working directory and approval id; each state is good for one answer. A tampered,
//! expired, foreign or replayed state is a `-32602` error and nothing runs. Every step is
//! audited under the approval id.

use std::collections::HashMap;
use std::future::Future;
use std::os::unix::ffi::OsStrExt;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Instant;

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ElicitRequest, ElicitRequestParams,
    ElicitationSchema, InputRequest, InputRequests, InputRequiredResult, InputResponses,
    MetaObject, ProtocolVersion, RequestStateCodec, SealOptions,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

use super::approval::{APPROVAL_TIMEOUT, ApprovalForm, approval_message};
use crate::store::AuditLog;
use crate::store::approvals::{self, Subject};
use crate::tools::{Approval, ApprovalRequest, Approver};

/// The key of the approval question in `inputRequests` (and of its answer in `inputResponses`).
pub const INPUT_KEY: &str = "approval";
/// The audit log's `client` for answers given through an input-required round.
const MRTR_CLIENT: &str = "mrtr";
/// The audit log's `client` for steps the server takes itself.
const SERVER: &str = "pi-mcp";
/// The one message a client gets for any state that does not open (rmcp's codec asks that
/// all opening failures look alike to the client).
const STATE_REJECTED: &str = "requestState failed verification (tampered, expired, or issued for another command, \
directory or server process); nothing ran. Call the tool again without requestState to be asked afresh.";

/// How a `tools/call` may ask a human, by the protocol the client speaks and what it declared.
#[derive(Debug, Clone)]
pub enum AskVia {
    /// 2025-11-25: a server-to-client elicitation request in the middle of the call.
    InCall,
    /// 2026-07-28 with elicitation: an input-required result, and the retry that answers it.
    InputRequired(Retry),
    /// 2026-07-28 without elicitation: no one can be asked in-band; the approval queue.
    Queue,
}

/// What a retried `tools/call` carries back (both absent on a first call).
#[derive(Debug, Clone, Default)]
pub struct Retry {
    pub state: Option<String>,
    pub responses: Option<InputResponses>,
}

/// Picks the way to ask for this request: the per-request protocol version and client
/// capabilities (2026-07-28 `_meta`), else the session's from `initialize`.
pub fn ask_via(context: &RequestContext<RoleServer>, request: &CallToolRequestParams) -> AskVia {
    let modern = context
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
    if !modern {
        return AskVia::InCall;
    }
    if context
        .client_capabilities()
        .is_some_and(|c| shows_forms(&c))
    {
        AskVia::InputRequired(Retry {
            state: request.request_state.clone(),
            responses: request.input_responses.clone(),
        })
    } else {
        AskVia::Queue
    }
}

/// Whether a client with `caps` can show the approval form: it declared form elicitation, or
/// elicitation without naming a mode (which means form). A URL-only client cannot.
fn shows_forms(caps: &ClientCapabilities) -> bool {
    caps.elicitation
        .as_ref()
        .is_some_and(|e| e.form.is_some() || e.url.is_none())
}

/// The per-process signing key and the ledger of answered states; one per server process,
/// shared by all its sessions.
pub struct StateKeeper {
    /// `None` when the system gave no randomness: then no one is asked in-band (fail closed,
    /// the approval queue takes the request).
    codec: Option<RequestStateCodec>,
    /// Approval ids whose state was answered, with when (kept past the states' lifetime).
    used: Mutex<HashMap<String, Instant>>,
}

impl Default for StateKeeper {
    fn default() -> Self {
        Self::new()
    }
}

impl StateKeeper {
    /// A keeper with a fresh random key.
    pub fn new() -> Self {
        let mut key = [0u8; RequestStateCodec::MIN_KEY_LENGTH];
        let codec = match getrandom::fill(&mut key) {
            Ok(()) => RequestStateCodec::try_new(key.to_vec()).ok(),
            Err(e) => {
                tracing::error!(
                    "no randomness for the requestState key ({e}): approvals under protocol 2026-07-28 go to the queue"
                );
                None
            }
        };
        key.fill(0);
        StateKeeper {
            codec,
            used: Mutex::new(HashMap::new()),
        }
    }

    fn seal(&self, request: &ApprovalRequest, id: &str) -> Option<String> {
        let codec = self.codec.as_ref()?;
        let bound = binding(request, id);
        let options = SealOptions::new()
            .associated_data(&bound)
            .ttl(APPROVAL_TIMEOUT);
        Some(format!("{id}.{}", codec.seal_with(id.as_bytes(), &options)))
    }

    /// The approval id `state` was issued for, if it verifies for `request`; else the id it
    /// claims (for the audit log), if it names one.
    fn open(&self, state: &str, request: &ApprovalRequest) -> Result<String, Option<String>> {
        let (id, sealed) = state.split_once('.').ok_or(None)?;
        let claimed = is_approval_id(id).then(|| id.to_string());
        let codec = self.codec.as_ref().ok_or_else(|| claimed.clone())?;
        match codec.open_with(sealed, &binding(request, id)) {
            Ok(payload) if payload == id.as_bytes() && claimed.is_some() => Ok(id.to_string()),
            Ok(_) => Err(claimed),
            Err(e) => {
                tracing::warn!("rejected a requestState for approval {id:?}: {e}");
                Err(claimed)
            }
        }
    }

    /// Whether approval `id` was answered already (a poisoned ledger counts as yes).
    fn answered(&self, id: &str) -> bool {
        self.used.lock().map_or(true, |used| used.contains_key(id))
    }

    /// `true` the first time approval `id` is answered; `false` for a replay.
    fn consume(&self, id: &str) -> bool {
        let Ok(mut used) = self.used.lock() else {
            return false; // poisoned: fail closed
        };
        let keep = APPROVAL_TIMEOUT * 2;
        used.retain(|_, at| at.elapsed() < keep);
        used.insert(id.to_string(), Instant::now()).is_none()
    }
}

/// What the tag is bound to: tool, command text, directory and approval id, each
/// length-prefixed so no two different tuples give the same bytes.
fn binding(request: &ApprovalRequest, id: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for field in [
        request.tool.as_bytes(),
        request.command.as_bytes(),
        request.cwd.as_os_str().as_bytes(),
        id.as_bytes(),
    ] {
        out.extend_from_slice(&(field.len() as u64).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

fn is_approval_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What an input-required round decided beyond the approval itself.
#[derive(Debug)]
pub enum Outcome {
    /// Answer the call with this input-required result (the user is being asked).
    Ask(Box<InputRequiredResult>),
    /// Answer the call with this protocol error (a state that does not verify, a replay).
    Rejected(ErrorData),
    /// The user approved: the command runs under this approval id.
    Accepted(AcceptedAs),
}

/// An approval the user gave in a retry, to audit the run under.
#[derive(Debug)]
pub struct AcceptedAs {
    id: String,
    command: String,
    risk: i64,
    reasons: serde_json::Value,
}

/// Asks through input-required results and reads the answer from the retry.
pub struct MrtrApprover<'a> {
    keeper: &'a StateKeeper,
    audit: &'a AuditLog,
    retry: Retry,
    outcome: Mutex<Option<Outcome>>,
}

impl<'a> MrtrApprover<'a> {
    pub fn new(keeper: &'a StateKeeper, audit: &'a AuditLog, retry: Retry) -> Self {
        MrtrApprover {
            keeper,
            audit,
            retry,
            outcome: Mutex::new(None),
        }
    }

    /// What the round decided, once the tool has run (or not).
    pub fn take(&self) -> Option<Outcome> {
        self.outcome.lock().ok()?.take()
    }

    fn set(&self, outcome: Outcome) {
        if let Ok(mut o) = self.outcome.lock() {
            *o = Some(outcome);
        }
    }

    fn record(&self, request: &ApprovalRequest, id: &str, decision: &str, outcome: &str, by: &str) {
        let reasons = serde_json::to_value(&request.verdict.reasons).unwrap_or_default();
        let subject = Subject {
            id,
            command: &request.command,
            risk: i64::from(request.verdict.risk),
            reasons: &reasons,
        };
        self.audit
            .record(approvals::audit_step(subject, decision, outcome, by));
    }

    /// Seals a state and asks: a new approval on a first call, or approval `again` once more
    /// when a retry carried no usable answer (SEP-2322: re-request, not an error).
    fn ask(&self, request: &ApprovalRequest, again: Option<String>) -> Approval {
        let asked = match again {
            Some(_) => {
                "asked again: the retry carried no usable answer under inputResponses.approval"
            }
            None => {
                "asked the user (input-required result, MCP 2026-07-28); waiting for the client's retry"
            }
        };
        let id = again.unwrap_or_else(approvals::new_id);
        let (Some(state), Ok(schema)) = (
            self.keeper.seal(request, &id),
            ElicitationSchema::from_type::<ApprovalForm>(),
        ) else {
            return Approval::Unavailable(
                "the server cannot sign an input-required request, so no one can be asked in-band"
                    .into(),
            );
        };
        let params = ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: approval_message(request, Some(&id)),
            requested_schema: schema,
        };
        let mut requests = InputRequests::new();
        requests.insert(
            INPUT_KEY.to_string(),
            InputRequest::Elicitation(ElicitRequest::new(params)),
        );
        let details = serde_json::json!({ "approval": {
            "id": id,
            "tool": request.tool,
            "command": request.command,
            "cwd": request.cwd.display().to_string(),
            "risk": request.verdict.risk,
            "reasons": request.verdict.deciding_reasons().collect::<Vec<_>>(),
        }});
        let mut meta = serde_json::Map::new();
        meta.insert(super::call_meta::META_KEY.to_string(), details);
        let result =
            InputRequiredResult::new(Some(requests), Some(state)).with_meta(MetaObject(meta));
        self.record(request, &id, "ask", asked, SERVER);
        self.set(Outcome::Ask(Box::new(result)));
        Approval::Deferred(format!("the user is being asked (approval {id})"))
    }

    fn reject(&self, request: &ApprovalRequest, id: &str, why: &str, message: &str) -> Approval {
        self.record(request, id, "deny", &format!("rejected: {why}"), SERVER);
        self.set(Outcome::Rejected(ErrorData::invalid_params(
            message.to_string(),
            None,
        )));
        Approval::Deferred(format!("the retry was rejected: {why}"))
    }

    /// A retry: verify the state, read the answer, use the state up.
    fn answer(&self, request: &ApprovalRequest, state: &str) -> Approval {
        let id = match self.keeper.open(state, request) {
            Ok(id) => id,
            Err(claimed) => {
                let id = claimed.unwrap_or_else(|| "unreadable".into());
                return self.reject(
                    request,
                    &id,
                    "requestState failed verification; nothing ran",
                    STATE_REJECTED,
                );
            }
        };
        let answer = self.retry.responses.as_ref().and_then(|r| r.get(INPUT_KEY));
        let answer = match answer.and_then(parse_answer) {
            // Re-ask only while the approval is unanswered; `consume` settles races.
            None if !self.keeper.answered(&id) => return self.ask(request, Some(id)),
            Some(answer) if self.keeper.consume(&id) => answer,
            _ => {
                return self.reject(
                    request,
                    &id,
                    "requestState replayed after it was answered; nothing ran",
                    &format!(
                        "requestState of approval {id} was already answered and cannot be used again; nothing ran. \
                         Call the tool again without requestState to be asked afresh."
                    ),
                );
            }
        };
        match answer {
            Answer::Approve => {
                self.record(
                    request,
                    &id,
                    "allow",
                    "approved by the user (input-required result)",
                    MRTR_CLIENT,
                );
                self.record(request, &id, "allow", "used: the command runs now", SERVER);
                self.set(Outcome::Accepted(AcceptedAs {
                    id,
                    command: request.command.clone(),
                    risk: i64::from(request.verdict.risk),
                    reasons: serde_json::to_value(&request.verdict.reasons).unwrap_or_default(),
                }));
                Approval::Approved
            }
            Answer::Decline(why) => {
                self.record(
                    request,
                    &id,
                    "deny",
                    &format!("denied by the user (input-required result): {why}"),
                    MRTR_CLIENT,
                );
                Approval::Declined(why.into())
            }
        }
    }
}

impl Approver for MrtrApprover<'_> {
    fn approve<'a>(
        &'a self,
        request: &'a ApprovalRequest,
    ) -> Pin<Box<dyn Future<Output = Approval> + Send + 'a>> {
        Box::pin(async move {
            match self.retry.state.as_deref() {
                None => self.ask(request, None),
                Some(state) => self.answer(request, state),
            }
        })
    }

    fn audits_answers(&self) -> bool {
        true
    }
}

/// The user's answer to the approval form.
enum Answer {
    Approve,
    Decline(&'static str),
}

/// An `ElicitResult` for the approval form, or `None` when the value is not one (then the
/// user is asked again).
fn parse_answer(value: &serde_json::Value) -> Option<Answer> {
    match value.get("action")?.as_str()? {
        "accept" => match value.get("content")?.get("approve")?.as_bool()? {
            true => Some(Answer::Approve),
            false => Some(Answer::Decline("the user did not approve it")),
        },
        "decline" => Some(Answer::Decline("the user declined")),
        "cancel" => Some(Answer::Decline("the user dismissed the request")),
        _ => None,
    }
}

/// Audits that an approved command ran, and how it ended.
pub fn record_ran(audit: &AuditLog, accepted: &AcceptedAs, outcome: &str) {
    let subject = Subject {
        id: &accepted.id,
        command: &accepted.command,
        risk: accepted.risk,
        reasons: &accepted.reasons,
    };
    audit.record(approvals::audit_step(
        subject,
        "allow",
        &format!("ran: {outcome}"),
        SERVER,
    ));
}

/// For 2026-07-28 clients without elicitation: no one can be asked in-band.
pub struct QueueOnly;

impl Approver for QueueOnly {
    fn approve<'a>(
        &'a self,
        _request: &'a ApprovalRequest,
    ) -> Pin<Box<dyn Future<Output = Approval> + Send + 'a>> {
        Box::pin(async {
            Approval::Unavailable(
                "the MCP client (protocol 2026-07-28) did not declare elicitation, so no one can be asked in-band"
                    .into(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::{Decision, Verdict};

    fn request(command: &str, cwd: &str) -> ApprovalRequest {
        ApprovalRequest {
            tool: "bash".into(),
            command: command.into(),
            cwd: cwd.into(),
            verdict: Verdict::single(Decision::Ask, "inline-code", "runs code"),
        }
    }

    #[test]
    fn a_state_opens_only_for_its_command_directory_and_server() {
        let keeper = StateKeeper::new();
        let r = request("python3 -c 'print(1)'", "/w");
        let state = keeper.seal(&r, "00aa11bb22cc").unwrap();
        assert_eq!(keeper.open(&state, &r), Ok("00aa11bb22cc".into()));
        let other_cmd = request("python3 -c 'print(2)'", "/w");
        assert_eq!(
            keeper.open(&state, &other_cmd),
            Err(Some("00aa11bb22cc".into()))
        );
        assert!(
            keeper
                .open(&state, &request("python3 -c 'print(1)'", "/x"))
                .is_err()
        );
        let swapped = state.replacen("00aa11bb22cc", "00aa11bb22cd", 1);
        assert!(keeper.open(&swapped, &r).is_err());
        assert!(keeper.open(&format!("{state}-TAMPERED"), &r).is_err());
        assert!(
            StateKeeper::new().open(&state, &r).is_err(),
            "another process's key"
        );
        assert_eq!(keeper.open("garbage", &r), Err(None));
    }

    #[test]
    fn only_a_client_that_shows_forms_is_asked_in_band() {
        use rmcp::model::{ElicitationCapability, UrlElicitationCapability};
        let caps = |e: Option<ElicitationCapability>| {
            let mut c = ClientCapabilities::default();
            c.elicitation = e;
            c
        };
        assert!(!shows_forms(&caps(None)));
        assert!(shows_forms(&caps(Some(ElicitationCapability::default()))));
        let url_only =
            ElicitationCapability::default().with_url(UrlElicitationCapability::default());
        assert!(!shows_forms(&caps(Some(url_only))));
    }

    #[test]
    fn a_state_is_answered_once() {
        let keeper = StateKeeper::new();
        assert!(keeper.consume("ab"));
        assert!(!keeper.consume("ab"));
        assert!(keeper.consume("cd"));
    }
}
