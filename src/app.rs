//! What every face of the program opens the same way: the global options (workspace roots,
//! policy, state store, prompts, reports, OSV database) and the assembled application
//! (guard, store, audit log, tool context) that the server, the agent and the daemons share.
//! Opening it also checks that what pi-mcp must trust (the state store and the OSV database)
//! is out of reach of the `bash` sandbox, and protects it in the guard.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use crate::guard::policy::SandboxMode;
use crate::guard::{Guard, ParsedPolicy, Workspace};
use crate::sandbox::Sandbox;
use crate::store::{AuditLog, Store, location};
use crate::tools::ToolContext;
use crate::tools::approvals::ApprovalQueue;
use crate::tools::osv_scanner::MissingDb;

/// Options every subcommand understands.
#[derive(Debug, Clone, Default, Args)]
pub struct Globals {
    /// Workspace root the tools are confined to (repeatable; default: the current directory).
    #[arg(long = "workspace", short = 'w', global = true, value_name = "DIR")]
    pub workspaces: Vec<PathBuf>,
    /// Policy file (default: the built-in policy, identical to policies/security.json).
    #[arg(long, global = true, env = "PI_MCP_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// State store URL: sqlite://PATH or postgres://... (default: <state dir>/state.db).
    #[arg(
        long,
        global = true,
        env = "PI_MCP_STATE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub state_url: Option<String>,
    /// Directory of pi-mcp's own state, outside the workspace (default:
    /// $XDG_STATE_HOME/pi-mcp/<workspace>-<hash>, else ~/.local/state/pi-mcp/<workspace>-<hash>).
    #[arg(long, global = true, env = "PI_MCP_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Directory of prompt templates (default: <workspace>/prompts if present, else built-in).
    #[arg(long, global = true, env = "PI_MCP_PROMPTS", value_name = "DIR")]
    pub prompts: Option<PathBuf>,
    /// Directory of reports served as resources (default: <workspace>/reports).
    #[arg(long, global = true, env = "PI_MCP_REPORTS", value_name = "DIR")]
    pub reports: Option<PathBuf>,
    /// OSV advisory database that package installs are checked against
    /// (default: <state dir>/osv; `pi-mcp osv update` fills it).
    #[arg(long, global = true, env = "PI_MCP_OSV_DB", value_name = "DIR")]
    pub osv_db: Option<PathBuf>,
    /// How a missing OSV database is reported: set by the face (a warning for `serve`,
    /// `heartbeat` and `agent`; a debug line for one-shot commands).
    #[arg(skip)]
    pub missing_osv: MissingDb,
}

impl Globals {
    /// The workspace roots (default: the current directory).
    pub fn workspace(&self) -> anyhow::Result<Workspace> {
        let roots = if self.workspaces.is_empty() {
            vec![std::env::current_dir().context("cannot read the current directory")?]
        } else {
            self.workspaces.clone()
        };
        Workspace::new(&roots).map_err(anyhow::Error::msg)
    }

    /// The policy in force (`--policy`, or the built-in default).
    pub fn guard(&self) -> anyhow::Result<Guard> {
        Ok(Guard::load(self.policy.as_deref())?)
    }

    /// The policy as the tools apply it (see [`runtime_guard_of`]).
    pub fn runtime_guard(&self, trusted: &TrustedPaths) -> anyhow::Result<Arc<Guard>> {
        let policy = ParsedPolicy::read(self.policy.as_deref())?;
        let guard = runtime_guard_of(
            policy,
            &trusted.osv_dir,
            self.missing_osv,
            &trusted.protected(),
        )?;
        // Probe in the background now, so that the first judged command rarely waits for it.
        std::thread::spawn(crate::sandbox::namespace_support);
        Ok(guard)
    }

    /// The directory of pi-mcp's own state: `--state-dir`/`$PI_MCP_STATE_DIR`, else
    /// `$XDG_STATE_HOME/pi-mcp/<slug>`, else `~/.local/state/pi-mcp/<slug>` (see
    /// [`location::state_dir`]).
    pub fn state_dir(&self, ws: &Workspace) -> anyhow::Result<PathBuf> {
        Ok(location::state_dir(
            self.state_dir.as_deref(),
            ws.primary(),
            |k| std::env::var_os(k),
        )?)
    }

