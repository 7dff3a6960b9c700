//! The MCP conformance suites (`@modelcontextprotocol/conformance`, installed by `scripts/test`)
//! against `pi-mcp serve --http`: the first release pi-mcp was measured on (0.1.16, one fresh
//! server per fixture-free scenario) and the newest (0.2.0-alpha.12: every scenario of both
//! revisions and the extensions, judged check by check against `tests/conformance/fixture-checks.txt`,
//! the checks that can only run against the suite's own fixture tools).

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use support::{HttpServer, Workspace, require_service};

const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

/// A started suite run's prerequisites: node, the suite's entry point, a fresh server and a
/// scratch directory for the suite's files (kept out of the repo). `None`: the service
/// variables are not set (outside the test command).
struct SuiteRun {
    node: String,
    suite: String,
    server: HttpServer,
    scratch: tempfile::TempDir,
    _ws: Workspace,
}

impl SuiteRun {
    async fn start(suite_var: &str) -> Option<SuiteRun> {
        let node = require_service("PI_MCP_TEST_NODE")?;
        let suite = require_service(suite_var)?;
        let ws = Workspace::new();
        let server = HttpServer::start(ws.path(), None)
            .await
            .unwrap_or_else(|e| panic!("start pi-mcp serve --http: {e:#}"));
        let scratch = tempfile::tempdir().expect("scratch dir");
        Some(SuiteRun {
            node,
            suite,
            server,
            scratch,
            _ws: ws,
        })
    }

    /// `node SUITE server --url URL ARGS...` in the scratch directory.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.node);
        cmd.arg(&self.suite)
            .args(["server", "--url", self.server.url()])
            .args(args)
            .current_dir(self.scratch.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }
}

async fn run_scenario(scenario: &str) {
    let Some(run) = SuiteRun::start("PI_MCP_TEST_CONFORMANCE").await else {
        return;
    };
    let server = &run.server;
    let mut cmd = run.command(&["--scenario", scenario]);
    let output = tokio::time::timeout(SCENARIO_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "conformance scenario {scenario} timed out after {SCENARIO_TIMEOUT:?}\n\
                 --- pi-mcp output ---\n{}",
                server.output()
            )
        })
        .unwrap_or_else(|e| panic!("run {} {}: {e}", run.node, run.suite));
    if !output.status.success() {
        panic!(
            "conformance scenario {scenario} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            output.status,
            strip_ansi(&String::from_utf8_lossy(&output.stdout)),
            strip_ansi(&String::from_utf8_lossy(&output.stderr)),
        );
    }
}

/// The suite colours its report regardless of NO_COLOR; drop CSI escape sequences.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

macro_rules! scenarios {
    ($($test:ident => $scenario:literal,)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                run_scenario($scenario).await;
            }
        )*
    };
}

scenarios! {
    server_initialize => "server-initialize",
    ping => "ping",
    logging_set_level => "logging-set-level",
    tools_list => "tools-list",
    prompts_list => "prompts-list",
    resources_list => "resources-list",
    server_sse_multiple_streams => "server-sse-multiple-streams",
    dns_rebinding_protection => "dns-rebinding-protection",
}

/// One line of `tests/conformance/fixture-checks.txt`: a check that needs the suite's fixtures.
struct FixtureCheck {
    scenario: String,
    check: String,
    /// The failure message must contain this, so that a check failing for another reason fails.
    message: String,
}

fn fixture_checks() -> Vec<FixtureCheck> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/fixture-checks.txt");
    let text = std::fs::read_to_string(&path).expect("read fixture-checks.txt");
    let mut checks = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(
            fields.len() >= 4 && fields[..4].iter().all(|f| !f.is_empty()),
            "{}:{}: expected `scenario | check | message | fixture | test`",
            path.display(),
            n + 1
        );
        checks.push(FixtureCheck {
            scenario: fields[0].to_owned(),
            check: fields[1].to_owned(),
            message: fields[2].to_owned(),
        });
    }
    checks
}

/// One check's outcome, read from the suite's `OUT/server-<scenario>-<time>/checks.json`.
struct CheckOutcome {
    scenario: String,
    check: String,
    status: String,
    message: String,
}

