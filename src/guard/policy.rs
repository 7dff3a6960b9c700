//! The policy file (`policies/security.json`): its documented format, loading with precise
//! errors (file, line, column, field), and the built-in default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::argv::FlagAliases;
use super::rule::Match;

/// The default policy shipped in the binary (a copy of `policies/security.json`).
pub const DEFAULT_POLICY: &str = include_str!("../../policies/security.json");

/// The policy format. Every field has a default, so `{}` is a valid (empty) policy.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Format version; currently 1.
    #[serde(default = "one")]
    pub version: u32,
    /// Risk (0-100) at or above which a command needs human approval.
    #[serde(default = "default_ask_at")]
    pub ask_at: u32,
    /// Risk at or above which a command is refused.
    #[serde(default = "default_deny_at")]
    pub deny_at: u32,
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Paths `read`/`edit` never touch and `bash` arguments need approval for, even inside the
    /// workspace. `name` matches that name anywhere, `dir/` a directory anywhere, `a/b` a path
    /// suffix; `*` and `?` are globs.
    #[serde(default)]
    pub protected_paths: Vec<String>,
    /// Environment variables removed from every `bash` child (globs allowed, e.g. `*_TOKEN`).
    #[serde(default)]
    pub env_deny: Vec<String>,
    /// OS sandbox of `bash` children (Landlock, `no_new_privs`, seccomp): `required` refuses to
    /// start where the kernel lacks Landlock, `best_effort` runs without Landlock there, `off`
    /// runs bash unconfined.
    #[serde(default)]
    pub sandbox: SandboxMode,
    /// Where `bash` children may connect: `{"mode": "allowlist" | "deny" | "open", "allow":
    /// ["*.amazonaws.com:443", "db.internal:5432", ...]}` (see the README, "Network").
    #[serde(default)]
    pub network: super::egress::NetworkPolicy,
    /// Refuse to run `bash` when the `allowlist` mode cannot have its network namespace
    /// (instead of falling back to `deny`).
    #[serde(default)]
    pub network_required: bool,
    /// Paths no `bash` child can read, enforced by the OS (a mount namespace covers them):
    /// `~/...`, absolute paths, or bare file-name globs (`.env*`, `*.pem`) matched in the
    /// workspace roots and the home directory. pi-mcp's own state directory and other
    /// processes' `/proc` entries are always hidden.
    #[serde(default)]
    pub hidden_paths: Vec<String>,
    /// Paths `bash` children may write besides the workspace roots and their temp directory
    /// (`<workspace>/.pi-mcp/tmp`): absolute, `~/...`, or relative to the first root.
    #[serde(default)]
    pub writable_paths: Vec<String>,
    /// How long a `bash` call waits for a human to approve a pending command before it returns
    /// the approval id (0: return at once).
    #[serde(default)]
    pub approval_wait_secs: u64,
    /// How long a pending or approved (unused) approval stays valid.
    #[serde(default = "default_approval_ttl")]
    pub approval_ttl_secs: u64,
    /// A `bash` call whose timeout, or a `sql` call whose statement timeout, is above this many
    /// seconds runs as an MCP task (the `io.modelcontextprotocol/tasks` extension) when the
    /// client declared that extension: the call answers at once with a task id the client polls
    /// and may cancel. At least 1.
    #[serde(default = "default_task_after")]
    pub task_after_secs: u64,
    /// Send a tool call's answer only once its audit rows are committed to the store (one
    /// commit per call; calls answered together share one). Off: the rows are appended to the
    /// local audit journal before the answer, which survives a crash of the server (the next
    /// start stores them), and committed within about 5 ms; on, they are also in the store
    /// (a shared PostgreSQL, say) before the answer, which survives the loss of this machine.
    #[serde(default)]
    pub audit_before_answer: bool,
    /// Allow package installs without a pinned version (otherwise they are `ask`, because the
    /// version that would be installed cannot be checked against OSV advisories).
    #[serde(default)]
    pub allow_unpinned_installs: bool,
    /// Rego files (relative to this policy file's directory) evaluated after the JSON rules;
    /// they may add or tighten decisions, never loosen them. See `policies/example.rego`.
    #[serde(default)]
    pub rego: Vec<String>,
    /// Per program, spellings of a flag that mean the same: `{"rm": {"--recursive": "-r"}}`.
    #[serde(default)]
    pub flag_aliases: FlagAliases,
    /// Which notification channels and destinations the `notify` tool and the daemons may use.
    #[serde(default)]
    pub notify: super::notify::NotifyPolicy,
    /// The `sql` tool: named databases, row and time limits (see README, "The sql tool").
    #[serde(default)]
    pub sql: super::sql::SqlPolicy,
    /// Rules that refuse a command outright.
    #[serde(default)]
    pub block: Vec<RuleSpec>,
    /// Rules that add risk points; the sum per command is compared with `ask_at` / `deny_at`.
    #[serde(default)]
    pub risk: Vec<RuleSpec>,
    /// What the `cloudwatch` tool may read: namespaces, log groups, limits.
    #[serde(default)]
    pub cloudwatch: super::cloudwatch::CloudWatchPolicy,
    /// Programs that only look at the system, and how they may be used to count as observation
    /// (runs that may not change anything on their own run these without approval). Absent:
    /// no command counts as observation.
    #[serde(default)]
    pub observe_commands: super::observe::ObservePolicy,
    /// Everyday programs the guard knows besides those its rules name (see README, "Fail
    /// closed where the sandbox cannot bound"): a program known nowhere is `ask` unless the
    /// sandbox bounds writes, network and hidden paths for it. Globs allowed.
    #[serde(default)]
    pub known_programs: Vec<String>,
    /// Programs that load code from files (`make`, `npm test`, `pytest`, `git`, `bash FILE`):
    /// at least `ask` when an earlier part of the same command line writes a file. Rules
    /// without a score; their examples are checked when the policy loads.
    #[serde(default)]
    pub code_loaders: Vec<RuleSpec>,
    /// Programs that write files without naming them as a target (`git clone`, `tar -x`,
    /// `unzip`, `curl -O`): they count as writes for `code_loaders`.
    #[serde(default)]
    pub file_writers: Vec<RuleSpec>,
    /// Options of everyday tools that run a program, write a file or follow instructions from
    /// a file (`tar --to-command`, `git -c core.pager=`, `curl --output-dir`, `curl -K`).
    #[serde(default)]
    pub program_options: Vec<super::options::OptionSpec>,
    /// Free-form notes for humans.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub comments: BTreeMap<String, String>,
}