    /// The OSV database directory: `--osv-db`, else `<state dir>/osv`.
    pub fn osv_db_dir(&self, ws: &Workspace) -> anyhow::Result<PathBuf> {
        match &self.osv_db {
            Some(dir) => Ok(dir.clone()),
            None => Ok(self.state_dir(ws)?.join(location::OSV_DIR)),
        }
    }

    /// What pi-mcp trusts on disk for this workspace.
    pub fn trusted_paths(&self, ws: &Workspace) -> anyhow::Result<TrustedPaths> {
        let state_dir = self.state_dir(ws)?;
        let state_db = match &self.state_url {
            Some(url) => location::sqlite_file(url),
            None => Some(state_dir.join(location::STATE_DB)),
        };
        let osv_dir = self.osv_db_dir(ws)?;
        Ok(TrustedPaths {
            state_dir,
            state_db,
            osv_dir,
        })
    }

    /// Opens the state store (`--state-url`, else `<state dir>/state.db`).
    pub async fn open_store(&self, ws: &Workspace) -> anyhow::Result<Store> {
        let state_dir = self.state_dir(ws)?;
        let old = ws.primary().join(location::OLD_STATE_DB);
        if self.state_url.is_none() && old.exists() {
            tracing::warn!(
                "{} is no longer used: the state store is now {} (outside the workspace, where \
                 bash cannot rewrite it); its approvals and audit history were not carried over. \
                 Stop pi-mcp and move {}* there to keep them, or delete it.",
                old.display(),
                state_dir.join(location::STATE_DB).display(),
                old.display()
            );
        }
        Ok(Store::open(self.state_url.as_deref(), &state_dir).await?)
    }

    /// Prompt templates: `--prompts`, else `<workspace>/prompts` when present (else built-in).
    pub fn prompts_dir(&self, ws: &Workspace) -> Option<PathBuf> {
        self.prompts.clone().or_else(|| {
            let p = ws.primary().join("prompts");
            p.is_dir().then_some(p)
        })
    }

    /// Reports: `--reports`, else `<workspace>/reports`.
    pub fn reports_dir(&self, ws: &Workspace) -> PathBuf {
        self.reports
            .clone()
            .unwrap_or_else(|| ws.primary().join("reports"))
    }
}

/// The policy as the tools apply it: package installs checked against the OSV advisories in
/// `osv_dir`, pi-mcp's own state (`protected`) protected like the policy's protected paths, and
/// judging with what the sandbox enforces on this machine (stricter where it cannot bound).
fn runtime_guard_of(
    policy: ParsedPolicy,
    osv_dir: &Path,
    missing_osv: MissingDb,
    protected: &[PathBuf],
) -> anyhow::Result<Arc<Guard>> {
    let advisories = crate::tools::osv_scanner::advisories_at_start(osv_dir, missing_osv);
    let guard = policy
        .protecting(protected)
        .compile(false)?
        .with_osv(advisories);
    // Only two fields: a clone of the whole policy was 1 % of a start (issue 14).
    let (sandbox, network) = (guard.file().sandbox, guard.file().network.mode);
    Ok(Arc::new(guard.with_enforcement_from(move || {
        crate::sandbox::enforcement(sandbox, network)
    })))
}

/// The assembled program: one guard, one store, one audit log, one tool context.
#[derive(Clone)]
pub struct App {
    pub tools: ToolContext,
    pub store: Store,
    pub audit: AuditLog,
    pub prompts_dir: Option<PathBuf>,
    pub reports_dir: PathBuf,
}