fn read_outcomes(out: &Path) -> Vec<CheckOutcome> {
    let mut outcomes = Vec::new();
    for entry in std::fs::read_dir(out).expect("read the suite's output dir") {
        let dir = entry.expect("dir entry").path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        // server-<scenario>-YYYY-MM-DDTHH-MM-SS-mmmZ
        let scenario = name
            .strip_prefix("server-")
            .and_then(|rest| rest.rsplitn(7, '-').nth(6))
            .unwrap_or_else(|| panic!("unexpected result dir name {name}"))
            .to_owned();
        let text = std::fs::read_to_string(dir.join("checks.json"))
            .unwrap_or_else(|e| panic!("{}/checks.json: {e}", dir.display()));
        let checks: Vec<serde_json::Value> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}/checks.json: {e}"));
        for c in checks {
            let field = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            outcomes.push(CheckOutcome {
                scenario: scenario.clone(),
                check: field("id"),
                status: field("status"),
                message: field("errorMessage"),
            });
        }
    }
    outcomes
}

/// Runs the newest suite with `selection` (e.g. `--requirements 2026-07-28`) against one
/// server and fails on every check that neither passes nor is a listed fixture check.
async fn run_next_suite(selection: &[&str], min_scenarios: usize) {
    let Some(run) = SuiteRun::start("PI_MCP_TEST_CONFORMANCE_NEXT").await else {
        return;
    };
    let server = &run.server;
    let out = run.scratch.path().join("out");
    let out_arg = out.to_str().expect("a UTF-8 temp path");
    let mut cmd = run.command(&[selection, &["-o", out_arg]].concat());
    let output = tokio::time::timeout(SCENARIO_TIMEOUT * 3, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("conformance {selection:?} timed out"))
        .unwrap_or_else(|e| panic!("run {} {}: {e}", run.node, run.suite));
    let outcomes = read_outcomes(&out);
    let scenarios: std::collections::BTreeSet<&str> =
        outcomes.iter().map(|o| o.scenario.as_str()).collect();
    assert!(
        scenarios.len() >= min_scenarios,
        "conformance {selection:?} ran {} scenarios, expected at least {min_scenarios}\n{}",
        scenarios.len(),
        strip_ansi(&String::from_utf8_lossy(&output.stdout))
    );
    let fixtures = fixture_checks();
    let mut problems: BTreeMap<String, String> = BTreeMap::new();
    for o in &outcomes {
        if matches!(o.status.as_str(), "SUCCESS" | "SKIPPED" | "INFO") {
            continue;
        }
        let listed = fixtures
            .iter()
            .find(|f| f.scenario == o.scenario && f.check == o.check);
        match listed {
            Some(f) if o.message.contains(&f.message) => {}
            Some(f) => {
                problems.insert(
                    format!("{} / {}", o.scenario, o.check),
                    format!(
                        "{}: {} (a fixture check, but not failing for want of the fixture: expected `{}`)",
                        o.status, o.message, f.message
                    ),
                );
            }
            None => {
                problems.insert(
                    format!("{} / {}", o.scenario, o.check),
                    format!("{}: {}", o.status, o.message),
                );
            }
        }
    }
    if !problems.is_empty() {
        let list: Vec<String> = problems
            .iter()
            .map(|(k, v)| format!("  {k}: {v}"))
            .collect();
        panic!(
            "conformance {selection:?}: {} check(s) failed:\n{}\n--- pi-mcp output ---\n{}",
            problems.len(),
            list.join("\n"),
            server.output()
        );
    }
}

#[tokio::test]
async fn newest_suite_revision_2025_11_25() {
    run_next_suite(&["--requirements", "2025-11-25"], 30).await;
}

#[tokio::test]
async fn newest_suite_revision_2026_07_28() {
    run_next_suite(&["--requirements", "2026-07-28"], 45).await;
}

/// Everything the suite has, extensions (tasks, skills) included.
#[tokio::test]
async fn newest_suite_all_scenarios() {
    run_next_suite(&["--suite", "all"], 65).await;
}