/// How strictly `bash` children are sandboxed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SandboxMode {
    /// Landlock must be enforced: the server refuses to start without it.
    Required,
    /// Landlock where the kernel has it; otherwise only `no_new_privs` and the network filter.
    #[default]
    BestEffort,
    /// No sandbox: bash runs directly.
    Off,
}

pub use super::egress::NetworkMode;

fn default_approval_ttl() -> u64 {
    3600
}
fn default_task_after() -> u64 {
    30
}

fn one() -> u32 {
    1
}
fn default_ask_at() -> u32 {
    50
}
fn default_deny_at() -> u32 {
    90
}

/// Limits for `bash`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Timeout when the call gives none.
    #[serde(default = "default_timeout")]
    pub default_secs: u64,
    /// Largest timeout a call may ask for.
    #[serde(default = "max_timeout")]
    pub max_secs: u64,
}

fn default_timeout() -> u64 {
    120
}
fn max_timeout() -> u64 {
    600
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            default_secs: default_timeout(),
            max_secs: max_timeout(),
        }
    }
}

/// One rule.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique id, shown in every decision the rule takes part in.
    pub id: String,
    /// Why the rule exists, shown to the model and the user.
    #[serde(default)]
    pub description: String,
    /// Risk points (risk rules only).
    #[serde(default)]
    pub score: Option<u32>,
    /// What the rule matches; every given criterion must hold.
    #[serde(rename = "match")]
    pub matcher: Match,
    /// Commands this rule must match; checked when the policy loads.
    #[serde(default)]
    pub examples: Vec<String>,
    /// Commands this rule must not match; checked when the policy loads.
    #[serde(default)]
    pub counter_examples: Vec<String>,
}

/// A policy that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{file}: cannot read the policy: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: field `{field}`: {message}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
    #[error("{file}: rule `{rule}`, field `{field}`: {message}")]
    Rule {
        file: String,
        rule: String,
        field: String,
        message: String,
    },
}

/// Where a policy came from.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub path: Option<PathBuf>,
}

impl PolicyFile {
    /// Parses policy text; `name` is used in error messages.
    pub fn parse(text: &str, name: &str) -> Result<PolicyFile, PolicyError> {
        // The plain parser first (the path tracking costs at every start); the tracking one
        // again only to name the field of an error.
        if let Ok(parsed) = serde_json::from_str(text) {
            return Ok(parsed);
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed: Result<PolicyFile, _> = serde_path_to_error::deserialize(&mut de);
        parsed.map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            PolicyError::Syntax {
                file: name.to_string(),
                line: inner.line(),
                column: inner.column(),
                field: if field.is_empty() {
                    ".".to_string()
                } else {
                    field
                },
                message: inner
                    .to_string()
                    .split(" at line")
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            }
        })
    }

    /// Reads a policy from a file.
    pub fn load(path: &Path) -> Result<PolicyFile, PolicyError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            file: name.clone(),
            source,
        })?;
        Self::parse(&text, &name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_parses() {
        let p = PolicyFile::parse(DEFAULT_POLICY, "default").unwrap();
        assert!(!p.block.is_empty() && !p.risk.is_empty());
    }

    #[test]
    fn syntax_errors_name_line_column_and_field() {
        let err = PolicyFile::parse("{\n  \"ask_at\": \"high\"\n}", "p.json").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("p.json:2:"), "{msg}");
        assert!(msg.contains("field `ask_at`"), "{msg}");
        let err = PolicyFile::parse(
            "{\"block\": [{\"id\": \"x\", \"match\": {\"programm\": []}}]}",
            "p.json",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("block[0].match"), "{err}");
    }
}