impl App {
    /// Loads the policy (with OSV advisories), opens the store and starts the audit writer.
    /// `slack_buttons`: approvals announced on Slack carry Approve/Deny buttons (only when the
    /// HTTP face with a Slack signing secret can receive the clicks).
    pub async fn open(globals: &Globals, slack_buttons: bool) -> anyhow::Result<App> {
        let ws = globals.workspace()?;
        let trusted = globals.trusted_paths(&ws)?;
        let policy = ParsedPolicy::read(globals.policy.as_deref())?;
        let protected = trusted.protected();
        let home = crate::tools::home_dir();
        let sandbox = Sandbox::new(
            policy.file(),
            policy.hidden(),
            ws.roots(),
            &home,
            &protected,
        );
        check_out_of_reach(&trusted, sandbox.writable(), policy.file().sandbox)?;
        // Only now, with the state out of `bash`'s reach, is the store opened; the rules
        // compile on their own thread meanwhile (issue 14: the store's open takes about 1.7 ms
        // and the compile 1 ms of a 6-7 ms start on the bench machine).
        let (osv_dir, missing_osv) = (trusted.osv_dir.clone(), globals.missing_osv);
        let (compiled, guard) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("pi-mcp-policy".into())
            .stack_size(crate::JUDGING_STACK_BYTES)
            .spawn(move || {
                let _ = compiled.send(runtime_guard_of(policy, &osv_dir, missing_osv, &protected));
            })
            .context("cannot start the thread that compiles the policy")?;
        let store = globals.open_store(&ws).await;
        // A policy error is reported before a store error, as when they were made in turn.
        let guard = guard
            .await
            .map_err(|_| anyhow::anyhow!("internal error: compiling the policy panicked"))??;
        let store = store?;
        let tools = ToolContext::with_sandbox(ws.clone(), guard.clone(), home, Arc::new(sandbox));
        let audit = AuditLog::start(store.clone()).with_redactor(tools.redactor.clone());
        let queue = ApprovalQueue::new(
            store.clone(),
            Duration::from_secs(guard.file().approval_ttl_secs),
            Duration::from_secs(guard.file().approval_wait_secs),
            std::env::var("SLACK_WEBHOOK_URL").ok(),
        )
        .with_slack_buttons(slack_buttons)
        .with_audit(audit.clone());
        let prompts_dir = globals.prompts_dir(&ws);
        let reports_dir = globals.reports_dir(&ws);
        let tools = tools.with_approvals(queue);
        Ok(App {
            tools,
            store,
            audit,
            prompts_dir,
            reports_dir,
        })
    }

    /// The guard in force.
    pub fn guard(&self) -> &Arc<Guard> {
        &self.tools.guard
    }

    /// Logs how `bash` children are bounded on this machine. Where the policy requires a layer
    /// (`sandbox: required`, `network_required`) the probes run now and a missing layer is an
    /// error; otherwise they run off the path to the first request.
    pub fn report_sandbox(&self) -> anyhow::Result<()> {
        if let Some(probe) = self.check_required_sandbox(Duration::ZERO)? {
            probe.go();
        }
        Ok(())
    }

    /// [`report_sandbox`](Self::report_sandbox) for a caller that lets the background probe
    /// wait up to `hold` until it is no longer in the way ([`SandboxProbe::go`]): the probe
    /// starts a sandboxed child of this binary (the namespace check the guard's first `bash`
    /// judgement needs), a second process start as costly as the server's own, which on a
    /// busy 2-core machine delayed the answer to a client's `initialize` (measured: a third of
    /// the CPU of a start). A judgement before the probe ran does the probe itself. Required
    /// layers are still checked now (None: nothing left to probe).
    pub fn check_required_sandbox(&self, hold: Duration) -> anyhow::Result<Option<SandboxProbe>> {
        let guard = self.guard().clone();
        let sandbox = self.tools.sandbox.clone();
        if guard.file().sandbox == SandboxMode::Required || guard.file().network_required {
            crate::sandbox::check_at_start(&sandbox, guard.file())?;
            return Ok(None);
        }
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let _ = wait.recv_timeout(hold);
            if let Err(e) = crate::sandbox::check_at_start(&sandbox, guard.file()) {
                tracing::error!("{e}; every bash call will fail until this is fixed");
            }
        });
        Ok(Some(SandboxProbe { go, thread }))
    }
}

/// The sandbox probes waiting to run in the background (see [`App::check_required_sandbox`]).
pub struct SandboxProbe {
    go: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl SandboxProbe {
    /// Lets the probes run now (they log what they find).
    pub fn go(&self) {
        let _ = self.go.send(());
    }

    /// Runs the probes now and waits for them: their report is logged before this returns
    /// (a server about to exit).
    pub fn finish(self) {
        self.go();
        let _ = self.thread.join();
    }
}

/// What pi-mcp must trust on disk: if the agent could write these, it could approve its own
/// commands, rewrite the audit log, or hide a vulnerability from the install check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedPaths {
    /// The state directory (`--state-dir`).
    pub state_dir: PathBuf,
    /// The SQLite state store, when the store is a SQLite file.
    pub state_db: Option<PathBuf>,
    /// The OSV database directory.
    pub osv_dir: PathBuf,
}

impl TrustedPaths {
    /// Every path to protect, as given and canonicalised (a symbolic link must not hide one).
    pub fn protected(&self) -> Vec<PathBuf> {
        // A SQLite store's write-ahead log and shared memory sit beside it, and hold its
        // latest commits.
        let sidecars = self.state_db.iter().flat_map(|db| {
            ["-wal", "-shm", "-journal"].map(|suffix| {
                let mut name = db.as_os_str().to_owned();
                name.push(suffix);
                PathBuf::from(name)
            })
        });
        let given = [
            Some(self.state_dir.clone()),
            self.state_db.clone(),
            Some(self.osv_dir.clone()),
        ];
        let mut out: Vec<PathBuf> = Vec::new();
        for p in given.into_iter().flatten().chain(sidecars) {
            let canonical = location::canonical(&p);
            for form in [p, canonical] {
                if !out.contains(&form) {
                    out.push(form);
                }
            }
        }
        out
    }

    /// `(what, path, how to fix it)` for each trusted file or directory.
    fn described(&self) -> Vec<(&'static str, &PathBuf, &'static str)> {
        let mut out = Vec::new();
        if let Some(db) = &self.state_db {
            out.push((
                "the state store",
                db,
                "pass --state-url sqlite:///PATH/state.db (or set PI_MCP_STATE_DIR) with a path \
                 outside the workspace and the policy's writable_paths",
            ));
        }
        out.push((
            "the OSV database",
            &self.osv_dir,
            "pass --osv-db DIR (or set PI_MCP_STATE_DIR) with a directory outside the workspace \
             and the policy's writable_paths",
        ));
        out
    }
}

/// Refuses (with `sandbox: "required"`) or warns when a trusted path lies where `bash` may
/// write (`writable`: the workspace roots, the temp directory and the policy's
/// `writable_paths`). Only path arithmetic: start-up stays fast.
pub fn check_out_of_reach(
    trusted: &TrustedPaths,
    writable: &[PathBuf],
    sandbox: SandboxMode,
) -> anyhow::Result<()> {
    for (message, fix) in trusted.within_reach(writable) {
        let message = format!("{message}; {fix}");
        if sandbox == SandboxMode::Required {
            anyhow::bail!("{message} (the policy says \"sandbox\": \"required\")");
        }
        tracing::warn!("{message}");
    }
    Ok(())
}

impl TrustedPaths {
    /// `(problem, fix)` for each trusted path that lies where `bash` may write (`writable`).
    pub fn within_reach(&self, writable: &[PathBuf]) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        for (what, path, fix) in self.described() {
            let Some(by) = crate::sandbox::writable_by_bash(path, writable) else {
                continue;
            };
            out.push((
                format!(
                    "{what} {} is inside {}, which bash commands may write: the agent could \
                     forge approvals, rewrite the audit log or tamper with advisories",
                    path.display(),
                    by.display()
                ),
                fix,
            ));
        }
        out
    }

    /// The location check of `pi-mcp doctor`: the same test as at start, one line each for the
    /// state directory's trusted contents (`fail` where the sandbox is required, as at start).
    pub fn health(&self, writable: &[PathBuf], sandbox: SandboxMode) -> crate::health::Check {
        use crate::health::Check;
        let problems = self.within_reach(writable);
        let Some((_, fix)) = problems.first() else {
            return Check::ok(
                "store location",
                format!(
                    "{} and the OSV database {} are outside everything bash may write",
                    self.state_db
                        .as_ref()
                        .map_or("the PostgreSQL store".to_string(), |p| p
                            .display()
                            .to_string()),
                    self.osv_dir.display()
                ),
            );
        };
        let messages: Vec<&str> = problems.iter().map(|(m, _)| m.as_str()).collect();
        Check::warn("store location", messages.join("; "), *fix)
            .needed_if(sandbox == SandboxMode::Required)
    }
}
